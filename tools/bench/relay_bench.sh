#!/usr/bin/env bash
# Relay benchmark: origin -> relay -> N clients against origin -> N clients,
# over loopback, the same bytes (docs/benchmarks.md, "Relays").
#
# Per run and mode, fresh daemons: an upload of SIZE bytes starts on the
# origin (curl -T, as fast as it goes), and N curl clients start right after
# it, reading the stream while it is live: in mode "direct" from the origin,
# in mode "relay" from a second streamerd that relays the origin's stream
# (--relay). Reports the wall time from launching the first client to the
# last one finishing, the aggregate GB/s (N * SIZE / seconds / 1e9), the
# ratio relay/direct and the "relay cost" (1 - ratio: the share of the
# direct throughput the relay hop costs; the goal is under 15%). Every
# client must get exactly SIZE bytes with status 200, else the run aborts.
# Medians over the runs; one line per run shows both modes side by side.
#
#   bash tools/bench/relay_bench.sh --streamerd build/tools/streamerd/streamerd
#   bash tools/bench/relay_bench.sh --bytes 256M --clients 100 --runs 5 --json
#
# Environment: STREAMERD_ARGS, extra arguments for every streamerd (split on
# blanks); RELAY_BENCH_CURL_TIMEOUT, the limit on each curl in seconds
# (default 300).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() {
  cat <<'EOF'
Usage: relay_bench.sh [options]
  --streamerd PATH   the daemon   [build-bench/tools/streamerd/streamerd,
                                   built there (Release) if missing]
  --bytes SIZE       bytes per client, K/M/G suffixes (binary)   [256M]
  --clients N        concurrent curl clients                      [100]
  --runs R           runs per mode; medians reported              [3]
  --json             also print one JSON line per mode
  --help             print this and exit
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'relay_bench: error: %s\n' "$*" >&2
  exit 1
}

streamerd=
size_arg=256M
clients=100
runs=3
json=0
while (($#)); do
  case $1 in
    --streamerd) (($# >= 2)) || die "$1 needs a value"; streamerd=$2; shift 2 ;;
    --bytes) (($# >= 2)) || die "$1 needs a value"; size_arg=$2; shift 2 ;;
    --clients) (($# >= 2)) || die "$1 needs a value"; clients=$2; shift 2 ;;
    --runs) (($# >= 2)) || die "$1 needs a value"; runs=$2; shift 2 ;;
    --json) json=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

parse_size() {
  local s=$1 n unit
  [[ $s =~ ^([0-9]+)([KkMmGg]?)(i?[Bb])?$ ]] || return 1
  n=${BASH_REMATCH[1]}
  unit=${BASH_REMATCH[2]^^}
  case $unit in
    K) n=$((n * 1024)) ;;
    M) n=$((n * 1024 * 1024)) ;;
    G) n=$((n * 1024 * 1024 * 1024)) ;;
  esac
  printf '%s\n' "$n"
}
bytes=$(parse_size "$size_arg") || die "bad --bytes: $size_arg"
((bytes > 0)) || die "--bytes must be > 0"
[[ $clients =~ ^[0-9]+$ ]] && ((clients > 0)) || die "bad --clients: $clients"
[[ $runs =~ ^[0-9]+$ ]] && ((runs > 0)) || die "bad --runs: $runs"
CURL_TIMEOUT=${RELAY_BENCH_CURL_TIMEOUT:-300}
NCPU=$(nproc 2>/dev/null || echo 1)
command -v curl >/dev/null || die "curl not found (apt-get install curl)"

if [[ -z $streamerd ]]; then
  streamerd=$ROOT/build-bench/tools/streamerd/streamerd
  if [[ ! -x $streamerd ]]; then
    log "building streamerd in $ROOT/build-bench (Release)"
    gen=()
    [[ -f $ROOT/build-bench/CMakeCache.txt ]] || gen=(-G Ninja)
    cmake -S "$ROOT" -B "$ROOT/build-bench" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release >&2
    ninja -C "$ROOT/build-bench" streamerd >&2
  fi
fi
[[ -x $streamerd ]] || die "--streamerd $streamerd: not an executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/relay_bench.XXXXXX")
daemon_pids=()
other_pids=()

stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1 # poll step
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  trap - EXIT INT TERM
  for pid in "${other_pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${daemon_pids[@]}"; do
    stop_pid "$pid"
  done
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }

free_port() {
  local p i
  for ((i = 0; i < 50; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
    if [[ -z $(ss -tanH "( sport = :$p )" 2>/dev/null) ]]; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  return 1
}

# start_daemon LABEL ARGS...: a streamerd on a free port; sets D_PORT D_PID
start_daemon() {
  local label=$1 port pid i attempt extra=()
  shift
  # shellcheck disable=SC2206
  [[ -n ${STREAMERD_ARGS:-} ]] && extra=($STREAMERD_ARGS)
  for ((attempt = 0; attempt < 3; attempt++)); do
    port=$(free_port) || die "no free port"
    "$streamerd" --listen "127.0.0.1:$port" --no-demo --log-level warn \
      --max-readers $((clients > 100 ? clients : 100)) --file-dir "$tmp" \
      "${extra[@]}" "$@" >>"$tmp/$label.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/metrics"; then
        daemon_pids+=("$pid")
        D_PORT=$port
        D_PID=$pid
        return 0
      fi
      sleep 0.1 # poll step
    done
    stop_pid "$pid"
  done
  tail -n 20 "$tmp/$label.log" >&2 || true
  die "$label did not start"
}

stop_daemons() {
  local pid
  for pid in "${daemon_pids[@]}"; do
    stop_pid "$pid"
  done
  daemon_pids=()
}

# cpu_ticks PIDS...: user + system ticks of the processes
cpu_ticks() {
  local pid sum=0 stat rest
  local -a f
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    read -ra f <<<"$rest"
    sum=$((sum + f[11] + f[12]))
  done
  printf '%s\n' "$sum"
}

# run_mode MODE: one run; sets R_SECS, R_SRV (CPU-s of the daemons)
run_mode() {
  local mode=$1 origin_port read_port i rc size code fail=0 t0 t1 c0 c1 pids
  start_daemon origin
  origin_port=$D_PORT
  pids=("$D_PID")
  read_port=$origin_port
  if [[ $mode == relay ]]; then
    start_daemon relay --relay "bench=http://127.0.0.1:$origin_port/streams/bench" \
      --relay-backoff-ms 20
    read_port=$D_PORT
    pids+=("$D_PID")
  fi
  c0=$(cpu_ticks "${pids[@]}")
  curl -s -o "$tmp/upload.body" --max-time "$CURL_TIMEOUT" -H 'Expect:' \
    -w '%{http_code}\n' -T "$tmp/data" \
    "http://127.0.0.1:$origin_port/streams/bench" >"$tmp/upload.out" 2>&1 &
  local upload=$!
  other_pids=("$upload")
  rm -rf "$tmp/clients"
  mkdir -p "$tmp/clients"
  t0=$(now)
  for ((i = 0; i < clients; i++)); do
    # direct: ?wait= covers a stream the upload has not made yet; the
    # relay's stream exists from its start
    curl -s -o /dev/null --max-time "$CURL_TIMEOUT" -w '%{size_download} %{http_code}\n' \
      "http://127.0.0.1:$read_port/streams/bench?wait=30" >"$tmp/clients/$i.out" 2>&1 &
    other_pids+=($!)
  done
  for ((i = 0; i < clients; i++)); do
    rc=0
    wait "${other_pids[i + 1]}" || rc=$?
    echo "$rc" >"$tmp/clients/$i.rc"
  done
  t1=$(now)
  c1=$(cpu_ticks "${pids[@]}")
  rc=0
  wait "$upload" || rc=$?
  other_pids=()
  [[ $rc == 0 && $(<"$tmp/upload.out") == 201 ]] || die "$mode: upload failed (curl $rc, $(cat "$tmp/upload.out"))"
  for ((i = 0; i < clients; i++)); do
    rc=$(<"$tmp/clients/$i.rc")
    read -r size code <"$tmp/clients/$i.out" || true
    if [[ $rc != 0 || $size != "$bytes" || $code != 200 ]]; then
      ((fail < 5)) && printf 'relay_bench: %s client %d: curl %s, %s bytes, code %s\n' \
        "$mode" "$i" "$rc" "${size:-?}" "${code:-?}" >&2
      fail=$((fail + 1))
    fi
  done
  stop_daemons
  ((fail == 0)) || {
    tail -n 20 "$tmp"/*.log >&2 || true
    die "$mode: $fail of $clients clients failed"
  }
  R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  R_SRV=$(awk -v a="$c0" -v b="$c1" -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / h }')
}

log "generating $bytes random bytes"
head -c "$bytes" /dev/urandom >"$tmp/data"
log "$clients clients x $bytes bytes, $runs run(s) per mode, $NCPU cores, streamerd $streamerd"

gbps() { awk -v n="$clients" -v b="$bytes" -v s="$1" 'BEGIN { printf "%.3f", n * b / s / 1e9 }'; }
declare -A secs_list srv_list
printf '%-4s %10s %9s %10s %9s %8s\n' run direct_s GB/s relay_s GB/s ratio
for ((run = 1; run <= runs; run++)); do
  run_mode direct
  ds=$R_SECS
  secs_list[direct]+=" $R_SECS"
  srv_list[direct]+=" $R_SRV"
  run_mode relay
  rs=$R_SECS
  secs_list[relay]+=" $R_SECS"
  srv_list[relay]+=" $R_SRV"
  printf '%-4d %10.3f %9.3f %10.3f %9.3f %8.3f\n' "$run" "$ds" "$(gbps "$ds")" "$rs" \
    "$(gbps "$rs")" "$(awk -v a="$ds" -v b="$rs" 'BEGIN { printf "%.3f", a / b }')"
done

median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '
    { a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
printf '\nmedians of %d runs\n' "$runs"
printf '%-8s %8s %12s %9s %8s %8s %8s\n' mode clients bytes seconds GB/s ratio srv_cpu
declare -A med gb
for mode in direct relay; do
  med[$mode]=$(median "${secs_list[$mode]}")
  gb[$mode]=$(gbps "${med[$mode]}")
done
ratio=$(awk -v a="${gb[relay]}" -v b="${gb[direct]}" 'BEGIN { printf "%.3f", a / b }')
for mode in direct relay; do
  r=1.000
  [[ $mode == relay ]] && r=$ratio
  printf '%-8s %8d %12d %9.3f %8.3f %8s %8.2f\n' "$mode" "$clients" "$bytes" "${med[$mode]}" \
    "${gb[$mode]}" "$r" "$(median "${srv_list[$mode]}")"
done
cost=$(awk -v r="$ratio" 'BEGIN { printf "%.1f", (1 - r) * 100 }')
printf '(ratio: GB/s over direct; srv_cpu: CPU-seconds of the daemons (origin, and relay), out of %d cores x seconds)\n' "$NCPU"
printf 'relay cost: %s%% of the direct throughput (goal: under 15%%)\n' "$cost"
if ((json)); then
  for mode in direct relay; do
    printf '{"bench":"relay","mode":"%s","clients":%d,"bytes":%d,"seconds":%s,"gbps":%s,"runs":%d,"cores":%d}\n' \
      "$mode" "$clients" "$bytes" "${med[$mode]}" "${gb[$mode]}" "$runs" "$NCPU"
  done
fi
