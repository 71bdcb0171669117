// A writer process killed without warning (kill -9), for the durability tests of the
// backends: the child writes forever through a store (creates sessions, adds
// attributes, patches) and reports each acknowledged version through a pipe; the
// parent kills it at a random moment and keeps what it reported.
#ifndef SESSIONCTX_TESTS_KILL_WRITER_H_
#define SESSIONCTX_TESTS_KILL_WRITER_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/session_service.h"
#include "sessionctx/store_factory.h"

namespace sessionctx::testing {

// WriterChild writes to the store at `uri` until it is killed, reporting
// "session version\n" on `fd` after each acknowledged write.
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
    const std::string line = absl::StrCat(id, " ", version, "\n");
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      _exit(7);
  }
}

// KillWriterOnce forks a WriterChild on `uri`, lets it write for 100 to 500 ms, kills
// it with SIGKILL, and adds what it reported to `acked` (session -> highest version),
// `*acks` and, when given, `every` (each acknowledged session and version).
inline void KillWriterOnce(const std::string& uri, int round, std::mt19937& rng,
                           std::map<std::string, int64_t>& acked, int64_t* acks,
                           std::set<std::pair<std::string, int64_t>>* every = nullptr) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    WriterChild(uri, fds[1], round);
  }
  close(fds[1]);
  std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early with " << WEXITSTATUS(status);
  // Everything it reported was acknowledged before the kill.
  FILE* in = fdopen(fds[0], "r");
  char id[128];
  long long version = 0;
  while (fscanf(in, "%127s %lld", id, &version) == 2) {
    acked[id] = std::max<int64_t>(acked[id], version);
    ++*acks;
    if (every) every->emplace(id, version);
  }
  fclose(in);
}

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_KILL_WRITER_H_
