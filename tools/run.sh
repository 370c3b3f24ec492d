#!/usr/bin/env bash
# The main job, from any directory on a fresh Debian 12 machine:
#
#   bash tools/run.sh                  # streamerd with its demo stream on 127.0.0.1:8080
#   bash tools/run.sh --listen 127.0.0.1:9000 --source log=/var/log/syslog
#                                      # your arguments go to streamerd
#
# Installs the missing build packages (apt-get, only if one is missing),
# configures and builds in Release into build/ (only what is out of date) and
# runs the main program, the streamerd daemon (docs/streamerd.md). Stop it
# with Ctrl-C (it drains, then exits 0). The benchmark is
# build/tools/asyncstream-bench (docs/benchmarks.md).
#
# tools/test.sh sources this file for its helpers (ensure_packages,
# configure_build, build); main() runs only when this file is executed.
#
# Environment: ASYNCSTREAM_BUILD_DIR (default build), ASYNCSTREAM_JOBS
# (default: the number of cores).
set -euo pipefail

# -- what the main job runs ---------------------------------------------------

MAIN_TARGET=streamerd
MAIN_DEFAULT_ARGS=()

# -- settings -----------------------------------------------------------------

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${ASYNCSTREAM_BUILD_DIR:-build}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
JOBS=${ASYNCSTREAM_JOBS:-$(nproc)}
PACKAGES=(cmake ninja-build g++ libcaf-dev doctest-dev libboost-dev
          libcli11-dev libspdlog-dev curl)

# -- helpers ------------------------------------------------------------------

log() {
  printf '==> %s\n' "$*" >&2
}

# Prints a command, then runs it.
run() {
  show "$@"
  "$@"
}

# Prints a command, quoted as the shell would need it.
show() {
  local a line=+
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=,+@%^-]+$ ]]; then
      line+=" $a"
    else
      line+=" $(printf '%q' "$a")"
    fi
  done
  printf '%s\n' "$line" >&2
}

# Installs the packages of PACKAGES that are not installed yet.
ensure_packages() {
  local p missing=()
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *' installed' ]] \
      || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "packages present: ${PACKAGES[*]}"
    return
  fi
  log "installing missing packages: ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# Configures BUILD_DIR (Release, tests and tools on). Re-running is cheap:
# CMake only regenerates what changed.
configure_build() {
  local gen=()
  [[ -f $BUILD_DIR/CMakeCache.txt ]] || gen=(-G Ninja)
  log "configuring $BUILD_DIR"
  run cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DASYNCSTREAM_BUILD_TESTS=ON \
    -DASYNCSTREAM_BUILD_TOOLS=ON
}

# Builds the given targets of BUILD_DIR (all without arguments).
build() {
  local targets=()
  (($# == 0)) || targets=(--target "$@")
  log "building $BUILD_DIR ${*:-(all)}"
  run cmake --build "$BUILD_DIR" --parallel "$JOBS" "${targets[@]}"
}

# Prints the path of the executable built for target $1.
find_executable() {
  local exe
  exe=$(find "$BUILD_DIR" -path "$BUILD_DIR/CMakeFiles" -prune -o \
          -type f -name "$1" -perm -u+x -print | head -n 1)
  if [[ -z $exe ]]; then
    log "error: no executable $1 under $BUILD_DIR"
    return 1
  fi
  printf '%s\n' "$exe"
}

main() {
  ensure_packages
  configure_build
  build "$MAIN_TARGET"
  local exe args=("$@")
  exe=$(find_executable "$MAIN_TARGET")
  ((${#args[@]})) || args=("${MAIN_DEFAULT_ARGS[@]}")
  if [[ $MAIN_TARGET == streamerd && ${#args[@]} -eq 0 ]]; then
    log "streamerd serves its demo stream on http://127.0.0.1:8080/ (Ctrl-C stops it):"
    log "  curl -N http://127.0.0.1:8080/streams/demo      # follow the demo stream"
    log "  curl -T FILE http://127.0.0.1:8080/streams/NAME # upload a stream"
    log "  curl http://127.0.0.1:8080/metrics              # or open http://127.0.0.1:8080/"
  fi
  log "running $MAIN_TARGET"
  show "$exe" "${args[@]}"
  exec "$exe" "${args[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
