#ifndef FCVM_AGENT_PLAN_SOURCE_H_
#define FCVM_AGENT_PLAN_SOURCE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/fw_cfg.h"
#include "agent/mmds.h"

namespace fcvm::agent {

// Where the plan comes from. The VM offers one of them; the agent asks
// ChoosePlanSource and then only talks to the interface.
class PlanSource {
 public:
  virtual ~PlanSource() = default;

  // For messages: "mmds", "fw_cfg", "kernel command line".
  virtual std::string name() const = 0;

  // The plan's JSON, waiting up to `deadline` where the source can be late
  // (MMDS filled after boot). Parsing and checking is ParsePlan's job.
  [[nodiscard]] virtual absl::StatusOr<std::string> Fetch(
      absl::Time deadline) = 0;

  // Whether the plan can change while the VM runs (a clone's new
  // generation). Only MMDS can; fw_cfg and the command line are fixed.
  virtual bool CanChange() const { return false; }

  // After a snapshot restore: drop state that died with the old VM.
  virtual void Restored() {}
};

// fcvm.plan=<base64url JSON> on the kernel command line: tiny plans under
// QEMU, and debugging.
class CmdlinePlanSource : public PlanSource {
 public:
  explicit CmdlinePlanSource(std::string encoded)
      : encoded_(std::move(encoded)) {}
  std::string name() const override { return "kernel command line"; }
  [[nodiscard]] absl::StatusOr<std::string> Fetch(absl::Time deadline) override;

 private:
  std::string encoded_;
};

// QEMU: -fw_cfg name=opt/fcvm/plan,file=plan.json, read from sysfs, or
// through the I/O ports where the kernel driver cannot (x86 without ACPI,
// see fw_cfg.h).
class FwCfgPlanSource : public PlanSource {
 public:
  explicit FwCfgPlanSource(std::string sysfs_path)
      : sysfs_path_(std::move(sysfs_path)) {}
  explicit FwCfgPlanSource(FwCfgPorts ports) : ports_(ports) {}
  std::string name() const override { return "fw_cfg"; }
  [[nodiscard]] absl::StatusOr<std::string> Fetch(absl::Time deadline) override;

 private:
  std::string sysfs_path_;
  std::optional<FwCfgPorts> ports_;
};

// Firecracker: MMDS V2, the plan stored at /fcvm/plan.
class MmdsPlanSource : public PlanSource {
 public:
  explicit MmdsPlanSource(MmdsOptions options) : client_(std::move(options)) {}
  std::string name() const override { return "mmds"; }
  [[nodiscard]] absl::StatusOr<std::string> Fetch(absl::Time deadline) override;
  bool CanChange() const override { return true; }
  void Restored() override { client_.ForgetToken(); }

  MmdsClient& client() { return client_; }

 private:
  MmdsClient client_;
};

inline constexpr absl::string_view kMmdsPlanPath = "/fcvm/plan";
inline constexpr absl::string_view kFwCfgPlanName = "opt/fcvm/plan";

// What the VM offers, in this order: fcvm.plan= on the command line, the
// fw_cfg file (under `sysfs_root`, "/sys" in the guest; or through the
// ports qemu_fw_cfg.ioport= names on x86), else MMDS (reached through
// `mmds`: the network must already route 169.254.169.254).
std::unique_ptr<PlanSource> ChoosePlanSource(absl::string_view cmdline,
                                             const std::string& sysfs_root,
                                             MmdsOptions mmds);

// The fw_cfg sysfs file for `name` under `sysfs_root`.
std::string FwCfgPath(const std::string& sysfs_root, absl::string_view name);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_PLAN_SOURCE_H_
