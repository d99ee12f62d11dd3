#ifndef FCVM_RUNNER_TEMPLATE_START_H_
#define FCVM_RUNNER_TEMPLATE_START_H_

// `fcvm run --template NAME [--name N] [-p ...] [-d]`: one VM restored
// from template NAME's snapshot (build.h), with the run's own identity:
// its name (default <NAME>-<4 hex>), hostname, published ports (default:
// the template's guest ports on free host ports), machine-id, entropy,
// clock. What the template fixed (image, env, command, user, volumes,
// cpus, memory) cannot be changed by the run: those flags are refused.

#include <string>
#include <vector>

#include "runner/state/state_store.h"
#include "runner/vm/run_flags.h"

namespace fcvm::runner {

// The exit code as RunVm's; 2 for a flag the template fixes.
int RunTemplate(StateStore& store, const RunFlags& flags,
                const std::vector<std::string>& holder_argv);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_TEMPLATE_START_H_
