#!/usr/bin/env python3
"""Soak benchmark: a mixed population of clients against one streamerd.

    bash tools/bench/http_soak.sh [--minutes 5] [--streamerd PATH] [--seed N]
                                  [--scale F] [--interval 5] [--verbose]

For --minutes, these clients run at once (counts times --scale), every one of
them checking what it gets:

  uploaders   PUT streams of 32 KiB-1 MiB, paced (chunked or Content-Length);
              201 expected; the oldest streams are deleted as new ones come
  followers   GET a stream from offset 0 while it is live (or ended); the body
              must be the upload, byte for byte
  ranges      Range requests (bytes=A-B, bytes=-K) on ended streams, byte-exact
  resumers    read a stream up to a random byte, reset the connection, resume
              with Range: bytes=N- and must end with the whole upload
  abandoners  stop anywhere: in the request line, after the headers, after the
              response header, mid-body, mid-upload (close or reset)
  idle        connect, maybe send one request, then wait to be closed
              (--header-timeout / --keepalive-timeout)
  slow        read an ended stream 4 KiB at a time with a small receive buffer
  prober      a small GET every 0.1 s: the latency the table reports

Every --interval seconds the daemon's RSS, descriptors and threads and the
prober's latency percentiles are sampled. At the end: a table, the operations
per client kind, and one JSON line. Exit status 1 if any unintended error
happened (intended: the abandoners' cuts, 503 when a cap is hit, 404 for a
stream deleted under a reader's feet), if the daemon died, or if it did not
exit cleanly on SIGTERM.

The client and daemon code is tests/streamerd/faults.py's (imported).
"""

import argparse
import json
import os
import random
import re
import selectors
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "streamerd"))
import faults as F  # noqa: E402

now = F.now
ERRORS = (OSError, F.Closed, F.ProtocolError, F.Fail)


class Stats:
    """Per client kind: operations that went as intended, intended failures
    (by reason) and unintended errors (the first messages kept)."""

    def __init__(self):
        self.lock = threading.Lock()
        # set when the soak ends: its own aborts (live uploads cut, clients
        # stopped) then explain any failure, so none is counted
        self.closing = threading.Event()
        self.ok = {}
        self.intended = {}
        self.errors = {}
        self.messages = []

    def good(self, kind):
        with self.lock:
            self.ok[kind] = self.ok.get(kind, 0) + 1

    def meant(self, kind, why):
        with self.lock:
            d = self.intended.setdefault(kind, {})
            d[why] = d.get(why, 0) + 1

    def error(self, kind, msg):
        if self.closing.is_set():
            return
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.messages) < 20:
                self.messages.append(f"{kind}: {msg}")

    def total_errors(self):
        with self.lock:
            return sum(self.errors.values())


class Catalog:
    """The uploaders' streams: name -> {"data", "state": live|ended}."""

    def __init__(self, keep):
        self.lock = threading.Lock()
        self.entries = OrderedDict()
        self.retired = set()
        self.keep = keep

    def add(self, name, data):
        with self.lock:
            self.entries[name] = {"data": data, "state": "live"}

    def set_state(self, name, state):
        with self.lock:
            if name in self.entries:
                self.entries[name]["state"] = state

    def drop(self, name):
        with self.lock:
            self.entries.pop(name, None)

    def pick(self, rng, state=None):
        with self.lock:
            names = [n for n, e in self.entries.items() if state is None or e["state"] == state]
            if not names:
                return None, None
            # the newest streams are the popular ones
            name = names[-1 - min(len(names) - 1, int(rng.expovariate(0.5)))]
            return name, self.entries[name]["data"]

    def retire(self):
        """The ended streams over `keep`, oldest first: no longer offered."""
        with self.lock:
            ended = [n for n, e in self.entries.items() if e["state"] == "ended"]
            old = ended[:max(0, len(ended) - self.keep)]
            for n in old:
                del self.entries[n]
                self.retired.add(n)
            return old

    def was_retired(self, name):
        with self.lock:
            return name in self.retired


class Soak:
    def __init__(self, args, daemon, seed):
        self.args = args
        self.d = daemon
        self.port = daemon.port
        self.seed = seed
        self.stop = threading.Event()
        self.stats = Stats()
        self.catalog = Catalog(keep=24)
        self.t = 15.0 * daemon.slow  # every socket operation's timeout
        self.lat_lock = threading.Lock()
        self.window = []  # prober latencies since the last sample
        self.all_lat = []
        self.cleanup = []  # (time, name) of cut uploads, deleted a little later
        self.cleanup_lock = threading.Lock()
        self.probe = None
        self.pause = {"ranges": 0.05, "follower": 0.05, "resumer": 0.05, "abandoner": 0.02,
                      "slow": 0.1}
        self.timeouts = False  # the daemon closes idle connections (--keepalive-timeout)

    def rng(self, *parts):
        return random.Random("/".join(str(p) for p in (self.seed,) + parts))

    # -- one kind of client per function; each runs until stop -------------

    def run(self, kind, idx):
        fn = getattr(self, "op_" + kind)
        rng = self.rng(kind, idx)
        for k in range(10**9):
            if self.stop.is_set():
                return
            try:
                fn(rng, idx, k)
            except ERRORS as e:
                if not self.stop.is_set() and self.d.alive():
                    self.stats.error(kind, f"{type(e).__name__}: {e}")
            if not self.d.alive():
                return
            # a pause between two operations: a soak, not a load test
            self.stop.wait(rng.uniform(0, 2 * self.pause.get(kind, 0.0)))

    def unavailable(self, kind, resp, name=None):
        """Intended non-2xx answers: 503 (a cap), 404 of a retired stream."""
        if resp.status == 503:
            self.stats.meant(kind, "503")
            return True
        if resp.status == 404 and name is not None and self.catalog.was_retired(name):
            self.stats.meant(kind, "404 retired")
            return True
        return False

    def op_uploader(self, rng, idx, k):
        for name in self.catalog.retire():
            resp, _, _ = F.http(self.port, "DELETE", f"/streams/{name}", timeout=self.t)
            if resp.status != 204:
                self.stats.error("uploader", f"DELETE /streams/{name}: {resp.status}")
        self.delete_cut_uploads()
        name = f"s{idx}-{k}"
        data = rng.randbytes(rng.randrange(32 << 10, 1 << 20))
        chunked = rng.random() < 0.6
        self.catalog.add(name, data)
        up = F.LiveUpload(self.port, name, timeout=self.t,
                          content_length=None if chunked else len(data))
        try:
            off = 0
            while off < len(data):
                if self.stop.is_set():
                    up.abort()
                    self.catalog.drop(name)
                    return
                piece = rng.randrange(4 << 10, 32 << 10)
                up.feed(data[off:off + piece])
                off += piece
                self.stop.wait(rng.uniform(0.005, 0.03))  # pacing
        except OSError:
            # refused early (a cap)? the answer may be there
            self.catalog.drop(name)
            try:
                resp = up.conn.read_head()
            except ERRORS:
                raise
            finally:
                up.conn.close()
            if not self.unavailable("uploader", resp):
                self.stats.error("uploader", f"PUT /streams/{name}: {resp.status} mid-body")
            return
        status, body = up.finish()
        if status == 201:
            self.catalog.set_state(name, "ended")
            self.stats.good("uploader")
        else:
            self.catalog.drop(name)
            if status == 503:
                self.stats.meant("uploader", "503")
            else:
                self.stats.error("uploader", f"PUT /streams/{name}: {status} {body[:80]!r}")

    def delete_cut_uploads(self):
        with self.cleanup_lock:
            due = [n for t, n in self.cleanup if now() - t > 1.0]
            self.cleanup = [(t, n) for t, n in self.cleanup if now() - t <= 1.0]
        for name in due:
            resp, _, _ = F.http(self.port, "DELETE", f"/streams/{name}", timeout=self.t)
            if resp.status not in (204, 404):
                self.stats.error("abandoner", f"DELETE /streams/{name} (cut upload): {resp.status}")

    def op_follower(self, rng, idx, k):
        name, data = self.catalog.pick(rng, "live")
        if name is None:
            name, data = self.catalog.pick(rng)
        if name is None:
            self.stop.wait(0.1)
            return
        c = F.Conn(self.port, timeout=self.t)
        try:
            # ?wait=: the upload's headers may still be on their way
            c.request("GET", f"/streams/{name}?wait=5")
            resp = c.read_head()
            if self.unavailable("follower", resp, name):
                c.read_body(resp)
                return
            body, state = c.read_body(resp)
        finally:
            c.close()
        if resp.status != 200 or state != "complete" or body != data:
            self.stats.error("follower", f"GET /streams/{name}: {resp.status}, {state}, "
                                         f"{len(body)} of {len(data)} bytes")
        else:
            self.stats.good("follower")

    def op_ranges(self, rng, idx, k):
        name, data = self.catalog.pick(rng, "ended")
        if name is None:
            self.stop.wait(0.1)
            return
        n = len(data)
        if rng.random() < 0.2:
            kk = rng.randrange(1, n + 1)
            spec, first, last = f"-{kk}", n - kk, n - 1
        else:
            first = rng.randrange(0, n)
            last = rng.randrange(first, min(n, first + (256 << 10)))
            spec = f"{first}-{last}"
        resp, body, state = F.http(self.port, "GET", f"/streams/{name}",
                                   [("Range", f"bytes={spec}")], timeout=self.t)
        if self.unavailable("ranges", resp, name):
            return
        want = f"bytes {first}-{last}/{n}"
        if resp.status != 206 or resp.get("content-range") != want or state != "complete" \
                or body != data[first:last + 1]:
            self.stats.error("ranges", f"/streams/{name} bytes={spec}: {resp.status} "
                                       f"{resp.get('content-range')!r} (want {want!r}), {state}, "
                                       f"{len(body)} bytes")
        else:
            self.stats.good("ranges")

    def op_resumer(self, rng, idx, k):
        name, data = self.catalog.pick(rng)
        if name is None:
            self.stop.wait(0.1)
            return
        cut_at = rng.randrange(1, len(data))
        c = F.Conn(self.port, timeout=self.t)
        try:
            c.request("GET", f"/streams/{name}?wait=5")
            resp = c.read_head()
            if self.unavailable("resumer", resp, name):
                return
            got, _ = c.read_body(resp, limit=cut_at, deadline=now() + self.t)
        finally:
            c.reset()
        if resp.status != 200 or got != data[:len(got)]:
            self.stats.error("resumer", f"GET /streams/{name}: {resp.status}, {len(got)} bytes "
                                        "not a prefix of the upload")
            return
        if len(got) >= len(data):
            self.stats.good("resumer")
            return
        resp, rest, state = F.http(self.port, "GET", f"/streams/{name}",
                                   [("Range", f"bytes={len(got)}-")], timeout=self.t)
        if self.unavailable("resumer", resp, name):
            return
        if resp.status != 206 or state != "complete" or got + rest != data:
            self.stats.error("resumer", f"resuming /streams/{name} at {len(got)}: {resp.status} "
                                        f"{resp.get('content-range')!r}, {state}, "
                                        f"{len(got) + len(rest)} of {len(data)} bytes")
        else:
            self.stats.good("resumer")

    def op_abandoner(self, rng, idx, k):
        kind = rng.choice(["request_line", "headers_sent", "response_header", "mid_body",
                           "upload"])
        name, _ = self.catalog.pick(rng)
        target = f"/streams/{name}?wait=5" if name else "/streams/probe"
        c = F.Conn(self.port, timeout=self.t)
        try:
            if kind == "request_line":
                req = c.request_bytes("GET", target)
                c.send(req[:rng.randrange(0, req.index(F.CRLF))])
            elif kind == "headers_sent":
                c.request("GET", target)
            elif kind in ("response_header", "mid_body"):
                c.request("GET", target)
                resp = c.read_head()
                if resp.status not in (200, 206) and not self.unavailable("abandoner", resp, name):
                    self.stats.error("abandoner", f"GET {target}: {resp.status}")
                    return
                if kind == "mid_body":
                    c.read_body(resp, limit=rng.randrange(1, 1 << 20), deadline=now() + 2)
            else:
                up_name = f"ab{idx}-{k}"
                with self.cleanup_lock:
                    self.cleanup.append((now(), up_name))
                size = rng.randrange(1000, 1 << 20)
                c.request("PUT", f"/streams/{up_name}", [("Content-Length", str(size))])
                c.send(rng.randbytes(rng.randrange(0, size)))
        finally:
            how = F.cut(c, rng)
        self.stats.meant("abandoner", f"{kind} ({how})")

    def op_idle(self, rng, idx, k):
        """1-3 connections at once (so --max-connections is hit now and then),
        each with one request or none, then idle until the daemon closes it."""
        conns = []
        sel = selectors.DefaultSelector()
        try:
            for _ in range(rng.randint(1, 3)):
                c = F.Conn(self.port, timeout=self.t)
                c.asked = rng.random() < 0.5
                if c.asked:
                    c.request("GET", "/streams/probe")
                conns.append(c)
                sel.register(c.sock, selectors.EVENT_READ, c)
            left = len(conns)
            t0 = now()
            while left and not self.stop.is_set() and now() - t0 < 30:
                for key, _ in sel.select(0.5):
                    c = key.data
                    if c.fill():
                        continue
                    sel.unregister(c.sock)
                    left -= 1
                    codes = re.findall(rb"HTTP/1\.[01] (\d{3})", bytes(c.buf))
                    first = codes[0].decode() if codes else None
                    if first == "503":
                        self.stats.meant("idle", "503")
                    elif c.asked and first != "200":
                        self.stats.error("idle", f"GET /streams/probe, then idle: {codes}")
                    elif not c.asked and first not in (None, "408"):
                        self.stats.error("idle", f"no request, yet answered {codes}")
                    else:
                        self.stats.meant("idle", "closed by the daemon")
            if self.stop.is_set() or not left:
                return
            if self.timeouts:
                self.stats.error("idle", f"{left} idle connection(s) not closed within 30 s")
            else:
                self.stats.meant("idle", "held 30 s (the daemon has no timeouts)")
        finally:
            sel.close()
            for c in conns:
                c.close()

    def op_slow(self, rng, idx, k):
        name, data = self.catalog.pick(rng, "ended")
        if name is None:
            self.stop.wait(0.1)
            return
        c = F.Conn(self.port, timeout=self.t, rcvbuf=16384)
        try:
            c.request("GET", f"/streams/{name}")
            resp = c.read_head()
            if self.unavailable("slow", resp, name):
                return
            length = resp.get("content-length")
            if length is None:  # an ended stream has one; read it as it comes
                body, state = c.read_body(resp)
            else:  # 4 KiB at a time
                n, body = int(length), bytearray()
                while len(body) < n:
                    if self.stop.is_set():
                        return
                    part = c.read_exact(min(4096, n - len(body)))
                    if not part:
                        break
                    body += part
                    self.stop.wait(rng.uniform(0.01, 0.04))  # pacing
                state = "complete" if len(body) == n else "truncated"
        finally:
            c.close()
        if resp.status != 200 or state != "complete" or bytes(body) != data:
            self.stats.error("slow", f"GET /streams/{name}: {resp.status}, {state}, "
                                     f"{len(body)} of {len(data)} bytes")
        else:
            self.stats.good("slow")

    def op_prober(self, rng, idx, k):
        t0 = now()
        resp, body, state = F.http(self.port, "GET", "/streams/probe", timeout=self.t)
        dt = now() - t0
        if resp.status != 200 or body != self.probe or state != "complete":
            if not self.unavailable("prober", resp):
                self.stats.error("prober", f"GET /streams/probe: {resp.status}, {len(body)} bytes")
        else:
            self.stats.good("prober")
            with self.lat_lock:
                self.window.append(dt)
                self.all_lat.append(dt)
        self.stop.wait(0.1)

    def take_window(self):
        with self.lat_lock:
            w, self.window = self.window, []
        return w


POPULATION = [("uploader", 4), ("follower", 6), ("ranges", 3), ("resumer", 3),
              ("abandoner", 4), ("idle", 16), ("slow", 3), ("prober", 1)]


def main():
    ap = argparse.ArgumentParser(
        prog="http_soak.sh", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 2)[2])
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--streamerd", default=os.path.join(root, "build/tools/streamerd/streamerd"),
                    help="the daemon [build/tools/streamerd/streamerd]")
    ap.add_argument("--minutes", type=float, default=5.0, help="how long [5]")
    ap.add_argument("--seed", type=int, default=None, help="seed [random, printed]")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiplies the client counts [1]")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples [5]")
    ap.add_argument("--verbose", action="store_true", help="print each sample as it is taken")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    binary = os.path.abspath(args.streamerd)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"http_soak: {args.streamerd} is not an executable", file=sys.stderr)
        return 2
    asan = F.sanitized_binary(binary)
    slow = 3.0 if asan else 1.0
    print(f"seed {seed}", flush=True)
    print("replay: bash tools/bench/http_soak.sh --streamerd " + shlex.quote(args.streamerd) +
          f" --minutes {args.minutes:g} --seed {seed}"
          + (f" --scale {args.scale:g}" if args.scale != 1 else ""), flush=True)

    soft, hard = F.resource.getrlimit(F.resource.RLIMIT_NOFILE)
    want = 8192 if hard == F.resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        F.resource.setrlimit(F.resource.RLIMIT_NOFILE, (want, hard))

    options = F.daemon_options(binary)
    wanted = [("--max-readers", "4"), ("--queue-timeout", "2"), ("--max-connections", "400"),
              ("--max-streams", "200"), ("--header-timeout", "5"), ("--keepalive-timeout", "5"),
              ("--send-timeout", "10"), ("--body-timeout", "10")]
    dargs = ["--log-level", "warn", "--drain-timeout", "2", "--no-demo"]
    skipped = []
    for opt, val in wanted:
        if opt in options:
            dargs += [opt, val]
        else:
            skipped.append(opt)
    dargs += shlex.split(os.environ.get("STREAMERD_ARGS", ""))
    workdir = tempfile.mkdtemp(prefix="streamerd-soak.")
    if "--file-dir" in options:
        dargs += ["--file-dir", workdir]
    print(f"# {binary} {' '.join(dargs)}" + (" (AddressSanitizer build)" if asan else "")
          + (f"; it has no {' '.join(skipped)}" if skipped else ""), flush=True)
    d = F.Daemon(binary, dargs, workdir, "soak", slow=slow)
    failed = []
    rows = []
    soak = None
    threads = []
    try:
        d.start()
        soak = Soak(args, d, seed)
        soak.timeouts = "--keepalive-timeout" in options
        soak.probe = soak.rng("probe").randbytes(1024)
        status, _ = F.put(d.port, "probe", soak.probe)
        if status != 201:
            raise F.Fail(f"PUT /streams/probe: {status}")
        counts = {kind: max(1, round(n * args.scale)) for kind, n in POPULATION}
        for kind, n in counts.items():
            for i in range(n):
                th = threading.Thread(target=soak.run, args=(kind, i), daemon=True,
                                      name=f"{kind}-{i}")
                th.start()
                threads.append(th)
        print(f"# clients: {', '.join(f'{k} {n}' for k, n in counts.items())}; "
              f"{args.minutes:g} min, a sample every {args.interval:g} s", flush=True)
        t0 = now()
        end = t0 + args.minutes * 60
        next_sample = t0 + args.interval
        ok_before = 0
        while now() < end:
            time.sleep(min(0.2, max(0.0, next_sample - now())))  # the sampling clock
            if not d.alive():
                raise F.Fail(f"the daemon died after {now() - t0:.1f} s: {d.describe_exit()}; "
                             f"{d.sanitizer_report() or d.log_tail(2)}")
            if now() < next_sample:
                continue
            next_sample += args.interval
            w = soak.take_window()
            with soak.stats.lock:
                ok_now = sum(soak.stats.ok.values())
            row = {"t": round(now() - t0), "rss_mib": d.rss_kib() / 1024, "fds": d.fds(),
                   "threads": d.threads(), "ops": ok_now - ok_before, "probes": len(w),
                   "p50": F.percentile(w, 50) * 1000, "p90": F.percentile(w, 90) * 1000,
                   "p99": F.percentile(w, 99) * 1000, "max": max(w) * 1000 if w else float("nan"),
                   "errors": soak.stats.total_errors()}
            ok_before = ok_now
            rows.append(row)
            if args.verbose:
                print(fmt_row(row), flush=True)
    except F.Fail as e:
        failed.append(str(e))
    except KeyboardInterrupt:
        failed.append("interrupted")
    finally:
        if soak is not None:
            soak.stats.closing.set()
            soak.stop.set()
        for th in threads:
            th.join(max(1.0, 30 * slow))
        stuck = [th.name for th in threads if th.is_alive()]
        if stuck:
            failed.append(f"clients still running after the end: {', '.join(stuck[:5])}")
        if d.alive() and soak is not None:
            try:
                data = os.urandom(100000)
                st, _ = F.put(d.port, "final", data)
                resp, body, _ = F.http(d.port, "GET", "/streams/final")
                if st != 201 or resp.status != 200 or body != data:
                    failed.append(f"a final upload read back: {st} {resp.status} {len(body)} bytes")
            except ERRORS as e:
                failed.append(f"a final upload read back: {e!r}")
        elif soak is not None and not failed:
            failed.append(f"the daemon died: {d.describe_exit()}")
        why = d.stop(seconds=20)
        if why:
            failed.append(why)
        d.kill()
    print()
    print(" " + fmt_row(None))
    for row in rows:
        print(" " + fmt_row(row))
    stats = soak.stats if soak is not None else Stats()
    print()
    print(f" {'client':<10} {'ok':>8}  intended / errors")
    for kind, _ in POPULATION:
        intended = stats.intended.get(kind, {})
        print(f" {kind:<10} {stats.ok.get(kind, 0):>8}  "
              + (", ".join(f"{v} {k}" for k, v in sorted(intended.items())) or "-")
              + (f" / {stats.errors[kind]} ERRORS" if stats.errors.get(kind) else ""))
    for m in stats.messages:
        print(f" error: {m}")
    errors = stats.total_errors()
    lat = soak.all_lat if soak is not None else []

    def col(key, f):
        vals = [r[key] for r in rows]
        return f(vals) if vals else None

    result = {
        "bench": "http_soak", "minutes": args.minutes, "seed": seed, "scale": args.scale,
        "streamerd": binary, "samples": len(rows),
        "rss_mib": {"first": col("rss_mib", lambda v: round(v[0], 1)),
                    "last": col("rss_mib", lambda v: round(v[-1], 1)),
                    "max": col("rss_mib", lambda v: round(max(v), 1))},
        "fds": {"first": col("fds", lambda v: v[0]), "last": col("fds", lambda v: v[-1]),
                "max": col("fds", max)},
        "threads": {"first": col("threads", lambda v: v[0]), "max": col("threads", max)},
        "latency_ms": {p: round(F.percentile(lat, q) * 1000, 2) if lat else None
                       for p, q in (("p50", 50), ("p90", 90), ("p99", 99))},
        "ops": dict(stats.ok), "intended": {k: sum(v.values()) for k, v in stats.intended.items()},
        "errors": errors, "failures": failed, "ok": not failed and errors == 0,
    }
    result["latency_ms"]["max"] = round(max(lat) * 1000, 2) if lat else None
    print()
    for f in failed:
        print(f"FAIL: {f}")
    print(json.dumps(result, separators=(",", ":")))
    if failed or errors:
        print(f"# daemon log in {workdir}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def fmt_row(row):
    if row is None:
        return (f"{'t_s':>5} {'rss_mib':>8} {'fds':>5} {'threads':>7} {'ops':>6} {'probes':>6} "
                f"{'p50_ms':>7} {'p90_ms':>7} {'p99_ms':>7} {'max_ms':>7} {'errors':>6}")
    return (f"{row['t']:>5} {row['rss_mib']:>8.1f} {row['fds']:>5} {row['threads']:>7} "
            f"{row['ops']:>6} {row['probes']:>6} {row['p50']:>7.2f} {row['p90']:>7.2f} "
            f"{row['p99']:>7.2f} {row['max']:>7.2f} {row['errors']:>6}")


if __name__ == "__main__":
    sys.exit(main())
