#!/usr/bin/env bash
# Backed pipe benchmark (issue 10, point 6): aspipe over loopback TCP against
# a plain TCP copy of the same bytes (socat), without faults and with a cut
# every 64 MiB; medians side by side in one run. The rows and columns are
# described in tools/bench/pipe_bench.py; the figures are in
# docs/benchmarks.md ("Backed pipe over TCP").
#
#   bash tools/bench/pipe_bench.sh                          # 512 MiB, 3 runs
#   bash tools/bench/pipe_bench.sh --bytes 1G --runs 5
#   bash tools/bench/pipe_bench.sh --aspipe build-tcp/tools/aspipe/aspipe
#
# Without --aspipe it builds aspipe in build-bench/ (Release). It installs
# socat (Debian's package) when it is missing and apt-get can run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'pipe_bench: error: %s\n' "$*" >&2; exit 1; }

aspipe=
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --aspipe) aspipe=$2; shift 2 ;;
    --help|-h)
      sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      python3 "$ROOT/tools/bench/pipe_bench.py" --help
      exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done

command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"
if ! command -v socat >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing socat (the plain TCP copy)"
    DEBIAN_FRONTEND=noninteractive apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y socat >&2
  else
    die "socat not found: install Debian's socat (sudo apt-get install socat)"
  fi
fi

if [[ -z $aspipe ]]; then
  aspipe=$ROOT/build-bench/tools/aspipe/aspipe
  command -v cmake >/dev/null || die "cmake not found (bash tools/run.sh installs the build packages)"
  command -v ninja >/dev/null || die "ninja not found (bash tools/run.sh installs the build packages)"
  log "building aspipe in $ROOT/build-bench (Release)"
  gen=()
  [[ -f $ROOT/build-bench/CMakeCache.txt ]] || gen=(-G Ninja)
  cmake -S "$ROOT" -B "$ROOT/build-bench" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE=Release >&2
  ninja -C "$ROOT/build-bench" aspipe >&2
fi
[[ -x $aspipe ]] || die "no aspipe binary at $aspipe"

exec python3 "$ROOT/tools/bench/pipe_bench.py" --aspipe "$aspipe" "${args[@]}"
