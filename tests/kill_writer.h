// A writer process killed without warning (kill -9), for the durability tests of the
// backends: the child writes through a store and reports each acknowledged write as a
// line on a pipe; the parent reads the lines as they come, kills the child once a
// number of them (drawn at random) has arrived, and keeps every line it wrote.
//
// The kill waits for acknowledgements, never for a time: on a busy machine the writer
// is slower, not stopped early, so the test checks as many writes there as on a quiet
// one. A writer that cannot reach the count within kMaxWait fails the test.
#ifndef SESSIONCTX_TESTS_KILL_WRITER_H_
#define SESSIONCTX_TESTS_KILL_WRITER_H_

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/session_service.h"
#include "sessionctx/store_factory.h"

namespace sessionctx::testing {

// The longest a killed writer may take to acknowledge what the test waits for.
inline constexpr std::chrono::seconds kMaxWait{120};

// ReportLine writes `line` and a newline to `fd`, or ends the process with `code`.
inline void ReportLine(int fd, const std::string& line, int code) {
  const std::string out = line + "\n";
  if (write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) _exit(code);
}

// KillAfterLines forks a process that runs `child(fd)` (which writes one line per
// acknowledged write to fd and never returns), kills it with SIGKILL once `lines`
// lines have arrived, and returns every line it wrote before it died (those written
// between the count and the kill too). Fails the test when the child exits by itself
// or does not reach the count within kMaxWait.
inline std::vector<std::string> KillAfterLines(const std::function<void(int)>& child,
                                               size_t lines) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    child(fds[1]);
    _exit(2);
  }
  close(fds[1]);
  std::vector<std::string> got;
  std::string partial;
  const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  bool killed = false;
  char buf[4096];
  for (;;) {
    if (!killed && (got.size() >= lines || std::chrono::steady_clock::now() >= deadline)) {
      kill(pid, SIGKILL);  // the pipe keeps what was written before: read on to its end
      killed = true;
    }
    pollfd p{.fd = fds[0], .events = POLLIN, .revents = 0};
    if (!killed && poll(&p, 1, 100) <= 0) continue;  // nothing yet: see the deadline
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1))
      got.push_back(partial.substr(0, nl));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(killed && WIFSIGNALED(status))
      << "the writer exited by itself with " << WEXITSTATUS(status) << " after "
      << got.size() << " acknowledged writes";
  EXPECT_GE(got.size(), lines) << "the writer acknowledged only " << got.size()
                               << " writes in " << kMaxWait.count() << " s";
  return got;
}

// WriterChild writes to the store at `uri` until it is killed, reporting
// "session version" on `fd` after each acknowledged write.
[[noreturn]] inline void WriterChild(const std::string& uri, int fd, int round) {
  auto store = OpenSessionStore(uri, StoreOptions{});
  if (!store.ok()) _exit(3);
  ServiceOptions options;
  options.anonymous_ttl = absl::Hours(24);
  SessionService service(store->get(), options);
  std::mt19937 rng(round);
  for (int i = 0;; ++i) {
    const std::string id = absl::StrCat("r", round, "-", i % 50);
    int64_t version = 0;
    absl::StatusOr<SessionContext> current = service.Get({"acme", id});
    if (!current.ok()) {
      absl::StatusOr<SessionContext> created =
          service.Create("acme", SessionContext{.session_id = id});
      if (!created.ok()) _exit(4);
      version = created->version;
    } else if (rng() % 2) {
      absl::StatusOr<int64_t> v =
          service.SetAttribute({"acme", id}, absl::StrCat("a", i), i);
      if (!v.ok()) _exit(5);
      version = *v;
    } else {
      absl::StatusOr<int64_t> p = service.Patch(
          {"acme", id},
          Json{{"context", {{"p", i}}}, {"metadata", {{"version", current->version}}}});
      if (!p.ok()) _exit(6);
      version = *p;
    }
    ReportLine(fd, absl::StrCat(id, " ", version), 7);
  }
}

// KillWriterOnce forks a WriterChild on `uri`, kills it with SIGKILL after 60 to 1,000
// acknowledged writes (drawn from `rng`), and adds what it reported to `acked`
// (session -> highest version), `*acks` and, when given, `every` (each acknowledged
// session and version).
inline void KillWriterOnce(const std::string& uri, int round, std::mt19937& rng,
                           std::map<std::string, int64_t>& acked, int64_t* acks,
                           std::set<std::pair<std::string, int64_t>>* every = nullptr) {
  const size_t kill_after = 60 + rng() % 941;
  for (const std::string& line :
       KillAfterLines([&](int fd) { WriterChild(uri, fd, round); }, kill_after)) {
    char id[128];
    long long version = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%127s %lld", id, &version), 2) << line;
    acked[id] = std::max<int64_t>(acked[id], version);
    ++*acks;
    if (every) every->emplace(id, version);
  }
}

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_KILL_WRITER_H_
