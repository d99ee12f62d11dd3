"""Run a test built, fully static, for a given platform.

`platform_test` builds `binary` (any executable, typically a cc_test) for
`platform` with a configuration transition, fully statically linked, checks
that the result really is a static ELF for that CPU, and runs it: natively
when the machine has that CPU, else under qemu-<cpu>-static. So one
`bazel test //...` on an x86_64 machine also runs our code compiled by the
aarch64 cross toolchain, and proves both architectures link statically (as
the guest agent must).
"""

def _cross_transition_impl(settings, attr):
    return {
        "//command_line_option:platforms": str(attr.platform),
        # Link everything statically: the emulated binary then needs no
        # target-architecture loader or libraries at run time.
        "//command_line_option:dynamic_mode": "off",
        "//command_line_option:features": ["fully_static_link"],
    }

_cross_transition = transition(
    implementation = _cross_transition_impl,
    inputs = [],
    outputs = [
        "//command_line_option:platforms",
        "//command_line_option:dynamic_mode",
        "//command_line_option:features",
    ],
)

# `file -b` describes an ELF of each CPU with these words.
_FILE_MACHINE = {
    "aarch64": "ARM aarch64",
    "x86_64": "x86-64",
}

def _platform_test_impl(ctx):
    target = ctx.attr.binary
    if type(target) == "list":
        target = target[0]
    binary = target[DefaultInfo].files_to_run.executable
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._runner,
        output = script,
        substitutions = {
            "@@BINARY@@": binary.short_path,
            "@@CPU@@": ctx.attr.cpu,
            "@@FILE_MACHINE@@": _FILE_MACHINE[ctx.attr.cpu],
        },
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = [binary])
    runfiles = runfiles.merge(target[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

platform_test = rule(
    implementation = _platform_test_impl,
    test = True,
    attrs = {
        "binary": attr.label(
            mandatory = True,
            executable = True,
            cfg = _cross_transition,
        ),
        "cpu": attr.string(
            mandatory = True,
            values = _FILE_MACHINE.keys(),
        ),
        "platform": attr.label(mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
        "_runner": attr.label(
            default = "//platforms:platform_test.sh.tpl",
            allow_single_file = True,
        ),
    },
)

def _platform_binary_impl(ctx):
    target = ctx.attr.binary
    if type(target) == "list":
        target = target[0]
    # Under the rule's own name: builds of one binary for several platforms
    # would otherwise share a runfiles path.
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = out,
        target_file = target[DefaultInfo].files_to_run.executable,
        is_executable = True,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

platform_binary = rule(
    implementation = _platform_binary_impl,
    doc = "The executable of `binary`, built fully static for `platform`.",
    attrs = {
        "binary": attr.label(mandatory = True, executable = True, cfg = _cross_transition),
        "platform": attr.label(mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

_PLATFORMS = {
    "aarch64": "//platforms:linux_aarch64",
    "x86_64": "//platforms:linux_x86_64",
}

def static_test(name, binary, cpu, **kwargs):
    """`binary` built fully static for Linux on `cpu` and run there.

    Args:
      name: the test's name.
      binary: an executable target, typically a cc_test.
      cpu: "aarch64" (run under qemu-aarch64-static on other machines) or
        "x86_64".
      **kwargs: common test attributes (size, tags, ...).
    """
    platform_test(
        name = name,
        binary = binary,
        cpu = cpu,
        platform = _PLATFORMS[cpu],
        **kwargs
    )

def static_binary(name, binary, cpu, **kwargs):
    """`binary` built fully static for Linux on `cpu` (e.g. a guest's init)."""
    platform_binary(
        name = name,
        binary = binary,
        platform = _PLATFORMS[cpu],
        **kwargs
    )
