"""The pinned guest kernel source: Debian's linux-source-6.1 tarball.

The version must match third_party/debian_packages.txt (tools/bootstrap.sh
installs it). The kernel build checks the tarball's sha256 and fails, naming
both hashes, if it differs.
"""

KERNEL_SOURCE = struct(
    package = "linux-source-6.1",
    version = "6.1.192-2",
    path = "/usr/src/linux-source-6.1.tar.xz",
    # The directory the tarball unpacks to.
    top_dir = "linux-source-6.1",
    sha256 = "4d415b3d364834fd818270e88813e90323bbfce4f519a0e6bd4940ddcd7df693",
)
