#ifndef FCVM_RUNNER_NET_SUBNET_H_
#define FCVM_RUNNER_NET_SUBNET_H_

// Per-VM subnets for privileged (TAP) networking: each VM gets its own /30
// out of a pool: network, host side (the TAP, the guest's gateway), guest,
// broadcast. The MAC derives from the guest address, so it is unique too.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fcvm::runner {

struct Subnet {
  uint32_t network = 0;  // Host byte order.
  int prefix = 0;

  std::string Cidr() const;       // "10.213.0.4/30"
  std::string HostIp() const;     // "10.213.0.5"
  std::string GuestIp() const;    // "10.213.0.6"
  std::string GuestCidr() const;  // "10.213.0.6/30"
  std::string GuestMac() const;   // "06:00:0a:d5:00:06" (locally administered)
  bool Overlaps(const Subnet& other) const;
};

[[nodiscard]] absl::StatusOr<Subnet> ParseSubnet(const std::string& cidr);

// The first /30 of `pool` that overlaps none of `used` (CIDRs of the VMs
// that exist; unparsable entries are named in the error). Fails with the
// pool's size when it is full.
[[nodiscard]] absl::StatusOr<Subnet> AllocateSubnet(
    const Subnet& pool, const std::vector<std::string>& used);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_NET_SUBNET_H_
