#!/usr/bin/env python3
"""Writes docs/benchmarks.md and docs/benchmarks.svg from what bench/compare measured:
matrix_bench's JSON (the operation matrix and the scale runs), the import timings and
bench/http.sh's results. Fails when a benchmark case reported an error, or a part is
missing, so that a broken run never becomes a report.

    bench/report.py --matrix m.json --scale s.json --imports i.tsv --http h.tsv \
        --out docs [--smoke]
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections import defaultdict

OPS = ["get_hit", "get_miss", "create", "patch", "patch_contended", "attribute_add", "delete"]
BACKENDS = ["memory", "rocksdb", "postgres", "redis", "redis_cluster"]
BARE = {
    "memory": "a hash map of the same bytes in 32 shards under a reader/writer lock each, "
              "a get handing out the shared text by pointer as the store does",
    "rocksdb": "RocksDB Get/Put/Delete of the same bytes, with the store's engine settings (32 MB block cache, bloom filter; a patch: Get + Put, no lock)",
    "postgres": "one prepared statement on a table (id, body, version) holding the same bytes; "
                "a patch is a conditional UPDATE",
    "redis": "the least Redis can do on the same bytes: GET/SET/DEL of the record; a patch, "
             "one EVALSHA of a minimal compare-and-set script (read a version, compare, write "
             "record and version); an attribute, one HSET",
    "redis_cluster": "the same store on the one standalone Redis above (store/redis, same "
                     "run, same settings): the ratio is what sharding over three masters costs",
}
STORE = {
    "memory": "`memory:`",
    "rocksdb": "`rocksdb:` (on the local disk, `sync=false`; `sync=true` in the durable "
               "section; the matrix's 10,000 typical sessions, about 5 MB, stay in the "
               "memtable on both sides, the large ones reach table files: reads of table "
               "files with many sessions stored, warm and cold, are in \"Scale\")",
    "postgres": "`postgresql://` (a local server with `fsync`, `synchronous_commit` and "
                "`full_page_writes` off as in the tests; the durable setting has its own "
                "section)",
    "redis": "`redis://` (a local server without persistence, the durable settings in their "
             "own section; one hash per session, every write one Lua script)",
    "redis_cluster": "`redis+cluster://` (three local masters without persistence, "
                     "`cluster-enabled yes`; the same layout and scripts, each command sent "
                     "to its slot's master)",
}


def fail(msg):
    print("report: " + msg, file=sys.stderr)
    sys.exit(1)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - a missing tool leaves the field empty
        return ""


def disk(path):
    """The file system and device the run's data lived on, e.g. "ext4 on /dev/vda1
    (SSD: not rotational)"."""
    line = sh("df -PT " + path + " | tail -n 1").split()
    if len(line) < 2:
        return "unknown"
    device, fstype = line[0], line[1]
    rota = sh("lsblk -ndo ROTA $(findmnt -no SOURCE -T " + path + ") 2>/dev/null | head -n 1")
    kind = {"0": " (reported not rotational)", "1": " (reported rotational)"}.get(rota.strip(), "")
    return "%s on %s%s" % (fstype, device, kind)


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    os_name = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
            os_name = m.group(1) if m else ""

    def pkg(name):  # the version without its package epoch ("5:7.0.15" -> "7.0.15")
        return re.sub(r"^\d+:", "", sh("dpkg-query -W -f='${Version}' " + name + " 2>/dev/null"))

    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram": "%.0f GiB" % (mem_kb / 1024 / 1024),
        "os": os_name,
        "kernel": platform.release(),
        "rocksdb": pkg("librocksdb-dev"),
        "postgresql": sh("ls /usr/lib/postgresql | sort -V | tail -n 1"),
        "redis": pkg("redis-server"),
        "nginx": pkg("nginx-light") or pkg("nginx-core") or pkg("nginx"),
        "compiler": sh("c++ --version | head -n 1"),
    }


def load_runs(path):
    with open(path) as f:
        runs = json.load(f)["benchmarks"]
    errors = [r for r in runs if r.get("error_occurred")]
    if errors:
        fail("; ".join("%s: %s" % (r["name"], r.get("error_message", "")) for r in errors[:5]))
    return runs


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def parse_matrix(runs):
    """{(kind, backend, size, op, threads): run}, each run the median of its
    repetitions (rates and percentiles), with the rate's spread as ips_min/ips_max and
    the number of repetitions as reps."""
    reps = defaultdict(list)
    for r in runs:
        parts = r["name"].split("/")
        if parts[0] not in ("store", "bare") or r.get("run_type") == "aggregate":
            continue
        m = re.search(r"threads:(\d+)", r["name"])
        reps[(parts[0], parts[1], parts[2], parts[3], int(m.group(1)) if m else 1)].append(r)
    out = {}
    for key, rs in reps.items():
        merged = dict(rs[0])
        for field in ("items_per_second", "p50_us", "p99_us", "conflicts"):
            values = [r[field] for r in rs if field in r]
            if values:
                merged[field] = median(values)
        rates = [r["items_per_second"] for r in rs if "items_per_second" in r]
        if rates:
            merged["ips_min"], merged["ips_max"] = min(rates), max(rates)
        merged["reps"] = len(rs)
        out[key] = merged
    return out


def ratio_spread(s, bare):
    """(ratio, low, high): the ratio of the medians and its spread, which pairs the
    extremes (slowest store over fastest bare, and the other way); None without both."""
    if not s or not bare or not s.get("items_per_second") or not bare.get("items_per_second"):
        return None
    ratio = s["items_per_second"] / bare["items_per_second"]
    low = s.get("ips_min", s["items_per_second"]) / bare.get("ips_max", bare["items_per_second"])
    high = s.get("ips_max", s["items_per_second"]) / bare.get("ips_min", bare["items_per_second"])
    return ratio, low, high


def fmt_ratio(s, bare):
    """The ratio with its spread (ratio_spread); "≈ 1" when the spread holds 1."""
    rs = ratio_spread(s, bare)
    if rs is None:
        return "–"
    ratio, low, high = rs
    if s.get("reps", 1) < 2:
        return "%.2f" % ratio
    if low <= 1 <= high:
        return "≈ 1 (%.2f–%.2f)" % (low, high)
    return "%.2f (%.2f–%.2f)" % (ratio, low, high)


def fmt_spread(run):
    """The median rate and, with repetitions, its min–max."""
    rate = run.get("items_per_second")
    if run.get("reps", 1) < 2 or rate is None:
        return fmt_rate(rate)
    return "%s [%s–%s]" % (fmt_rate(rate), fmt_rate(run["ips_min"]), fmt_rate(run["ips_max"]))


def fmt_rate(x):
    if x is None:
        return "–"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def fmt_us(x):
    if x is None:
        return "–"
    if x >= 1000:
        return "%.1f ms" % (x / 1000)
    if x >= 10:
        return "%.0f" % x
    return "%.2g" % x


def matrix_section(mx, threads, backends):
    lines = []
    for size, title in (("typical", "typical session (varied: 2 to 12 context members, see \"The data\")"),
                        ("large", "large session (a varied one with 64 more attributes, about 16 KiB)")):
        lines.append("### %s\n" % (title[0].upper() + title[1:]))
        for b in backends:
            if not any(k[1] == b and k[2] == size for k in mx):
                continue
            sample = next(r for k, r in mx.items() if k[1] == b and k[2] == size)
            lines.append("**%s** (%s bytes per session on average) — beside: %s.\n" % (
                b, int(sample.get("session_bytes", 0)), BARE[b]))
            head = "| operation |"
            rule = "|---|"
            for t in threads:
                head += " %d thr ops/s | ratio | p50 / p99 µs |" % t
                rule += "---:|---:|---:|"
            lines += [head, rule]
            above = {}
            for op in OPS:
                row = "| %s |" % op
                conflicts = []
                for t in threads:
                    s = mx.get(("store", b, size, op, t))
                    bare = mx.get(("bare", b, size, op, t))
                    if b == "redis_cluster":
                        bare = mx.get(("store", "redis", size, op, t))
                    if s is None:
                        row += " – | – | – |"
                        continue
                    if op == "patch_contended" and b in NO_BARE_CAS:
                        bare = None  # no bare equivalent: the absolute number only
                    row += " %s | %s | %s / %s |" % (fmt_spread(s), fmt_ratio(s, bare) if bare else "none",
                                                     fmt_us(s.get("p50_us")), fmt_us(s.get("p99_us")))
                    if op == "patch_contended":
                        conflicts.append("%.2f" % s.get("conflicts", 0))
                    if ratio_above_one(s, bare):
                        above.setdefault(op, []).append(t)
                if conflicts:
                    row = row.replace("| patch_contended |",
                                      "| patch_contended (conflicts per write: %s) |" % " / ".join(conflicts), 1)
                lines.append(row)
            lines.append("")
            for op, ts in above.items():
                lines.append("- Above 1, %s (%s thread%s): %s." % (
                    op, ", ".join(str(t) for t in ts), "" if ts == [1] else "s",
                    above_one_reason(b, size, op)))
            if above:
                lines.append("")
    return lines


# Bare engines with no compare-and-set of their own: under contention they overwrite
# (and lose updates) where the store retries, so patch_contended has no bare
# equivalent there and shows no ratio.
NO_BARE_CAS = ("memory", "rocksdb")

# Why a row's ratio can be above 1: where the bare operation does more work than the
# store's, by (backend, size, operation); "*" for either size.
ABOVE_ONE = {
    ("rocksdb", "large", "patch"): "the bare engine reads and rewrites the whole 17 KiB value; "
    "the store rewrites the session's base record only, its 64 attributes staying in keys of "
    "their own",
    ("rocksdb", "large", "attribute_add"): "the bare engine rewrites the whole 17 KiB value; "
    "the store writes one attribute's key and the base record",
    ("postgres", "large", "patch"): "the bare table UPDATEs the whole 17 KiB body (stored out "
    "of line, TOAST); the store updates the session's row, its attributes staying in rows of "
    "their own",
    ("postgres", "large", "attribute_add"): "the bare table rewrites the whole 17 KiB body; "
    "the store writes one attribute's row",
    ("redis", "large", "patch"): "the bare script writes the whole 17 KiB record; the store's "
    "script writes the changed fields of the session's hash",
    ("redis", "large", "attribute_add"): "the bare HSET writes the attribute into a hash of "
    "its own beside the 17 KiB record, the store's script one field of the session's hash "
    "and its version: about the same work",
    ("redis_cluster", "*", "*"): "three Redis processes serve in parallel where the one "
    "standalone Redis serves on one thread: on 2 cores, 2 client threads can keep more than "
    "one server busy",
}


def above_one_reason(backend, size, op):
    for key in ((backend, size, op), (backend, "*", op), (backend, "*", "*")):
        if key in ABOVE_ONE:
            return ABOVE_ONE[key]
    return ("no difference in work is known: the store and the bare engine were run one "
            "after the other on a shared machine; read it with its spread")


def ratio_above_one(s, bare):
    """True when the ratio, spread included, is above 1."""
    rs = ratio_spread(s, bare)
    return rs is not None and rs[1] > 1


DURABLE = {
    "rocksdb-sync": ("rocksdb", "`sync=true`: every write fsyncs RocksDB's log before it "
                     "returns (survives a power loss); fast: `sync=false` (survives the "
                     "process's kill -9)"),
    "postgres-fsync": ("postgres", "`fsync`, `synchronous_commit` and `full_page_writes` on "
                       "(PostgreSQL's defaults: a commit survives a power loss); fast: all "
                       "three off"),
    "redis-everysec": ("redis", "`appendonly yes`, `appendfsync everysec` (a power loss "
                       "loses up to a second of writes); fast: no persistence"),
    "redis-always": ("redis", "`appendonly yes`, `appendfsync always` (every write fsynced "
                     "before the reply); fast: no persistence"),
}


def durable_section(paths, mx, threads):
    """Each backend's writes in its production-durable setting beside its bare engine
    in the same setting, and beside the same store in the fast setting (the matrix)."""
    lines = ["| backend, setting | operation | threads | ops/s [min–max] | ratio to bare (same "
             "setting) | durable ÷ fast (ops/s) | p50 / p99 µs |", "|---|---|---:|---:|---:|---:|---:|"]
    notes = []
    above = []
    for path in paths:
        name = os.path.basename(path)[len("durable-"):-len(".json")]
        if name not in DURABLE:
            continue
        backend, text = DURABLE[name]
        notes.append("- **%s, %s**: %s." % (backend, name.split("-", 1)[1], text))
        runs = parse_matrix(load_runs(path))
        for op in ("create", "patch", "attribute_add", "delete"):
            for t in threads:
                s = runs.get(("store", backend, "typical", op, t))
                if not s:
                    continue
                bare = runs.get(("bare", backend, "typical", op, t))
                fast = mx.get(("store", backend, "typical", op, t))
                slow = "%.2f" % (s["items_per_second"] / fast["items_per_second"]) \
                    if fast and fast.get("items_per_second") else "–"
                lines.append("| %s, %s | %s | %d | %s | %s | %s | %s / %s |" % (
                    backend, name.split("-", 1)[1], op, t, fmt_spread(s), fmt_ratio(s, bare), slow,
                    fmt_us(s.get("p50_us")), fmt_us(s.get("p99_us"))))
                if ratio_above_one(s, bare):
                    above.append("- Above 1, %s, %s, %s (%d thread%s): %s." % (
                        backend, name.split("-", 1)[1], op, t, "" if t == 1 else "s",
                        above_one_reason(backend, "typical", op)))
    return notes + [""] + lines + ([""] + above if above else []) if notes else []


def head_to_head(mx, threads, backends):
    t = max(threads)
    lines = ["| operation (typical session, %d threads) | %s | redis ÷ memory | redis ÷ rocksdb |" % (
        t, " | ".join(backends)), "|---|" + "---:|" * (len(backends) + 2)]
    for op in OPS:
        rates = {b: (mx.get(("store", b, "typical", op, t)) or {}).get("items_per_second") for b in backends}
        row = "| %s | %s |" % (op, " | ".join(fmt_rate(rates[b]) for b in backends))
        for other in ("memory", "rocksdb"):
            if rates.get("redis") and rates.get(other):
                row += " %.2f |" % (rates["redis"] / rates[other])
            else:
                row += " – |"
        lines.append(row)
    return lines


def scale_section(runs):
    by = defaultdict(dict)
    for r in runs:
        parts = r["name"].split("/")
        if parts[0] != "scale":
            continue
        if parts[3] in ("get", "get_cold", "patch", "purge"):
            by[(parts[1], int(parts[2]))][parts[3]] = r
    lines = ["| backend | sessions stored | get ops/s | get p99 µs | cold get ops/s | cold get p99 µs | "
             "read from disk per cold get | patch ops/s | patch p99 µs | "
             "bytes per session | purge (1 % expired) | expired removed | µs per expired session |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    where = {"memory": " (RAM: heap)", "rocksdb": " (disk)", "postgres": " (disk)",
             "redis": " (RAM: used_memory)", "redis_cluster": " (RAM: used_memory)"}
    for (b, n) in sorted(by, key=lambda k: (BACKENDS.index(k[0]), k[1])):
        g, p, pu = by[(b, n)].get("get", {}), by[(b, n)].get("patch", {}), by[(b, n)].get("purge", {})
        c = by[(b, n)].get("get_cold", {})
        purge_ms = pu.get("real_time")
        unit = pu.get("time_unit", "ms")
        if purge_ms is not None and unit == "us":
            purge_ms /= 1000
        size = g.get("bytes_per_session") or p.get("bytes_per_session")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            b, "{:,}".format(n), fmt_rate(g.get("items_per_second")), fmt_us(g.get("p99_us")),
            fmt_rate(c.get("items_per_second")) if c else "–", fmt_us(c.get("p99_us")) if c else "–",
            "%.1f KiB" % (c["disk_bytes_per_get"] / 1024) if c.get("disk_bytes_per_get") is not None else "–",
            fmt_rate(p.get("items_per_second")), fmt_us(p.get("p99_us")),
            "%.0f" % size + where.get(b, "") if size else "–",
            "%.1f ms" % purge_ms if purge_ms is not None else "–",
            "{:,}".format(int(pu.get("expired", 0))) if pu else "–",
            "%.2f" % pu["us_per_expired"] if pu.get("us_per_expired") else "–"))
    return lines


def customer_section(runs):
    """A customer's sessions (5 of them) listed and ended with few and with many
    sessions stored: the time at the larger size within 1.5 x the smaller's."""
    by = defaultdict(dict)
    for r in runs:
        parts = r["name"].split("/")
        if parts[0] == "scale" and parts[3] in ("customer_list", "customer_end"):
            us = r["real_time"] * (1000 if r.get("time_unit") == "ms" else 1)
            by[(parts[1], parts[3])][int(parts[2])] = us
    lines = ["| backend | operation | sessions stored (small, large) | µs (small) | µs (large) | "
             "ratio (goal ≤ 1.5) |", "|---|---|---|---:|---:|---:|"]
    for (b, op) in sorted(by, key=lambda k: (BACKENDS.index(k[0]), k[1])):
        sizes = by[(b, op)]
        small, big = min(sizes), max(sizes)
        us = lambda v: "%.1f" % v if v < 100 else "%.0f" % v
        lines.append("| %s | %s | %s, %s | %s | %s | %s |" % (
            b, op.replace("customer_", ""), "{:,}".format(small), "{:,}".format(big), us(sizes[small]),
            us(sizes[big]), "%.2f" % (sizes[big] / sizes[small]) if big != small else "–"))
    return lines


def cluster_section(mx, threads, scale_runs):
    """The Redis Cluster's two goals: get and patch on three masters beside one
    standalone Redis (at least 0.8), and with 1,000,000 sessions beside 10,000 (within
    0.7)."""
    if not any(k[1] == "redis_cluster" for k in mx):
        return []
    lines = ["| operation (typical session) | threads | one Redis ops/s | three masters ops/s | "
             "ratio (goal ≥ 0.8) |", "|---|---:|---:|---:|---:|"]
    for op in ("get_hit", "patch", "attribute_add"):
        for t in threads:
            one = (mx.get(("store", "redis", "typical", op, t)) or {}).get("items_per_second")
            three = (mx.get(("store", "redis_cluster", "typical", op, t)) or {}).get("items_per_second")
            if one and three:
                lines.append("| %s | %d | %s | %s | %.2f |" % (op, t, fmt_rate(one), fmt_rate(three),
                                                               three / one))
    sizes = defaultdict(dict)
    for r in scale_runs:
        parts = r["name"].split("/")
        if parts[0] == "scale" and parts[1] == "redis_cluster":
            sizes[int(parts[2])][parts[3]] = r.get("items_per_second")
    if len(sizes) >= 2:
        small, big = min(sizes), max(sizes)
        lines += ["", "| operation (1 thread) | %s sessions ops/s | %s sessions ops/s | ratio (goal ≥ 0.7) |"
                  % ("{:,}".format(small), "{:,}".format(big)), "|---|---:|---:|---:|"]
        for op in ("get", "patch"):
            a, b = sizes[small].get(op), sizes[big].get(op)
            if a and b:
                lines.append("| %s | %s | %s | %.2f |" % (op, fmt_rate(a), fmt_rate(b), b / a))
    return lines


def import_section(path):
    rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    lines = ["| target | sessions | seconds | sessions/s | bare baseline | baseline sessions/s | ratio to baseline | goal |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    bare = {r[0]: r for r in rows if r[0].startswith(("copy-", "ldb-"))}
    baseline_name = {"rocksdb": ("ldb-rocksdb", "RocksDB `ldb load`", "≥ 1.0"),
                     "postgres": ("copy-postgres", "PostgreSQL `COPY`", "–")}
    for r in rows:
        name, n, secs = r[0], int(r[1]), float(r[2])
        if name in bare:
            continue
        rate = n / secs
        key, label, goal = baseline_name.get(name, ("", "–", "–"))
        c = bare.get(key)
        crate = int(c[1]) / float(c[2]) if c else None
        lines.append("| sessionctl import → %s | %s | %.1f | %s | %s | %s | %s | %s |" % (
            name, "{:,}".format(n), secs, "{:,.0f}".format(rate), label,
            "{:,.0f}".format(crate) if crate else "–", "%.2f" % (rate / crate) if crate else "–", goal))
    return lines


def http_section(path):
    rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    lines = ["| server | request | requests/s | ratio to nginx | p99 |", "|---|---|---:|---:|---:|"]
    for r in rows:
        if len(r) <= 5:
            lines.append("| %s | %s | %s | %s | %s |" % (r[0], r[1], r[2], r[3], r[4]))
    costs = [r for r in rows if len(r) > 5]
    if costs:
        lines += ["", "What one request costs the serving process (its threads, counted by `perf stat` "
                  "over the middle of a run; these counts do not depend on the CPU the way a rate "
                  "does):", "",
                  "| server | request | system calls | futex calls | context switches |",
                  "|---|---|---:|---:|---:|"]
        for r in costs:
            lines.append("| %s | %s | %s | %s | %s |" % (r[0], r[1].replace(" (cost)", ""), r[5], r[6], r[7]))
    return lines


def chart(mx, threads, backends, out_dir):
    t = max(threads)
    dat = os.path.join(out_dir, "benchmarks.dat")
    with open(dat, "w") as f:
        f.write("op " + " ".join(backends) + "\n")
        for size in ("typical", "large"):
            for op in OPS:
                vals = []
                for b in backends:
                    r = mx.get(("store", b, size, op, t))
                    vals.append("%.0f" % r["items_per_second"] if r and r.get("items_per_second") else "NaN")
                f.write("%s/%s %s\n" % (size[0], op.replace("_", "-"), " ".join(vals)))
    svg = os.path.join(out_dir, "benchmarks.svg")
    cols = " , ".join("'%s' using %d%s title '%s'" % (dat if i == 0 else "", i + 2,
                                                      ":xtic(1)" if i == 0 else "", b)
                      for i, b in enumerate(backends))
    script = """
set terminal svg size 1100,560 dynamic font 'sans,11' background '#ffffff'
set output '%s'
set title 'sessionctx: operations per second by backend, %d threads (t/ = typical session, l/ = 16 KiB context; log scale)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [100:*]
set ylabel 'operations/s'
set xtics rotate by -35 scale 0
set key top right
set grid ytics
plot %s
""" % (svg, t, cols)
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    os.remove(dat)
    if r.returncode != 0 or not os.path.exists(svg):
        fail("gnuplot failed: " + r.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--matrix", required=True)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--imports", required=True)
    ap.add_argument("--http", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--durable", nargs="*", default=[])
    ap.add_argument("--command", default="bench/compare")
    ap.add_argument("--commit", default="")
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--minutes", default="")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()

    mx = parse_matrix(load_runs(a.matrix))
    if not mx:
        fail("no matrix results in " + a.matrix)
    scale_runs = load_runs(a.scale)
    backends = [b for b in BACKENDS if any(k[1] == b for k in mx)]
    threads = sorted({k[4] for k in mx})
    m = machine()

    doc = ["# Benchmarks: which backend for which load", ""]
    doc.append("Written by `%s`%s, measuring commit `%s`, on **%s** (%s, %s cores, %s RAM; "
               "data on %s; %s; kernel %s) with RocksDB %s, PostgreSQL %s, Redis %s, nginx %s; "
               "%s.%s The benchmark clients and the servers they talk to (PostgreSQL, Redis, "
               "nginx) share these cores. Every number below comes from that one run: a backend "
               "and its bare engine were measured one after the other, so the ratios hold on a "
               "noisy machine where absolute times drift. The raw results are in "
               "`benchmarks-raw/` next to this page (Google Benchmark JSON, TSV). Do not edit by "
               "hand: run the command again." % (
                   a.command.strip(), " in %s minutes from start to end (build included)" % a.minutes
                   if a.minutes else "", a.commit or "unknown", m["host"], m["cpu"], m["cores"],
                   m["ram"], disk(a.workdir), m["os"], m["kernel"], m["rocksdb"], m["postgresql"],
                   m["redis"], m["nginx"], m["compiler"],
                   " **Smoke run: a few milliseconds per case, numbers meaningless.**" if a.smoke else ""))
    doc += ["", "![operations per second by backend](benchmarks.svg)", ""]
    doc += ["## The data", "",
            "Sessions differ as real shoppers' do (bench/bench_util.h `VariedSession`, a "
            "seeded generator): a UUID session id; one of 8 storefronts (site, currency, "
            "country, language; two of them take half); a cart on 60 %; 2 to 12 context "
            "members, each a distinct name of 24 with its own type (strings, integers, "
            "decimals, booleans, arrays of 1 to 8 SKUs, small objects), their values drawn "
            "at random. The matrix uses 1,024 such variants, anonymous (a session's variant "
            "follows from its id; the bare engines store the same variant's text), and "
            "reports the mean size per row; the import uses 1,000,000 distinct ones with "
            "30 % customers (`make_export`, which prints their size distribution).", ""]
    doc += ["## How to read it", "",
            "- **ops/s**: operations completed per second, all threads together (wall clock; "
            "create and delete: their own calls only, the record or session each needs made "
            "untimed). Every case runs for the same time; with repetitions, the median and "
            "[min–max] of the runs, the repetitions of all cases run interleaved in random "
            "order so that the spread holds the drift of the whole run, for a store and its "
            "bare engine alike. Thread counts stop at the machine's cores.",
            "- **ratio**: ops/s through sessionctx ÷ ops/s of the bare engine doing the same "
            "work on the same bytes at the same thread count (1.0 = no overhead), the ratio "
            "of the medians with its spread (the fastest store run over the slowest bare one, "
            "and the other way); **≈ 1** where that spread holds 1. The bare engines keep no "
            "version, no expiry and no per-attribute layout, and (except postgres and redis's "
            "patch) do no atomic read-modify-write: a ratio below 1 is the price of those. A "
            "ratio above 1 means the bare side does more work on that row, and the row's "
            "baseline says what.",
            "- **p50 / p99 µs**: latency of single operations, each timed alone, percentiles "
            "over every operation of the run (all threads together), the median over "
            "repetitions; in microseconds unless marked ms.",
            "- **patch**: one PATCH with the version the caller holds (the HTTP API's "
            "`metadata.version`); **patch_contended**: every thread on one session, each "
            "reading the version then writing, retrying on a conflict; the counter is the "
            "conflicts met per successful write. Bare engines without compare-and-set "
            "(memory, rocksdb) just overwrite, losing updates where sessionctx retries: "
            "that is no equivalent, so their patch_contended rows show the store's numbers "
            "with no ratio (\"none\").",
            "- **get_miss** asks for an absent session; **delete** removes a session created "
            "just before, untimed.",
            "- Backends: " + "; ".join("**%s**: %s" % (b, STORE[b]) for b in backends) + ".", ""]
    doc += ["## Head to head: the in-process backends and Redis", ""] + head_to_head(mx, threads, backends) + [""]
    doc += ["## Every operation, beside its bare engine", ""] + matrix_section(mx, threads, backends)
    durable = durable_section(a.durable, mx, threads)
    if durable:
        doc += ["## Durable settings: the writes with what survives a power loss", "",
                "The rows above run each backend in its fast setting. Here the writes run "
                "again in the setting a production deployment that must not lose "
                "acknowledged writes would choose, with the bare engine in the same setting; "
                "\"durable ÷ fast\" is the store's ops/s in this setting over its ops/s in the fast one. "
                "`docs/backends.md` says what each setting survives.", ""] + durable + [""]
    doc += ["## Scale: sessions stored, bytes per session, cold reads, purge", "",
            "Get and patch of random sessions with few and with many sessions stored (1 "
            "thread; typical varied sessions, loaded as `sessionctl import` loads them), the "
            "bytes each session takes (`memory:` heap in use; Redis: the servers' "
            "`used_memory` grown by the load, summed over a cluster's masters; `rocksdb:` "
            "files on disk after reopening; PostgreSQL tables and indexes), and one purge "
            "when 1 % of the sessions have expired. A purge's cost follows what expired, not "
            "what is stored: compare the µs per expired session across sizes.",
            "",
            "**get** is warm: RocksDB's files were read once after the load, so its reads "
            "find their blocks in the kernel's page cache when its block cache (32 MB) "
            "misses; from 1,000,000 sessions on, the store is many times that cache. **cold get** is RocksDB just reopened, with its "
            "files dropped from the page cache first (`posix_fadvise(DONTNEED)`, no root "
            "needed): opening reads each table's index and filter (untimed), then a get of a "
            "random session reads its data block from the disk; the disk read per get "
            "(`/proc/self/io`) shows how cold the reads were (a small store is read whole "
            "while it opens). memory and Redis hold every session in RAM: they have no cold read. A "
            "PostgreSQL's cache is its server's, which the benchmark does not restart: its "
            "rows show warm reads only.", ""] + scale_section(scale_runs) + [""]
    doc += ["## A customer's sessions: listed and ended through the index", "",
            "One customer's 5 sessions listed (one page) or ended (logout everywhere), with "
            "few and with many other sessions stored (1 thread; the mean of 300 calls, each "
            "timed alone; 16 listed customers in turn; an ended customer is logged in to 5 "
            "fresh sessions before each call, untimed). Through the index the time does not grow with the store: the "
            "goal is the larger store within 1.5 × the smaller.", ""] + customer_section(scale_runs) + [""]
    cluster = cluster_section(mx, threads, scale_runs)
    if cluster:
        doc += ["## Redis Cluster: three masters beside one Redis", "",
                "The same store on a three-master Redis Cluster (`redis+cluster://`) and on "
                "one standalone Redis, in the same run with the same settings: what routing "
                "by slot costs (a hash of the session's key and a look-up in the slot map, "
                "no extra round trip), and whether it holds with many sessions spread over "
                "the masters.", ""] + cluster + [""]
    doc += ["## Import (`sessionctl import`)", "",
            "Varied sessions (`make_export`, bench/bench_util.h's `VariedSession`: 2 to 12 "
            "context members of mixed types, 30 % customers) into an empty store. The bare "
            "baselines: for RocksDB, RocksDB's own `ldb load` (Debian `rocksdb-tools`) writing "
            "the same sessions' keys and JSON texts into an empty database (one key per "
            "session, where the store also writes its expiry or customer index and an event); "
            "for PostgreSQL, `COPY` of the same rows (one per session, one per "
            "attribute) into tables shaped like the backend's (same keys, index and foreign "
            "key), from CSV files prepared beforehand (`bench/export_to_copy.py`).", ""]
    doc += import_section(a.imports) + [""]
    doc += ["## HTTP (`bench/http.sh`)", "",
            "sessionctx-server on each backend beside nginx serving the same bytes, over "
            "loopback with wrk keep-alive (2 threads, 32 connections; medians of alternating "
            "rounds). PATCH runs one connection per wrk thread, each on its own session with "
            "the version it holds; nginx has no write to compare.", ""] + http_section(a.http) + [""]
    os.makedirs(a.out, exist_ok=True)
    chart(mx, threads, backends, a.out)
    with open(os.path.join(a.out, "benchmarks.md"), "w") as f:
        f.write("\n".join(doc))
    print("report: wrote %s and %s" % (os.path.join(a.out, "benchmarks.md"), os.path.join(a.out, "benchmarks.svg")))


if __name__ == "__main__":
    main()
