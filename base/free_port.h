#ifndef FCVM_BASE_FREE_PORT_H_
#define FCVM_BASE_FREE_PORT_H_

// A port on 127.0.0.1 nobody is bound to right now. It is found by binding
// and closing, so another process may take it before the caller binds it:
// whoever binds later must report a taken port clearly (QEMU and pasta do,
// in their own words, which fcvm passes on).

#include <cstdint>

#include "absl/status/statusor.h"

namespace fcvm {

// `wanted` if it is free and not privileged (>= 1024), else a free
// ephemeral port; tcp or udp.
[[nodiscard]] absl::StatusOr<uint16_t> FreeLoopbackPort(uint16_t wanted = 0,
                                                        bool udp = false);

}  // namespace fcvm

#endif  // FCVM_BASE_FREE_PORT_H_
