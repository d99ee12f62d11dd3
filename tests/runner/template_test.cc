// `fcvm template build` end to end under QEMU (TCG here, user-mode
// networking, the host's CPU): a template with a step and an HTTP
// readiness check builds into a snapshot; runs from it (`run --template`,
// `clone`) see what the step wrote, each its own machine; an unchanged
// template is not built again; one whose readiness never comes fails with
// a clear error and leaves nothing.
//   template_test <vm_x86_64> <vm_aarch64> <fcvm> ...
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "runner/template/template.pb.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class TemplateTest : public FcvmTest {
 protected:
  // //runner:template, beside the host's //runner:vm launcher.
  std::string Launcher() const {
    return (std::filesystem::path(HostVm()).parent_path() / "template")
        .string();
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(state_, "/", name, ".textproto");
    EXPECT_TRUE(WriteFileAtomically(path, text).ok());
    return path;
  }
  Result Build(const std::string& file) {
    return Exec({Launcher(), "build", file}, absl::Minutes(8));
  }
  runner::TemplateBuilt Parse(const Result& r) {
    runner::TemplateBuilt built;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &built).ok())
        << r.out;
    return built;
  }
  uint16_t HostPort(const std::string& name) {
    google::protobuf::Struct state = Inspect(name);
    Remember(state);
    const auto& ports = state.fields().at("ports").list_value();
    if (ports.values_size() == 0) return 0;
    return static_cast<uint16_t>(ports.values(0)
                                     .struct_value()
                                     .fields()
                                     .at("host_port")
                                     .number_value());
  }
};

constexpr char kHello[] = R"(
name: "hello"
image: "busybox-httpd"
memory: "256m"
env { key: "GREETING" value: "hello from a template" }
steps {
  exec: ["/bin/busybox", "sh", "-c", "echo \"$GREETING\" > /srv/www/index.html"]
}
ready { tcp_port: 8080 http_path: "/index.html" timeout_seconds: 60 }
)";

TEST_F(TemplateTest, BuildsOnceAndRunsStartFromIt) {
  const std::string file = Write("hello", kHello);
  Result first = Build(file);
  ASSERT_EQ(first.code, 0) << first.err;
  const runner::TemplateBuilt built = Parse(first);
  EXPECT_EQ(built.tag(), "hello");
  EXPECT_TRUE(built.built());
  EXPECT_EQ(built.key().size(), 32u);
  EXPECT_THAT(first.err, HasSubstr("step 1/1 done"));
  // The VM it was built in is gone; the snapshot is there.
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, IsEmpty());
  Result ls = Fcvm({"snapshot", "ls"});
  EXPECT_THAT(ls.out, HasSubstr("hello"));

  // Unchanged: not built again, same key, in well under a boot's time.
  Result again = Build(file);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_FALSE(Parse(again).built());
  EXPECT_EQ(Parse(again).key(), built.key());
  EXPECT_LT(Parse(again).seconds(), 2.0);

  // Two runs from it: each serves what the step wrote, on its own port,
  // with its own hostname.
  for (const std::string name : {"from-a", "from-b"}) {
    Result run = Exec({HostVm(), "-d", "--name", name, "--template", "hello"},
                      absl::Minutes(3));
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.err, HasSubstr(absl::StrCat("template hello (key ",
                                                built.key())));
    const uint16_t port = HostPort(name);
    ASSERT_NE(port, 0);
    absl::StatusOr<std::string> page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_THAT(*page, HasSubstr("hello from a template"));
    Result host = Fcvm({"exec", name, "--", "hostname"});
    EXPECT_EQ(host.out, name + "\n") << host.err;
  }
  // And `clone` starts from it too.
  Result clone = Fcvm({"clone", "hello", "-d"}, absl::Minutes(3));
  ASSERT_EQ(clone.code, 0) << clone.err;
  const uint16_t port = HostPort("hello-1");
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("hello from a template"));

  // A run cannot change what the snapshot fixed.
  Result env = Exec({HostVm(), "-d", "-e", "A=1", "--template", "hello"},
                    absl::Minutes(1));
  EXPECT_EQ(env.code, 2);
  EXPECT_THAT(env.err, HasSubstr("cannot change"));

  // A changed template is built again, under a new key (its clones stop
  // first: the old snapshot is refused while in use).
  for (const std::string name : {"from-a", "from-b", "hello-1"}) {
    ASSERT_EQ(Fcvm({"rm", "-f", name}).code, 0);
  }
  std::string changed = kHello;
  changed += "cpus: 1\nargs: [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", "
             "\"8080\", \"-h\", \"/srv/www\"]\n";
  Result rebuilt = Build(Write("hello", changed));
  ASSERT_EQ(rebuilt.code, 0) << rebuilt.err;
  EXPECT_TRUE(Parse(rebuilt).built());
  EXPECT_NE(Parse(rebuilt).key(), built.key());
  EXPECT_THAT(rebuilt.err, HasSubstr("inputs changed"));
}

TEST_F(TemplateTest, AReadinessThatNeverComesFailsAndLeavesNothing) {
  const std::string file = Write("never", R"(
name: "never"
image: "busybox-httpd"
memory: "256m"
ready { tcp_port: 8080 http_path: "/not-there.html" timeout_seconds: 5 }
)");
  Result r = Build(file);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("template never: not ready after 5s"));
  EXPECT_THAT(r.err, HasSubstr("HTTP 404"));
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, IsEmpty());
  // No snapshot, not even a partial one.
  std::vector<std::string> left;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(
           absl::StrCat(state_, "/snapshots"), error)) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(left, IsEmpty());

  // A step that fails says which and how, and also leaves nothing.
  Result step = Build(Write("failing", R"(
name: "failing"
image: "busybox-httpd"
memory: "256m"
steps { exec: ["/bin/busybox", "sh", "-c", "echo no space >&2; exit 3"] }
ready { tcp_port: 8080 }
)"));
  EXPECT_EQ(step.code, 1);
  EXPECT_THAT(step.err, HasSubstr("step 1"));
  EXPECT_THAT(step.err, HasSubstr("no space"));
  names = Names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, IsEmpty());
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
