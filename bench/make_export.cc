// make_export: N varied sessions (bench_util.h's VariedSession) in sessionctl's export
// format (JSON Lines) on standard output, for timing `sessionctl import`; with --ldb,
// the same sessions' keys and JSON texts as `ldb load` reads them ("key ==> value"),
// the bare RocksDB baseline of the import. Prints the size distribution to stderr.
//
//   make_export 1000000 [--seed=1] [--ldb=FILE] > sessions.jsonl
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"

int main(int argc, char** argv) {
  using namespace sessionctx;
  uint64_t n = 0, seed = 1;
  std::string ldb_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--seed=")) {
      if (!absl::SimpleAtoi(arg.substr(7), &seed)) n = 0, i = argc;
    } else if (absl::StartsWith(arg, "--ldb=")) {
      ldb_path = arg.substr(6);
    } else if (!absl::SimpleAtoi(arg, &n)) {
      n = 0;
      break;
    }
  }
  if (n == 0) {
    std::fprintf(stderr, "usage: make_export N [--seed=S] [--ldb=FILE] > export.jsonl\n");
    return 2;
  }
  std::ofstream ldb;
  if (!ldb_path.empty()) {
    ldb.open(ldb_path);
    if (!ldb) {
      std::fprintf(stderr, "make_export: cannot write %s\n", ldb_path.c_str());
      return 1;
    }
  }
  constexpr const char* kTenants[] = {"acme", "acme", "acme", "globex", "initech"};
  const absl::Time created = absl::FromUnixSeconds(1795000000);  // 2026-11-18
  const std::string far_expiry = "2099-01-01T00:00:00.000Z";
  std::vector<uint32_t> sizes;
  sizes.reserve(n);
  std::string out;
  for (uint64_t i = 0; i < n; ++i) {
    SessionContext s = bench::VariedSession(i, seed);
    s.version = 1 + static_cast<int64_t>(i % 7);
    s.created_at = created + absl::Seconds(static_cast<int64_t>(i % 600000));
    s.modified_at = s.created_at + absl::Seconds(static_cast<int64_t>(i % 3600));
    const std::string tenant = kTenants[i % 5];
    const std::string text = ToJson(s).dump();
    sizes.push_back(static_cast<uint32_t>(text.size()));
    out.clear();
    // As sessionctl export writes it: members in order, compact.
    out = "{";
    if (!s.customer_id) out += "\"expiresAt\":\"" + far_expiry + "\",";
    out += "\"session\":" + text + ",\"tenant\":\"" + tenant + "\"}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (ldb.is_open()) ldb << tenant << '/' << s.session_id << " ==> " << text << '\n';
  }
  std::sort(sizes.begin(), sizes.end());
  uint64_t total = 0;
  for (uint32_t v : sizes) total += v;
  std::fprintf(
      stderr,
      "make_export: %llu sessions, JSON bytes min %u, median %u, p90 %u, max %u, mean "
      "%.0f\n",
      static_cast<unsigned long long>(n), sizes.front(), sizes[n / 2], sizes[n * 9 / 10],
      sizes.back(), static_cast<double>(total) / static_cast<double>(n));
  return std::fflush(stdout) == 0 ? 0 : 1;
}
