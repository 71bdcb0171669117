// PasswordRedis: a redis-server of one test's own that asks for a password
// (`requirepass`) and has an ACL user, on a free port, IPv4 and IPv6 loopback. Stopped
// and its folder removed on destruction.
#ifndef SESSIONCTX_TESTS_PASSWORD_REDIS_H_
#define SESSIONCTX_TESTS_PASSWORD_REDIS_H_

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/http_client.h"
#include "tests/test_util.h"

namespace sessionctx::testing {

class PasswordRedis {
 public:
  // The default user's password and the ACL user `app`'s.
  static constexpr const char* kPassword = "s3:cret";
  static constexpr const char* kAppPassword = "app-pw";

  PasswordRedis() : port_(FreePort()), dir_(Shell("mktemp -d")) {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string p = std::to_string(port_);
      const std::string app = std::string(">") + kAppPassword;
      execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "::1",
             "--save", "", "--appendonly", "no", "--dir", dir_.c_str(), "--requirepass",
             kPassword, "--user", "app", "on", app.c_str(), "~*", "&*", "+@all",
             static_cast<char*>(nullptr));
      _exit(127);
    }
    ready_ = WaitUntil([&] { return Shell(Cli() + "ping") == "PONG"; });
  }
  ~PasswordRedis() {
    Shell(Cli() + "shutdown nosave");
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    Shell("rm -rf " + dir_);
  }
  PasswordRedis(const PasswordRedis&) = delete;
  PasswordRedis& operator=(const PasswordRedis&) = delete;

  bool ready() const { return ready_; }
  int port() const { return port_; }

 private:
  std::string Cli() const {
    return absl::StrCat("redis-cli -p ", port_, " --no-auth-warning -a ", kPassword, " ");
  }

  const int port_;
  const std::string dir_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_PASSWORD_REDIS_H_
