// UsableCpus: how many CPUs this process may use, for the server's default thread
// counts. A container is usually given a share of the node (a CPU set, a CFS quota):
// std::thread::hardware_concurrency() reports the node's cores, not that share.
//
// Example:
//   const CpuCount cpus = UsableCpus();
//   std::printf("%d threads (%s)\n", cpus.count, cpus.why.c_str());
//   // 1 threads (the machine has 2 cores, sched_getaffinity allows 1)
#ifndef SESSIONCTX_APPS_CPU_COUNT_H_
#define SESSIONCTX_APPS_CPU_COUNT_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace sessionctx::apps {

// CpuCount: a number of CPUs (at least 1) and what decided it, in words.
struct CpuCount {
  int count = 1;
  std::string why;
};

// CpuQuota reads a cgroup CPU limit as whole CPUs, rounded up (1.5 CPUs → 2):
// cgroup v2 `cpu.max` text ("150000 100000"; "max 100000" is no limit). nullopt: no
// limit, or text that is not a limit.
std::optional<int> CpuQuota(absl::string_view cpu_max);

// UsableCpus: the CPUs this process may use: those sched_getaffinity(2) allows, cut to
// the CPU quota of its cgroup (v2 `cpu.max` of its cgroup and every parent up to the
// root; v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`). `cgroup_root` is where the
// cgroup file systems are mounted; `proc_self_cgroup` names this process's cgroups.
CpuCount UsableCpus(const std::string& cgroup_root = "/sys/fs/cgroup",
                    const std::string& proc_self_cgroup = "/proc/self/cgroup");

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_CPU_COUNT_H_
