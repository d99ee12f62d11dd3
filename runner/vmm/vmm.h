#ifndef FCVM_RUNNER_VMM_VMM_H_
#define FCVM_RUNNER_VMM_VMM_H_

// A VMM backend: starts a VM from a spec with its serial console on the
// process's stdout (and console input on its stdin), and stops it the hard
// way when the guest does not power off by itself.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/subprocess.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner {

class Vmm {
 public:
  virtual ~Vmm() = default;

  // "qemu (tcg)", "firecracker 1.16.1", ... for messages and state.
  virtual std::string Describe() const = 0;
  // Starts the VM; `dir` is the VM's directory (sockets, plan, logs).
  virtual absl::StatusOr<Subprocess> Start(const VmSpec& spec,
                                           const std::string& dir) = 0;
  // Ends a VM whose guest did not power off (VMM's own way first).
  virtual void ForceStop(Subprocess& vmm, const std::string& dir) = 0;
};

// The VMM's command line: `argv` as is, or run through nsenter in the user
// and network namespaces of spec.netns_pid (rootless networking: the TAP
// lives there). Its uid stays the caller's, root inside that namespace.
inline std::vector<std::string> VmmCommand(const VmSpec& spec,
                                           std::vector<std::string> argv) {
  if (spec.netns_pid() <= 0) return argv;
  std::vector<std::string> wrapped = {
      "nsenter",
      absl::StrCat("--target=", spec.netns_pid()),
      "--user",
      "--net",
      "--preserve-credentials",
      "--"};
  for (std::string& arg : argv) wrapped.push_back(std::move(arg));
  return wrapped;
}

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VMM_VMM_H_
