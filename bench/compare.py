#!/usr/bin/env python3
"""Runs a Google Benchmark binary and prints each BM_Store_* case beside its bare
baseline from the same run, as a ratio (baseline time / store time: 1.0 = as fast as
the bare engine). Pairs: Get ~ Bare_Get/Bare_Select, Patch ~ Bare_GetPut/Bare_Update,
AttributeAdd ~ Bare_Put/Bare_Update.

    bench/compare.py build/release/bin/rocksdb_bench [--benchmark_repetitions=5 …]
"""
import json
import subprocess
import sys

PAIRS = {
    "BM_Store_Get": ["BM_Bare_Get", "BM_Bare_Select"],
    "BM_Store_Patch": ["BM_Bare_GetPut", "BM_Bare_Update"],
    "BM_Store_AttributeAdd": ["BM_Bare_Put", "BM_Bare_Update"],
    "BM_Memory_Get": ["BM_BareMap_Get"],
}


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd = [sys.argv[1], "--benchmark_format=json"] + sys.argv[2:]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    runs = json.loads(out)["benchmarks"]
    # With repetitions, compare medians; otherwise the single run.
    times = {}
    for r in runs:
        name = r.get("run_name", r["name"])
        if r.get("aggregate_name") == "median" or (r.get("run_type") == "iteration" and name not in times):
            times[name] = r["real_time"]
    print(f"{'case':28} {'ns/op':>12} {'baseline':>18} {'ns/op':>12} {'ratio':>7}")
    for name, t in sorted(times.items()):
        if name not in PAIRS:
            continue
        base = next((b for b in PAIRS[name] if b in times), None)
        if base is None:
            continue
        print(f"{name:28} {t:12.0f} {base:>18} {times[base]:12.0f} {times[base] / t:7.2f}")
    for name, t in sorted(times.items()):
        if name.startswith("BM_Cas_"):
            print(f"{name:44} {t:12.0f} ns/op")
    return 0


if __name__ == "__main__":
    sys.exit(main())
