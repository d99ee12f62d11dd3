#include "runner/vmm/vmm.h"

namespace fcvm::runner {

std::string VirtioBlockDevice(int index) {
  // Linux's sd-style naming: a..z, then aa..zz.
  std::string letters;
  for (int i = index + 1; i > 0; i = (i - 1) / 26) {
    letters.insert(letters.begin(), static_cast<char>('a' + (i - 1) % 26));
  }
  return absl::StrCat("/dev/vd", letters);
}

std::vector<std::string> VmmCommand(const VmSpec& spec,
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
