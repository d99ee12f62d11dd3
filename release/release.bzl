"""fcvm_release: a release tarball for one CPU (release/README.md).

bin/fcvm is built for the tarball's CPU through a configuration transition
(cross-compiled for aarch64 on an x86_64 machine), optimized, with abseil
and protobuf linked in (//third_party:static_cxx_libs); the assets are the
kernel, base.ext4 and workload images built for that CPU. The packer
(release/pack.h) writes the tarball deterministically; the commit and the
mtime come from Bazel's stable status (tools/workspace_status.sh).
"""

load("//release:version.bzl", "FCVM_VERSION")

_PLATFORMS = {
    "aarch64": "//platforms:linux_aarch64",
    "x86_64": "//platforms:linux_x86_64",
}

def _release_transition_impl(settings, attr):
    return {
        "//command_line_option:platforms": _PLATFORMS[attr.cpu],
        "//command_line_option:compilation_mode": "opt",
        "//third_party:static_cxx_libs": True,
    }

_release_transition = transition(
    implementation = _release_transition_impl,
    inputs = [],
    outputs = [
        "//command_line_option:platforms",
        "//command_line_option:compilation_mode",
        "//third_party:static_cxx_libs",
    ],
)

def _one(target):
    if type(target) == "list":
        target = target[0]
    return target

def _fcvm_release_impl(ctx):
    cpu = ctx.attr.cpu
    name = "fcvm-%s-linux-%s" % (FCVM_VERSION, cpu)
    out = ctx.actions.declare_file(name + ".tar.gz")
    fcvm = _one(ctx.attr.fcvm)[DefaultInfo].files_to_run.executable
    args = ctx.actions.args()
    args.add("--out", out)
    args.add("--version", FCVM_VERSION)
    args.add("--arch", cpu)
    args.add("--info_file", ctx.info_file)
    args.add("--exe", "bin/fcvm=" + fcvm.path)
    inputs = [fcvm, ctx.file.kernel, ctx.file.kernel_config, ctx.file.base]
    args.add("--file", "share/fcvm/vmlinux=" + ctx.file.kernel.path)
    args.add("--kernel", "vmlinux")
    args.add("--file", "share/fcvm/kernel.config=" + ctx.file.kernel_config.path)
    args.add("--kernel_config", "kernel.config")
    args.add("--file", "share/fcvm/base.ext4=" + ctx.file.base.path)
    args.add("--rootfs", "base.ext4")
    rootfs = {name: target for target, name in ctx.attr.rootfs.items()}
    oci = {name: target for target, name in ctx.attr.oci.items()}
    for image in sorted(oci):
        target = oci[image]
        archive = target.files.to_list()[0]
        inputs.append(archive)
        args.add("--file", "share/fcvm/images/%s.oci.tar=%s" % (image, archive.path))
        spec = "images/%s.oci.tar" % image
        if image in rootfs:
            ext4 = rootfs[image].files.to_list()[0]
            inputs.append(ext4)
            args.add("--file", "share/fcvm/images/%s.rootfs.ext4=%s" % (image, ext4.path))
            spec += ",images/%s.rootfs.ext4" % image
        args.add("--image", "%s=%s" % (image, spec))
    for image in rootfs:
        if image not in oci:
            fail("fcvm_release %s: rootfs image %s has no OCI archive" % (ctx.label.name, image))
    for lock in ctx.files.lockfiles:
        inputs.append(lock)
        args.add("--file", "share/fcvm/locks/%s=%s" % (lock.short_path, lock.path))
        args.add("--input", "%s=%s" % (lock.short_path, lock.path))
    for fragment in ctx.files.kernel_fragments:
        inputs.append(fragment)
        args.add("--input", "%s=%s" % (fragment.short_path, fragment.path))
    inputs.append(ctx.file.kernel_source)
    args.add("--input", "kernel-source=" + ctx.file.kernel_source.path)
    inputs.append(ctx.info_file)
    ctx.actions.run(
        executable = ctx.executable._pack,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "FcvmRelease",
        progress_message = "Packing release %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

fcvm_release = rule(
    implementation = _fcvm_release_impl,
    doc = "fcvm-VERSION-linux-CPU.tar.gz: bin/fcvm and share/fcvm/.",
    attrs = {
        "cpu": attr.string(mandatory = True, values = _PLATFORMS.keys()),
        "fcvm": attr.label(mandatory = True, executable = True, cfg = _release_transition),
        "kernel": attr.label(mandatory = True, allow_single_file = True),
        "kernel_config": attr.label(mandatory = True, allow_single_file = True),
        "kernel_fragments": attr.label_list(allow_files = [".config"]),
        "kernel_source": attr.label(default = "@linux_source//:file", allow_single_file = True),
        "base": attr.label(mandatory = True, allow_single_file = True),
        # OCI archive target -> image name; baked ext4 target -> image name.
        "oci": attr.label_keyed_string_dict(allow_files = True),
        "rootfs": attr.label_keyed_string_dict(allow_files = True),
        "lockfiles": attr.label_list(allow_files = True),
        "_pack": attr.label(default = "//release:fcvm-pack", executable = True, cfg = "exec"),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
