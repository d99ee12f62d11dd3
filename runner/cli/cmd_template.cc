// fcvm template build FILE: a template (protobuf text format) booted, its
// steps run, its readiness awaited, snapshotted under its name; prints
// one JSON line (tag, content key, whether it was built). Runs start from
// it with `fcvm run --template NAME` or `fcvm clone NAME`
// (runner/template/).
#include <cstdio>
#include <filesystem>

#include "google/protobuf/util/json_util.h"
#include "runner/cli/command.h"
#include "runner/template/build.h"

namespace fcvm::runner {
namespace {

int Build(Context& ctx, const std::string& file) {
  const std::string path = ctx.Resolve(file);
  absl::StatusOr<Template> spec = ReadTemplate(path);
  if (!spec.ok()) return Complain(1, spec.status());
  TemplateBuildOptions options;
  options.facts = ctx.Facts();
  options.holder_argv = ctx.HolderArgv();
  options.fcvm_argv = ctx.SelfArgv();
  options.template_dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<TemplateBuilt> built =
      BuildTemplate(ctx.store, *spec, options);
  if (!built.ok()) return Complain(1, built.status());
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  json.always_print_primitive_fields = true;
  std::string line;
  (void)google::protobuf::util::MessageToJsonString(*built, &line, json);
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace

Command TemplateCommand() {
  return {"template",
          "templates: build FILE (a snapshot runs start from)",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto chosen = std::make_shared<std::function<int()>>();
            app.require_subcommand(1);
            auto file = std::make_shared<std::string>();
            CLI::App* build = app.add_subcommand(
                "build",
                "boot it, run its steps, wait until ready, snapshot it (not "
                "again while its inputs are unchanged)");
            build->add_option("FILE", *file, "the template (text format)")
                ->required();
            build->callback([&ctx, chosen, file] {
              *chosen = [&ctx, file] { return Build(ctx, *file); };
            });
            return [chosen] { return (*chosen)(); };
          }};
}

}  // namespace fcvm::runner
