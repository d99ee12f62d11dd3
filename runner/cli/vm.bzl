"""A `fcvm run` launcher with its guest's assets as runfiles."""

def vm_launcher(name, kernel, base, oci, rootfs = {}, arch = None):
    """`bazel run :<name> -- IMAGE`: vm.sh runs fcvm with these assets.

    Args:
      name: the launcher; its assets are listed in <name>_assets.txt.
      kernel: the guest kernel.
      base: the guest's base.ext4.
      oci: image name -> OCI archive target.
      rootfs: image name -> the same image baked as an ext4 root filesystem
        (--image-rootfs), which runs with no `podman load`; each needs its
        archive in `oci` (its config is read from there).
      arch: the guest's CPU (--arch); None: the host's.
    """
    for image in rootfs:
        if image not in oci:
            fail("vm_launcher %s: rootfs image %s has no OCI archive in oci" % (name, image))
    lines = ["echo --kernel=$(rootpath %s)" % kernel, "echo --rootfs=$(rootpath %s)" % base]
    lines += ["echo --oci=%s=$(rootpath %s)" % (image, target) for image, target in sorted(oci.items())]
    lines += ["echo --image-rootfs=%s=$(rootpath %s)" % (image, target) for image, target in sorted(rootfs.items())]
    if arch:
        lines.append("echo --arch=%s" % arch)
    native.genrule(
        name = name + "_assets",
        srcs = [kernel, base] + sorted(oci.values()) + sorted(rootfs.values()),
        outs = [name + "_assets.txt"],
        cmd = "(\n" + "\n".join(lines) + "\n) > $@",
    )
    native.sh_binary(
        name = name,
        srcs = ["vm.sh"],
        data = [
            ":" + name + "_assets",
            kernel,
            base,
            "//runner:fcvm",
        ] + sorted(oci.values()) + sorted(rootfs.values()),
    )
