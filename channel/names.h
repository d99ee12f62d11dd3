#ifndef FCVM_CHANNEL_NAMES_H_
#define FCVM_CHANNEL_NAMES_H_

// Where each end of the control channel is found.

#include <cstdint>

namespace fcvm::channel {

// In a VM's directory on the host: the hub (the VM's supervisor) listens
// here for clients (`fcvm exec`, `fcvm cp`, the API server); mode 0600.
inline constexpr char kHubSocket[] = "channel.sock";
// QEMU's end of the virtio-serial port (a chardev socket QEMU listens on;
// the hub is its one client).
inline constexpr char kQemuPortSocket[] = "agent.sock";
// The port's name in the guest (/sys/class/virtio-ports/*/name).
inline constexpr char kVirtioPortName[] = "org.fcvm.channel.0";
// The agent's vsock port (the host connects: Firecracker's "CONNECT 1025").
inline constexpr uint32_t kVsockPort = 1025;

}  // namespace fcvm::channel

#endif  // FCVM_CHANNEL_NAMES_H_
