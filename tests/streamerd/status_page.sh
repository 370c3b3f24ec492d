#!/usr/bin/env bash
# The status page of streamerd as a browser shows it.
#
#   tests/streamerd/status_page.sh PATH_TO_STREAMERD
#
# Starts the daemon on a random loopback port, uploads a stream of a few KiB,
# then loads http://127.0.0.1:PORT/ in headless Chromium (the page fills
# itself from /status.json with JavaScript, so only a browser shows the rows)
# and checks the rendered DOM lists the stream's name and byte count and a
# rate chart (an inline SVG with the in and out lines). Then starts a second
# daemon that relays the stream (--relay) and checks its page shows the relay:
# the upstream URL, the lag, and the chart fed with samples. Also saves a
# screenshot for humans: $TMPDIR/streamerd-status.png (kept).
#
# Prints `ok NAME` / `FAIL NAME: why` per check and closes with
# `N passed, N failed`; exit 1 if any failed, 77 (skip) without
# chromium-headless-shell.
set -euo pipefail

if [[ $# -ne 1 || $1 = -h || $1 = --help ]]; then
  echo "usage: $0 PATH_TO_STREAMERD" >&2
  exit 2
fi
BIN=$1
[[ $BIN = */* ]] || BIN=./$BIN
if [[ ! -x $BIN ]]; then
  echo "status_page.sh: $BIN is not an executable" >&2
  exit 2
fi
CHROME=${CHROME:-chromium-headless-shell}
if ! command -v "$CHROME" >/dev/null; then
  echo "skip: $CHROME is not installed (Debian: apt-get install chromium-headless-shell)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 77
fi

OUTDIR=${TMPDIR:-/tmp}
SHOT=$OUTDIR/streamerd-status.png
TMP=$(mktemp -d "$OUTDIR/streamerd-status.XXXXXX")
DPID=""
RPID=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [[ -n $DPID ]]; then
    kill -KILL "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  if [[ -n $RPID ]]; then
    kill -KILL "$RPID" 2>/dev/null || true
    wait "$RPID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

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
  if ((failed > 0)); then
    exit 1
  fi
  exit 0
}

# -- the daemon, on a random port (retried on a bind error) --------------------

DLOG=$TMP/daemon.err
started=""
for _ in 1 2 3 4 5 6 7 8; do
  PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
  "$BIN" --listen "127.0.0.1:$PORT" --no-demo </dev/null >"$TMP/daemon.out" 2>"$DLOG" &
  DPID=$!
  for ((i = 0; i < 200; i++)); do
    kill -0 "$DPID" 2>/dev/null || break
    code=$(timeout 2 curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
      "http://127.0.0.1:$PORT/metrics" || true)
    if [[ $code = 200 ]]; then
      started=1
      break
    fi
    sleep 0.05
  done
  [[ -z $started ]] || break
  if kill -0 "$DPID" 2>/dev/null; then
    bad start "daemon not ready after 10 s: $(tail -n 3 "$DLOG" | tr '\n' ' ')"
    finish
  fi
  wait "$DPID" 2>/dev/null || true
  DPID=""
  grep -qiE 'bind|in use|EADDRINUSE' "$DLOG" && continue
  bad start "daemon exited at start: $(tail -n 5 "$DLOG" | tr '\n' ' ')"
  finish
done
if [[ -z $started ]]; then
  bad start "no free port in 8 tries"
  finish
fi
BASE=http://127.0.0.1:$PORT

# -- a stream of a few KiB ------------------------------------------------------

NAME=status-page-test
SIZE=4321
head -c "$SIZE" /dev/urandom >"$TMP/body"
code=$(timeout 30 curl -sS -T "$TMP/body" -o /dev/null -w '%{http_code}' "$BASE/streams/$NAME" || true)
if [[ $code != 201 ]]; then
  bad upload "PUT /streams/$NAME: expected 201, got '$code'"
  finish
fi

# the forms a page may show the byte count in
counts=("$SIZE" "4,321" "4.321" "4 321" $'4\u202f321' $'4\u00a0321' "4.2 KiB" "4.22 KiB" "4.220 KiB"
  "4.3 kB" "4.32 kB" "4.2KiB" "4.22KiB")

# -- /status.json: what the page shows -------------------------------------------

code=$(timeout 30 curl -sS -o "$TMP/status.json" -w '%{http_code}' "$BASE/status.json" || true)
if [[ $code != 200 ]]; then
  bad status_json "GET /status.json: expected 200, got '$code'"
elif ! grep -q "\"$NAME\"" "$TMP/status.json"; then
  bad status_json "/status.json does not name the stream \"$NAME\": $(head -c 300 "$TMP/status.json")"
elif ! grep -qE "(^|[^0-9])$SIZE([^0-9]|$)" "$TMP/status.json"; then
  bad status_json "/status.json does not give its $SIZE bytes: $(head -c 300 "$TMP/status.json")"
else
  ok status_json
fi

# -- the page, rendered -------------------------------------------------------------

chrome() {
  timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 "$@" "${PAGE:-$BASE/}"
}
rc=0
chrome --dump-dom >"$TMP/dom.html" 2>"$TMP/chrome.err" || rc=$?
if [[ $rc != 0 || ! -s $TMP/dom.html ]]; then
  bad status_dom "$CHROME --dump-dom exited $rc: $(grep -v -e dbus -e vaapi -e sandbox "$TMP/chrome.err" | tail -n 3 | tr '\n' ' ')"
else
  # the rendered text, without the page's own scripts and styles
  perl -0777 -pe 's{<(script|style)\b.*?</\1>}{}gis; s{<[^>]*>}{ }g; s{&nbsp;}{\x{a0}}g; s{&amp;}{&}g' \
    "$TMP/dom.html" >"$TMP/dom.txt"
  found=""
  for form in "${counts[@]}"; do
    if grep -qF -- "$form" "$TMP/dom.txt"; then
      found=$form
      break
    fi
  done
  if ! grep -qF -- "$NAME" "$TMP/dom.txt"; then
    bad status_dom "the rendered page does not show the stream name $NAME: $(tr -s ' \n' ' ' <"$TMP/dom.txt" | head -c 300)"
  elif [[ -z $found ]]; then
    bad status_dom "the rendered page names $NAME but not its $SIZE bytes: $(tr -s ' \n' ' ' <"$TMP/dom.txt" | head -c 300)"
  else
    ok status_dom
    echo "# the page shows $NAME with '$found'"
  fi
  if grep -qE '<svg[^>]*class="rate-chart"' "$TMP/dom.html" \
    && grep -qE '<polyline[^>]*class="rate-in"' "$TMP/dom.html" \
    && grep -qE '<polyline[^>]*class="rate-out"' "$TMP/dom.html"; then
    ok status_rate_chart
  else
    bad status_rate_chart "no <svg class=\"rate-chart\"> with rate-in and rate-out lines in the page"
  fi
fi

rm -f "$SHOT"
rc=0
(cd "$TMP" && chrome --screenshot="$SHOT" --window-size=1280,800 >/dev/null 2>"$TMP/shot.err") || rc=$?
if [[ $rc != 0 || ! -s $SHOT ]]; then
  bad status_screenshot "$CHROME --screenshot exited $rc, no $SHOT"
elif [[ $(head -c 8 "$SHOT" | od -An -tx1 | tr -d ' \n') != 89504e470d0a1a0a ]]; then
  bad status_screenshot "$SHOT is not a PNG"
else
  ok status_screenshot
  echo "# screenshot: $SHOT"
fi

# -- a relay of the stream: its page shows the upstream, the lag, the chart -------

RLOG=$TMP/relay.err
UPSTREAM=$BASE/streams/$NAME
started=""
for _ in 1 2 3 4 5 6 7 8; do
  RPORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
  "$BIN" --listen "127.0.0.1:$RPORT" --no-demo --relay "mirror=$UPSTREAM" \
    </dev/null >"$TMP/relay.out" 2>"$RLOG" &
  RPID=$!
  for ((i = 0; i < 200; i++)); do
    kill -0 "$RPID" 2>/dev/null || break
    code=$(timeout 2 curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
      "http://127.0.0.1:$RPORT/metrics" || true)
    if [[ $code = 200 ]]; then
      started=1
      break
    fi
    sleep 0.05 # poll step
  done
  [[ -z $started ]] || break
  wait "$RPID" 2>/dev/null || true
  RPID=""
  grep -qiE 'bind|in use|EADDRINUSE' "$RLOG" && continue
  break
done
if [[ -z $started ]]; then
  bad relay_start "relay daemon not serving: $(tail -n 3 "$RLOG" | tr '\n' ' ')"
  finish
fi
RBASE=http://127.0.0.1:$RPORT
# The rates are sampled at most once a second when /status.json is read:
# poll until the relay's stream ended and has a rate sample (10 s deadline).
have=""
for ((i = 0; i < 50; i++)); do
  timeout 5 curl -s "$RBASE/status.json" >"$TMP/relay.json" || true
  if grep -q '"state":"ended"' "$TMP/relay.json" && grep -q '"rate_in":\[[0-9]' "$TMP/relay.json"; then
    have=1
    break
  fi
  sleep 0.2 # poll step
done
if [[ -z $have ]]; then
  bad relay_json "no ended relay stream with a rate sample in /status.json: $(head -c 400 "$TMP/relay.json")"
elif ! grep -qF "\"relay\":{\"upstream\":\"$UPSTREAM\"" "$TMP/relay.json" \
  || ! grep -q '"lag_bytes":0,"reconnects":0}' "$TMP/relay.json"; then
  bad relay_json "/status.json lacks the relay's upstream, lag or reconnects: $(head -c 400 "$TMP/relay.json")"
else
  ok relay_json
fi
rc=0
PAGE=$RBASE/ chrome --dump-dom >"$TMP/relay.html" 2>"$TMP/chrome2.err" || rc=$?
perl -0777 -pe 's{<(script|style)\b.*?</\1>}{}gis; s{<[^>]*>}{ }g; s{&nbsp;}{\x{a0}}g; s{&amp;}{&}g' \
  "$TMP/relay.html" >"$TMP/relay.txt" 2>/dev/null || true
if [[ $rc != 0 ]]; then
  bad relay_dom "$CHROME --dump-dom exited $rc"
elif ! grep -qF -- "$UPSTREAM" "$TMP/relay.txt" || ! grep -qE 'lag [0-9.]+ (B|KiB|MiB)' "$TMP/relay.txt"; then
  bad relay_dom "the relay's page does not show its upstream $UPSTREAM and lag: $(tr -s ' \n' ' ' <"$TMP/relay.txt" | head -c 400)"
else
  ok relay_dom
fi
# the chart has its samples: a rate-in line with at least two points
if grep -qE '<svg[^>]*class="rate-chart"[^>]*data-samples="[1-9]' "$TMP/relay.html" \
  && grep -qE '<polyline[^>]*class="rate-in"[^>]*points="[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+' "$TMP/relay.html"; then
  ok relay_rate_chart
else
  bad relay_rate_chart "no rate chart with samples on the relay's page: $(grep -oE '<svg[^>]*class="rate-chart".{0,300}' "$TMP/relay.html" | head -c 400)"
fi

if ! kill -0 "$DPID" 2>/dev/null; then
  bad daemon "the daemon died: $(tail -n 5 "$DLOG" | tr '\n' ' ')"
fi
if ! kill -0 "$RPID" 2>/dev/null; then
  bad relay_daemon "the relay daemon died: $(tail -n 5 "$RLOG" | tr '\n' ' ')"
fi
finish
