#include "agent/fw_cfg.h"

#if defined(__x86_64__) || defined(__i386__)
#include <sys/io.h>
#endif

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status.h"

namespace fcvm::agent {
namespace {

constexpr uint16_t kSignatureKey = 0x0000;
constexpr uint16_t kFileDirKey = 0x0019;

bool ParseNumber(absl::string_view text, uint32_t* value) {
  if (absl::ConsumePrefix(&text, "0x") || absl::ConsumePrefix(&text, "0X")) {
    return absl::SimpleHexAtoi(text, value);
  }
  return absl::SimpleAtoi(text, value);
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

[[nodiscard]] absl::StatusOr<FwCfgPorts> FwCfgPortsFromCmdline(
    absl::string_view cmdline) {
  constexpr absl::string_view kKey = "qemu_fw_cfg.ioport=";
  for (absl::string_view word :
       absl::StrSplit(cmdline, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (!absl::ConsumePrefix(&word, kKey)) continue;
    // <size>@<base>[:<ctrl_off>:<data_off>[:<dma_off>]]
    std::vector<absl::string_view> at = absl::StrSplit(word, '@');
    std::vector<absl::string_view> fields;
    if (at.size() == 2) fields = absl::StrSplit(at[1], ':');
    uint32_t base = 0, ctrl = 0, data = 1;
    if (fields.empty() || !ParseNumber(fields[0], &base) ||
        (fields.size() >= 3 &&
         (!ParseNumber(fields[1], &ctrl) || !ParseNumber(fields[2], &data))) ||
        fields.size() == 2 || base + data > 0xffff) {
      return absl::InvalidArgumentError(
          absl::StrCat("kernel command line: bad ", kKey, "'", word, "'"));
    }
    FwCfgPorts ports;
    ports.selector = static_cast<uint16_t>(base + ctrl);
    ports.data = static_cast<uint16_t>(base + data);
    return ports;
  }
  return absl::NotFoundError("no qemu_fw_cfg.ioport= on the command line");
}

FwCfgFile ParseFwCfgFileRecord(const unsigned char record[64]) {
  FwCfgFile file;
  file.size = BigEndian32(record);
  file.select = static_cast<uint16_t>((record[4] << 8) | record[5]);
  const char* name = reinterpret_cast<const char*>(record + 8);
  file.name.assign(name, strnlen(name, 56));
  return file;
}

#if defined(__x86_64__) || defined(__i386__)

[[nodiscard]] absl::StatusOr<std::string> ReadFwCfgFileViaPorts(
    const FwCfgPorts& ports, absl::string_view name) {
  const uint16_t low = std::min(ports.selector, ports.data);
  const uint16_t high = std::max(ports.selector, ports.data);
  if (ioperm(low, high - low + 2, 1) != 0) {
    return ErrnoStatus("fw_cfg: ioperm on its I/O ports");
  }
  auto select = [&](uint16_t key) { outw(key, ports.selector); };
  auto read = [&](unsigned char* buffer, size_t size) {
    for (size_t i = 0; i < size; ++i) buffer[i] = inb(ports.data);
  };
  unsigned char signature[4];
  select(kSignatureKey);
  read(signature, sizeof(signature));
  if (std::string(reinterpret_cast<char*>(signature), 4) != "QEMU") {
    return absl::NotFoundError(absl::StrCat(
        "fw_cfg: no QEMU signature at port 0x", absl::Hex(ports.selector)));
  }
  select(kFileDirKey);
  unsigned char count_bytes[4];
  read(count_bytes, sizeof(count_bytes));
  const uint32_t count = BigEndian32(count_bytes);
  if (count > 4096) {
    return absl::DataLossError(
        absl::StrCat("fw_cfg: file directory claims ", count, " entries"));
  }
  for (uint32_t i = 0; i < count; ++i) {
    unsigned char record[64];
    read(record, sizeof(record));
    const FwCfgFile file = ParseFwCfgFileRecord(record);
    if (file.name != name) continue;
    if (file.size > (1u << 20)) {
      return absl::DataLossError(absl::StrCat(
          "fw_cfg: ", name, " is ", file.size, " bytes; at most 1 MiB"));
    }
    std::string contents(file.size, '\0');
    select(file.select);
    read(reinterpret_cast<unsigned char*>(contents.data()), contents.size());
    return contents;
  }
  return absl::NotFoundError(absl::StrCat("fw_cfg: no file ", name));
}

#else

[[nodiscard]] absl::StatusOr<std::string> ReadFwCfgFileViaPorts(
    const FwCfgPorts&, absl::string_view) {
  return absl::UnimplementedError(
      "fw_cfg through I/O ports exists on x86 only (aarch64 reads sysfs)");
}

#endif

}  // namespace fcvm::agent
