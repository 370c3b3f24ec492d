#!/usr/bin/env python3
"""Fan-out throughput of two asyncstream-bench binaries, side by side.

Runs `BASE` and `NEW` (two builds of tools/asyncstream-bench, e.g. the last
commit's and the working tree's) alternately, one run of every fan-out row
each time, so that the machine's noise hits both alike; prints per row the
median GB/s of each and NEW/BASE. Extra arguments go to both binaries (e.g.
--kinds, --readers, --bytes). Exit status 1 if a row of NEW is slower than
--max-slowdown (percent) against BASE.

  python3 tools/bench/fanout_compare.py --base /tmp/base/build/tools/asyncstream-bench \\
      --new build/tools/asyncstream-bench --runs 5
"""

import argparse
import json
import statistics
import subprocess
import sys


def run(binary, extra):
    cmd = [binary, "--skip-wakeup", "--runs", "1", "--json"] + extra
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    rows = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if row.get("bench") != "fanout":
            continue
        rows[(row["impl"], row["readers"])] = row["gbps"]
    return rows


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the baseline binary")
    ap.add_argument("--new", required=True, help="the binary under test")
    ap.add_argument("--runs", type=int, default=5,
                    help="alternating runs of each (default 5)")
    ap.add_argument("--max-slowdown", type=float, default=5.0,
                    help="percent a row of NEW may lose (default 5)")
    args, extra = ap.parse_known_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    results = {"base": {}, "new": {}}
    for i in range(args.runs):
        for name, binary in (("base", args.base), ("new", args.new)):
            print(f"[compare] run {i + 1}/{args.runs}: {name}", file=sys.stderr,
                  flush=True)
            for key, gbps in run(binary, extra).items():
                results[name].setdefault(key, []).append(gbps)
    print(f"fan-out GB/s, median of {args.runs} alternating runs")
    print(f"{'kind':<10} {'readers':>7} {'base':>8} {'new':>8} {'new/base':>9}")
    worst = None
    for key in sorted(results["base"], key=lambda k: (k[1], k[0])):
        if key not in results["new"]:
            continue
        b = statistics.median(results["base"][key])
        n = statistics.median(results["new"][key])
        ratio = n / b if b > 0 else float("nan")
        worst = ratio if worst is None else min(worst, ratio)
        print(f"{key[0]:<10} {key[1]:>7} {b:>8.2f} {n:>8.2f} {ratio:>9.3f}")
    if worst is None:
        print("no rows to compare", file=sys.stderr)
        return 2
    limit = 1 - args.max_slowdown / 100
    print(f"slowest row: new/base {worst:.3f} (limit {limit:.3f})")
    return 0 if worst >= limit else 1


if __name__ == "__main__":
    sys.exit(main())
