#!/usr/bin/env bash
# streamerd relays across real network boundaries on one machine: network
# namespaces joined by veth pairs (docs/relays.md, "Tests").
#
#   tests/streamerd/relay_netns.sh PATH_TO_STREAMERD
#
# Four namespaces: an origin (O), two relays (R1, R2) and the clients (C):
#
#   C (uploader) ---- O (origin :8080) ---- R1 (relay :8080) ---- C (30 clients)
#                                      \--- R2 (relay :8080) ---- C (30 clients)
#
# 1. A live upload (curl --limit-rate) on the origin; 30 clients on each relay
#    read it from the start. Mid-stream both origin-relay links go down for
#    two seconds (`ip link set down`), then up: the relays time out the
#    connection (--relay-idle-timeout 1), resume with a Range request once
#    the link is back, and every client gets the upload's exact sha256.
# 2. A second live upload, 10 clients on each relay; relay R1 is killed
#    (SIGKILL) mid-stream: its clients' responses end truncated (curl exit
#    status 18 or 56), R2's clients complete with the exact sha256.
#
# Needs root (CI runs as root), iproute2 and curl; exits 77 (CTest skip)
# with a message when namespaces cannot be made. Everything it creates has
# a unique name and is deleted by a trap, whatever happens. Every wait is a
# poll with a deadline; prints `ok NAME` / `FAIL NAME: why` and `N passed, N
# failed`; exits 1 if a check failed.
set -euo pipefail

if [[ $# -ne 1 || $1 = -h || $1 = --help ]]; then
  echo "usage: $0 PATH_TO_STREAMERD" >&2
  exit 2
fi
BIN=$(readlink -f "$1")
if [[ ! -x $BIN ]]; then
  echo "relay_netns.sh: $1 is not an executable" >&2
  exit 2
fi
skip() {
  echo "skip: $*"
  echo "0 passed, 0 failed, 1 skipped"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "network namespaces need root"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v curl >/dev/null || skip "curl is not installed"

# An ASan build is slower: longer deadlines.
SLOW=1
if grep -q __asan_init "$BIN" 2>/dev/null; then
  SLOW=3
fi

ID=$$
NS_O=asrl$ID-o
NS_R1=asrl$ID-r1
NS_R2=asrl$ID-r2
NS_C=asrl$ID-c
TMP=$(mktemp -d "${TMPDIR:-/tmp}/streamerd-netns.XXXXXX")
PIDS=()
CREATED=()

# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local p ns
  for p in "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  for ns in "${CREATED[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ ${KEEP:-} = 1 || ${failed:-0} -gt 0 ]]; then
    echo "# logs in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
# a signal (CTest's timeout, Ctrl-C) still runs the cleanup
trap 'exit 143' TERM
trap 'exit 130' INT

passed=0
failed=0
ok() {
  echo "ok $1"
  passed=$((passed + 1))
}
bad() {
  echo "FAIL $1: $2"
  failed=$((failed + 1))
}
finish() {
  echo "$passed passed, $failed failed"
  ((failed == 0)) || exit 1
  exit 0
}

# -- the namespaces and links ------------------------------------------------

if ! ip netns add "$NS_O" 2>"$TMP/netns.err"; then
  skip "cannot create a network namespace: $(head -c 200 "$TMP/netns.err")"
fi
CREATED+=("$NS_O")
for ns in "$NS_R1" "$NS_R2" "$NS_C"; do
  ip netns add "$ns"
  CREATED+=("$ns")
done
for ns in "${CREATED[@]}"; do
  ip -n "$ns" link set lo up
done

# link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair, a /24 each side
link() {
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3/24" dev "$2"
  ip -n "$4" addr add "$6/24" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
N=10.$((ID % 200 + 20))
link "$NS_C" "u$ID" "$N.5.2" "$NS_O" "o$ID-c" "$N.5.1"
link "$NS_R1" "r1$ID" "$N.1.2" "$NS_O" "o$ID-1" "$N.1.1"
link "$NS_R2" "r2$ID" "$N.2.2" "$NS_O" "o$ID-2" "$N.2.1"
link "$NS_C" "c1$ID" "$N.3.2" "$NS_R1" "r1$ID-c" "$N.3.1"
link "$NS_C" "c2$ID" "$N.4.2" "$NS_R2" "r2$ID-c" "$N.4.1"
ORIGIN=$N.5.1 # as the uploader sees it
R1=$N.3.1
R2=$N.4.1
echo "# namespaces $NS_O $NS_R1 $NS_R2 $NS_C, addresses $N.0.0/16"

# -- the daemons ----------------------------------------------------------------

# daemon NS LABEL ARGS...: starts streamerd on port 8080 of NS
daemon() {
  local ns=$1 label=$2
  shift 2
  ip netns exec "$ns" "$BIN" --listen 0.0.0.0:8080 --no-demo --log-level info \
    --drain-timeout 1 --file-dir "$TMP" "$@" </dev/null >"$TMP/$label.out" 2>"$TMP/$label.log" &
  PIDS+=($!)
  eval "PID_$label=$!"
}

# in NS CMD...: runs CMD in NS
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# poll SECONDS WHAT CMD...: runs CMD every 50 ms until it succeeds; false
# after SECONDS (times SLOW)
poll() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds * SLOW))
  while ! "$@" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      bad "$what" "not within $((seconds * SLOW)) s"
      return 1
    fi
    sleep 0.05 # poll step
  done
}

# shellcheck disable=SC2317 # called through poll
serving() {
  [[ $(in_ns "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$2:8080/metrics") = 200 ]]
}

# relay_offset NS NAME: the relay's streamerd_relay_offset_bytes of NAME
relay_offset() {
  in_ns "$1" curl -s --max-time 2 "http://127.0.0.1:8080/metrics" |
    awk -v n="stream=\"$2\"" 'index($0, "streamerd_relay_offset_bytes{") == 1 && index($0, n) { print $2 }'
}

# shellcheck disable=SC2317 # called through poll
offset_at_least() {
  local v
  v=$(relay_offset "$1" "$2")
  [[ -n $v ]] && ((v >= $3))
}

RELAY_ARGS=(--relay-idle-timeout 1 --relay-backoff-ms 100 --relay-backoff-max-ms 1000
  --relay-retries 30)
daemon "$NS_O" origin
daemon "$NS_R1" r1 --relay "live=http://$N.1.1:8080/streams/up" \
  --relay "live2=http://$N.1.1:8080/streams/up2" "${RELAY_ARGS[@]}"
daemon "$NS_R2" r2 --relay "live=http://$N.2.1:8080/streams/up" \
  --relay "live2=http://$N.2.1:8080/streams/up2" "${RELAY_ARGS[@]}"
poll 15 origin_start serving "$NS_C" "$ORIGIN" || finish
poll 15 relay1_start serving "$NS_C" "$R1" || finish
poll 15 relay2_start serving "$NS_C" "$R2" || finish
ok daemons_start

# -- 1: 30 clients per relay, both origin links down for two seconds ----------

SIZE=$((12 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$TMP/up.bin"
WANT=$(sha256sum <"$TMP/up.bin" | cut -d' ' -f1)
in_ns "$NS_C" curl -sS --max-time $((120 * SLOW)) --limit-rate 3M -T "$TMP/up.bin" \
  -o "$TMP/up.put" -w '%{http_code}' "http://$ORIGIN:8080/streams/up" >"$TMP/up.code" 2>&1 &
UPLOAD=$!
PIDS+=("$UPLOAD")
poll 20 first_bytes offset_at_least "$NS_R1" live 1 || finish
poll 20 first_bytes offset_at_least "$NS_R2" live 1 || finish

# clients NAME COUNT RELAY_ADDR TAG: COUNT curls in NS_C, each writes its
# body's sha256 and curl's exit status
clients() {
  local name=$1 count=$2 addr=$3 tag=$4 i
  for ((i = 0; i < count; i++)); do
    (
      rc=0
      in_ns "$NS_C" curl -sS --max-time $((120 * SLOW)) -o "$TMP/$tag.$i.body" \
        "http://$addr:8080/streams/$name" 2>"$TMP/$tag.$i.err" || rc=$?
      echo "$rc $(sha256sum <"$TMP/$tag.$i.body" | cut -d' ' -f1) $(stat -c %s "$TMP/$tag.$i.body")" \
        >"$TMP/$tag.$i.res"
      rm -f "$TMP/$tag.$i.body"
    ) &
    PIDS+=($!)
  done
}
clients live 30 "$R1" a1
clients live 30 "$R2" a2

poll 30 quarter_relayed offset_at_least "$NS_R1" live $((SIZE / 4)) || finish
before1=$(relay_offset "$NS_R1" live)
ip -n "$NS_O" link set "o$ID-1" down
ip -n "$NS_O" link set "o$ID-2" down
down_at=$SECONDS
# two seconds down: bounded by the clock, not a condition to wait for
while ((SECONDS - down_at < 2)); do
  sleep 0.1
done
ip -n "$NS_O" link set "o$ID-1" up
ip -n "$NS_O" link set "o$ID-2" up
echo "# links down for ~2 s at relay 1's byte $before1"

# every process of this stage ends within its curl --max-time
wait_clients() {
  local tag=$1 count=$2 i
  local deadline=$((SECONDS + 150 * SLOW))
  for ((i = 0; i < count; i++)); do
    while [[ ! -s $TMP/$tag.$i.res ]]; do
      if ((SECONDS > deadline)); then
        return 1
      fi
      sleep 0.1 # poll step
    done
  done
}
wait_clients a1 30 || bad clients "relay 1's clients not done in time"
wait_clients a2 30 || bad clients "relay 2's clients not done in time"
wait "$UPLOAD" || true
if [[ $(cat "$TMP/up.code") != 201 ]]; then
  bad upload "PUT answered '$(cat "$TMP/up.code")'"
fi

check_exact() {
  local tag=$1 count=$2 what=$3 i good=0 line
  for ((i = 0; i < count; i++)); do
    line=$(cat "$TMP/$tag.$i.res" 2>/dev/null || echo "none")
    if [[ $line = "0 $WANT $SIZE" ]]; then
      good=$((good + 1))
    else
      echo "#   $what client $i: exit status, sha256, size: $line; $(head -c 200 "$TMP/$tag.$i.err" 2>/dev/null)"
    fi
  done
  if ((good == count)); then
    ok "$what"
  else
    bad "$what" "$good of $count clients got the exact upload"
  fi
}
check_exact a1 30 relay1_clients_exact_through_link_cut
check_exact a2 30 relay2_clients_exact_through_link_cut

for r in r1 r2; do
  if grep -q "resumed at byte [1-9]" "$TMP/$r.log"; then
    ok "${r}_resumed_with_range"
  else
    bad "${r}_resumed_with_range" "no 'resumed at byte' in its log: $(tail -n 3 "$TMP/$r.log" | tr '\n' ' ')"
  fi
done

# -- 2: killing relay 1 truncates only its own clients ---------------------------

SIZE2=$((6 * 1024 * 1024))
head -c "$SIZE2" /dev/urandom >"$TMP/up2.bin"
WANT=$(sha256sum <"$TMP/up2.bin" | cut -d' ' -f1)
SIZE=$SIZE2
in_ns "$NS_C" curl -sS --max-time $((120 * SLOW)) --limit-rate 2M -T "$TMP/up2.bin" \
  -o "$TMP/up2.put" -w '%{http_code}' "http://$ORIGIN:8080/streams/up2" >"$TMP/up2.code" 2>&1 &
UPLOAD=$!
PIDS+=("$UPLOAD")
poll 20 first_bytes_2 offset_at_least "$NS_R1" live2 1 || finish
poll 20 first_bytes_2 offset_at_least "$NS_R2" live2 1 || finish
clients live2 10 "$R1" b1
clients live2 10 "$R2" b2
poll 30 third_relayed offset_at_least "$NS_R1" live2 $((SIZE2 / 3)) || finish
# shellcheck disable=SC2154 # set by daemon()
kill -KILL "$PID_r1"
wait "$PID_r1" 2>/dev/null || true
wait_clients b1 10 || bad kill "the killed relay's clients not done in time"
wait_clients b2 10 || bad kill "relay 2's clients not done in time"
wait "$UPLOAD" || true
check_exact b2 10 relay2_clients_exact_while_relay1_killed
truncated=0
for ((i = 0; i < 10; i++)); do
  read -r rc _ size <"$TMP/b1.$i.res" || rc=none
  # 18: transfer closed with outstanding data; 56: connection reset
  if [[ $rc = 18 || $rc = 56 ]] && ((size < SIZE2)); then
    truncated=$((truncated + 1))
  else
    echo "#   killed relay's client $i: $(cat "$TMP/b1.$i.res")"
  fi
done
if ((truncated == 10)); then
  ok killed_relay_truncates_its_clients
else
  bad killed_relay_truncates_its_clients "$truncated of 10 truncated"
fi

# the daemons left stop cleanly on SIGTERM (a sanitized build checks for
# leaks then): exit status 0 within 15 s
# shellcheck disable=SC2154 # set by daemon()
for p in "$PID_origin" "$PID_r2"; do
  kill -TERM "$p" 2>/dev/null || true
done
for label in origin r2; do
  pid_var=PID_$label
  rc=0
  deadline=$((SECONDS + 15 * SLOW))
  while kill -0 "${!pid_var}" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.05 # poll step
  done
  kill -KILL "${!pid_var}" 2>/dev/null || true # still running: a failure
  wait "${!pid_var}" 2>/dev/null || rc=$?
  if ((rc == 0)); then
    ok "${label}_stops_cleanly"
  else
    bad "${label}_stops_cleanly" "exit status $rc after SIGTERM: $(tail -n 2 "$TMP/$label.log" | tr '\n' ' ')"
  fi
done
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$TMP"/*.log; then
  bad sanitizer "$(grep -hE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$TMP"/*.log | head -n 2)"
fi
finish
