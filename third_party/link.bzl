"""How the Debian C++ libraries that a stock Debian lacks are linked.

Builds link abseil and protobuf dynamically (fast links, shared by every
test). A release's bin/fcvm (//release) sets //third_party:static_cxx_libs
through its configuration transition: those two are then linked from their
.a archives into the binary, so it runs on a stock Debian 12 with only
libcurl4, libarchive13, libmicrohttpd12 and libnftables1 (which `fcvm setup preflight`
checks) beside glibc and libstdc++.
"""

def _bool_setting_impl(ctx):
    return []

bool_setting = rule(
    implementation = _bool_setting_impl,
    build_setting = config.bool(flag = True),
    doc = "A boolean build setting (--//third_party:NAME=true).",
)

# Libraries every Debian has (glibc's and gcc's): always shared.
_SYSTEM = ["-latomic", "-ldl", "-lm", "-lpthread", "-lrt"]

def static_when_set(libs):
    """The -l options `libs`, from .a archives under static_cxx_libs.

    Args:
      libs: link options; each -l option of a library a stock Debian lacks is
        wrapped, others (glibc's, gcc's) kept.
    Returns:
      A select() of the options.
    """
    wrapped = []
    for opt in libs:
        if opt.startswith("-l") and opt not in _SYSTEM:
            wrapped += ["-Wl,--push-state,-Bstatic", opt, "-Wl,--pop-state"]
        else:
            wrapped.append(opt)
    return select({
        "//third_party:link_static_cxx_libs": wrapped,
        "//conditions:default": libs,
    })
