"""Firecracker's OpenAPI specifications, a pinned build input.

Each version is fetched by sha256 from Firecracker's own source at its
release tag (the release tarball carries the same bytes as
firecracker_spec-<version>.yaml). A local copy is tried first, so machines
that cannot reach GitHub still build: $FCVM_FIRECRACKER_SPECS/<file>, else
../shared/firecracker/<file> beside the workspace. Either way the bytes must
have the pinned hash, and Bazel's repository cache keeps them after the
first fetch.
"""

FIRECRACKER_SPECS = {
    "1.10.1": "ff469152b1033b35b21d97158052d73cda21457038bd192cff255babb458decb",
    "1.16.1": "a514abec7b29700c5ca8bdaebbb960e4ffb46fe1fd4869094c6c63630a6fa41c",
}

_UPSTREAM = "https://raw.githubusercontent.com/firecracker-microvm/firecracker/v{version}/src/firecracker/swagger/firecracker.yaml"

def _firecracker_api_specs_impl(rctx):
    workspace = str(rctx.path(Label("//:WORKSPACE")).dirname)
    local_dirs = []
    if rctx.os.environ.get("FCVM_FIRECRACKER_SPECS"):
        local_dirs.append(rctx.os.environ["FCVM_FIRECRACKER_SPECS"])
    local_dirs.append(workspace + "/../shared/firecracker")
    files = []
    for version, sha256 in rctx.attr.specs.items():
        name = "firecracker-v%s.yaml" % version
        urls = []
        for directory in local_dirs:
            local = rctx.path(directory + "/" + name)
            if local.exists:
                urls.append("file://" + str(local))
        urls.append(_UPSTREAM.format(version = version))
        rctx.download(url = urls, output = name, sha256 = sha256)
        files.append(name)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

# Firecracker's API specifications, pinned by sha256 (third_party/firecracker).
filegroup(
    name = "files",
    srcs = {files},
)

exports_files({files})
""".format(files = repr(sorted(files))))

firecracker_api_specs = repository_rule(
    implementation = _firecracker_api_specs_impl,
    attrs = {"specs": attr.string_dict(mandatory = True)},
    environ = ["FCVM_FIRECRACKER_SPECS"],
)
