// fcvm inspect NAME...: the VM's state as JSON (an array, as podman does).
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cli/cli.h"

namespace fcvm::runner {

int InspectCommand(Cli& cli, const std::vector<std::string>& args) {
  if (args.empty()) return Complain(2, "inspect: which VM? fcvm inspect NAME");
  std::vector<std::string> items;
  int code = 0;
  for (const std::string& name : args) {
    absl::StatusOr<VmState> state = cli.store.Read(name);
    if (!state.ok()) {
      code = Complain(1, std::string(state.status().message()));
      continue;
    }
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.preserve_proto_field_names = true;
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(*state, &json, options);
    items.push_back(json);
  }
  std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
  return code;
}

}  // namespace fcvm::runner
