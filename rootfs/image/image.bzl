"""rootfs_image: an ext4 root filesystem or OCI image from an image definition.

Runs //rootfs/image:build_image on the definition, one architecture's lockfile and
that lockfile's .deb archives (a debian_archives repository), plus files from
the build such as the init. Same inputs, same bytes: the UUID and hash seed
come from the inputs and every timestamp is the definition's
source_date_epoch.
"""

def _rootfs_image_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + (".tar" if ctx.attr.format == "oci" else ".ext4"))
    debs = ctx.files.debs
    if not debs:
        fail("rootfs_image %s: no .deb archives in %s" % (ctx.label, ctx.attr.debs.label))
    debs_dir = debs[0].dirname
    for deb in debs:
        if deb.dirname != debs_dir:
            fail("rootfs_image %s: archives in more than one directory: %s, %s" %
                 (ctx.label, debs_dir, deb.dirname))
    args = ctx.actions.args()
    args.add("--definition=" + ctx.file.definition.path)
    args.add("--lock=" + ctx.file.lock.path)
    args.add("--debs_dir=" + debs_dir)
    extra_files = []
    extras = []
    for target, spec in ctx.attr.extra.items():
        files = target[DefaultInfo].files.to_list()
        if len(files) != 1:
            fail("rootfs_image %s: extra %s must be one file" % (ctx.label, target.label))
        path, _, mode = spec.partition(":")
        extras.append("%s=%s:%s" % (path, files[0].path, mode or "0644"))
        extra_files.append(files[0])
    if extras:
        args.add("--extra=" + ",".join(extras))
    args.add("--format=" + ctx.attr.format)
    args.add("--output=" + out.path)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = [ctx.file.definition, ctx.file.lock] + debs + ctx.files.files + extra_files,
        outputs = [out],
        mnemonic = "RootfsImage",
        progress_message = "Building root filesystem %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

rootfs_image = rule(
    implementation = _rootfs_image_impl,
    doc = "An ext4 image (<name>.ext4) or OCI archive (<name>.tar) built from an image definition and its locked packages.",
    attrs = {
        "definition": attr.label(allow_single_file = [".textproto"], mandatory = True),
        "lock": attr.label(allow_single_file = [".lock"], mandatory = True),
        "debs": attr.label(mandatory = True, doc = "every locked .deb, as NAME.deb in one directory"),
        "format": attr.string(
            default = "ext4",
            values = ["ext4", "oci"],
            doc = "ext4: a VM root filesystem (<name>.ext4); oci: a container image archive (<name>.tar)",
        ),
        "files": attr.label_list(allow_files = True, doc = "the definition's `files` sources"),
        "extra": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "build outputs to add: label -> IMAGE_PATH[:OCTAL_MODE]",
        ),
        "_tool": attr.label(
            default = "//rootfs/image:build_image",
            executable = True,
            cfg = "exec",
        ),
    },
)
