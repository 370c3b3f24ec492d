#!/usr/bin/env python3
"""What polling /metrics costs everybody else, with many streams listed.

    python3 tools/bench/http_metrics.py --streamerd PATH [--streamerd PATH2 ...]
                                        [--streams 1000] [--pollers 2] [--seconds 5]

For each daemon binary: starts it on a free loopback port (--no-demo),
uploads --streams one-byte streams, then for --seconds runs --pollers clients
that fetch /metrics back to back while one more client times small GETs (one
byte, a new connection each). Prints, per daemon, the small GET's latency
percentiles, how many it managed, and the time of one /metrics alone; then a
JSON line per daemon. A daemon that refuses an option is started without it.

Not a test: the figures depend on the machine (docs/benchmarks.md).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time


def request(port, raw, timeout=30.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        out = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                return bytes(out)
            out += b


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with {proc.returncode}")
        try:
            request(port, b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 1.0)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the daemon did not answer within 10 s")


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def run(binary, streams, pollers, seconds):
    port = free_port()
    args = [binary, "--listen", f"127.0.0.1:{port}", "--no-demo", "--log-level", "warn"]
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    if "--max-streams" in help_text:
        args += ["--max-streams", str(streams + 10)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        for i in range(streams):
            r = request(port, b"PUT /streams/t%d HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                              b"Connection: close\r\n\r\nx" % i)
            if not r.startswith(b"HTTP/1.1 201"):
                raise SystemExit(f"upload {i}: {r[:60]!r}")
        stop = threading.Event()
        polls = [0]

        def poll():
            while not stop.is_set():
                request(port, b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                polls[0] += 1

        threads = [threading.Thread(target=poll) for _ in range(pollers)]
        for t in threads:
            t.start()
        lat = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = request(port, b"GET /streams/t1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            lat.append((time.perf_counter() - t0) * 1000)
            if not r.endswith(b"\r\n\r\nx"):
                raise SystemExit(f"small GET: {r[:60]!r}")
        stop.set()
        for t in threads:
            t.join()
        t0 = time.perf_counter()
        request(port, b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        alone = (time.perf_counter() - t0) * 1000
        return {"bench": "http_metrics", "streamerd": binary, "streams": streams,
                "pollers": pollers, "seconds": seconds, "small_gets": len(lat),
                "metrics_polls": polls[0], "p50_ms": round(percentile(lat, 50), 2),
                "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(max(lat), 2),
                "metrics_alone_ms": round(alone, 1)}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streamerd", action="append", required=True, help="daemon binary (repeatable)")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--pollers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    rows = [run(os.path.abspath(b), a.streams, a.pollers, a.seconds) for b in a.streamerd]
    print(f"{'streamerd':40} {'small GETs':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'/metrics polls':>14} {'/metrics alone ms':>17}")
    for r in rows:
        print(f"{r['streamerd'][-40:]:40} {r['small_gets']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['max_ms']:>8} {r['metrics_polls']:>14} {r['metrics_alone_ms']:>17}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    sys.exit(main())
