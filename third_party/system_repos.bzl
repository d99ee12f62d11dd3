"""Repositories over files that Debian packages install on the machine.

`system_headers`: selected headers of -dev packages. Only the listed paths are
linked into the repository, so a compile sees the headers of the libraries it
declares and nothing else from /usr/include.

`system_file`: one file (e.g. the kernel source tarball) as `@<name>//:file`.

Either way Bazel hashes the content of what it uses: upgrading a package
invalidates cached actions instead of reusing stale outputs.
"""

def _system_headers_impl(rctx):
    missing = []
    for path, package in rctx.attr.paths.items():
        src = rctx.path(rctx.attr.root + "/" + path)
        if not src.exists:
            missing.append("%s/%s (Debian package %s)" % (rctx.attr.root, path, package))
            continue
        rctx.symlink(src, "include/" + path)
    if missing:
        fail("fcvm: system headers missing: %s. Run tools/bootstrap.sh as root." %
             ", ".join(missing))
    rctx.symlink(rctx.attr.build_file, "BUILD.bazel")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)

system_headers = repository_rule(
    implementation = _system_headers_impl,
    attrs = {
        "build_file": attr.label(allow_single_file = True, mandatory = True),
        # Path under root -> the Debian package that provides it (for errors).
        "paths": attr.string_dict(mandatory = True),
        "root": attr.string(mandatory = True),
    },
    local = True,
)

def _system_file_impl(rctx):
    src = rctx.path(rctx.attr.path)
    if not src.exists:
        fail("fcvm: %s is missing (Debian package %s). Run tools/bootstrap.sh as root." %
             (rctx.attr.path, rctx.attr.package))
    name = rctx.attr.path.split("/")[-1]
    rctx.symlink(src, name)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

# {path}, from the Debian package {package}.
filegroup(
    name = "file",
    srcs = ["{name}"],
)
""".format(name = name, path = rctx.attr.path, package = rctx.attr.package))

system_file = repository_rule(
    implementation = _system_file_impl,
    attrs = {
        # The Debian package that installs it, for the error message.
        "package": attr.string(mandatory = True),
        "path": attr.string(mandatory = True),
    },
    local = True,
)

