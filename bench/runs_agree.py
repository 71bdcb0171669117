#!/usr/bin/env python3
"""Do two report runs agree? Reads the matrix results of two `bench/compare` runs
(their benchmarks-raw/matrix.json) and, for every row with a bare baseline (store ÷
bare, typical and large sessions, each thread count), prints each run's ratio with
its spread and whether each run's ratio lies within the other's spread. The rows of
the head-to-head table (typical sessions at the most threads) are marked.

    bench/runs_agree.py docs/benchmarks-raw/matrix.json /tmp/other/benchmarks-raw/matrix.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (the report's own parsing and spread)


def ratio_and_spread(mx, key):
    s = mx.get(("store",) + key)
    b = mx.get(("bare",) + key) if key[0] != "redis_cluster" else mx.get(("store", "redis") + key[1:])
    if key[2] == "patch_contended" and key[0] in report.NO_BARE_CAS:
        return None
    return report.ratio_spread(s, b)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a = report.parse_matrix(report.load_runs(sys.argv[1]))
    b = report.parse_matrix(report.load_runs(sys.argv[2]))
    top = max(k[4] for k in a)
    keys = sorted({k[1:] for k in a if k[0] == "store"},
                  key=lambda k: (report.BACKENDS.index(k[0]), k[1], report.OPS.index(k[2]), k[3]))
    agree = total = head_agree = head_total = 0
    print("| row | run 1 ratio [spread] | run 2 ratio [spread] | within each other's spread |")
    print("|---|---:|---:|---|")
    for key in keys:
        ra, rb = ratio_and_spread(a, key), ratio_and_spread(b, key)
        if not ra or not rb:
            continue
        within = ra[1] <= rb[0] <= ra[2] and rb[1] <= ra[0] <= rb[2]
        either = ra[1] <= rb[0] <= ra[2] or rb[1] <= ra[0] <= rb[2]
        head = key[1] == "typical" and key[3] == top
        total += 1
        agree += within
        if head:
            head_total += 1
            head_agree += within
        print("| %s%s | %.2f [%.2f–%.2f] | %.2f [%.2f–%.2f] | %s |" % (
            "/".join(str(k) for k in key), " (head to head)" if head else "",
            ra[0], ra[1], ra[2], rb[0], rb[1], rb[2],
            "yes" if within else ("one way" if either else "NO")))
    print("\n%d of %d rows agree both ways (%d of %d of the head-to-head backends' rows)" % (
        agree, total, head_agree, head_total))


if __name__ == "__main__":
    main()
