#include "runner/template/build.h"

#include <cstdlib>

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

class ReadTemplateTest : public ::testing::Test {
 protected:
  absl::StatusOr<Template> Read(const std::string& text) {
    const std::string path =
        std::string(std::getenv("TEST_TMPDIR")) + "/t.textproto";
    EXPECT_TRUE(WriteFileAtomically(path, text).ok());
    return ReadTemplate(path);
  }
};

TEST_F(ReadTemplateTest, ReadsAWholeTemplate) {
  absl::StatusOr<Template> t = Read(R"(
    name: "web"
    image: "busybox-httpd"
    env { key: "A" value: "1" }
    memory: "256m"
    steps { exec: ["sh", "-c", "echo hi > /www/hi.txt"] }
    steps { exec: ["sync"] vm: true timeout_seconds: 10 }
    ready { tcp_port: 8080 http_path: "/hi.txt" timeout_seconds: 30 }
  )");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->name(), "web");
  EXPECT_EQ(t->steps_size(), 2);
  EXPECT_TRUE(t->steps(1).vm());
  EXPECT_EQ(t->ready().http_path(), "/hi.txt");
  EXPECT_EQ(t->env().at("A"), "1");
}

TEST_F(ReadTemplateTest, SaysWhatIsWrongAndWhere) {
  EXPECT_THAT(Read("name: \"web\"\nimage: 3\n").status().message(),
              HasSubstr("line 2"));
  EXPECT_THAT(Read("image: \"x\" ready { tcp_port: 80 }").status().message(),
              HasSubstr("name"));
  EXPECT_THAT(Read("name: \"Web\" image: \"x\" ready { tcp_port: 80 }")
                  .status()
                  .message(),
              HasSubstr("bad snapshot tag"));
  EXPECT_THAT(Read("name: \"web\" ready { tcp_port: 80 }").status().message(),
              HasSubstr("no image"));
  EXPECT_THAT(Read("name: \"web\" image: \"x\"").status().message(),
              HasSubstr("exactly one of tcp_port"));
  EXPECT_THAT(
      Read("name: \"web\" image: \"x\" ready { tcp_port: 80 exec: \"true\" }")
          .status()
          .message(),
      HasSubstr("exactly one of tcp_port"));
  EXPECT_THAT(
      Read("name: \"web\" image: \"x\" ready { http_path: \"/\" exec: \"t\" }")
          .status()
          .message(),
      HasSubstr("http_path needs tcp_port"));
  EXPECT_THAT(Read("name: \"web\" image: \"x\" steps { } ready { tcp_port: 80 "
                   "}")
                  .status()
                  .message(),
              HasSubstr("steps 1: no exec command"));
}

}  // namespace
}  // namespace fcvm::runner
