// Replays the committed fuzz corpus through the fuzz target (which aborts
// on any broken promise), with the project's own compiler.
#include <dirent.h>

#include <string>

#include "base/file.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(HandshakeCorpusTest, EveryInputIsHandled) {
  const std::string dir = "uffd/fuzz/corpus";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr);
  int inputs = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    absl::StatusOr<std::string> input = fcvm::ReadFile(dir + "/" + e->d_name);
    ASSERT_TRUE(input.ok()) << input.status();
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input->data()),
                               input->size()),
        0)
        << e->d_name;
    ++inputs;
  }
  closedir(d);
  EXPECT_GE(inputs, 8);
}

}  // namespace
