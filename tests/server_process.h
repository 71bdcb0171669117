// The real sessionctx-server binary as a child process on a free loopback port, and
// sessionctl run as a command, for end-to-end tests.
#ifndef SESSIONCTX_TESTS_SERVER_PROCESS_H_
#define SESSIONCTX_TESTS_SERVER_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "tests/test_util.h"

namespace sessionctx::testing {

#ifdef SESSIONCTL_BIN
// MintToken: a development token from sessionctl, e.g. MintToken(secret_file,
// "--tenant acme --session s1").
inline std::string MintToken(const std::string& secret_file, const std::string& args) {
  return RunCommand(std::string(SESSIONCTL_BIN) + " token --secret-file " + secret_file + " " +
                    args);
}
#endif

// ServerProcess: sessionctx-server, or any program that prints
// "listening on 127.0.0.1:PORT" once it serves (the adapters in examples/).
class ServerProcess {
 public:
#ifdef SESSIONCTX_SERVER_BIN
  ServerProcess() : bin_(SESSIONCTX_SERVER_BIN) {}
#endif
  explicit ServerProcess(std::string bin) : bin_(std::move(bin)) {}

  // CaptureStderr: Output collects the standard error too (call before Start).
  void CaptureStderr() { capture_stderr_ = true; }

  // Start runs the server with `args` in `dir` and returns once it says where it
  // listens. Its standard output is collected (Output) until it exits.
  bool Start(const std::string& dir, const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      if (capture_stderr_) dup2(out[1], STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      if (chdir(dir.c_str()) != 0) _exit(127);
      std::vector<char*> argv;
      std::string bin = bin_;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    reader_ = std::thread([this, fd = out[0]] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        output_.append(buf, static_cast<size_t>(n));
      }
      close(fd);
    });
    const std::string marker = "listening on 127.0.0.1:";
    for (int i = 0; i < 3000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (size_t at = output_.find(marker); at != std::string::npos) {
          const size_t start = at + marker.size();
          const size_t end = output_.find_first_not_of("0123456789", start);
          return absl::SimpleAtoi(output_.substr(start, end - start), &port_);
        }
      }
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Signal sends `sig` to the server.
  void Signal(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
  }

  // Wait returns the exit status once the server exits (-1 when it did not exit on
  // its own, or was not started), or -2 after `timeout`.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    if (pid_ <= 0) return -1;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > deadline) return -2;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    if (WIFSIGNALED(status)) {
      std::fprintf(stderr, "%s: killed by signal %d (%s)\n", bin_.c_str(),
                   WTERMSIG(status), strsignal(WTERMSIG(status)));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Stop sends SIGTERM and returns the exit status as Wait does.
  int Stop() {
    Signal(SIGTERM);
    return Wait();
  }

  // RssKb: the server's resident memory now, in KiB (0 when unknown).
  long RssKb() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
  }

  std::string Output() const {
    std::lock_guard<std::mutex> lock(mu_);
    return output_;
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  std::string bin_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool capture_stderr_ = false;
  std::thread reader_;
  mutable std::mutex mu_;
  std::string output_;
};

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_SERVER_PROCESS_H_
