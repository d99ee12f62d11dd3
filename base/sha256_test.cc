#include "base/sha256.h"

#include <cstdlib>
#include <string>

#include "base/file.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

// Test vectors from FIPS 180-2.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileMatchesData) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/blob";
  std::string data(300000, 'x');  // Several read chunks.
  data += "tail";
  ASSERT_TRUE(WriteFileAtomically(path, data).ok());
  absl::StatusOr<std::string> hash = Sha256File(path);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(*hash, Sha256Hex(data));
}

TEST(Sha256Test, MissingFile) {
  EXPECT_EQ(Sha256File("/nonexistent/fcvm").status().message(),
            "open /nonexistent/fcvm: No such file or directory");
}

}  // namespace
}  // namespace fcvm

namespace fcvm {
namespace {

TEST(Sha256StreamTest, PiecesEqualTheWhole) {
  const std::string data(100000, 'x');
  Sha256Stream stream;
  stream.Update(absl::string_view(data).substr(0, 1));
  stream.Update(absl::string_view(data).substr(1, 65535));
  stream.Update(absl::string_view(data).substr(65536));
  EXPECT_EQ(stream.Finish(), Sha256Hex(data));
  // Finish starts over.
  stream.Update("abc");
  EXPECT_EQ(stream.Finish(), Sha256Hex("abc"));
}

}  // namespace
}  // namespace fcvm
