"""kernel_image: a guest kernel built from the pinned source and our fragments."""

load("//kernel:source.bzl", "KERNEL_SOURCE")

def _kernel_image_impl(ctx):
    image = ctx.actions.declare_file(ctx.label.name)
    config = ctx.outputs.config
    args = ctx.actions.args()
    args.add(ctx.attr.arch)
    args.add(ctx.file.source)
    args.add(KERNEL_SOURCE.sha256)
    args.add(KERNEL_SOURCE.top_dir)
    args.add(ctx.executable._check)
    args.add(image)
    args.add(config)
    args.add_all(ctx.files.fragments)
    ctx.actions.run(
        executable = ctx.executable._build,
        arguments = [args],
        inputs = [ctx.file.source] + ctx.files.fragments,
        tools = [ctx.executable._check],
        outputs = [image, config],
        # make, gcc, flex, bison, bc come from the machine (pinned packages).
        use_default_shell_env = True,
        mnemonic = "KernelBuild",
        progress_message = "Building %s kernel %s" % (ctx.attr.arch, ctx.label),
    )
    # The image is the target's file; the resolved config is its own label,
    # //kernel:<name>.config.
    return [
        DefaultInfo(files = depset([image]), runfiles = ctx.runfiles(files = [image])),
        OutputGroupInfo(config = depset([config])),
    ]

kernel_image = rule(
    implementation = _kernel_image_impl,
    doc = """Builds `<name>` (x86_64: ELF vmlinux with a PVH note; aarch64:
    uncompressed Image) and `<name>.config` (the resolved configuration).""",
    attrs = {
        "arch": attr.string(mandatory = True, values = ["aarch64", "x86_64"]),
        # Merged over allnoconfig in this order; every line must survive.
        "fragments": attr.label_list(allow_files = [".config"], mandatory = True),
        "source": attr.label(default = "@linux_source//:file", allow_single_file = True),
        "_build": attr.label(default = "//kernel:build_sh", executable = True, cfg = "exec"),
        "_check": attr.label(default = "//kernel:check_config", executable = True, cfg = "exec"),
    },
    outputs = {"config": "%{name}.config"},
)
