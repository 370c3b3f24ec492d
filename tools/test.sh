#!/usr/bin/env bash
# All tests, from any directory on a fresh Debian 12 machine:
#
#   bash tools/test.sh
#
# 1. installs the missing build packages and builds everything in Release into
#    build/ (the build tools/run.sh uses, so the two share their objects);
# 2. runs the CTest suite (fails if it finds no test; per-test timeout
#    ASYNCSTREAM_TEST_TIMEOUT seconds where a test sets none);
# 3. installs the project into a temporary prefix, then configures, builds
#    and runs tests/downstream against the installed package
#    (find_package(asyncstream) + asyncstream::asyncstream).
#
# Environment: ASYNCSTREAM_BUILD_DIR (default build), ASYNCSTREAM_JOBS
# (default: the number of cores), ASYNCSTREAM_TEST_TIMEOUT (default 600).
set -euo pipefail

# shellcheck source=tools/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/run.sh"
cd "$ROOT"

TEST_TIMEOUT=${ASYNCSTREAM_TEST_TIMEOUT:-600}
# The streamerd end-to-end tests drive it with curl and check its status page
# in headless Chromium; its fault-injection suite is a Python 3 script. The
# network-namespace tests (remote readers, relays) need `ip` (iproute2).
PACKAGES+=(chromium-headless-shell python3 iproute2)

ensure_packages
configure_build
build

log "running the test suite"
run ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error \
  --timeout "$TEST_TIMEOUT"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/asyncstream-downstream.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "installing into $tmp/prefix"
run cmake --install "$BUILD_DIR" --prefix "$tmp/prefix"

log "building tests/downstream against the installed package"
run cmake -S "$ROOT/tests/downstream" -B "$tmp/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tmp/prefix"
run cmake --build "$tmp/build" --parallel "$JOBS"

log "checking that the README's examples are the compiled ones"
run python3 - "$ROOT" <<'PY'
import pathlib, sys
root = pathlib.Path(sys.argv[1])
readme = (root / "README.md").read_text()
stale = [f for f in ("main.cpp", "actor_service.cpp", "typed_service.cpp")
         if (root / "tests/downstream" / f).read_text() not in readme]
if stale:
    sys.exit("README.md does not show tests/downstream/" + ", ".join(stale)
             + " verbatim: copy the file into its code block")
PY

log "running the downstream app"
run "$tmp/build/app"

log "all tests passed"
