"""debian_archives: the .deb files of a lockfile, fetched by sha256.

    debian_archives(name = "base_amd64", lockfile = "//images/base:amd64.lock")

gives @base_amd64//:debs (all archives) and @base_amd64//:<package> (one).
Each archive is downloaded from its mirror's root + the locked path and must
have the locked sha256; Bazel's repository cache (keyed by that hash) makes
every later fetch, in any clone on the machine, need no network. A mirror
root comes from FCVM_MIRROR_<MIRROR> or the host's apt sources at fetch time,
never from the repository.
"""

_APT_SOURCES = "/etc/apt/sources.list"
_APT_SOURCES_DIR = "/etc/apt/sources.list.d"

def _apt_uris(rctx):
    """Every URI in the apt configuration (deb822 and one-line formats)."""
    files = [rctx.path(_APT_SOURCES)]
    sources_dir = rctx.path(_APT_SOURCES_DIR)
    if sources_dir.exists:
        names = sorted([
            f.basename
            for f in sources_dir.readdir()
            if f.basename.endswith(".sources") or f.basename.endswith(".list")
        ])
        files += [sources_dir.get_child(n) for n in names]
    uris = []
    for f in files:
        if not f.exists:
            continue
        for line in rctx.read(f).splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                uris += [w for w in line[len("URIs:"):].split(" ") if w]
            elif line.startswith("deb "):
                words = [w for w in line.split(" ") if w]
                i = 1
                if words[i].startswith("["):
                    for j in range(i, len(words)):
                        if words[j].endswith("]"):
                            i = j + 1
                            break
                if i < len(words):
                    uris.append(words[i])
    return uris

def _mirror_root(rctx, mirror):
    env = "FCVM_MIRROR_" + mirror.upper().replace("-", "_")
    value = rctx.os.environ.get(env, "")
    if value:
        return value.rstrip("/")
    uris = _apt_uris(rctx)
    for uri in uris:
        root = uri.rstrip("/")
        if root.endswith("/" + mirror):
            return root
    fail("fcvm: no mirror for '%s': set %s to its root URL, or add an apt source whose path ends in /%s (apt sources seen: %s)" %
         (mirror, env, mirror, ", ".join(uris) or "none"))

def _explain_failure(rctx, p, url, scratch, mirror):
    """Fails saying why `p` could not be fetched: a different archive (with
    both hashes) or no download at all. Bazel will not fetch plain http
    without a checksum, so curl fetches it once more, unchecked."""
    got = rctx.execute(["curl", "-sSfL", "--max-time", "300", "-o", scratch, url])
    if got.return_code == 0:
        found = rctx.execute(["sha256sum", scratch]).stdout.split(" ")[0]
        rctx.delete(scratch)
        fail(("fcvm: package %s %s (%s): sha256 mismatch: expected %s, found %s. " +
              "The mirror serves another archive, or the lockfile is stale: " +
              "re-run bazel run //rootfs:lock.") % (p["name"], p["version"], url, p["sha256"], found))
    fail(("fcvm: package %s %s: cannot download %s: %s(offline? the first fetch " +
          "needs the mirror; or set %s)") %
         (p["name"], p["version"], url, got.stderr, "FCVM_MIRROR_" + mirror.upper().replace("-", "_")))

def _debian_archives_impl(rctx):
    lock = json.decode(rctx.read(rctx.attr.lockfile))
    roots = {}
    names = []
    files = []
    for p in lock["packages"]:
        mirror = p["mirror"]
        if mirror not in roots:
            roots[mirror] = _mirror_root(rctx, mirror)
        url = roots[mirror] + "/" + p["path"]
        # .deb, or .apk for Alpine locks: debs/<name>.<ext> either way.
        ext = "apk" if p["path"].endswith(".apk") else "deb"
        out = "debs/%s.%s" % (p["name"], ext)
        result = rctx.download(url = url, output = out, sha256 = p["sha256"], allow_fail = True)
        if not result.success:
            _explain_failure(rctx, p, url, out + ".unverified", mirror)
        names.append(p["name"])
        files.append(out)
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    build.append('exports_files(glob(["debs/*"]))')
    build.append("")
    build.append('filegroup(\n    name = "debs",\n    srcs = [%s],\n)' %
                 ", ".join(['"%s"' % f for f in files]))
    for n, f in zip(names, files):
        build.append('\nalias(\n    name = "%s",\n    actual = "%s",\n)' % (n, f))
    rctx.file("BUILD.bazel", "\n".join(build) + "\n")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)

debian_archives = repository_rule(
    implementation = _debian_archives_impl,
    attrs = {
        "lockfile": attr.label(mandatory = True, allow_single_file = True),
    },
    environ = [
        "FCVM_MIRROR_DEBIAN",
        "FCVM_MIRROR_DEBIAN_SECURITY",
    ],
)
