#include "runner/vmm/firecracker/requests.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "runner/vmm/firecracker/api.pb.h"

namespace fcvm::runner::firecracker {
namespace {

using ::google::protobuf::util::JsonPrintOptions;

// Linux's COMMAND_LINE_SIZE on x86_64 and arm64.
constexpr size_t kMaxCommandLine = 2048;

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

// Types of the generated pool (every message here); it is only read, so one
// resolver serves every thread.
google::protobuf::util::TypeResolver* GeneratedTypes() {
  static google::protobuf::util::TypeResolver* const resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          kTypeUrlPrefix, google::protobuf::DescriptorPool::generated_pool());
  return resolver;
}

// `message` in protobuf's JSON mapping, the same bytes every time.
// MessageToJsonString prints map entries (a plan's env, a Struct's keys) in
// hash order, which differs between runs; deterministic serialization sorts
// them, and the JSON printer keeps the wire order.
std::string DeterministicJson(const google::protobuf::Message& message,
                              const JsonPrintOptions& options) {
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    // proto3 has no required fields: serializing cannot fail.
    (void)message.SerializeToCodedStream(&coded);
  }
  std::string json;
  // Our messages have no Any fields, whose types could be unknown: printing
  // cannot fail.
  (void)google::protobuf::util::BinaryToJsonString(
      GeneratedTypes(),
      absl::StrCat(kTypeUrlPrefix, "/", message.GetDescriptor()->full_name()),
      binary, &json, options);
  return json;
}

// The plan as the agent reads it (the JSON mapping's lowerCamelCase names),
// on the command line and in MMDS alike.
std::string PlanJson(const agent::Plan& plan) {
  return DeterministicJson(plan, JsonPrintOptions());
}

}  // namespace

std::string ToJson(const google::protobuf::Message& body) {
  JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  return DeterministicJson(body, options);
}

std::string PlatformBootArgs(const std::string& arch) {
  // reboot=k: a guest reboot ends Firecracker (triple fault on x86, PSCI on
  // arm64); panic=1 turns a guest panic into that; pci=off: no PCI bus to
  // probe on x86. arm64 Firecracker has an 8250 UART at ttyS0 too.
  return arch == "x86_64" ? "console=ttyS0 reboot=k panic=1 pci=off"
                          : "console=ttyS0 reboot=k panic=1";
}

[[nodiscard]] absl::StatusOr<std::vector<ApiRequest>> ConfigureRequests(
    const VmSpec& spec) {
  if (spec.arch() != "x86_64" && spec.arch() != "aarch64") {
    return absl::InvalidArgumentError(absl::StrCat(
        "VM '", spec.name(), "': unknown architecture '", spec.arch(), "'"));
  }
  if (spec.kernel().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VM '", spec.name(), "': no kernel"));
  }
  if (spec.disks().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VM '", spec.name(), "': no root disk"));
  }
  // Firecracker takes 1 or an even number of vCPUs, at most 32.
  if (spec.vcpus() == 0 || spec.vcpus() > 32 ||
      (spec.vcpus() > 1 && spec.vcpus() % 2 != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("VM '", spec.name(), "': ", spec.vcpus(),
                     " vCPUs; Firecracker takes 1 or an even number up to 32"));
  }
  if (spec.memory_mib() < 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("VM '", spec.name(), "': ", spec.memory_mib(),
                     " MiB of memory is too little (at least 64)"));
  }
  std::vector<ApiRequest> requests;
  auto put = [&](std::string path, const google::protobuf::Message& body) {
    requests.push_back({"PUT", std::move(path), ToJson(body)});
  };

  if (!spec.log_path().empty()) {
    Logger logger;
    logger.set_log_path(spec.log_path());
    logger.set_level("Info");
    logger.set_show_level(true);
    put("/logger", logger);
  }
  if (!spec.metrics_path().empty()) {
    Metrics metrics;
    metrics.set_metrics_path(spec.metrics_path());
    put("/metrics", metrics);
  }

  MachineConfiguration machine;
  machine.set_vcpu_count(spec.vcpus());
  machine.set_mem_size_mib(spec.memory_mib());
  put("/machine-config", machine);

  std::string boot_args =
      absl::StrCat(PlatformBootArgs(spec.arch()), " ", spec.boot_args());
  if (spec.nics().empty()) {
    // No NIC, no MMDS: the plan rides on the command line.
    std::string encoded;
    absl::WebSafeBase64Escape(PlanJson(spec.plan()), &encoded);
    absl::StrAppend(&boot_args, " fcvm.plan=", encoded);
    if (boot_args.size() >= kMaxCommandLine) {
      return absl::InvalidArgumentError(absl::StrCat(
          "VM '", spec.name(),
          "': without a network interface the plan "
          "goes on the kernel command line, and it would be ",
          boot_args.size(), " bytes (the limit is ", kMaxCommandLine,
          "); give the VM a network interface so the plan comes from MMDS"));
    }
  }
  BootSource boot;
  boot.set_kernel_image_path(spec.kernel());
  boot.set_boot_args(boot_args);
  if (!spec.initrd().empty()) boot.set_initrd_path(spec.initrd());
  put("/boot-source", boot);

  for (int i = 0; i < spec.disks_size(); ++i) {
    const std::string id = std::string("vd") + static_cast<char>('a' + i);
    Drive drive;
    drive.set_drive_id(id);
    // The guest mounts root=/dev/vda itself: Firecracker's root device
    // would add its own root= to the command line.
    drive.set_is_root_device(false);
    drive.set_is_read_only(spec.disks(i).read_only());
    drive.set_path_on_host(spec.disks(i).path());
    put(absl::StrCat("/drives/", id), drive);
  }

  std::vector<std::string> ifaces;
  for (int i = 0; i < spec.nics_size(); ++i) {
    if (!spec.nics(i).has_tap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("VM '", spec.name(),
                       "': Firecracker's network interfaces are TAP "
                       "devices; NIC ",
                       i, " has none (user-mode networking is QEMU's)"));
    }
    const std::string id = InterfaceId(i);
    NetworkInterface nic;
    nic.set_iface_id(id);
    nic.set_host_dev_name(spec.nics(i).tap());
    if (!spec.nics(i).guest_mac().empty()) {
      nic.set_guest_mac(spec.nics(i).guest_mac());
    }
    put(absl::StrCat("/network-interfaces/", id), nic);
    ifaces.push_back(id);
  }
  if (!ifaces.empty()) {
    MmdsConfig mmds;
    mmds.set_version("V2");
    mmds.add_network_interfaces(ifaces[0]);
    put("/mmds/config", mmds);
    ASSIGN_OR_RETURN(ApiRequest contents, MmdsPlanRequest(spec.plan()));
    requests.push_back(std::move(contents));
  }

  if (!spec.vsock_uds().empty()) {
    Vsock vsock;
    vsock.set_guest_cid(spec.vsock_cid() < 3 ? 3 : spec.vsock_cid());
    vsock.set_uds_path(spec.vsock_uds());
    put("/vsock", vsock);
  }
  // virtio-rng: the guest's CRNG is ready at once (the agent reseeds it
  // again after a restore).
  put("/entropy", EntropyDevice());
  return requests;
}

ApiRequest StartRequest() {
  InstanceActionInfo start;
  start.set_action_type("InstanceStart");
  return {"PUT", "/actions", ToJson(start)};
}

ApiRequest VmStateRequest(const std::string& state) {
  Vm vm;
  vm.set_state(state);
  return {"PATCH", "/vm", ToJson(vm)};
}

ApiRequest SnapshotCreateRequest(const std::string& state_file,
                                 const std::string& memory_file) {
  SnapshotCreateParams params;
  params.set_snapshot_path(state_file);
  params.set_mem_file_path(memory_file);
  params.set_snapshot_type("Full");
  return {"PUT", "/snapshot/create", ToJson(params)};
}

std::string InterfaceId(int index) { return absl::StrCat("eth", index); }

ApiRequest SnapshotLoadRequest(
    const std::string& state_file, bool uffd, const std::string& memory_path,
    bool resume, const std::vector<std::pair<std::string, std::string>>& taps) {
  SnapshotLoadParams params;
  params.set_snapshot_path(state_file);
  params.mutable_mem_backend()->set_backend_type(uffd ? "Uffd" : "File");
  params.mutable_mem_backend()->set_backend_path(memory_path);
  params.set_resume_vm(resume);
  for (const auto& [iface, tap] : taps) {
    NetworkOverride& o = *params.add_network_overrides();
    o.set_iface_id(iface);
    o.set_host_dev_name(tap);
  }
  return {"PUT", "/snapshot/load", ToJson(params)};
}

[[nodiscard]] absl::StatusOr<ApiRequest> MmdsPlanRequest(
    const agent::Plan& plan) {
  // The plan's JSON mapping as a JSON value (64-bit integers are strings
  // there, so no number loses precision on the way).
  google::protobuf::Value plan_value;
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(PlanJson(plan), &plan_value);
  if (!parsed.ok()) {
    return absl::InternalError(absl::StrCat("the plan's JSON is not JSON: ",
                                            std::string(parsed.message())));
  }
  // The store is {"fcvm": {"plan": <the plan>}}; the agent GETs /fcvm/plan.
  google::protobuf::Struct contents;
  google::protobuf::Struct& fcvm =
      *(*contents.mutable_fields())["fcvm"].mutable_struct_value();
  (*fcvm.mutable_fields())[kMmdsPlanKey] = std::move(plan_value);
  return ApiRequest{"PUT", "/mmds", ToJson(contents)};
}

}  // namespace fcvm::runner::firecracker
