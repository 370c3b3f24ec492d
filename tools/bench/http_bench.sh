#!/usr/bin/env bash
# HTTP benchmark: streamerd against nginx, over loopback.
#
# N concurrent curl clients download the same SIZE bytes, once from nginx (a
# static file, sendfile on) and once from streamerd (a live stream: an upload
# of the same file starts, and the clients start right after it, so they read
# behind the live edge). Reports the wall time from launching the first
# client to the last one finishing, the aggregate GB/s (N * SIZE / seconds /
# 1e9) and the ratio streamerd/nginx. Every client must get exactly SIZE
# bytes with status 200, else the run aborts.
#
#   bash tools/bench/http_bench.sh                       # 100 clients, 1 GiB
#   bash tools/bench/http_bench.sh --bytes 256M --runs 3 --json
#
# Both servers face the same curl clients; on a small machine the clients
# themselves (one curl process each, copying every byte out of the socket)
# may be the bottleneck, which the CPU columns show: "srv_cpu" is the CPU
# time of the server processes during the clients' run, "cli_cpu" that of
# the curl clients (for streamerd including the upload's curl), both in
# CPU-seconds, next to the wall time and the number of cores.
#
# Environment: STREAMERD_ARGS, extra arguments for streamerd (split on
# blanks), e.g. STREAMERD_ARGS="--threads 2"; HTTP_BENCH_CURL_TIMEOUT, the
# limit on each curl in seconds (default 300).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() {
  cat <<'EOF'
Usage: http_bench.sh [options]
  --streamerd PATH   the daemon       [build-bench/tools/streamerd/streamerd,
                                       built there if missing]
  --bytes SIZE       bytes per client, K/M/G suffixes (binary)        [1G]
  --clients N        concurrent curl clients                          [100]
  --runs R           runs per implementation; medians reported        [1]
  --only IMPL        run only nginx or only streamerd
  --json             also print one JSON line per implementation
  --help             print this and exit

Per run: an nginx row (static file, sendfile), then a streamerd row (a fresh
daemon; an upload of the same file starts, the clients start right after it
and read the stream while it is live). Only 127.0.0.1; every curl is bounded
by a timeout. Environment: STREAMERD_ARGS adds daemon arguments (split on
blanks); HTTP_BENCH_CURL_TIMEOUT sets that timeout in seconds [300].
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'http_bench: error: %s\n' "$*" >&2; exit 1; }

# -- arguments ----------------------------------------------------------------

streamerd=
size_arg=1G
clients=100
runs=1
json=0
only=

while (($#)); do
  case $1 in
    --streamerd) (($# >= 2)) || die "$1 needs a value"; streamerd=$2; shift 2 ;;
    --streamerd=*) streamerd=${1#*=}; shift ;;
    --bytes) (($# >= 2)) || die "$1 needs a value"; size_arg=$2; shift 2 ;;
    --bytes=*) size_arg=${1#*=}; shift ;;
    --clients) (($# >= 2)) || die "$1 needs a value"; clients=$2; shift 2 ;;
    --clients=*) clients=${1#*=}; shift ;;
    --runs) (($# >= 2)) || die "$1 needs a value"; runs=$2; shift 2 ;;
    --runs=*) runs=${1#*=}; shift ;;
    --only) (($# >= 2)) || die "$1 needs a value"; only=$2; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --json) json=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# SIZE: a number with an optional K, M, G, T suffix (powers of 1024; KiB,
# MiB, ... accepted too).
parse_size() {
  local s=$1 n unit
  [[ $s =~ ^([0-9]+)([KkMmGgTt]?)(i?[Bb])?$ ]] || return 1
  n=${BASH_REMATCH[1]}
  unit=${BASH_REMATCH[2]^^}
  case $unit in
    '') ;;
    K) n=$((n * 1024)) ;;
    M) n=$((n * 1024 * 1024)) ;;
    G) n=$((n * 1024 * 1024 * 1024)) ;;
    T) n=$((n * 1024 * 1024 * 1024 * 1024)) ;;
  esac
  printf '%s\n' "$n"
}

bytes=$(parse_size "$size_arg") || die "bad --bytes: $size_arg"
((bytes > 0)) || die "--bytes must be > 0"
[[ $clients =~ ^[0-9]+$ ]] && ((clients > 0)) || die "bad --clients: $clients"
[[ $runs =~ ^[0-9]+$ ]] && ((runs > 0)) || die "bad --runs: $runs"
case $only in
  ''|nginx|streamerd) ;;
  *) die "bad --only: $only (nginx or streamerd)" ;;
esac

CURL_TIMEOUT=${HTTP_BENCH_CURL_TIMEOUT:-300}
[[ $CURL_TIMEOUT =~ ^[0-9]+$ ]] || die "bad HTTP_BENCH_CURL_TIMEOUT: $CURL_TIMEOUT"
NCPU=$(nproc 2>/dev/null || echo 1)
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

command -v curl >/dev/null || die "curl not found (apt-get install curl)"

# -- state and cleanup ----------------------------------------------------------

tmp=
nginx_pid=
streamerd_pid=
upload_pid=
client_pids=()

# Stops one process we started: TERM, up to 5 s, then KILL.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  trap - EXIT INT TERM
  for pid in "${client_pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${client_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  client_pids=()
  [[ -n $upload_pid ]] && { kill -KILL "$upload_pid" 2>/dev/null || true; wait "$upload_pid" 2>/dev/null || true; }
  stop_pid "$streamerd_pid"
  stop_pid "$nginx_pid"
  [[ -n $tmp && -d $tmp ]] && rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/http_bench.XXXXXX")
# nginx workers may run as another user (as root: nginx's default user).
chmod 755 "$tmp"

# -- helpers --------------------------------------------------------------------

now() { date +%s.%N; }

# A random port in 20000-60000 that no TCP socket uses as its local port.
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

# Waits up to 10 s for an HTTP answer at URL from the process PID.
wait_http() {
  local pid=$1 url=$2 i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 2
    curl -s -o /dev/null --max-time 2 "$url" && return 0
    sleep 0.1
  done
  return 1
}

# CPU time (ticks, user + system) of the processes PIDS, summed over threads.
cpu_ticks() {
  local pid sum=0 stat rest
  local -a f
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    rest=${stat##*) }            # past "pid (comm) "
    read -ra f <<<"$rest"
    # rest starts at field 3 (state); utime is field 14, stime 15
    sum=$((sum + f[11] + f[12]))
  done
  printf '%s\n' "$sum"
}

# The children of PID (nginx workers).
children_of() {
  ps -o pid= --ppid "$1" 2>/dev/null | tr -s ' \n' ' ' || true
}

# CPU seconds (user + system) of this shell's reaped children so far, into
# CHILDREN_CPU (no command substitution: a subshell has its own children).
children_cpu() {
  local t
  times >"$tmp/times"
  t=$(tail -n 1 "$tmp/times")     # "XmY.YYYs XmY.YYYs"
  CHILDREN_CPU=$(awk -v t="$t" 'BEGIN {
    n = split(t, a, " "); s = 0
    for (i = 1; i <= n; i++) {
      split(a[i], b, "m"); sub("s", "", b[2]); s += b[1] * 60 + b[2]
    }
    printf "%.3f\n", s
  }')
}

# After failed clients: says whether the server is still running (or how it
# ended) and shows the end of its log.
server_post_mortem() {
  local label=$1 pid log rc
  if [[ $label == nginx ]]; then pid=$nginx_pid; log=$tmp/nginx/logs/error.log
  else pid=$streamerd_pid; log=$tmp/streamerd/log; fi
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    printf 'http_bench: %s (pid %s) is still running\n' "$label" "$pid" >&2
  else
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    if ((rc > 128)); then
      printf 'http_bench: %s (pid %s) died of signal %d (%s)\n' "$label" "$pid" \
        $((rc - 128)) "$(kill -l $((rc - 128)) 2>/dev/null)" >&2
    else
      printf 'http_bench: %s (pid %s) exited with status %d\n' "$label" "$pid" "$rc" >&2
    fi
    if [[ $label == nginx ]]; then nginx_pid=; else streamerd_pid=; fi
  fi
  if [[ -s $log ]]; then
    printf 'http_bench: end of the %s log:\n' "$label" >&2
    tail -n 20 "$log" | sed 's/^/    /' >&2
  fi
}

# Runs the clients against URL; sets CL_SECS (wall time) and CL_CPU (their
# CPU-seconds), and CL_LIVE (yes/no: was the upload, if any, still running
# once every client had been launched). Aborts unless every client got
# exactly $bytes with code 200.
run_clients() {
  local url=$1 label=$2 i t0 t1 c0 c1 rc line size code fail=0
  local outdir=$tmp/clients
  rm -rf "$outdir"; mkdir -p "$outdir"
  client_pids=()
  children_cpu; c0=$CHILDREN_CPU
  t0=$(now)
  for ((i = 0; i < clients; i++)); do
    curl -s -o /dev/null --max-time "$CURL_TIMEOUT" \
      -w '%{size_download} %{http_code}\n' "$url" \
      >"$outdir/$i.out" 2>"$outdir/$i.err" &
    client_pids+=($!)
  done
  CL_LIVE=-
  if [[ -n $upload_pid ]]; then
    if kill -0 "$upload_pid" 2>/dev/null; then CL_LIVE=yes; else CL_LIVE=no; fi
  fi
  for ((i = 0; i < clients; i++)); do
    rc=0
    wait "${client_pids[i]}" || rc=$?
    echo "$rc" >"$outdir/$i.rc"
  done
  t1=$(now)
  client_pids=()
  children_cpu; c1=$CHILDREN_CPU
  for ((i = 0; i < clients; i++)); do
    rc=$(<"$outdir/$i.rc")
    line=$(<"$outdir/$i.out")
    read -r size code <<<"$line" || true
    if [[ $rc != 0 || $size != "$bytes" || $code != 200 ]]; then
      ((fail < 5)) && printf 'http_bench: %s client %d: curl exit %s, %s bytes, code %s (want %s bytes, 200)\n' \
        "$label" "$i" "$rc" "${size:-?}" "${code:-?}" "$bytes" >&2
      fail=$((fail + 1))
    fi
  done
  if ((fail)); then
    server_post_mortem "$label"
    die "$label: $fail of $clients clients failed"
  fi
  CL_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  CL_CPU=$(awk -v c="$c0" -v d="$c1" 'BEGIN { printf "%.2f", d - c }')
}

# -- nginx ----------------------------------------------------------------------

ensure_nginx() {
  if command -v nginx >/dev/null; then NGINX=$(command -v nginx); return; fi
  if [[ -x /usr/sbin/nginx ]]; then NGINX=/usr/sbin/nginx; return; fi
  if ((EUID == 0)); then
    log "installing nginx-light"
    DEBIAN_FRONTEND=noninteractive apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light >&2
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x $NGINX ]] || die "nginx still missing after installing nginx-light"
    return
  fi
  die "nginx not found: install Debian's nginx-light (sudo apt-get install nginx-light), or run as root"
}

# Writes the nginx config for PORT into $tmp/nginx/nginx.conf.
nginx_conf() {
  local port=$1 d=$tmp/nginx v
  mkdir -p "$d/logs"
  local temps=""
  v=$("$NGINX" -V 2>&1)
  temps+="    client_body_temp_path $d/client_body;"$'\n'
  [[ $v == *--without-http_proxy_module* ]] || temps+="    proxy_temp_path $d/proxy;"$'\n'
  [[ $v == *--without-http_fastcgi_module* ]] || temps+="    fastcgi_temp_path $d/fastcgi;"$'\n'
  [[ $v == *--without-http_uwsgi_module* ]] || temps+="    uwsgi_temp_path $d/uwsgi;"$'\n'
  [[ $v == *--without-http_scgi_module* ]] || temps+="    scgi_temp_path $d/scgi;"$'\n'
  cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 10;
    default_type application/octet-stream;
$temps
    server {
        listen 127.0.0.1:$port;
        root $tmp/www;
        location / { }
    }
}
EOF
}

# One nginx row: sets R_SECS R_SRV R_CLI.
run_nginx() {
  local port attempt=0 r cs0 cs1 pids
  while :; do
    attempt=$((attempt + 1))
    port=$(free_port) || die "no free port found"
    nginx_conf "$port"
    "$NGINX" -e "$tmp/nginx/logs/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
      >"$tmp/nginx/logs/stdout.log" 2>&1 &
    nginx_pid=$!
    r=0; wait_http "$nginx_pid" "http://127.0.0.1:$port/data" || r=$?
    ((r == 0)) && break
    stop_pid "$nginx_pid"; nginx_pid=
    if ((attempt >= 3)); then
      tail -n 20 "$tmp/nginx/logs/error.log" >&2 || true
      die "nginx did not start (3 ports tried)"
    fi
    log "nginx did not start on port $port, trying another"
  done
  pids="$nginx_pid $(children_of "$nginx_pid")"
  # shellcheck disable=SC2086
  cs0=$(cpu_ticks $pids)
  run_clients "http://127.0.0.1:$port/data" nginx
  # shellcheck disable=SC2086
  cs1=$(cpu_ticks $pids)
  stop_pid "$nginx_pid"; nginx_pid=
  if [[ -s $tmp/nginx/logs/error.log ]]; then
    log "nginx error log:"
    tail -n 10 "$tmp/nginx/logs/error.log" | sed 's/^/    /' >&2
    : >"$tmp/nginx/logs/error.log"
  fi
  R_SECS=$CL_SECS
  R_CLI=$CL_CPU
  R_SRV=$(awk -v a="$cs0" -v b="$cs1" -v h="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / h }')
}

# -- streamerd ------------------------------------------------------------------

ensure_streamerd() {
  if [[ -n $streamerd ]]; then
    [[ -x $streamerd ]] || die "--streamerd $streamerd: not an executable"
    return
  fi
  streamerd=$ROOT/build-bench/tools/streamerd/streamerd
  [[ -x $streamerd ]] && return
  command -v cmake >/dev/null || die "cmake not found (bash tools/run.sh installs the build packages)"
  command -v ninja >/dev/null || die "ninja not found (bash tools/run.sh installs the build packages)"
  log "building streamerd in $ROOT/build-bench (Release)"
  local gen=()
  [[ -f $ROOT/build-bench/CMakeCache.txt ]] || gen=(-G Ninja)
  cmake -S "$ROOT" -B "$ROOT/build-bench" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release >&2
  ninja -C "$ROOT/build-bench" streamerd >&2
  [[ -x $streamerd ]] || die "build did not produce $streamerd"
}

# One streamerd row: sets R_SECS R_SRV R_CLI, R_UP (upload seconds) and
# R_LIVE (upload still running once all clients were launched).
run_streamerd() {
  local port attempt=0 r cs0 cs1 max_readers=$clients extra=()
  local up_secs code
  ((max_readers >= 100)) || max_readers=100
  # shellcheck disable=SC2206
  [[ -n ${STREAMERD_ARGS:-} ]] && extra=($STREAMERD_ARGS)
  mkdir -p "$tmp/streamerd"
  while :; do
    attempt=$((attempt + 1))
    port=$(free_port) || die "no free port found"
    "$streamerd" --listen "127.0.0.1:$port" --no-demo --log-level warn \
      --max-readers "$max_readers" "${extra[@]}" \
      >>"$tmp/streamerd/log" 2>&1 &
    streamerd_pid=$!
    r=0; wait_http "$streamerd_pid" "http://127.0.0.1:$port/metrics" || r=$?
    ((r == 0)) && break
    stop_pid "$streamerd_pid"; streamerd_pid=
    if ((attempt >= 3)); then
      tail -n 20 "$tmp/streamerd/log" >&2 || true
      die "streamerd did not start (3 ports tried)"
    fi
    log "streamerd did not start on port $port, trying another"
  done
  cs0=$(cpu_ticks "$streamerd_pid")
  # The producer: an upload of the file. 'Expect:' off, so curl sends the
  # body at once instead of waiting for a 100 Continue.
  curl -s -o "$tmp/streamerd/upload.body" --max-time "$CURL_TIMEOUT" -H 'Expect:' \
    -w '%{http_code} %{time_total}\n' -T "$tmp/www/data" \
    "http://127.0.0.1:$port/streams/bench" >"$tmp/streamerd/upload.out" 2>&1 &
  upload_pid=$!
  # The consumers, right after: ?wait= covers a stream not created yet.
  run_clients "http://127.0.0.1:$port/streams/bench?wait=30" streamerd
  cs1=$(cpu_ticks "$streamerd_pid")
  r=0; wait "$upload_pid" || r=$?
  upload_pid=
  read -r code up_secs <"$tmp/streamerd/upload.out" || true
  if [[ $r != 0 || $code != 201 ]]; then
    die "streamerd upload: curl exit $r, code ${code:-?} ($(head -c 200 "$tmp/streamerd/upload.body" 2>/dev/null))"
  fi
  stop_pid "$streamerd_pid"; streamerd_pid=
  if [[ -s $tmp/streamerd/log ]]; then
    log "streamerd log (warn and above):"
    tail -n 20 "$tmp/streamerd/log" | sed 's/^/    /' >&2
    : >"$tmp/streamerd/log"
  fi
  R_SECS=$CL_SECS
  R_CLI=$CL_CPU
  R_SRV=$(awk -v a="$cs0" -v b="$cs1" -v h="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / h }')
  R_UP=$up_secs
  R_LIVE=$CL_LIVE
}

# -- main -----------------------------------------------------------------------

impls=()
[[ $only == streamerd ]] || impls+=(nginx)
[[ $only == nginx ]] || impls+=(streamerd)

[[ " ${impls[*]} " == *' nginx '* ]] && ensure_nginx
[[ " ${impls[*]} " == *' streamerd '* ]] && ensure_streamerd

mkdir -p "$tmp/www"
chmod 755 "$tmp/www"
log "generating $bytes random bytes in $tmp/www/data"
head -c "$bytes" /dev/urandom >"$tmp/www/data"
chmod 644 "$tmp/www/data"
[[ $(stat -c %s "$tmp/www/data") == "$bytes" ]] || die "could not write $bytes bytes to $tmp"

log "$clients clients x $bytes bytes, $runs run(s), $NCPU cores${streamerd:+, streamerd $streamerd}"
[[ " ${impls[*]} " == *' nginx '* ]] && log "nginx: $NGINX ($("$NGINX" -v 2>&1 | sed 's/.*: //'))"

declare -A secs_list srv_list cli_list
up_list=
live_list=
for ((run = 1; run <= runs; run++)); do
  for impl in "${impls[@]}"; do
    if [[ $impl == nginx ]]; then
      run_nginx
      log "run $run nginx: $R_SECS s, server CPU $R_SRV s, clients CPU $R_CLI s"
    else
      run_streamerd
      log "run $run streamerd: $R_SECS s, server CPU $R_SRV s, clients CPU $R_CLI s, upload $R_UP s, live when all clients were launched: $R_LIVE"
      up_list+=" $R_UP"
      live_list+=" $R_LIVE"
    fi
    secs_list[$impl]+=" $R_SECS"
    srv_list[$impl]+=" $R_SRV"
    cli_list[$impl]+=" $R_CLI"
  done
done

median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '
    { a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

declare -A med_s med_srv med_cli gbps
for impl in "${impls[@]}"; do
  med_s[$impl]=$(median "${secs_list[$impl]}")
  med_srv[$impl]=$(median "${srv_list[$impl]}")
  med_cli[$impl]=$(median "${cli_list[$impl]}")
  gbps[$impl]=$(awk -v n="$clients" -v b="$bytes" -v s="${med_s[$impl]}" \
    'BEGIN { printf "%.3f", n * b / s / 1e9 }')
done

ratio() {   # ratio of impl's GB/s to nginx's, or "-"
  if [[ -n ${gbps[nginx]:-} ]]; then
    awk -v a="${gbps[$1]}" -v b="${gbps[nginx]}" 'BEGIN { printf "%.3f", a / b }'
  else
    echo -
  fi
}

printf '\n'
((runs > 1)) && printf 'medians of %d runs\n' "$runs"
printf '%-10s %8s %12s %9s %8s %9s %8s %8s\n' \
  impl clients bytes seconds GB/s ratio srv_cpu cli_cpu
for impl in "${impls[@]}"; do
  printf '%-10s %8d %12d %9.3f %8.3f %9s %8.2f %8.2f\n' \
    "$impl" "$clients" "$bytes" "${med_s[$impl]}" "${gbps[$impl]}" "$(ratio "$impl")" \
    "${med_srv[$impl]}" "${med_cli[$impl]}"
done
printf '(ratio: GB/s over nginx; srv_cpu, cli_cpu: CPU-seconds of the server and of the curl clients during the run, out of %d cores x seconds)\n' "$NCPU"
if [[ -n $up_list ]]; then
  printf '(streamerd upload took%s s; still live once all clients were launched:%s)\n' "$up_list" "$live_list"
fi

if ((json)); then
  for impl in "${impls[@]}"; do
    r=$(ratio "$impl")
    [[ $r == - ]] && r=null
    printf '{"bench":"http","impl":"%s","clients":%d,"bytes":%d,"seconds":%s,"gbps":%s,"ratio_to_nginx":%s,"runs":%d,"server_cpu_seconds":%s,"client_cpu_seconds":%s,"cores":%d}\n' \
      "$impl" "$clients" "$bytes" "${med_s[$impl]}" "${gbps[$impl]}" "$r" "$runs" \
      "${med_srv[$impl]}" "${med_cli[$impl]}" "$NCPU"
  done
fi
