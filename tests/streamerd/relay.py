#!/usr/bin/env python3
"""streamerd relays end to end, over loopback: `--relay NAME=URL`.

    python3 tests/streamerd/relay.py --daemon PATH [--seed N] [--phase NAME]...
                                     [--clients N] [--keep] [--verbose]

Each phase starts its own daemons (an origin, one or two relays) on random
loopback ports, some behind a TCP proxy of this script that can cut its
connections with a reset, stall them, or refuse new ones. Prints one line
per phase, `ok PHASE (details)` or `FAIL PHASE: why`, then `N passed, M
failed`; exits 1 if a phase failed. The first lines printed are the seed and
the command that replays the run: the cut points and the uploaded bytes come
from the seed.

Phases (docs/relays.md, "Tests"):
  resume    a live upload on the origin, a relay behind the proxy, 30 clients
            on the relay and 5 on the origin; the proxy resets every
            connection three times and stalls them once (past
            --relay-idle-timeout) mid-stream: the relay resumes with Range,
            every client gets the upload's sha256, the relay's stream ends
            cleanly with exactly the upload's bytes, reconnects are counted
  kill      killing the relay (SIGKILL) mid-stream truncates its own clients'
            responses only: the origin's clients complete with the sha256
  failure   the uploader resets its connection mid-body (the origin stream
            fails): the clients of a relay, and of a relay of that relay, end
            truncated after exactly the bytes the origin had, and both relays
            log the upstream's failure
  quiet     a live upstream with no new bytes for several --relay-idle-timeout
            periods: the relay reconnects after each, never fails (the
            attempts got a head, so they do not count towards the bound),
            and its clients get every byte once the upload goes on
  bound     the origin goes away for good (the proxy refuses connections):
            after --relay-retries failed attempts the relay fails its stream
            with a log line saying so; its clients' responses end truncated
  edges     a relay of a name the origin never has fails after its retries
            (404); a relay started after the upstream stream ended copies it
            whole (Content-Length) and ends cleanly; with --relay-on-demand a
            relay stays idle until the first GET, which gets every byte

Every wait polls a condition with a deadline; no loop is unbounded. Standard
library only; the HTTP clients and the daemon runner are faults.py's.
"""

import argparse
import hashlib
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
from faults import HOST, Closed, Conn, Fail, LiveUpload, ProtocolError, now  # noqa: E402


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# a TCP proxy that cuts, stalls and refuses


class Pair:
    """One proxied connection: the client's socket, the upstream's, and the
    two pump threads between them."""

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.cut = False
        self.threads = []


class Proxy:
    """Forwards loopback connections to `target_port`. `cut()` resets every
    connection open (both sides get a TCP reset); `stall(True)` stops
    forwarding (bytes wait in the sockets); `refuse()` closes the listener for
    good and resets what is open."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.accepted = 0
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                reset(client)
                continue
            pair = Pair(client, upstream)
            with self.lock:
                if self.closed:
                    reset(client)
                    reset(upstream)
                    return
                self.pairs.append(pair)
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(pair, a, b), daemon=True,
                                     name="proxy-pump")
                pair.threads.append(t)
                t.start()

    def _pump(self, pair, src, dst):
        # select() with a short timeout, not a blocking recv(): a socket
        # closed while another thread blocks in recv(2) on it stays open
        # (no reset is sent) until that recv returns
        try:
            while not pair.cut:
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready:
                    continue
                data = src.recv(1 << 16)
                if not data:
                    break
                # a stall holds the bytes here; a cut ends it
                while not self.flowing.wait(0.05):
                    if pair.cut:
                        break
                if pair.cut:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        if pair.cut:
            reset(src)
            reset(dst)
            return
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self):
        """Resets every connection open now (returns once the resets are
        sent, at most a few seconds); returns how many were open."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        live = [p for p in pairs if any(t.is_alive() for t in p.threads)]
        for p in pairs:
            p.cut = True
        deadline = now() + 5
        for p in pairs:
            for t in p.threads:
                t.join(max(0.0, deadline - now()))
        return len(live)

    def stall(self, on):
        if on:
            self.flowing.clear()
        else:
            self.flowing.set()

    def refuse(self):
        with self.lock:
            self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.cut()


def reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------
# clients


class Reader:
    """A GET of one stream on its own thread: records the status, the bytes
    and whether the body was complete or truncated."""

    def __init__(self, port, name, timeout):
        self.port = port
        self.name = name
        self.timeout = timeout
        self.status = None
        self.data = b""
        self.state = "not started"
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"get-{name}")
        self.thread.start()

    def _run(self):
        try:
            c = Conn(self.port, timeout=self.timeout)
            try:
                c.request("GET", f"/streams/{self.name}", close=True)
                resp = c.read_head()
                self.status = resp.status
                self.data, self.state = c.read_body(resp)
            finally:
                c.close()
        except (OSError, Closed, ProtocolError) as e:
            self.state = "error"
            self.error = repr(e)

    def join(self, deadline):
        self.thread.join(max(0.0, deadline - now()))
        if self.thread.is_alive():
            raise Fail(f"a GET of {self.name} on port {self.port} still running at its deadline "
                       f"({len(self.data)} bytes so far)")


def readers(port, name, n, timeout):
    return [Reader(port, name, timeout) for _ in range(n)]


def join_all(rs, seconds):
    deadline = now() + seconds
    for r in rs:
        r.join(deadline)


def expect_complete(rs, data, who):
    """Every reader got 200, a complete body and exactly `data`."""
    want = sha(data)
    for i, r in enumerate(rs):
        if r.status != 200 or r.state != "complete":
            raise Fail(f"{who} client {i}: status {r.status}, body {r.state} after "
                       f"{len(r.data)} of {len(data)} bytes {r.error or ''}")
        if sha(r.data) != want:
            raise Fail(f"{who} client {i}: sha256 {sha(r.data)[:16]} of {len(r.data)} bytes, "
                       f"want {want[:16]} of {len(data)}")


def expect_truncated(rs, data, who, exact=None):
    """Every reader's body ended truncated (or the connection failed) with a
    prefix of `data` (exactly `exact` bytes of it, if given)."""
    for i, r in enumerate(rs):
        if r.state == "complete":
            raise Fail(f"{who} client {i}: a complete body of {len(r.data)} bytes, "
                       f"expected a truncated one")
        if r.data != data[:len(r.data)]:
            raise Fail(f"{who} client {i}: its {len(r.data)} bytes are not a prefix of the upload")
        if exact is not None and len(r.data) != exact:
            raise Fail(f"{who} client {i}: {len(r.data)} bytes before the cut, "
                       f"expected exactly {exact} ({r.state})")


# ---------------------------------------------------------------------------
# the run


class Context:
    def __init__(self, binary, seed, slow, workdir, verbose, clients):
        self.binary = binary
        self.seed = seed
        self.slow = slow
        self.workdir = workdir
        self.verbose = verbose
        self.clients = clients
        self.daemons = []
        self.proxies = []
        self.phase = None

    def rng(self, *parts):
        return random.Random("/".join(str(p) for p in (self.seed,) + parts))

    def log(self, msg):
        if self.verbose:
            print(f"#   [{self.phase}] {msg}", flush=True)

    def daemon(self, label, args):
        full = ["--log-level", "info", "--drain-timeout", "1", "--no-demo",
                "--file-dir", self.workdir] + list(args)
        d = faults.Daemon(self.binary, full, self.workdir, f"{self.phase}-{label}",
                          slow=self.slow)
        self.daemons.append(d)
        self.log(f"starting {label}: {' '.join(shlex.quote(a) for a in full)}")
        return d.start()

    def relay(self, label, name, upstream_port, upname, extra=()):
        args = ["--relay", f"{name}=http://{HOST}:{upstream_port}/streams/{upname}",
                "--relay-backoff-ms", "50", "--relay-backoff-max-ms", "400",
                "--relay-idle-timeout", str(1.0 * self.slow)] + list(extra)
        return self.daemon(label, args)

    def proxy(self, target_port):
        p = Proxy(target_port)
        self.proxies.append(p)
        return p

    def wait(self, cond, seconds, what, daemons=()):
        """Polls `cond` until it is true (returns its value) or the deadline."""
        deadline = now() + seconds * self.slow
        while True:
            for d in daemons:
                d.check_alive(what)
            v = cond()
            if v:
                return v
            if now() > deadline:
                raise Fail(f"{what}: not within {seconds * self.slow:.0f} s")
            time.sleep(0.02)  # poll step

    def cleanup(self):
        problems = []
        for p in self.proxies:
            p.refuse()
        self.proxies = []
        for d in self.daemons:
            why = d.stop()
            if why:
                problems.append(why)
        self.daemons = []
        return problems

    def kill_all(self):
        for d in self.daemons:
            try:
                d.kill()
            except Exception:
                pass


def relay_metric(d, name, metric):
    m = d.metrics()
    for k, v in m.items():
        if k.startswith(metric + "{") and f'stream="{name}"' in k:
            return v
    return None


def relay_offset(d, name):
    return relay_metric(d, name, "streamerd_relay_offset_bytes") or 0


def stream_status(d, name):
    _, body, _ = faults.http(d.port, "GET", "/status.json", timeout=5 * d.slow)
    text = body.decode("utf-8", "replace")
    m = re.search(r'\{"name":"' + re.escape(name) + r'",.*?"state":"(\w+)"', text)
    return m.group(1) if m else None


def start_upload(ctx, port, name, size, piece, interval, content_length=None):
    up = LiveUpload(port, name, timeout=20 * ctx.slow, content_length=content_length)
    up.start_feeder(ctx.rng(ctx.phase, "bytes"), piece, interval, size)
    return up


def upload_fed(up, size, ctx, what="the upload"):
    ctx.wait(lambda: len(up.snapshot()) >= size or up.feed_error, 60, f"{what} fed")
    if up.feed_error:
        raise Fail(f"{what}: {up.feed_error!r}")


PHASES = {}


def phase(fn):
    PHASES[fn.__name__.replace("phase_", "")] = fn
    return fn


@phase
def phase_resume(ctx):
    size = 6 << 20
    origin = ctx.daemon("origin", [])
    proxy = ctx.proxy(origin.port)
    relay = ctx.relay("relay", "mirror", proxy.port, "up", ["--relay-retries", "20"])
    up = start_upload(ctx, origin.port, "up", size, 32 << 10, 0.015)
    ctx.wait(lambda: relay_offset(relay, "mirror") > 0, 20, "the relay's first bytes",
             [origin, relay])
    on_relay = readers(relay.port, "mirror", ctx.clients, 30 * ctx.slow)
    on_origin = readers(origin.port, "up", 5, 30 * ctx.slow)
    # the lag's inputs: the upstream's size, polled once a second
    ctx.wait(lambda: (relay_metric(relay, "mirror", "streamerd_relay_upstream_bytes") or 0) > 0,
             5, "streamerd_relay_upstream_bytes above 0", [origin, relay])
    if relay_metric(relay, "mirror", "streamerd_relay_lag_bytes") is None:
        raise Fail("no streamerd_relay_lag_bytes for the relay in /metrics")
    rng = ctx.rng(ctx.phase, "cuts")
    cuts = sorted(rng.uniform(0.1, 0.8) for _ in range(3))
    stall_at = rng.uniform(0.2, 0.85)
    events = sorted([(c, "cut") for c in cuts] + [(stall_at, "stall")])
    ctx.log(f"events at fractions {[(round(f, 3), e) for f, e in events]}")
    cut_conns = 0
    for frac, what in events:
        at = int(frac * size)
        # past the point, and reading a body (not between two attempts)
        ctx.wait(lambda: relay_offset(relay, "mirror") >= at
                 and relay_metric(relay, "mirror", "streamerd_relay_receiving") == 1, 30,
                 f"the relay past byte {at}, receiving", [origin, relay])
        if what == "cut":
            cut_conns += proxy.cut()
        else:
            before = relay_metric(relay, "mirror", "streamerd_relay_reconnects_total")
            proxy.stall(True)
            # held longer than --relay-idle-timeout: the relay gives up on
            # the connection and resumes on a new one (also stalled)
            ctx.wait(lambda: relay_metric(relay, "mirror",
                                          "streamerd_relay_reconnects_total") > before,
                     10, "a reconnect after a stall", [origin, relay])
            proxy.stall(False)
    upload_fed(up, size, ctx)
    status, body = up.finish()
    if status != 201:
        raise Fail(f"the upload got {status}: {body[:100]!r}")
    data = up.snapshot()
    join_all(on_relay + on_origin, 60 * ctx.slow)
    expect_complete(on_origin, data, "origin")
    expect_complete(on_relay, data, "relay")
    ctx.wait(lambda: stream_status(relay, "mirror") == "ended", 10, "the relay's stream ended")
    # after the end: the whole stream with its length
    resp, got, state = faults.http(relay.port, "GET", "/streams/mirror", timeout=30 * ctx.slow)
    if resp.get("content-length") != str(size) or sha(got) != sha(data):
        raise Fail(f"GET after the end: Content-Length {resp.get('content-length')}, "
                   f"{len(got)} bytes, {state}")
    reconnects = relay_metric(relay, "mirror", "streamerd_relay_reconnects_total")
    if reconnects is None or reconnects < 4:
        raise Fail(f"streamerd_relay_reconnects_total {reconnects}: expected at least 4 "
                   f"(3 cuts and a stall)")
    log = relay.log_text()
    resumed = len(re.findall(r"resumed at byte [1-9]", log))
    if resumed < 4:
        raise Fail(f"the relay's log says 'resumed at byte' {resumed} times, expected >= 4")
    if "no byte from the upstream for" not in log:
        raise Fail("the relay's log does not name the stall (no byte from the upstream)")
    return (f"{ctx.clients} relay + 5 origin clients got {size} bytes exactly through "
            f"{len(cuts)} cuts ({cut_conns} connections reset) and a stall; "
            f"{int(reconnects)} reconnects")


@phase
def phase_kill(ctx):
    size = 4 << 20
    origin = ctx.daemon("origin", [])
    relay = ctx.relay("relay", "mirror", origin.port, "up")
    up = start_upload(ctx, origin.port, "up", size, 32 << 10, 0.015)
    ctx.wait(lambda: relay_offset(relay, "mirror") > 0, 20, "the relay's first bytes",
             [origin, relay])
    n = max(2, ctx.clients // 3)
    on_relay = readers(relay.port, "mirror", n, 30 * ctx.slow)
    on_origin = readers(origin.port, "up", n, 30 * ctx.slow)
    ctx.wait(lambda: relay_offset(relay, "mirror") >= size // 3, 30, "a third relayed",
             [origin, relay])
    relay.proc.send_signal(signal.SIGKILL)
    relay.proc.wait(10)
    upload_fed(up, size, ctx)
    status, _ = up.finish()
    if status != 201:
        raise Fail(f"the upload got {status}")
    data = up.snapshot()
    join_all(on_relay + on_origin, 60 * ctx.slow)
    expect_complete(on_origin, data, "origin")
    expect_truncated(on_relay, data, "relay")
    ctx.daemons.remove(relay)
    return (f"{n} origin clients complete, {n} clients of the killed relay truncated "
            f"after {min(len(r.data) for r in on_relay)}-{max(len(r.data) for r in on_relay)} "
            f"bytes")


@phase
def phase_failure(ctx):
    size = 4 << 20
    origin = ctx.daemon("origin", [])
    relay = ctx.relay("relay", "mirror", origin.port, "up")
    relay2 = ctx.relay("relay2", "mirror2", relay.port, "mirror")
    rng = ctx.rng(ctx.phase, "cut")
    cut_at = rng.randrange(size // 4, size // 2)
    up = LiveUpload(origin.port, "up", timeout=20 * ctx.slow, content_length=size)
    data = rng.randbytes(size)
    up.feed(data[:1 << 16])
    ctx.wait(lambda: relay_offset(relay2, "mirror2") > 0, 20, "the relays' first bytes",
             [origin, relay, relay2])
    n = max(2, ctx.clients // 3)
    on_relay = readers(relay.port, "mirror", n, 30 * ctx.slow)
    on_relay2 = readers(relay2.port, "mirror2", n, 30 * ctx.slow)
    off = 1 << 16
    while off < cut_at:
        k = min(32 << 10, cut_at - off)
        up.feed(data[off:off + k])
        off += k
    ctx.wait(lambda: relay_offset(relay2, "mirror2") >= cut_at, 30,
             "every byte before the cut relayed twice", [origin, relay, relay2])
    up.abort(reset=True)  # the origin stream fails at cut_at
    join_all(on_relay + on_relay2, 30 * ctx.slow)
    expect_truncated(on_relay, data, "relay", exact=cut_at)
    expect_truncated(on_relay2, data, "relay2", exact=cut_at)
    for d, name in ((relay, "mirror"), (relay2, "mirror2")):
        ctx.wait(lambda: stream_status(d, name) == "failed", 10, f"{name} failed")
        log = d.log_text()
        if not re.search(rf"relay {name}: stream {name} fails at byte {cut_at}: "
                         r"the upstream stream failed", log):
            raise Fail(f"{d.label}'s log does not say that {name} fails at byte {cut_at} "
                       f"because the upstream failed: {d.log_tail(3)}")
    # a client that comes later is truncated too, and gets the same bytes
    late = readers(relay2.port, "mirror2", 1, 30 * ctx.slow)
    join_all(late, 30 * ctx.slow)
    expect_truncated(late, data, "late relay2", exact=cut_at)
    return (f"the uploader's reset at byte {cut_at} truncated {2 * n} clients of a relay and "
            f"of a relay of it, each after exactly {cut_at} bytes")


@phase
def phase_bound(ctx):
    size = 4 << 20
    retries = 3
    origin = ctx.daemon("origin", [])
    proxy = ctx.proxy(origin.port)
    up = start_upload(ctx, origin.port, "up", size, 32 << 10, 0.015)
    # the upstream stream exists before the relay starts (the bound is low)
    ctx.wait(lambda: stream_status(origin, "up") == "live", 10, "the upload's stream", [origin])
    relay = ctx.relay("relay", "mirror", proxy.port, "up", ["--relay-retries", str(retries)])
    ctx.wait(lambda: relay_offset(relay, "mirror") > 0, 20, "the relay's first bytes",
             [origin, relay])
    n = max(2, ctx.clients // 3)
    on_relay = readers(relay.port, "mirror", n, 30 * ctx.slow)
    ctx.wait(lambda: relay_offset(relay, "mirror") >= size // 4, 30, "a quarter relayed",
             [origin, relay])
    t0 = now()
    proxy.refuse()  # the origin is gone for good, as far as the relay can tell
    ctx.wait(lambda: stream_status(relay, "mirror") == "failed", 20, "the relay's stream failed",
             [relay])
    took = now() - t0
    have = int(relay_offset(relay, "mirror"))
    up.abort()
    data = up.snapshot()
    join_all(on_relay, 30 * ctx.slow)
    expect_truncated(on_relay, data, "relay", exact=have)
    log = relay.log_text()
    m = re.search(rf"relay mirror: stream mirror fails at byte {have}: gave up after "
                  rf"{retries + 1} failed attempt\(s\) in a row", log)
    if not m:
        raise Fail(f"no log line 'stream mirror fails at byte {have}: gave up after "
                   f"{retries + 1} failed attempt(s)': {relay.log_tail(3)}")
    return (f"gave up {took:.2f} s after the origin went away, at byte {have}; "
            f"{n} clients truncated there")


@phase
def phase_quiet(ctx):
    # A live upstream with no new bytes for several idle timeouts: the relay
    # reconnects after each (the overlap byte brings the head at once), and
    # these good attempts do not count towards the bound (--relay-retries 1).
    origin = ctx.daemon("origin", [])
    rng = ctx.rng(ctx.phase, "bytes")
    data = rng.randbytes(1 << 20)
    up = LiveUpload(origin.port, "up", timeout=20 * ctx.slow)
    up.feed(data[:1 << 16])
    # the upstream stream exists before the relay starts: with a bound of
    # one retry, two 404s would fail it
    ctx.wait(lambda: stream_status(origin, "up") == "live", 10, "the upload's stream", [origin])
    relay = ctx.relay("relay", "mirror", origin.port, "up",
                      ["--relay-retries", "1", "--relay-idle-timeout", str(0.3 * ctx.slow)])
    ctx.wait(lambda: relay_offset(relay, "mirror") >= 1 << 16, 20, "the first bytes relayed",
             [origin, relay])
    on_relay = readers(relay.port, "mirror", 5, 30 * ctx.slow)
    before = relay_metric(relay, "mirror", "streamerd_relay_reconnects_total")
    ctx.wait(lambda: relay_metric(relay, "mirror", "streamerd_relay_reconnects_total")
             >= before + 5, 20, "five reconnects of the quiet relay", [origin, relay])
    if stream_status(relay, "mirror") != "live":
        raise Fail(f"the quiet relay's stream is {stream_status(relay, 'mirror')}, not live")
    quiet = int(relay_metric(relay, "mirror", "streamerd_relay_reconnects_total") - before)
    for off in range(1 << 16, len(data), 1 << 16):
        up.feed(data[off:off + (1 << 16)])
    status, _ = up.finish()
    if status != 201:
        raise Fail(f"the upload got {status}")
    join_all(on_relay, 30 * ctx.slow)
    expect_complete(on_relay, data, "relay")
    return (f"{quiet} reconnects while the upstream was quiet (--relay-retries 1), then "
            f"5 clients got all {len(data)} bytes")


@phase
def phase_edges(ctx):
    origin = ctx.daemon("origin", [])
    size = 300000
    data = ctx.rng(ctx.phase, "bytes").randbytes(size)
    status, _ = faults.put(origin.port, "done", data)
    if status != 201:
        raise Fail(f"upload of 'done': {status}")
    relay = ctx.daemon("relay", [
        "--relay", f"copy=http://{HOST}:{origin.port}/streams/done",
        "--relay", f"none=http://{HOST}:{origin.port}/streams/never",
        "--relay-retries", "2", "--relay-backoff-ms", "20"])
    ctx.wait(lambda: stream_status(relay, "copy") == "ended", 10, "the copy ended", [relay])
    resp, got, state = faults.http(relay.port, "GET", "/streams/copy", timeout=10 * ctx.slow)
    if resp.status != 200 or state != "complete" or got != data \
            or resp.get("content-length") != str(size):
        raise Fail(f"GET copy: {resp.status}, {state}, {len(got)} bytes, "
                   f"Content-Length {resp.get('content-length')}")
    ctx.wait(lambda: stream_status(relay, "none") == "failed", 10, "'none' failed", [relay])
    log = relay.log_text()
    if not re.search(r"relay none: stream none fails at byte 0: gave up after 3 failed "
                     r"attempt\(s\) in a row \(--relay-retries 2\); last: the upstream has no "
                     r"such stream \(404\)", log):
        raise Fail(f"no log line for the missing upstream stream: {relay.log_tail(3)}")
    # --relay-on-demand: idle until the first GET, which then gets it all
    lazy = ctx.daemon("lazy", ["--relay", f"copy=http://{HOST}:{origin.port}/streams/done",
                               "--relay-on-demand"])
    state = stream_status(lazy, "copy")
    offset = relay_offset(lazy, "copy")
    _, body, _ = faults.http(lazy.port, "GET", "/status.json", timeout=5 * ctx.slow)
    if state != "live" or offset != 0 or b'"state":"idle"' not in body:
        raise Fail(f"--relay-on-demand: before any GET the relay should be idle with 0 bytes: "
                   f"{body[:300]!r}")
    resp, got, state = faults.http(lazy.port, "GET", "/streams/copy", timeout=10 * ctx.slow)
    if resp.status != 200 or state != "complete" or got != data:
        raise Fail(f"--relay-on-demand: the first GET: {resp.status}, {state}, {len(got)} bytes")
    return ("an ended upstream copied whole (Content-Length); a missing one failed after 404s; "
            "--relay-on-demand idle until the first GET, which got every byte")


def run_phase(ctx, name):
    ctx.phase = name
    t0 = now()
    limit = int(120 * ctx.slow)

    def on_alarm(signum, frame):
        raise Fail(f"phase still running after {limit} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    result, why = None, None
    try:
        result = PHASES[name](ctx)
    except Fail as e:
        why = str(e)
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
        if ctx.verbose:
            traceback.print_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if why is not None:
        for d in ctx.daemons:
            print(f"#   [{name}] {d.label} log tail: {d.log_tail(6)}", flush=True)
    problems = ctx.cleanup()
    if why is None and problems:
        why = "; ".join(problems)
    secs = now() - t0
    if why is None:
        print(f"ok {name} ({result}; {secs:.1f} s)", flush=True)
        return True
    print(f"FAIL {name}: {why} [{secs:.1f} s]", flush=True)
    return False


def main(argv=None):
    ap = argparse.ArgumentParser(description="streamerd relays end to end (docs/relays.md).")
    ap.add_argument("--daemon", required=True, help="path of the streamerd binary")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    ap.add_argument("--phase", action="append", choices=list(PHASES), default=None)
    ap.add_argument("--clients", type=int, default=30, help="clients on the relay (resume)")
    ap.add_argument("--keep", action="store_true", help="keep the daemons' logs")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    binary = os.path.abspath(args.daemon)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"relay.py: {args.daemon} is not an executable", file=sys.stderr)
        return 2
    asan = faults.sanitized_binary(binary)
    slow = 3.0 if asan else 1.0
    phases = args.phase or list(PHASES)
    replay = ["python3", os.path.relpath(os.path.abspath(__file__)), "--daemon", args.daemon,
              "--seed", str(seed)]
    for p in args.phase or []:
        replay += ["--phase", p]
    print(f"seed {seed}", flush=True)
    print(f"replay: {' '.join(shlex.quote(a) for a in replay)}", flush=True)
    print(f"# daemon {binary}{' (AddressSanitizer build)' if asan else ''}, "
          f"phases {' '.join(phases)}", flush=True)
    workdir = tempfile.mkdtemp(prefix="streamerd-relay.")
    ctx = Context(binary, seed, slow, workdir, args.verbose, args.clients)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    passed = failed = 0
    t0 = now()
    try:
        for name in phases:
            if run_phase(ctx, name):
                passed += 1
            else:
                failed += 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        failed += 1
    finally:
        ctx.kill_all()
        if args.keep or failed:
            print(f"# daemon logs in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed (seed {seed}, {now() - t0:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
