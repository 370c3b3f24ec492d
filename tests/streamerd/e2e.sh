#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts in single quotes get their values as arguments
# End-to-end tests of streamerd against docs/streamerd.md, driven by curl.
#
#   tests/streamerd/e2e.sh PATH_TO_STREAMERD [TEST_NAME...]
#
# Every test is a function test_NAME below; with no names all run. Each test
# starts its own daemons on random loopback ports (20000-60000, retried on a
# bind error), prints `ok NAME` or `FAIL NAME: why`, and the run closes with
# the line `N passed, N failed` (exit 1 if any failed).
#
# No test sleeps to wait for a condition (only the readiness poll of a fresh
# daemon steps in 0.05 s): live uploads read their body from a fifo the test
# writes, and a test knows a consumer has joined a live stream when the
# consumer's first bytes come out of its pipe (see start_consumer/await_joined).
# Every curl runs under `timeout`, so nothing hangs.
#
# Environment: E2E_VERBOSE=1 prints each failed test's log and the tail of its
# daemons' stderr; E2E_KEEP=1 keeps the temporary directory (daemon logs,
# headers, bodies of every test).
set -euo pipefail

if [[ $# -lt 1 || $1 = -h || $1 = --help ]]; then
  echo "usage: $0 PATH_TO_STREAMERD [TEST_NAME...]" >&2
  exit 2
fi
BIN=$1
shift
[[ $BIN = */* ]] || BIN=./$BIN
if [[ ! -x $BIN ]]; then
  echo "e2e.sh: $BIN is not an executable" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/streamerd-e2e.XXXXXX")
if [[ ${E2E_KEEP:-} = 1 ]]; then
  trap 'echo "# kept $TMP"' EXIT
else
  trap 'rm -rf "$TMP"' EXIT
fi

# ---------------------------------------------------------------------------
# helpers (they run inside a test's subshell)

# fail WHY: ends the current test with that reason.
fail() {
  [[ -e $T/reason ]] || printf '%s\n' "$*" > "$T/reason"
  exit 1
}

# check COND_DESCRIPTION COMMAND...: fail with the description unless the
# command succeeds.
check() {
  local what=$1
  shift
  "$@" || fail "$what"
}

# eq WHAT GOT WANT
eq() {
  [[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"
}

# Processes a test started in the background; killed (with their children) when
# the test ends.
PIDS=()
DAEMONS=()
MOUNTS=()

kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    kill_tree "$child"
  done
  kill -KILL "$1" 2>/dev/null || true
}

cleanup_test() {
  local pid rc
  for pid in "${DAEMONS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      if ((rc > 128 && rc != 255)); then
        echo "a daemon died of signal $((rc - 128)) ($(kill -l "$rc" 2>/dev/null || true))" >>"$T/crashed"
      fi
    fi
  done
  for pid in "${PIDS[@]}"; do
    kill_tree "$pid"
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  local m
  for m in "${MOUNTS[@]}"; do
    umount -l "$m" 2>/dev/null || true
  done
}

# spawn COMMAND...: runs the command in the background without the test's
# extra file descriptors (a consumer holding the upload fifo's write end open
# would keep the upload from ever ending); sets SPAWNED.
spawn() {
  (
    exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- </dev/null
    exec "$@"
  ) &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}

# c CURL_ARGS...: curl, bounded in time, silent but for errors.
c() {
  timeout 30 curl -sS "$@"
}

url() {
  printf 'http://127.0.0.1:%s%s' "$PORT" "$1"
}

# start_daemon [OPTIONS...]: starts streamerd on a free random port with
# OPTIONS (add --no-demo yourself), waits until /metrics answers; sets PORT,
# DPID, DLOG. Standard input comes from $DSTDIN (default /dev/null).
DAEMON_N=0
start_daemon() {
  local code i
  for _ in 1 2 3 4 5 6 7 8; do
    DAEMON_N=$((DAEMON_N + 1))
    PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
    DLOG=$T/daemon.$DAEMON_N.err
    (exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
     # STREAMERD_ARGS (e.g. "--storage memory") goes before the test's own
     # arguments, so a test that sets the same option wins.
     # shellcheck disable=SC2086
     exec "$BIN" --listen "127.0.0.1:$PORT" ${STREAMERD_ARGS:-} "$@" \
       <"${DSTDIN:-/dev/null}" >"$T/daemon.$DAEMON_N.out" 2>"$DLOG") &
    DPID=$!
    PIDS+=("$DPID")
    DAEMONS+=("$DPID")
    for ((i = 0; i < 200; i++)); do
      if ! kill -0 "$DPID" 2>/dev/null; then
        break
      fi
      code=$(timeout 2 curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
        "http://127.0.0.1:$PORT/metrics" || true)
      if [[ $code = 200 ]]; then
        kill -0 "$DPID" 2>/dev/null || break # someone else's server
        return 0
      fi
      sleep 0.05
    done
    if kill -0 "$DPID" 2>/dev/null; then
      fail "daemon (port $PORT) not ready after 10 s: $(tail -n 3 "$DLOG" | tr '\n' ' ')"
    fi
    wait "$DPID" 2>/dev/null || true
    if grep -qiE 'bind|in use|EADDRINUSE' "$DLOG"; then
      continue # port taken: try another one
    fi
    fail "daemon exited at start: $(tail -n 5 "$DLOG" | tr '\n' ' ')"
  done
  fail "no free port found in 8 tries"
}

# alive: the current daemon still runs and answers /metrics.
alive() {
  kill -0 "$DPID" 2>/dev/null || fail "daemon died: $(tail -n 5 "$DLOG" | tr '\n' ' ')"
  local code
  code=$(c -o /dev/null -w '%{http_code}' "$(url /metrics)" || true)
  eq "GET /metrics after that" "$code" 200
}

# hdr FILE NAME: value of header NAME in a curl -D dump (of the last
# response in it), "" if absent.
hdr() {
  tr -d '\r' <"$1" | awk -v n="$2" '
    /^HTTP\// { v = "" }
    { i = index($0, ":") }
    i > 0 && tolower(substr($0, 1, i - 1)) == tolower(n) {
      v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
    }
    END { print v }'
}

# status FILE: the status code of the last response in a curl -D dump.
status() {
  tr -d '\r' <"$1" | awk '/^HTTP\// { s = $2 } END { print s }'
}

# size FILE
size() {
  stat -c %s "$1"
}

# bytes FILE FROM COUNT: COUNT bytes of FILE from offset FROM.
bytes() {
  dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none
}

# upload NAME FILE [CURL_ARGS...]: PUT FILE as NAME (curl -T); sets CODE and
# leaves the response body in $T/put.out.
upload() {
  local name=$1 file=$2
  shift 2
  CODE=$(c -T "$file" -o "$T/put.out" -w '%{http_code}' "$@" "$(url "/streams/$name")") ||
    fail "curl -T $file /streams/$name: exit $?"
}

# get PATH OUT [CURL_ARGS...]: GET into OUT, headers into OUT.hdr; sets CODE
# and RC (curl's exit status).
get() {
  local path=$1 out=$2
  shift 2
  RC=0
  CODE=$(c -D "$out.hdr" -o "$out" -w '%{http_code}' "$@" "$(url "$path")") || RC=$?
}

# dechunk FILE: the body of the raw HTTP/1.1 response in FILE (chunked or
# not).
dechunk() {
  perl -0777 -ne '
    my ($h, $b) = split /\r\n\r\n/, $_, 2;
    if ($h =~ /^transfer-encoding:\s*chunked/im) {
      my $out = "";
      while ($b =~ s/\A([0-9a-fA-F]+)[^\r]*\r\n//) {
        my $n = hex $1; last if $n == 0;
        $out .= substr($b, 0, $n); $b = substr($b, $n + 2);
      }
      print $out;
    } else { print $b }' "$1"
}

# -- live uploads and consumers -----------------------------------------------

# start_live_upload NAME: starts `curl -T -` (a chunked PUT) of NAME reading
# the fifo $T/NAME.fifo, whose write end the test holds as fd 3 (write into it
# with feed, end the upload with end_live_upload). Sets UPLOAD_PID; curl's
# exit status goes to $T/NAME.put.rc, the status code to $T/NAME.put.code.
start_live_upload() {
  local name=$1
  shift
  mkfifo "$T/$name.fifo"
  exec 3<>"$T/$name.fifo" # read-write: opening does not block
  (
    # not even this subshell may hold the write end: curl would never see EOF
    exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
    rc=0
    timeout 60 curl -sS -T - -o "$T/$name.put.out" -w '%{http_code}' "$@" \
      "$(url "/streams/$name")" <"$T/$name.fifo" >"$T/$name.put.code" 2>"$T/$name.put.err" || rc=$?
    echo "$rc" >"$T/$name.put.rc"
  ) &
  UPLOAD_PID=$!
  PIDS+=("$UPLOAD_PID")
}

# feed FILE...: writes into the live upload's fifo (fd 3).
feed() {
  timeout 20 cat "$@" >&3 || fail "writing the upload body into the fifo timed out"
}

end_live_upload() {
  exec 3>&-
}

# start_consumer ID PATH FIRST [CURL_ARGS...]: GET PATH in the background into
# $T/ID.out (headers $T/ID.out.hdr, curl's exit status $T/ID.rc); once FIRST
# bytes of the body came out (or the body ended before), ID is written into
# the notify fifo: await_joined waits for that. Sets SPAWNED.
start_consumer() {
  local id=$1 path=$2 first=$3
  shift 3
  spawn bash -c '
    id=$1 first=$2 url=$3 dir=$4; shift 4
    timeout 60 curl -sS -N -D "$dir/$id.out.hdr" "$@" "$url" 2>"$dir/$id.err" |
      { head -c "$first"; echo "$id" >"$dir/notify"; cat; } >"$dir/$id.out"
    echo "${PIPESTATUS[0]}" >"$dir/$id.rc"' _ "$id" "$first" "$(url "$path")" "$T" "$@"
}

open_notify() {
  mkfifo "$T/notify"
  exec 5<>"$T/notify"
}

# await_joined N: waits (at most 20 s each) until N consumers have their first bytes.
await_joined() {
  local n=$1 i
  for ((i = 0; i < n; i++)); do
    read -r -t 20 -u 5 _ || fail "only $i of $n consumers got their first bytes within 20 s"
  done
}

# finish PID: waits for a background process (all are bounded by timeout).
finish() {
  wait "$1" 2>/dev/null || true
}

# consumer_rc ID
consumer_rc() {
  cat "$T/$1.rc" 2>/dev/null || echo "none"
}

# ---------------------------------------------------------------------------
# tests

# 1. An uploaded stream read afterwards, with Content-Length, byte-exact; a
# reader that joins a live upload in the middle gets everything, chunked.
test_late_joiner() {
  start_daemon --no-demo
  head -c 8M /dev/urandom >"$T/a.bin"
  upload a "$T/a.bin"
  eq "PUT /streams/a status" "$CODE" 201
  grep -q 'a: 8388608 bytes' "$T/put.out" ||
    fail "PUT /streams/a body: expected 'a: 8388608 bytes', got '$(head -c 200 "$T/put.out")'"

  get /streams/a "$T/a.out"
  eq "GET /streams/a status" "$CODE" 200
  eq "GET /streams/a curl exit" "$RC" 0
  eq "GET /streams/a Content-Length" "$(hdr "$T/a.out.hdr" Content-Length)" 8388608
  eq "GET /streams/a Transfer-Encoding" "$(hdr "$T/a.out.hdr" Transfer-Encoding)" ""
  eq "GET /streams/a X-Stream-State" "$(hdr "$T/a.out.hdr" X-Stream-State)" ended
  check "GET /streams/a body differs from the upload" cmp -s "$T/a.bin" "$T/a.out"

  # live: half, a reader joins, the other half
  head -c 4M "$T/a.bin" >"$T/h1"
  tail -c +$((4 * 1024 * 1024 + 1)) "$T/a.bin" >"$T/h2"
  open_notify
  start_live_upload b
  feed "$T/h1"
  start_consumer r1 "/streams/b?wait=10" 4194304
  local r1=$SPAWNED
  await_joined 1
  feed "$T/h2"
  end_live_upload
  finish "$r1"
  finish "$UPLOAD_PID"
  eq "live PUT /streams/b curl exit" "$(cat "$T/b.put.rc")" 0
  eq "live PUT /streams/b status" "$(cat "$T/b.put.code")" 201
  eq "GET during the live upload: curl exit" "$(consumer_rc r1)" 0
  eq "GET during the live upload: status" "$(status "$T/r1.out.hdr")" 200
  eq "GET during the live upload: Transfer-Encoding" "$(hdr "$T/r1.out.hdr" Transfer-Encoding)" chunked
  eq "GET during the live upload: X-Stream-State" "$(hdr "$T/r1.out.hdr" X-Stream-State)" live
  eq "GET during the live upload: Content-Length" "$(hdr "$T/r1.out.hdr" Content-Length)" ""
  check "GET during the live upload: body ($(size "$T/r1.out") bytes) differs from the upload (8388608)" \
    cmp -s "$T/a.bin" "$T/r1.out"
  alive
}

# 2. Ranges on live and ended streams; 416; resuming a cut download.
test_range_resume() {
  start_daemon --no-demo
  local total=1048576 h=524288
  head -c "$total" /dev/urandom >"$T/r.bin"
  head -c "$h" "$T/r.bin" >"$T/h1"
  tail -c +$((h + 1)) "$T/r.bin" >"$T/h2"

  # live stream: bytes=100- follows it, bytes=H+10-H+19 waits for its bytes,
  # bytes=-1000 waits for the end
  open_notify
  start_live_upload r
  feed "$T/h1"
  start_consumer tail "/streams/r?wait=10" 1000 -H 'Range: bytes=100-'
  local p_tail=$SPAWNED
  await_joined 1
  start_consumer mid /streams/r 10 --max-time 15 -H "Range: bytes=$((h + 10))-$((h + 19))"
  local p_mid=$SPAWNED
  start_consumer last /streams/r 1000 -H 'Range: bytes=-1000'
  local p_last=$SPAWNED
  feed "$T/h2"
  await_joined 1 # one of mid and last (mid can end while the stream is live)
  finish "$p_mid"
  eq "live Range: bytes=$((h + 10))-$((h + 19)): curl exit" "$(consumer_rc mid)" 0
  eq "live Range: bytes=$((h + 10))-$((h + 19)): status" "$(status "$T/mid.out.hdr")" 206
  eq "live Range: bytes=$((h + 10))-$((h + 19)): Content-Range" "$(hdr "$T/mid.out.hdr" Content-Range)" \
    "bytes $((h + 10))-$((h + 19))/*"
  bytes "$T/r.bin" $((h + 10)) 10 >"$T/mid.want"
  check "live Range: bytes=$((h + 10))-$((h + 19)): wrong body" cmp -s "$T/mid.want" "$T/mid.out"
  end_live_upload
  await_joined 1
  finish "$p_tail"
  finish "$p_last"
  finish "$UPLOAD_PID"
  eq "live PUT status" "$(cat "$T/r.put.code")" 201
  eq "live Range: bytes=100-: curl exit" "$(consumer_rc tail)" 0
  eq "live Range: bytes=100-: status" "$(status "$T/tail.out.hdr")" 206
  eq "live Range: bytes=100-: Content-Range" "$(hdr "$T/tail.out.hdr" Content-Range)" 'bytes 100-*/*'
  bytes "$T/r.bin" 100 $total >"$T/tail.want"
  check "live Range: bytes=100-: wrong body ($(size "$T/tail.out") bytes)" cmp -s "$T/tail.want" "$T/tail.out"
  eq "Range: bytes=-1000 (sent while live): curl exit" "$(consumer_rc last)" 0
  eq "Range: bytes=-1000 (sent while live): status" "$(status "$T/last.out.hdr")" 206
  eq "Range: bytes=-1000 (sent while live): Content-Range" "$(hdr "$T/last.out.hdr" Content-Range)" \
    "bytes $((total - 1000))-$((total - 1))/$total"
  bytes "$T/r.bin" $((total - 1000)) 1000 >"$T/last.want"
  check "Range: bytes=-1000 (sent while live): wrong body" cmp -s "$T/last.want" "$T/last.out"

  # ended stream
  get /streams/r "$T/e1" -H 'Range: bytes=100-199'
  eq "Range: bytes=100-199 status" "$CODE" 206
  eq "Range: bytes=100-199 Content-Range" "$(hdr "$T/e1.hdr" Content-Range)" "bytes 100-199/$total"
  eq "Range: bytes=100-199 Content-Length" "$(hdr "$T/e1.hdr" Content-Length)" 100
  bytes "$T/r.bin" 100 100 >"$T/e1.want"
  check "Range: bytes=100-199: wrong body ($(size "$T/e1") bytes)" cmp -s "$T/e1.want" "$T/e1"

  get /streams/r "$T/e2" -H 'Range: bytes=1000000-'
  eq "Range: bytes=1000000- status" "$CODE" 206
  eq "Range: bytes=1000000- Content-Range" "$(hdr "$T/e2.hdr" Content-Range)" \
    "bytes 1000000-$((total - 1))/$total"
  bytes "$T/r.bin" 1000000 $total >"$T/e2.want"
  check "Range: bytes=1000000-: wrong body ($(size "$T/e2") bytes)" cmp -s "$T/e2.want" "$T/e2"

  get /streams/r "$T/e3" -H "Range: bytes=$total-"
  eq "Range: bytes=$total- (past the end) status" "$CODE" 416
  eq "Range: bytes=$total- Content-Range" "$(hdr "$T/e3.hdr" Content-Range)" "bytes */$total"

  get /streams/r "$T/e4" -H 'Range: bytes=-10'
  eq "Range: bytes=-10 status" "$CODE" 206
  bytes "$T/r.bin" $((total - 10)) 10 >"$T/e4.want"
  check "Range: bytes=-10: wrong body" cmp -s "$T/e4.want" "$T/e4"

  # resume: the first K bytes, then curl -C - on the partial file
  local k=300001
  get /streams/r "$T/part" -r 0-$((k - 1))
  eq "curl -r 0-$((k - 1)) status" "$CODE" 206
  eq "curl -r 0-$((k - 1)) size" "$(size "$T/part")" $k
  RC=0
  CODE=$(c -C - -o "$T/part" -w '%{http_code}' "$(url /streams/r)") || RC=$?
  eq "curl -C - status" "$CODE" 206
  eq "curl -C - exit" "$RC" 0
  check "curl -r 0-$((k - 1)) + curl -C -: the result differs from the upload" cmp -s "$T/r.bin" "$T/part"
  alive
}

# 3. 100 readers of one live upload get the same bytes.
test_concurrent_100() {
  start_daemon --no-demo --max-readers 100
  local total=2097152 h=1048576 n=100 i
  head -c "$total" /dev/urandom >"$T/c.bin"
  head -c "$h" "$T/c.bin" >"$T/h1"
  tail -c +$((h + 1)) "$T/c.bin" >"$T/h2"
  local want
  want=$(sha256sum <"$T/c.bin" | cut -d' ' -f1)
  open_notify
  start_live_upload c
  feed "$T/h1"
  local readers=()
  for ((i = 1; i <= n; i++)); do
    spawn bash -c '
      i=$1 first=$2 url=$3 dir=$4
      timeout 60 curl -sS -N "$url" 2>"$dir/c$i.err" |
        { head -c "$first"; echo "$i" >"$dir/notify"; cat; } | sha256sum >"$dir/c$i.sum"
      echo "${PIPESTATUS[0]}" >"$dir/c$i.rc"' _ "$i" 4096 "$(url "/streams/c?wait=10")" "$T"
    readers+=("$SPAWNED")
  done
  await_joined "$n"
  feed "$T/h2"
  end_live_upload
  for i in "${readers[@]}"; do
    finish "$i"
  done
  finish "$UPLOAD_PID"
  eq "live PUT status" "$(cat "$T/c.put.code")" 201
  local bad=0 first_bad=""
  for ((i = 1; i <= n; i++)); do
    if [[ $(consumer_rc "c$i") != 0 || $(cut -d' ' -f1 "$T/c$i.sum") != "$want" ]]; then
      bad=$((bad + 1))
      [[ -n $first_bad ]] || first_bad="reader $i: curl exit $(consumer_rc "c$i") $(head -c 200 "$T/c$i.err")"
    fi
  done
  [[ $bad = 0 ]] || fail "$bad of $n readers did not get the upload's sha256 (e.g. $first_bad)"
  alive
}

# 4. A producer that breaks off truncates every consumer's response.
test_producer_fails() {
  start_daemon --no-demo
  local total=1048576 h=300000
  head -c "$total" /dev/urandom >"$T/f.bin"
  head -c "$h" "$T/f.bin" >"$T/h1"
  open_notify

  # (a) a chunked upload whose curl is killed mid-way
  start_live_upload f
  feed "$T/h1"
  start_consumer f1 "/streams/f?wait=10" 1000
  local p1=$SPAWNED
  start_consumer f2 "/streams/f?wait=10" 1000
  local p2=$SPAWNED
  start_consumer f3 "/streams/f?wait=10" 1000 -H 'Range: bytes=10-'
  local p3=$SPAWNED
  await_joined 3
  kill -TERM "$(pgrep -P "$UPLOAD_PID" timeout)" # timeout passes it on to curl
  finish "$UPLOAD_PID"
  end_live_upload
  finish "$p1"
  finish "$p2"
  finish "$p3"
  local id
  for id in f1 f2 f3; do
    local rc got
    rc=$(consumer_rc $id)
    got=$(size "$T/$id.out")
    [[ $rc != 0 ]] || fail "consumer $id of a chunked upload killed mid-way: curl exit 0 (expected 18), $got bytes"
    [[ $rc = 18 || $rc = 56 ]] ||
      fail "consumer $id of a chunked upload killed mid-way: curl exit $rc (expected 18): $(head -c 200 "$T/$id.err")"
    local from=0
    [[ $id != f3 ]] || from=10
    ((got < total - from)) || fail "consumer $id got $got bytes, not a strict prefix"
    bytes "$T/f.bin" $from "$got" >"$T/$id.want"
    check "consumer $id: its $got bytes are not a prefix of what was sent" cmp -s "$T/$id.want" "$T/$id.out"
  done
  alive

  # (b) an upload with a Content-Length larger than its body
  mkfifo "$T/g.fifo"
  exec 3<>"$T/g.fifo"
  spawn bash -c '
    timeout 60 curl -sS -T - -H "Content-Length: $1" -H "Transfer-Encoding:" -o /dev/null "$2" <"$3" 2>/dev/null' \
    _ "$total" "$(url /streams/g)" "$T/g.fifo"
  local up=$SPAWNED
  # spawn closed fd 3 in the child, but bash -c reopens the fifo by name
  feed "$T/h1"
  start_consumer g1 "/streams/g?wait=10" 1000
  local pg=$SPAWNED
  await_joined 1
  exec 3>&- # curl reads EOF with bytes still owed, and waits; kill it
  kill_tree "$up"
  finish "$up"
  finish "$pg"
  rc=$(consumer_rc g1)
  got=$(size "$T/g1.out")
  [[ $rc != 0 ]] || fail "consumer of an upload short of its Content-Length: curl exit 0 (expected 18), $got bytes"
  [[ $rc = 18 || $rc = 56 ]] ||
    fail "consumer of an upload short of its Content-Length: curl exit $rc (expected 18): $(head -c 200 "$T/g1.err")"
  ((got <= h)) || fail "consumer of an upload short of its Content-Length got $got bytes, more than the $h sent"
  bytes "$T/f.bin" 0 "$got" >"$T/g1.want"
  check "consumer of an upload short of its Content-Length: its $got bytes are not a prefix of what was sent" \
    cmp -s "$T/g1.want" "$T/g1.out"
  alive
}

# 5. Readers over --max-readers wait --queue-timeout, then get 503.
test_cap_503() {
  start_daemon --no-demo --max-readers 2 --queue-timeout 1 --retry-after 7
  head -c 100000 /dev/urandom >"$T/s.bin"
  head -c 50000 "$T/s.bin" >"$T/h1"
  tail -c +50001 "$T/s.bin" >"$T/h2"
  open_notify
  start_live_upload s
  feed "$T/h1"
  start_consumer s1 "/streams/s?wait=10" 1000
  local p1=$SPAWNED
  start_consumer s2 "/streams/s?wait=10" 1000
  local p2=$SPAWNED
  await_joined 2
  local t
  RC=0
  t=$(c -D "$T/s3.hdr" -o "$T/s3" -w '%{http_code} %{time_total}' "$(url /streams/s)") || RC=$?
  eq "3rd GET (over --max-readers 2) status" "${t% *}" 503
  eq "3rd GET Retry-After" "$(hdr "$T/s3.hdr" Retry-After)" 7
  awk -v t="${t#* }" 'BEGIN { exit !(t >= 0.8 && t < 5) }' ||
    fail "3rd GET answered 503 after ${t#* } s, expected about 1 s (--queue-timeout 1)"
  # a reader that goes away frees its slot
  kill_tree "$p1"
  start_consumer s4 /streams/s 1000
  local p4=$SPAWNED
  await_joined 1
  feed "$T/h2"
  end_live_upload
  finish "$p2"
  finish "$p4"
  finish "$UPLOAD_PID"
  eq "2nd GET curl exit" "$(consumer_rc s2)" 0
  check "2nd GET: wrong body" cmp -s "$T/s.bin" "$T/s2.out"
  eq "GET after a reader left: status" "$(status "$T/s4.out.hdr")" 200
  eq "GET after a reader left: curl exit" "$(consumer_rc s4)" 0
  check "GET after a reader left: wrong body" cmp -s "$T/s.bin" "$T/s4.out"
  alive
}

# 6. Bad requests get their 4xx, and the daemon lives on.
test_bad_requests() {
  start_daemon --no-demo
  printf 'some bytes\n' >"$T/x.bin"
  upload x "$T/x.bin"
  eq "PUT /streams/x status" "$CODE" 201

  local long64 long65
  long64=$(printf 'n%.0s' {1..64})
  long65=$(printf 'n%.0s' {1..65})
  local p
  for p in '/streams/bad%20name' '/streams/..' '/streams/.hidden' "/streams/$long65" '/streams/a%2Fb'; do
    get "$p" "$T/bad" --path-as-is
    eq "GET $p status" "$CODE" 400
  done
  CODE=$(c -o /dev/null -w '%{http_code}' -T "$T/x.bin" --path-as-is "$(url '/streams/bad%20name')")
  eq "PUT /streams/bad%20name status" "$CODE" 400
  get "/streams/$long64" "$T/bad"
  eq "GET of an unknown 64-character name status" "$CODE" 404

  get /streams/x "$T/bad" -H 'Range: bytes=abc'
  eq "Range: bytes=abc status" "$CODE" 416
  eq "Range: bytes=abc Content-Range" "$(hdr "$T/bad.hdr" Content-Range)" \
    "bytes */11"
  # Several ranges, or a unit other than bytes: the Range is ignored (RFC
  # 9110 allows it; nginx does the same for other units): the whole body.
  get /streams/x "$T/bad" -H 'Range: bytes=0-1,4-5'
  eq "Range: bytes=0-1,4-5 (several ranges) status" "$CODE" 200
  check "Range: bytes=0-1,4-5: the whole body" cmp -s "$T/x.bin" "$T/bad"
  get /streams/x "$T/bad" -H 'Range: items=0-1'
  eq "Range: items=0-1 status" "$CODE" 200
  get /streams/nosuch "$T/bad" -H 'Range: bytes=abc'
  eq "a malformed Range on a missing stream status" "$CODE" 404

  get /streams/x "$T/bad" -X PATCH
  eq "PATCH /streams/x status" "$CODE" 405
  [[ -n $(hdr "$T/bad.hdr" Allow) ]] || fail "PATCH /streams/x: 405 without an Allow header"

  get /nope "$T/bad"
  eq "GET /nope status" "$CODE" 404
  get /streams "$T/bad"
  eq "GET /streams status" "$CODE" 404

  local big
  big=$(head -c 20480 /dev/zero | tr '\0' a)
  get /streams/x "$T/bad" -H "X-Big: $big"
  eq "GET with a 20 KiB header status (curl exit $RC)" "$CODE" 431
  alive

  upload x "$T/x.bin"
  eq "PUT /streams/x again (name in use) status" "$CODE" 409

  get /streams/unknown "$T/bad"
  eq "GET /streams/unknown status" "$CODE" 404
  local t
  t=$(c -o /dev/null -w '%{http_code} %{time_total}' "$(url '/streams/unknown?wait=1')")
  eq "GET /streams/unknown?wait=1 status" "${t% *}" 404
  awk -v t="${t#* }" 'BEGIN { exit !(t >= 0.8 && t < 5) }' ||
    fail "GET /streams/unknown?wait=1 answered after ${t#* } s, expected about 1 s"

  # ?wait=5, then the upload: the GET is written on its own connection
  # (connected and sent before the upload starts), read after it
  exec 7<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /streams/later?wait=5 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&7
  upload later "$T/x.bin"
  eq "PUT /streams/later status" "$CODE" 201
  timeout 10 cat <&7 >"$T/w.raw" || fail "GET /streams/later?wait=5 (Connection: close): no complete answer within 10 s"
  exec 7<&-
  eq "GET /streams/later?wait=5 sent before PUT /streams/later: status" \
    "$(head -n 1 "$T/w.raw" | cut -d' ' -f2)" 200
  dechunk "$T/w.raw" >"$T/w.out"
  check "GET /streams/later?wait=5: wrong body: $(head -c 100 "$T/w.out")" cmp -s "$T/x.bin" "$T/w.out"
  alive
}

# 7. HEAD gives the GET's headers and no body.
test_head() {
  start_daemon --no-demo
  head -c 123457 /dev/urandom >"$T/h.bin"
  upload h "$T/h.bin"
  eq "PUT status" "$CODE" 201
  get /streams/h "$T/g"
  eq "GET status" "$CODE" 200
  local f
  for f in 'Content-Type:application/octet-stream' 'Accept-Ranges:bytes' 'X-Stream-State:ended' \
    'Cache-Control:no-store' 'Content-Length:123457'; do
    eq "GET header ${f%%:*}" "$(hdr "$T/g.hdr" "${f%%:*}")" "${f#*:}"
  done
  CODE=$(c -I -D "$T/h.hdr" -o /dev/null -w '%{http_code}' "$(url /streams/h)")
  eq "HEAD status" "$CODE" 200
  for f in Content-Length Content-Type Accept-Ranges X-Stream-State Cache-Control; do
    eq "HEAD header $f" "$(hdr "$T/h.hdr" $f)" "$(hdr "$T/g.hdr" $f)"
  done
  # no body: the raw bytes after the header block (of a connection that
  # should close, as asked; if it does not, what came within 3 s)
  exec 6<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'HEAD /streams/h HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&6
  timeout 3 cat <&6 >"$T/raw" || echo "note: HEAD with Connection: close: connection still open after 3 s"
  exec 6<&-
  local body
  body=$(perl -0777 -ne 'print /\r\n\r\n(.*)\z/s ? length($1) : "no header end"' "$T/raw")
  eq "bytes after the HEAD response's headers" "$body" 0
  CODE=$(c -I -o /dev/null -w '%{http_code}' "$(url /streams/nope)")
  eq "HEAD of an unknown name status" "$CODE" 404
  alive
}

# 8. /metrics after an upload and a download.
test_metrics() {
  start_daemon --no-demo
  local n=300000
  head -c $n /dev/urandom >"$T/m.bin"
  upload m "$T/m.bin"
  eq "PUT status" "$CODE" 201
  get /streams/m "$T/m.out"
  eq "GET status" "$CODE" 200
  get /metrics "$T/metrics"
  eq "GET /metrics status" "$CODE" 200
  local ct
  ct=$(hdr "$T/metrics.hdr" Content-Type)
  [[ $ct == text/plain* ]] || fail "/metrics Content-Type '$ct', expected text/plain; version=0.0.4"
  # metric NAME: its value (first sample), or fail
  metric() {
    local v
    v=$(awk -v m="$1" '$1 == m { print $2; exit }' "$T/metrics")
    [[ -n $v ]] || fail "/metrics has no sample '$1'"
    printf '%s' "$v"
  }
  atleast() { awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 >= b + 0) }' || fail "$1 is $2, expected >= $3"; }
  local v
  v=$(metric streamerd_streams)
  atleast streamerd_streams "$v" 1
  v=$(metric streamerd_bytes_in_total)
  atleast streamerd_bytes_in_total "$v" $n
  v=$(metric streamerd_bytes_out_total)
  atleast streamerd_bytes_out_total "$v" $n
  metric streamerd_readers >/dev/null
  metric streamerd_parked_requests >/dev/null
  metric 'streamerd_stream_lag_bytes{stream="m"}' >/dev/null
  v=$(metric 'streamerd_stream_bytes{stream="m"}')
  atleast 'streamerd_stream_bytes{stream="m"}' "$v" $n
  metric 'streamerd_stream_readers{stream="m"}' >/dev/null
  grep -q '^streamerd_requests_total{code="201"}' "$T/metrics" ||
    fail "/metrics has no streamerd_requests_total{code=\"201\"}"
  alive
}

# 9. DELETE frees the name at once; a response in progress goes on.
test_delete() {
  start_daemon --no-demo
  head -c 70000 /dev/urandom >"$T/d.bin"
  head -c 40000 /dev/urandom >"$T/d2.bin"
  upload d "$T/d.bin"
  eq "PUT status" "$CODE" 201
  CODE=$(c -X DELETE -o /dev/null -w '%{http_code}' "$(url /streams/d)")
  eq "DELETE /streams/d status" "$CODE" 204
  get /streams/d "$T/g"
  eq "GET after DELETE status" "$CODE" 404
  upload d "$T/d2.bin"
  eq "PUT of the deleted name status" "$CODE" 201
  get /streams/d "$T/g"
  eq "GET of the new stream status" "$CODE" 200
  check "GET of the new stream: wrong body" cmp -s "$T/d2.bin" "$T/g"
  # POST uploads too
  CODE=$(c --data-binary @"$T/d.bin" -o /dev/null -w '%{http_code}' "$(url /streams/p)")
  eq "POST /streams/p status" "$CODE" 201
  get /streams/p "$T/g"
  check "GET of a POSTed stream: wrong body" cmp -s "$T/d.bin" "$T/g"

  # DELETE of a live stream with a reader: the reader gets all of it
  head -c 30000 "$T/d.bin" >"$T/h1"
  tail -c +30001 "$T/d.bin" >"$T/h2"
  open_notify
  start_live_upload l
  feed "$T/h1"
  start_consumer l1 "/streams/l?wait=10" 1000
  local p1=$SPAWNED
  await_joined 1
  CODE=$(c -X DELETE -o /dev/null -w '%{http_code}' "$(url /streams/l)")
  eq "DELETE of a live stream status" "$CODE" 204
  get /streams/l "$T/g"
  eq "GET of a deleted live stream status" "$CODE" 404
  feed "$T/h2"
  end_live_upload
  finish "$p1"
  finish "$UPLOAD_PID"
  eq "reader of a deleted live stream: curl exit" "$(consumer_rc l1)" 0
  check "reader of a deleted live stream: wrong body ($(size "$T/l1.out") bytes)" cmp -s "$T/d.bin" "$T/l1.out"
  alive
}

# wait_exit PID SECONDS: waits for a daemon to exit; sets EXIT_RC and
# EXIT_SECONDS, fails if it is still running after SECONDS.
wait_exit() {
  local pid=$1 secs=$2 t0 t1
  t0=$(date +%s.%N)
  timeout "$secs" tail -s 0.05 --pid="$pid" -f /dev/null ||
    fail "daemon still running $secs s after SIGTERM"
  t1=$(date +%s.%N)
  EXIT_RC=0
  wait "$pid" || EXIT_RC=$?
  EXIT_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# 10. SIGTERM: drain, exit 0.
test_sigterm() {
  start_daemon --no-demo --drain-timeout 2
  head -c 10000 /dev/urandom >"$T/t.bin"
  upload t "$T/t.bin"
  eq "PUT status" "$CODE" 201
  get /streams/t "$T/g"
  eq "GET status" "$CODE" 200
  local before
  before=$(size "$DLOG")
  kill -TERM "$DPID"
  wait_exit "$DPID" 5
  eq "exit status after SIGTERM (idle daemon, after ${EXIT_SECONDS} s)" "$EXIT_RC" 0
  (($(size "$DLOG") > before)) || fail "nothing logged on stderr after SIGTERM"

  # with a response that cannot finish (a live stream): exit 0 after about
  # --drain-timeout, the response truncated
  start_daemon --no-demo --drain-timeout 2
  head -c 10000 "$T/t.bin" >"$T/h1"
  open_notify
  start_live_upload live
  feed "$T/h1"
  start_consumer v1 "/streams/live?wait=10" 1000
  local p1=$SPAWNED
  await_joined 1
  kill -TERM "$DPID"
  wait_exit "$DPID" 6
  eq "exit status after SIGTERM with an open live response (after ${EXIT_SECONDS} s)" "$EXIT_RC" 0
  awk -v t="$EXIT_SECONDS" 'BEGIN { exit !(t >= 1.5) }' ||
    fail "daemon exited ${EXIT_SECONDS} s after SIGTERM, before --drain-timeout 2 with a response still open"
  finish "$p1"
  local rc
  rc=$(consumer_rc v1)
  [[ $rc != 0 ]] || fail "reader of a live stream cut by the drain: curl exit 0, expected a truncated transfer"
  end_live_upload
}

# 11. --help, --version, an unknown option.
test_cli() {
  local rc=0
  timeout 5 "$BIN" --help >"$T/help.out" 2>"$T/help.err" || rc=$?
  eq "--help exit status" "$rc" 0
  [[ -s $T/help.out ]] || fail "--help printed nothing on stdout"
  grep -q -- --listen "$T/help.out" || fail "--help does not mention --listen"
  rc=0
  timeout 5 "$BIN" --version >"$T/version.out" 2>"$T/version.err" || rc=$?
  eq "--version exit status" "$rc" 0
  [[ -s $T/version.out ]] || fail "--version printed nothing on stdout"
  rc=0
  timeout 5 "$BIN" --no-such-option >"$T/bad.out" 2>"$T/bad.err" || rc=$?
  [[ $rc != 0 && $rc != 124 ]] || fail "--no-such-option exit status $rc, expected non-zero (and no hang)"
  [[ -s $T/bad.err ]] || fail "--no-such-option printed nothing on stderr"
}

# 12. --source FILE, --exec COMMAND, --source NAME=-.
test_sources() {
  head -c 500000 /dev/urandom >"$T/file.bin"
  head -c 300000 /dev/urandom >"$T/stdin.bin"
  DSTDIN=$T/stdin.bin start_daemon --no-demo --source "f=$T/file.bin" --exec 'c=printf hello' --source s=-
  get /streams/f "$T/f"
  eq "GET /streams/f status" "$CODE" 200
  check "GET /streams/f (--source f=FILE): wrong body ($(size "$T/f") bytes)" cmp -s "$T/file.bin" "$T/f"
  get /streams/c "$T/c"
  eq "GET /streams/c status" "$CODE" 200
  eq "GET /streams/c (--exec c='printf hello') body" "$(cat "$T/c")" hello
  get /streams/s "$T/s"
  eq "GET /streams/s status" "$CODE" 200
  check "GET /streams/s (--source s=- from a file): wrong body ($(size "$T/s") bytes)" \
    cmp -s "$T/stdin.bin" "$T/s"
  alive
}

# 13. The demo stream, numbered lines as they come.
test_demo() {
  start_daemon
  local rc=0
  timeout 10 curl -sS -N "$(url /streams/demo)" 2>/dev/null | head -n 3 >"$T/demo" || rc=$?
  eq "lines read from /streams/demo" "$(wc -l <"$T/demo")" 3
  local l1 l2
  l1=$(sed -n 1p "$T/demo")
  l2=$(sed -n 2p "$T/demo")
  [[ $l1 =~ [0-9] && $l2 =~ [0-9] && $l1 != "$l2" ]] ||
    fail "demo lines are not numbered lines: '$l1' '$l2'"
  alive
}

# 14. --storage file: the same bytes, through a stream file.
test_storage_file() {
  mkdir "$T/files"
  start_daemon --no-demo --storage file --file-dir "$T/files"
  head -c 3M /dev/urandom >"$T/sf.bin"
  upload sf "$T/sf.bin"
  eq "PUT status" "$CODE" 201
  get /streams/sf "$T/g"
  eq "GET status" "$CODE" 200
  check "GET of a file-backed stream: wrong body" cmp -s "$T/sf.bin" "$T/g"
  get /streams/sf "$T/g2" -H 'Range: bytes=1000000-1000099'
  eq "Range on a file-backed stream: status" "$CODE" 206
  bytes "$T/sf.bin" 1000000 100 >"$T/want"
  check "Range on a file-backed stream: wrong body" cmp -s "$T/want" "$T/g2"
  alive
}

# 15. A full disk fails the stream being written (its uploader gets a 500,
# its readers a truncated body), and only that stream: the daemon serves on.
# Needs a tmpfs of 1 MiB (root); skipped where it cannot be mounted.
test_disk_full() {
  local dir=$T/tiny code i
  mkdir "$dir"
  if ! mount -t tmpfs -o size=1m tmpfs "$dir" 2>/dev/null; then
    echo "# disk_full: cannot mount a tmpfs here (needs root): skipped" >&2
    return 0
  fi
  MOUNTS+=("$dir")
  start_daemon --no-demo --storage file --file-dir "$dir"
  head -c 3M /dev/urandom >"$T/big.bin"
  code=$(c -T "$T/big.bin" -o "$T/put.out" -w '%{http_code}' "$(url /streams/big)" || true)
  [[ $code = 500 || $code = 000 ]] ||
    fail "PUT of 3 MiB onto a 1 MiB disk: status $code, expected 500 (or the connection cut)"
  get /streams/big "$T/big.out"
  eq "GET of the stream the full disk failed: status" "$CODE" 200
  eq "GET of the stream the full disk failed: curl exit (truncated)" "$RC" 18
  eq "X-Stream-State" "$(hdr "$T/big.out.hdr" X-Stream-State)" failed
  alive
  CODE=$(c -o /dev/null -w '%{http_code}' -X DELETE "$(url /streams/big)")
  eq "DELETE of the failed stream" "$CODE" 204
  # Its file goes once nothing holds the stream; then there is room again.
  printf 'small\n' >"$T/small.bin"
  for ((i = 0; i < 50; i++)); do
    code=$(c -T "$T/small.bin" -o /dev/null -w '%{http_code}' "$(url "/streams/s$i")" || true)
    [[ $code = 201 ]] && break
  done
  eq "a small upload once the space is back" "$code" 201
  alive
}

ALL_TESTS=(late_joiner range_resume concurrent_100 producer_fails cap_503 bad_requests head metrics
  delete sigterm cli sources demo storage_file disk_full)

# ---------------------------------------------------------------------------
# runner

on_err() {
  [[ -e $T/reason ]] || printf 'line %s: `%s` exited %s\n' "$2" "$3" "$1" >"$T/reason"
}

tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=("${ALL_TESTS[@]}")
passed=0
failed=0
for name in "${tests[@]}"; do
  if ! declare -F "test_$name" >/dev/null; then
    echo "FAIL $name: no such test (tests: ${ALL_TESTS[*]})"
    failed=$((failed + 1))
    continue
  fi
  T=$TMP/$name
  mkdir -p "$T"
  set +e
  (
    set -eE
    trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR
    trap cleanup_test EXIT
    "test_$name"
  ) >"$T/log" 2>&1
  rc=$?
  set -e
  if [[ $rc = 0 ]]; then
    echo "ok $name"
    passed=$((passed + 1))
  else
    why=$(head -n 1 "$T/reason" 2>/dev/null || true)
    crash=""
    [[ ! -e $T/crashed ]] || crash=" [$(head -n 1 "$T/crashed")]"
    echo "FAIL $name: ${why:-exit status $rc}$crash"
    failed=$((failed + 1))
    if [[ ${E2E_VERBOSE:-} = 1 ]]; then
      sed 's/^/#   /' "$T/log"
      for f in "$T"/daemon.*.err; do
        [[ -e $f ]] || continue
        echo "#   -- $(basename "$f") (tail)"
        tail -n 15 "$f" | sed 's/^/#   /'
      done
    fi
  fi
done
echo "$passed passed, $failed failed"
[[ $failed = 0 ]]
