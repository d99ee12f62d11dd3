#include "agent/identity.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agent/netconfig.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::agent {
namespace {

// The identity files are written again by every boot and every restore
// from the plan, so a crash before the kernel writes them back loses
// nothing; their fsyncs cost ~100 ms per clone on a guest under TCG.
constexpr Durability kRewrittenEachStart = Durability::kUnsynced;

std::string Etc(const IdentityOptions& options, absl::string_view name) {
  return absl::StrCat(options.root, options.root.back() == '/' ? "" : "/",
                      "etc/", name);
}

}  // namespace

[[nodiscard]] absl::Status AddEntropy(const std::string& bytes) {
  ASSIGN_OR_RETURN(UniqueFd random, OpenFd("/dev/urandom", O_WRONLY));
  std::vector<char> buffer(sizeof(rand_pool_info) + bytes.size());
  auto* info = reinterpret_cast<rand_pool_info*>(buffer.data());
  info->entropy_count = static_cast<int>(bytes.size() * 8);
  info->buf_size = static_cast<int>(bytes.size());
  std::memcpy(info->buf, bytes.data(), bytes.size());
  if (ioctl(random.get(), RNDADDENTROPY, info) != 0) {
    return ErrnoStatus("crediting entropy (RNDADDENTROPY)");
  }
  if (ioctl(random.get(), RNDRESEEDCRNG) != 0) {
    return ErrnoStatus("reseeding the CRNG (RNDRESEEDCRNG)");
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<absl::Duration> StepClock(absl::Time host_time,
                                                       absl::Duration slack) {
  const absl::Duration off = host_time - absl::Now();
  if (off <= slack) return absl::ZeroDuration();
  const timespec to = absl::ToTimespec(host_time);
  if (clock_settime(CLOCK_REALTIME, &to) != 0) {
    return ErrnoStatus("stepping the clock (clock_settime)");
  }
  return off;
}

[[nodiscard]] absl::StatusOr<std::string> RandomMachineId() {
  char bytes[16];
  if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) {
    return ErrnoStatus("getrandom");
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

[[nodiscard]] absl::StatusOr<IdentityReport> ApplyIdentity(
    const Plan& plan, const IdentityOptions& options) {
  // Monotonic: the clock step below must not distort the measurement.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> done;
  if (options.kernel && !plan.entropy().empty()) {
    RETURN_IF_ERROR(AddEntropy(plan.entropy()));
    done.push_back(absl::StrCat("entropy ", plan.entropy().size(), " bytes"));
  }
  if (options.kernel && plan.host_time_unix_ms() != 0) {
    ASSIGN_OR_RETURN(absl::Duration step,
                     StepClock(absl::FromUnixMillis(plan.host_time_unix_ms()),
                               absl::Seconds(1)));
    if (step != absl::ZeroDuration()) {
      done.push_back(
          absl::StrCat("clock stepped ", absl::FormatDuration(step)));
    }
  }
  if (!plan.hostname().empty()) {
    const std::string& name = plan.hostname();
    if (options.kernel && sethostname(name.data(), name.size()) != 0) {
      return ErrnoStatus(absl::StrCat("sethostname ", name));
    }
    RETURN_IF_ERROR(WriteFileAtomically(Etc(options, "hostname"),
                                        absl::StrCat(name, "\n"), 0644,
                                        kRewrittenEachStart));
    RETURN_IF_ERROR(WriteFileAtomically(
        Etc(options, "hosts"),
        absl::StrCat("127.0.0.1\tlocalhost\n127.0.1.1\t", name,
                     "\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        0644, kRewrittenEachStart));
    done.push_back(absl::StrCat("hostname ", name));
  }
  std::string machine_id = plan.machine_id();
  if (machine_id.empty()) {
    ASSIGN_OR_RETURN(machine_id, RandomMachineId());
  }
  RETURN_IF_ERROR(WriteFileAtomically(Etc(options, "machine-id"),
                                      absl::StrCat(machine_id, "\n"), 0444,
                                      kRewrittenEachStart));
  done.push_back(absl::StrCat("machine-id ", machine_id));

  const NetworkIdentity& network = plan.network();
  if (options.kernel && !network.mac().empty()) {
    RETURN_IF_ERROR(SetMacAddress(options.interface, network.mac()));
  }
  if (options.kernel && !network.ip_cidr().empty()) {
    RETURN_IF_ERROR(SetLinkUp(options.interface));
    RETURN_IF_ERROR(ReplaceIpv4Address(options.interface, network.ip_cidr()));
    if (!network.gateway().empty()) {
      RETURN_IF_ERROR(
          ReplaceRoute("0.0.0.0/0", network.gateway(), options.interface));
    }
    done.push_back(absl::StrCat(
        options.interface, " ", network.ip_cidr(),
        network.gateway().empty() ? ""
                                  : absl::StrCat(" via ", network.gateway())));
  }
  if (network.dns_size() > 0) {
    std::string resolv;
    for (const std::string& server : network.dns()) {
      absl::StrAppend(&resolv, "nameserver ", server, "\n");
    }
    RETURN_IF_ERROR(WriteFileAtomically(Etc(options, "resolv.conf"), resolv,
                                        0644, kRewrittenEachStart));
    done.push_back(absl::StrCat("dns ", absl::StrJoin(network.dns(), ",")));
  }
  return IdentityReport{
      absl::StrJoin(done, "; "),
      absl::FromChrono(std::chrono::steady_clock::now() - start)};
}

}  // namespace fcvm::agent
