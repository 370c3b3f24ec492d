#!/usr/bin/env python3
"""Backed pipe benchmark: aspipe over loopback TCP against a plain TCP copy.

Rows, each run in this order, SIZE bytes from a file to a file:
  tcp        socat -u (256 KiB buffers): file -> TCP -> file, no pipe
  aspipe     aspipe connect < file  ->  aspipe listen > file, direct
  proxied    the same through the relay of the cut row, never cutting
             (what the relay alone costs)
  cut64      the same through the relay, which resets the connection every
             64 MiB of relayed bytes (the pipe reconnects and replays)
Each row's time runs from starting the sender until the sender exited (the
receiver has every byte by then: socat -u ends after the receiver's end,
aspipe once the listener acknowledged the end); MB/s = SIZE / time / 1e6;
the ratio column is MB/s / tcp's MB/s. "cpu s" is the user+system CPU time
of the row's processes (both ends; the relay runs in this Python process and
is not counted), steadier than wall time on a shared machine. Medians of
--runs runs. The received file is checked (size for every run, sha256 for
the first run of each row). Every process is bounded by --deadline.
"""

import argparse
import hashlib
import resource
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "aspipe"))
import aspipe_e2e  # noqa: E402  (the cutting proxy)


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    num = text.rstrip("KMG")
    return int(num) * units[text[len(num):]]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def wait_or_kill(procs, deadline):
    """Waits for every process (a blocking wait: Popen.wait with a timeout
    polls in steps of up to 50 ms, too coarse for these times); a timer
    kills what is still running at `deadline`."""
    late = []

    def kill_late():
        for p in procs:
            if p.poll() is None:
                late.append(p)
                p.kill()

    timer = threading.Timer(max(0.01, deadline - time.monotonic()), kill_late)
    timer.start()
    try:
        for p in procs:
            p.wait()
    finally:
        timer.cancel()
    if late:
        raise SystemExit("pipe_bench: error: a process ran past the deadline")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_tcp(args, src, dst):
    cpu0 = children_cpu()
    port = free_port()
    with open(dst, "wb") as out:
        rx = subprocess.Popen(["socat", "-u", "-b", "262144",
                               f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
                               "STDOUT"], stdout=out)
    limit = time.monotonic() + 10
    while time.monotonic() < limit:
        if port_listening(port):
            break
        time.sleep(0.01)
    t0 = time.monotonic()
    with open(src, "rb") as inp:
        tx = subprocess.Popen(["socat", "-u", "-b", "262144", "STDIN",
                               f"TCP:127.0.0.1:{port}"], stdin=inp)
    wait_or_kill([tx], t0 + args.deadline)
    t = time.monotonic() - t0
    wait_or_kill([rx], t0 + args.deadline)
    if tx.returncode or rx.returncode:
        raise SystemExit(f"pipe_bench: error: socat exited {tx.returncode}"
                         f"/{rx.returncode}")
    return t, {"cpu": children_cpu() - cpu0}


def port_listening(port):
    """True if something listens on 127.0.0.1:port (from /proc/net/tcp,
    without connecting)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                return True
    return False


def run_aspipe(args, src, dst, relay, cut_every, workdir):
    cpu0 = children_cpu()
    empty = os.path.join(workdir, "empty")
    open(empty, "wb").close()
    deadline = time.monotonic() + args.deadline
    window = ["--window", args.window]
    with open(empty, "rb") as lin, open(dst, "wb") as lout:
        listener, port, listen_log = aspipe_e2e.start_listener(
            args.aspipe, workdir, lin, lout, window, deadline)
    proxy = None
    target = port
    if relay:
        size = os.path.getsize(src)
        cuts = list(range(cut_every, size + cut_every, cut_every)) \
            if cut_every else []
        # The relayed bytes include replays and frames, so cuts keep coming
        # past SIZE; the list covers twice SIZE.
        cuts += [c + size for c in cuts]
        proxy = aspipe_e2e.cutting_proxy(port, cuts, aspipe_e2e.random.Random(1),
                                         0.0, 0.0)
        target = proxy.port
    t0 = time.monotonic()
    connect_log = os.path.join(workdir, "connect.log")
    with open(src, "rb") as cin, open(connect_log, "wb") as clog:
        connector = subprocess.Popen(
            [args.aspipe, "connect", f"127.0.0.1:{target}", "--max-attempts",
             "50", "--backoff-max", "0.2", "--linger", "0"] + window,
            stdin=cin, stdout=subprocess.DEVNULL, stderr=clog)
    wait_or_kill([connector], deadline)
    t = time.monotonic() - t0
    # The listener may linger for the peer's goodbye: not part of the copy.
    wait_or_kill([listener], deadline)
    extra = {"cpu": children_cpu() - cpu0}
    if proxy:
        proxy.stop()
        extra["cuts"] = proxy.cuts
    if connector.returncode or listener.returncode:
        raise SystemExit(
            f"pipe_bench: error: aspipe exited {connector.returncode}/"
            f"{listener.returncode}\nconnector:\n"
            + aspipe_e2e.tail(connect_log) + "\nlistener:\n"
            + aspipe_e2e.tail(listen_log))
    return t, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aspipe", required=True)
    ap.add_argument("--bytes", default="512M")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", default="64M", help="aspipe --window")
    ap.add_argument("--cut-every", default="64M")
    ap.add_argument("--rows", default="tcp,aspipe,proxied,cut64")
    ap.add_argument("--deadline", type=float, default=300)
    args = ap.parse_args()
    size = parse_size(args.bytes)
    cut_every = parse_size(args.cut_every)
    rows = args.rows.split(",")
    if "tcp" in rows and not shutil.which("socat"):
        raise SystemExit("pipe_bench: error: socat not found")
    with tempfile.TemporaryDirectory(prefix="pipe_bench.") as workdir:
        src = os.path.join(workdir, "in.bin")
        dst = os.path.join(workdir, "out.bin")
        log(f"writing {args.bytes} of random bytes")
        with open(src, "wb") as f:
            left = size
            while left > 0:
                n = min(left, 1 << 24)
                f.write(os.urandom(n))
                left -= n
        want = sha256_of(src)
        times = {r: [] for r in rows}
        cpus = {r: [] for r in rows}
        cuts = {}
        for i in range(args.runs):
            for r in rows:
                if r == "tcp":
                    t, extra = run_tcp(args, src, dst)
                elif r == "aspipe":
                    t, extra = run_aspipe(args, src, dst, False, 0, workdir)
                elif r == "proxied":
                    t, extra = run_aspipe(args, src, dst, True, 0, workdir)
                elif r == "cut64":
                    t, extra = run_aspipe(args, src, dst, True, cut_every,
                                          workdir)
                else:
                    raise SystemExit(f"pipe_bench: unknown row {r}")
                got = os.path.getsize(dst)
                if got != size:
                    raise SystemExit(f"pipe_bench: error: {r} delivered {got}"
                                     f" of {size} bytes")
                if i == 0 and sha256_of(dst) != want:
                    raise SystemExit(f"pipe_bench: error: {r}: sha256 differs")
                os.unlink(dst)
                times[r].append(t)
                cpus[r].append(extra["cpu"])
                if "cuts" in extra:
                    cuts.setdefault(r, []).append(extra["cuts"])
                log(f"run {i + 1} {r}: {t:.2f} s, {size / t / 1e6:.0f} MB/s, "
                    f"cpu {extra['cpu']:.2f} s"
                    + (f", {extra['cuts']} cuts" if "cuts" in extra else ""))
        base = statistics.median(times["tcp"]) if "tcp" in times else None
        print(f"# {args.bytes} per copy, medians of {args.runs}, "
              f"{os.cpu_count()} cores, aspipe --window {args.window}")
        print(f"{'row':<10} {'median s':>9} {'MB/s':>8} {'x tcp':>7} "
              f"{'cpu s':>6}  runs (s)")
        for r in rows:
            m = statistics.median(times[r])
            ratio = f"{base / m:.2f}" if base else "-"
            note = f"  cuts {cuts[r]}" if r in cuts else ""
            c = statistics.median(cpus[r])
            print(f"{r:<10} {m:>9.2f} {size / m / 1e6:>8.0f} {ratio:>7} "
                  f"{c:>6.2f}  "
                  + " ".join(f"{t:.2f}" for t in times[r]) + note)


if __name__ == "__main__":
    main()
