#include "apps/cpu_count.h"

#include <sched.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sessionctx::apps {
namespace {

std::optional<std::string> FileText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// WholeCpus: quota / period, rounded up; nullopt unless both are positive.
std::optional<int> WholeCpus(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<int>((quota + period - 1) / period);
}

// CgroupPath: this process's cgroup in the hierarchy whose controller list (the
// second field of a /proc/self/cgroup line) is `controllers` ("" for cgroup v2).
std::optional<std::string> CgroupPath(const std::string& proc_self_cgroup,
                                      absl::string_view controllers) {
  std::optional<std::string> text = FileText(proc_self_cgroup);
  if (!text) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    for (absl::string_view c : absl::StrSplit(fields[1], ',')) {
      if (c == controllers) return std::string(fields[2]);
    }
  }
  return std::nullopt;
}

// Parents: `path` and each folder above it, up to "/".
std::vector<std::string> Parents(std::string path) {
  std::vector<std::string> out;
  while (true) {
    out.push_back(path);
    if (path.empty() || path == "/") return out;
    const size_t slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
}

// QuotaV2: the smallest cpu.max of the process's cgroup and its parents.
std::optional<int> QuotaV2(const std::string& root, const std::string& proc_self_cgroup) {
  std::optional<std::string> path = CgroupPath(proc_self_cgroup, "");
  if (!path) return std::nullopt;
  std::optional<int> least;
  for (const std::string& dir : Parents(*path)) {
    std::optional<std::string> text = FileText(absl::StrCat(root, dir == "/" ? "" : dir, "/cpu.max"));
    std::optional<int> quota = text ? CpuQuota(*text) : std::nullopt;
    if (quota && (!least || *quota < *least)) least = quota;
  }
  return least;
}

// QuotaV1: the CFS quota of the process's cgroup in the v1 `cpu` hierarchy.
std::optional<int> QuotaV1(const std::string& root, const std::string& proc_self_cgroup) {
  std::optional<std::string> path = CgroupPath(proc_self_cgroup, "cpu");
  if (!path) return std::nullopt;
  const std::string dir = absl::StrCat(root, "/cpu", *path == "/" ? "" : *path);
  std::optional<std::string> quota = FileText(dir + "/cpu.cfs_quota_us");
  std::optional<std::string> period = FileText(dir + "/cpu.cfs_period_us");
  int64_t q = 0, p = 0;
  if (!quota || !period || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*quota), &q) ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(*period), &p)) {
    return std::nullopt;
  }
  return WholeCpus(q, p);
}

}  // namespace

std::optional<int> CpuQuota(absl::string_view cpu_max) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(cpu_max), ' ', absl::SkipEmpty());
  int64_t quota = 0, period = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &quota) ||
      !absl::SimpleAtoi(fields[1], &period)) {
    return std::nullopt;  // "max 100000" (no limit) lands here too
  }
  return WholeCpus(quota, period);
}

CpuCount UsableCpus(const std::string& cgroup_root, const std::string& proc_self_cgroup) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CpuCount out{cores, absl::StrCat("the machine has ", cores, " cores")};
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 &&
      CPU_COUNT(&set) < cores) {
    out.count = CPU_COUNT(&set);
    absl::StrAppend(&out.why, ", sched_getaffinity allows ", out.count);
  }
  const char* source = "cgroup cpu.max";
  std::optional<int> quota = QuotaV2(cgroup_root, proc_self_cgroup);
  if (!quota) {
    quota = QuotaV1(cgroup_root, proc_self_cgroup);
    source = "cgroup cpu.cfs_quota_us";
  }
  if (quota && *quota < out.count) {
    out.count = *quota;
    absl::StrAppend(&out.why, ", its ", source, " allows ", *quota);
  }
  return out;
}

}  // namespace sessionctx::apps
