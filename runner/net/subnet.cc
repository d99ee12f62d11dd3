#include "runner/net/subnet.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace fcvm::runner {
namespace {

constexpr int kVmPrefix = 30;

std::string Dotted(uint32_t address) {
  return absl::StrCat(address >> 24, ".", (address >> 16) & 0xff, ".",
                      (address >> 8) & 0xff, ".", address & 0xff);
}

uint32_t Mask(int prefix) {
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

}  // namespace

std::string Subnet::Cidr() const {
  return absl::StrCat(Dotted(network), "/", prefix);
}
std::string Subnet::HostIp() const { return Dotted(network + 1); }
std::string Subnet::GuestIp() const { return Dotted(network + 2); }
std::string Subnet::GuestCidr() const {
  return absl::StrCat(GuestIp(), "/", prefix);
}
std::string Subnet::GuestMac() const {
  const uint32_t guest = network + 2;
  return absl::StrFormat("06:00:%02x:%02x:%02x:%02x", guest >> 24,
                         (guest >> 16) & 0xff, (guest >> 8) & 0xff,
                         guest & 0xff);
}

bool Subnet::Overlaps(const Subnet& other) const {
  const uint32_t mask = Mask(std::min(prefix, other.prefix));
  return (network & mask) == (other.network & mask);
}

[[nodiscard]] absl::StatusOr<Subnet> ParseSubnet(const std::string& cidr) {
  std::vector<std::string> parts = absl::StrSplit(cidr, '/');
  in_addr address;
  int prefix = 0;
  if (parts.size() != 2 ||
      inet_pton(AF_INET, parts[0].c_str(), &address) != 1 ||
      !absl::SimpleAtoi(parts[1], &prefix) || prefix < 0 || prefix > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", cidr, "' is not an IPv4 subnet like 10.213.0.0/16"));
  }
  const uint32_t network = ntohl(address.s_addr);
  if ((network & ~Mask(prefix)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", cidr, "' has host bits set (the network is ",
                     Dotted(network & Mask(prefix)), "/", prefix, ")"));
  }
  return Subnet{network, prefix};
}

[[nodiscard]] absl::StatusOr<Subnet> AllocateSubnet(
    const Subnet& pool, const std::vector<std::string>& used) {
  if (pool.prefix > kVmPrefix) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subnet pool ", pool.Cidr(), " is smaller than one VM's /30"));
  }
  std::vector<Subnet> taken;
  for (const std::string& cidr : used) {
    absl::StatusOr<Subnet> subnet = ParseSubnet(cidr);
    if (!subnet.ok()) {
      return absl::DataLossError(
          absl::StrCat("a VM's recorded subnet: ", subnet.status().message()));
    }
    taken.push_back(*subnet);
  }
  const uint64_t count = uint64_t{1} << (kVmPrefix - pool.prefix);
  for (uint64_t i = 0; i < count; ++i) {
    const Subnet candidate{pool.network + static_cast<uint32_t>(i << 2),
                           kVmPrefix};
    bool free = true;
    for (const Subnet& t : taken) free = free && !candidate.Overlaps(t);
    if (free) return candidate;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("subnet pool ", pool.Cidr(), " is full: all ", count,
                   " /30 subnets belong to VMs (`fcvm ls`, `fcvm gc`)"));
}

}  // namespace fcvm::runner
