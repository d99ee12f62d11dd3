#ifndef FCVM_RUNNER_TEMPLATE_BUILD_H_
#define FCVM_RUNNER_TEMPLATE_BUILD_H_

// `fcvm template build FILE`: boots the template's workload (cold, never
// from the startup cache), runs its steps in it with `fcvm exec`, waits
// until it is ready (a TCP port, an HTTP path, or a command), snapshots
// it under the template's name (stopping it) and removes the VM. The
// snapshot's manifest carries the template's content key: the startup
// cache's key of the workload (its VMM, kernel, base image, image, ...:
// runner/cache/key.h) plus the template's text; a template whose key
// matches its snapshot's is not built again. A build that fails (a step,
// a readiness that never comes) leaves nothing: the VM and the partial
// snapshot go.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/state/state_store.h"
#include "runner/template/template.pb.h"
#include "runner/vm/host_facts.h"

namespace fcvm::runner {

// Reads and checks a template file (text format); errors name the file.
[[nodiscard]] absl::StatusOr<Template> ReadTemplate(const std::string& path);

struct TemplateBuildOptions {
  FactsRequest facts;  // fcvm's assets; the template's kernel/rootfs win.
  std::vector<std::string> holder_argv;
  std::vector<std::string> fcvm_argv;  // For `fcvm exec`.
  std::string template_dir;  // Relative kernel/rootfs paths start here.
};

[[nodiscard]] absl::StatusOr<TemplateBuilt> BuildTemplate(
    StateStore& store, const Template& spec,
    const TemplateBuildOptions& options);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_TEMPLATE_BUILD_H_
