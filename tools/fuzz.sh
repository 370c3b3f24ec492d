#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz/, from any directory on Debian 12:
#
#   bash tools/fuzz.sh                          # every fuzzer, 60 s each
#   bash tools/fuzz.sh --seconds 600 fuzz_range # one fuzzer, longer
#   bash tools/fuzz.sh --merge                  # keep new coverage in the corpus
#
# 1. installs the missing packages (those of tools/run.sh plus clang, the
#    libFuzzer runtime and llvm-symbolizer; apt-get, only if one is missing);
# 2. configures build-fuzz/ (clang, AddressSanitizer + UBSan, libFuzzer
#    coverage for every library) and builds the fuzzers;
# 3. runs each fuzzer for N seconds, at most J at once, from a fresh copy of
#    its committed corpus (tests/fuzz/corpus/<target>/ is never written,
#    unless --merge), with tests/fuzz/<target>.dict if there is one;
# 4. prints one summary line per fuzzer and exits 1 if any crashed, with the
#    crashing input and the command that replays it.
#
# Environment: ASYNCSTREAM_FUZZ_BUILD_DIR (default build-fuzz),
# ASYNCSTREAM_JOBS (the default of --jobs: the number of cores).
set -euo pipefail

# shellcheck source=tools/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/run.sh"
cd "$ROOT"

BUILD_DIR=${ASYNCSTREAM_FUZZ_BUILD_DIR:-build-fuzz}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
# clang++ (clang), libFuzzer and the sanitizer runtimes (libclang-rt-14-dev,
# only recommended by clang), readable stack traces (llvm-14).
PACKAGES+=(clang libclang-rt-14-dev llvm-14)
SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
CORPUS_ROOT=$ROOT/tests/fuzz/corpus

usage() {
  cat <<EOF
usage: bash tools/fuzz.sh [--seconds N] [--jobs J] [--merge] [TARGET...]

Builds the libFuzzer targets of tests/fuzz/ in ${BUILD_DIR#"$ROOT"/}/ (clang,
ASan + UBSan) and fuzzes each TARGET (default: all of them) for N seconds
from a copy of its corpus tests/fuzz/corpus/TARGET/. Exits 1 if one crashed.

  --seconds N   how long to fuzz each target                       [60]
  --jobs J      targets fuzzed at once, and build jobs  [ASYNCSTREAM_JOBS or cores]
  --merge       afterwards, add the inputs that found new coverage to
                tests/fuzz/corpus/TARGET/ (commit them by hand)
  --help        this text
EOF
}

fuzz_seconds=60
merge=0
targets=()
while (($#)); do
  case $1 in
    --seconds)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
      fuzz_seconds=$2
      shift 2
      ;;
    --jobs)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
      JOBS=$2
      shift 2
      ;;
    --merge)
      merge=1
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*)
      printf 'fuzz.sh: unknown option %s\n' "$1" >&2
      usage >&2
      exit 2
      ;;
    *)
      targets+=("$1")
      shift
      ;;
  esac
done

# A path under the repository as the user would type it from its root.
rel() {
  printf '%s\n' "${1#"$ROOT"/}"
}

# Configures BUILD_DIR for fuzzing (see tests/fuzz/CMakeLists.txt).
configure_fuzz() {
  local gen=()
  [[ -f $BUILD_DIR/CMakeCache.txt ]] || gen=(-G Ninja)
  log "configuring $BUILD_DIR"
  run cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
    -DASYNCSTREAM_SANITIZE=address,undefined \
    -DASYNCSTREAM_FUZZ=ON \
    -DASYNCSTREAM_BUILD_TESTS=ON \
    -DASYNCSTREAM_BUILD_TOOLS=ON
}

# Fuzzes target $1 with executable $2 in RUNS/$1 (run in the background):
# the fuzzer's process id goes to RUNS/$1/pid, its log to RUNS/$1/log, its
# exit status to RUNS/$1/rc.
fuzz_one() {
  local t=$1 exe=$2 work=$RUNS/$1 rc=0 pid
  local limits=(-timeout=25 -rss_limit_mb=2048
                -artifact_prefix="$work/artifacts/")
  local args=(-max_total_time="$fuzz_seconds" -print_final_stats=1
              "${limits[@]}")
  if [[ -f $ROOT/tests/fuzz/$t.dict ]]; then
    args+=(-dict="$ROOT/tests/fuzz/$t.dict")
  fi
  "$exe" "${args[@]}" "$work/corpus" >"$work/log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$work/pid"
  wait "$pid" || rc=$?
  if ((rc == 0 && merge)); then
    mkdir -p "$CORPUS_ROOT/$t"
    "$exe" -merge=1 "${limits[@]}" "$CORPUS_ROOT/$t" "$work/corpus" \
      >"$work/merge.log" 2>&1 </dev/null || rc=$?
  fi
  echo "$rc" >"$work/rc"
}

# The value of `stat::NAME: VALUE` in log $2 (? if absent).
stat_of() {
  local v
  v=$(sed -n "s/^stat::$1: *//p" "$2" | tail -n 1)
  printf '%s\n' "${v:-?}"
}

# Prints the summary of target $1; returns 1 if it failed.
report() {
  local t=$1 work=$RUNS/$1 rc
  rc=$(cat "$work/rc" 2>/dev/null || echo '?')
  local execs secs cov seeds inputs
  execs=$(stat_of number_of_executed_units "$work/log")
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' \
    "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 | cut -d' ' -f2)
  seeds=$(cat "$work/seeds")
  inputs=$(find "$work/corpus" -type f | wc -l)
  if [[ $rc == 0 ]]; then
    printf '%-16s ok     %s runs in %s s (%s/s), coverage %s, corpus %s seeds -> %s inputs\n' \
      "$t" "$execs" "${secs:-?}" "$(stat_of average_exec_per_sec "$work/log")" \
      "${cov:-?}" "$seeds" "$inputs"
    if ((merge)); then
      local now
      now=$(find "$CORPUS_ROOT/$t" -type f | wc -l)
      printf '%-16s merged %s new inputs into tests/fuzz/corpus/%s/ (review, then commit them)\n' \
        "$t" "$((now - seeds))" "$t"
    fi
    return 0
  fi
  local input
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -n 1)
  printf '%-16s FAILED (exit %s) after %s runs; log: %s\n' "$t" "$rc" \
    "$execs" "$(rel "$work/log")"
  if [[ -n $input ]]; then
    printf '%-16s   input:  %s\n' '' "$(rel "$input")"
    printf '%-16s   replay: %s %s\n' '' "$(rel "${EXES[$t]}")" "$(rel "$input")"
  fi
  return 1
}

ensure_packages
configure_fuzz

# The fuzzers registered with asyncstream_add_fuzzer (one per line).
known=()
while read -r t; do
  [[ -z $t ]] || known+=("$t")
done <"$BUILD_DIR/tests/fuzz/fuzzers.txt"
((${#targets[@]})) || targets=("${known[@]}")
for t in "${targets[@]}"; do
  if [[ " ${known[*]} " != *" $t "* ]]; then
    log "error: no fuzzer $t (there are: ${known[*]})"
    exit 2
  fi
done

build "${targets[@]}"

if [[ -x $SYMBOLIZER ]]; then
  export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER
fi
# Defaults of every fuzzer: tests/fuzz/sanitizer_options.cpp.

RUNS=$BUILD_DIR/fuzz-runs
declare -A EXES=()
for t in "${targets[@]}"; do
  EXES[$t]=$(find_executable "$t")
  rm -rf "${RUNS:?}/$t"
  mkdir -p "$RUNS/$t/corpus" "$RUNS/$t/artifacts"
  if [[ -d $CORPUS_ROOT/$t ]]; then
    cp -R "$CORPUS_ROOT/$t/." "$RUNS/$t/corpus/"
  fi
  find "$RUNS/$t/corpus" -type f | wc -l >"$RUNS/$t/seeds"
done

# Fuzz, at most JOBS targets at once. Background jobs ignore SIGINT in a
# script: on Ctrl-C or SIGTERM stop the fuzzers we started, by their ids.
stop_fuzzers() {
  local t
  for t in "${targets[@]}"; do
    [[ -f $RUNS/$t/pid ]] && kill -TERM "$(cat "$RUNS/$t/pid")" 2>/dev/null
  done
  return 0
}
trap 'stop_fuzzers; exit 130' INT TERM
log "fuzzing ${targets[*]} for $fuzz_seconds s each, $JOBS at once" \
  "(logs in $(rel "$RUNS")/TARGET/log)"
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= JOBS)); do
    wait -n || true
  done
  show "${EXES[$t]}" -max_total_time="$fuzz_seconds" "$(rel "$RUNS/$t/corpus")"
  fuzz_one "$t" "${EXES[$t]}" &
done
wait
trap - INT TERM

failed=0
log "summary"
for t in "${targets[@]}"; do
  report "$t" || failed=1
done
if ((failed)); then
  for t in "${targets[@]}"; do
    [[ $(cat "$RUNS/$t/rc") == 0 ]] && continue
    printf '\n==> %s: the end of its log\n' "$t" >&2
    tail -n 40 "$RUNS/$t/log" >&2
  done
  log "a fuzzer failed: add the input to tests/fuzz/corpus/TARGET/ and a" \
    "regression test to tests/streamerd_test.cpp"
  exit 1
fi
