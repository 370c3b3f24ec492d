#!/usr/bin/env bash
# Wake-up latency matrix (issue 12): asyncstream-bench's wake-up rows
# (kernel = pulled pipe source, writer, async, pingpong, and the mutex +
# condition variable references) side by side in each configuration:
#
#   1. parked:      --wakeup-gap-us 100 (the reader sleeps before each byte)
#   2. no gap:      --wakeup-gap-us 0
#   3. under load:  gap 100 while 100 readers stream a stream of their own
#   4. under load, the rows' own threads SCHED_FIFO (--wakeup-priority fifo;
#      needs CAP_SYS_NICE, skipped without it)
#
# Medians of --runs runs (3 by default). The figures and what they mean are
# in docs/benchmarks.md ("Wake-up latency").
#
#   bash tools/bench/latency_bench.sh                       # builds build-bench/
#   bash tools/bench/latency_bench.sh --bench build-dev/tools/asyncstream-bench --runs 5
#
# For the per-hop breakdown, build with -DASYNCSTREAM_WAKE_TRACE=ON (slower:
# a timestamp per hop) and run that binary's --skip-fanout rows: each row
# then prints its hops (docs/benchmarks.md shows how).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'latency_bench: error: %s\n' "$*" >&2; exit 1; }

bench=
runs=3
iterations=10000
while [[ $# -gt 0 ]]; do
  case $1 in
    --bench) [[ $# -ge 2 ]] || die "--bench needs a path"; bench=$2; shift 2 ;;
    --runs) [[ $# -ge 2 ]] || die "--runs needs a number"; runs=$2; shift 2 ;;
    --iterations) [[ $# -ge 2 ]] || die "--iterations needs a number"
      iterations=$2; shift 2 ;;
    --help|-h) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
[[ $iterations =~ ^[1-9][0-9]*$ ]] || die "--iterations must be a positive number"

if [[ -z $bench ]]; then
  bench=$ROOT/build-bench/tools/asyncstream-bench
  command -v cmake >/dev/null || die "cmake not found (bash tools/run.sh installs the build packages)"
  command -v ninja >/dev/null || die "ninja not found (bash tools/run.sh installs the build packages)"
  log "building asyncstream-bench in $ROOT/build-bench (Release)"
  gen=()
  [[ -f $ROOT/build-bench/CMakeCache.txt ]] || gen=(-G Ninja)
  cmake -S "$ROOT" -B "$ROOT/build-bench" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE=Release >&2
  ninja -C "$ROOT/build-bench" asyncstream-bench >&2
fi
[[ -x $bench ]] || die "no asyncstream-bench at $bench"

common=(--skip-fanout --runs "$runs" --wakeup-iterations "$iterations")
show() {
  log "$bench ${common[*]} $*"
  "$bench" "${common[@]}" "$@" 2>/dev/null
}

show --wakeup-gap-us 100
show --wakeup-gap-us 0
show --wakeup-gap-us 100 --wakeup-load 100
if chrt -f 10 true 2>/dev/null; then
  show --wakeup-gap-us 100 --wakeup-load 100 --wakeup-priority fifo
else
  log "skipped the SCHED_FIFO rows: no CAP_SYS_NICE here"
fi
