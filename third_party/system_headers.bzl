"""A repository of selected system headers from Debian -dev packages.

Only the listed paths are linked into the repository, so a compile sees the
headers of the libraries it declares and nothing else from /usr/include, and
Bazel hashes their content: upgrading a package invalidates cached actions.
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
