#!/usr/bin/env bash
# Soak benchmark of streamerd: N minutes of a mixed population of clients
# (uploaders, live followers, range readers, resumers, abandoners, idle and
# slow clients) against one daemon, sampling its RSS, descriptors, threads
# and the latency of a small GET every 5 s. Prints a table, the operations
# per client kind and one JSON line; exits 1 on any unintended error.
#
#   bash tools/bench/http_soak.sh                          # 5 minutes, build/'s daemon
#   bash tools/bench/http_soak.sh --minutes 30 --streamerd build-dev/tools/streamerd/streamerd
#   bash tools/bench/http_soak.sh --help
#
# The driver is tools/bench/http_soak.py (Python 3, standard library only),
# which shares its client and daemon code with tests/streamerd/faults.py.
# Environment: STREAMERD_ARGS, extra daemon arguments (split on blanks; they
# come after the soak's own, so they win). See docs/benchmarks.md, "Soak".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v python3 >/dev/null; then
  echo "http_soak: python3 is needed (apt-get install python3)" >&2
  exit 2
fi
exec python3 "$here/http_soak.py" "$@"
