#!/usr/bin/env python3
"""Seeded fault injection against streamerd: ordinary and hostile clients.

    python3 tests/streamerd/faults.py --daemon PATH [--seed N] [--phase NAME]...
                                      [--scale F] [--verbose] [--keep]

Each phase starts its own daemons on random loopback ports, drives them with
raw-socket clients whose every choice comes from the seed, and prints one
line, `ok PHASE (details)` or `FAIL PHASE: why`; the run ends with
`N passed, M failed` and exits 1 if any phase failed. The first lines printed
are the seed and the command line that replays the run.

Phases (see docs/streamerd.md, "Fault injection", for what each proves):
  abandon      thousands of clients that stop at a random point of their
               exchange (request line, headers, response header, body, reader
               queue, ?wait=, upload), interleaved with clients whose bytes
               are checked
  fdlimit      a daemon with a low RLIMIT_NOFILE flooded with connections and
               uploads: stays up, does not spin or flood its log, recovers
  slowheaders  clients that send a header byte now and then: closed by
               --header-timeout while ordinary requests stay fast
  idle         more idle connections than --max-connections: the extra ones
               are refused, the rest closed by the timeouts
  noread       consumers that never read: dropped by --send-timeout, their
               reader slots freed
  tinystreams  1000 one-byte uploads then DELETE: memory, descriptors and
               threads bounded and back near their baseline
  ordinary     the HTTP rules (chunked/close-delimited live bodies, truncated
               bodies of failed producers, Host, ranges, HEAD) with raw sockets

Every phase checks that the daemon is alive and answers correctly (an upload
read back and deleted) at its end, that the daemon's descriptors and the
reader/connection gauges of /metrics are back at their baseline, and that the
daemon exits with status 0 on SIGTERM without a sanitizer report.

Standard library only. This file is also a module: tools/bench/http_soak.py
imports its client and daemon code.
"""

import argparse
import ctypes
import hashlib
import os
import random
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HOST = "127.0.0.1"
CRLF = b"\r\n"

# Descriptors a daemon gets unless a phase sets its own limit (fdlimit):
# enough for 1000 file-backed streams, whatever the caller's limit is.
DAEMON_NOFILE = 4096


class Fail(Exception):
    """A phase failed; the message says why."""


class Closed(Exception):
    """The peer closed (end of file or reset) before the bytes we needed."""


class ProtocolError(Exception):
    """The peer sent something that is not HTTP."""


def now():
    return time.monotonic()


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# HTTP over raw sockets


class Response:
    """A response head: version ("HTTP/1.1"), status, reason, headers."""

    def __init__(self, version, status, reason, headers, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.raw = raw

    def get(self, name, default=None):
        name = name.lower()
        value = default
        for k, v in self.headers:
            if k.lower() == name:
                value = v
        return value

    def normalized(self, drop=("date",)):
        """The headers as a sorted list of (lower-case name, value)."""
        return sorted((k.lower(), v) for k, v in self.headers if k.lower() not in drop)

    def chunked(self):
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    def __repr__(self):
        return f"<{self.version} {self.status}>"


class Conn:
    """One client connection with a receive buffer. Every operation is bounded
    by the socket timeout given at creation."""

    def __init__(self, port, timeout=10.0, rcvbuf=None, host=HOST):
        self.port = port
        self.host = host
        self.buf = bytearray()
        self.eof = False
        self.was_reset = False
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.settimeout(timeout)
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        self.sock = s

    # -- sending

    def send(self, data):
        self.sock.sendall(data)

    def request_bytes(self, method, path, headers=(), body=None, version="1.1",
                      host=True, close=False):
        lines = [f"{method} {path} HTTP/{version}"]
        if host:
            lines.append(f"Host: {self.host}:{self.port}")
        names = {k.lower() for k, _ in headers}
        lines += [f"{k}: {v}" for k, v in headers]
        if close:
            lines.append("Connection: close")
        if body is not None and "content-length" not in names \
                and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + (body or b"")

    def request(self, method, path, headers=(), body=None, version="1.1",
                host=True, close=False):
        self.send(self.request_bytes(method, path, headers, body, version, host, close))

    # -- receiving

    def fill(self, n=65536):
        """Reads what is there (blocking up to the timeout); False at EOF."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(n)
        except ConnectionResetError:
            self.eof = self.was_reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_head(self, max_bytes=65536):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(self.buf) > max_bytes:
                raise ProtocolError(f"no end of the response header in {len(self.buf)} bytes")
            if not self.fill():
                how = "reset" if self.was_reset else "closed"
                raise Closed(f"connection {how} before a complete response header"
                             + (f" (got {bytes(self.buf[:80])!r})" if self.buf else ""))
        raw = bytes(self.buf[:i])
        del self.buf[:i + 4]
        lines = raw.decode("latin-1").split("\r\n")
        m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        headers = []
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            headers.append((k.strip(), v.strip()))
        return Response(m.group(1), int(m.group(2)), m.group(3) or "", headers, raw)

    def read_exact(self, n):
        """n bytes, fewer at EOF."""
        while len(self.buf) < n and self.fill(max(65536, n - len(self.buf))):
            pass
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self, max_len=4096):
        """A line without its CRLF; None at EOF before one."""
        while True:
            i = self.buf.find(CRLF)
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > max_len:
                raise ProtocolError("line too long")
            if not self.fill():
                return None

    def read_some(self, n=65536):
        """What is buffered, or one recv; b"" at EOF."""
        if not self.buf:
            self.fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_body(self, resp, method="GET", limit=None, deadline=None):
        """Reads the body of `resp`. Returns (bytes, state): state is
        "complete" (the framing says the body ended: final chunk, all of
        Content-Length, or EOF of a close-delimited body), "truncated" (EOF or
        reset before that) or "limit" (stopped after `limit` bytes or at
        `deadline`)."""
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            return b"", "complete"
        out = bytearray()

        def stop():
            return (limit is not None and len(out) >= limit) or \
                (deadline is not None and now() >= deadline)

        if resp.chunked():
            while True:
                if stop():
                    return bytes(out), "limit"
                line = self.read_line()
                if line is None:
                    return bytes(out), "truncated"
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}")
                if size == 0:
                    for _ in range(100):  # trailers, then the empty line
                        line = self.read_line()
                        if line is None:
                            return bytes(out), "truncated"
                        if line == b"":
                            return bytes(out), "complete"
                    raise ProtocolError("too many trailer lines")
                want = size
                while want > 0:
                    part = self.read_exact(min(want, 1 << 20))
                    out += part
                    want -= len(part)
                    if not part:
                        return bytes(out), "truncated"
                end = self.read_exact(2)
                if len(end) < 2:
                    return bytes(out), "truncated"
                if end != CRLF:
                    raise ProtocolError("chunk not followed by CRLF")
        length = resp.get("content-length")
        if length is not None:
            n = int(length)
            while len(out) < n:
                if stop():
                    return bytes(out), "limit"
                part = self.read_exact(min(n - len(out), 1 << 20))
                if not part:
                    return bytes(out), "truncated"
                out += part
            return bytes(out), "complete"
        while True:  # delimited by the close
            if stop():
                return bytes(out), "limit"
            part = self.read_some()
            if not part:
                return bytes(out), ("truncated" if self.was_reset else "complete")
            out += part

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with a TCP reset (SO_LINGER {1, 0})."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def http(port, method, path, headers=(), body=None, timeout=10.0, version="1.1"):
    """One request on its own connection (Connection: close). Returns
    (Response, body, state)."""
    c = Conn(port, timeout=timeout)
    try:
        c.request(method, path, headers, body, version=version, close=True)
        resp = c.read_head()
        data, state = c.read_body(resp, method)
        return resp, data, state
    finally:
        c.close()


def parse_metrics(text):
    """Prometheus text format -> {"name{labels}": value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def fetch_metrics(port, timeout=5.0):
    resp, body, _ = http(port, "GET", "/metrics", timeout=timeout)
    if resp.status != 200:
        raise Fail(f"GET /metrics answered {resp.status}")
    return parse_metrics(body.decode("utf-8", "replace"))


class LiveUpload:
    """A chunked PUT whose body the caller (or a feeder thread) sends piece by
    piece. `sent` holds every byte sent, appended before it goes out, so a
    consumer can compare what it read with it."""

    def __init__(self, port, name, timeout=10.0, content_length=None):
        self.name = name
        self.lock = threading.Lock()
        self.sent = bytearray()
        self.content_length = content_length
        self.conn = Conn(port, timeout=timeout)
        if content_length is None:
            hdrs = [("Transfer-Encoding", "chunked")]
        else:
            hdrs = [("Content-Length", str(content_length))]
        self.conn.request("PUT", f"/streams/{name}", hdrs)
        self._feeder = None
        self._stop = threading.Event()
        self.feed_error = None

    def feed(self, data):
        with self.lock:
            self.sent += data
        if self.content_length is None:
            self.conn.send(b"%x\r\n" % len(data) + data + CRLF)
        else:
            self.conn.send(data)

    def snapshot(self):
        with self.lock:
            return bytes(self.sent)

    def start_feeder(self, rng, piece, interval, max_bytes, stop_event=None):
        """Feeds `piece` random bytes every `interval` s until stop(), or until
        max_bytes were sent."""
        data = rng.randbytes(max_bytes)

        def run():
            try:
                off = len(self.sent)
                while off < max_bytes and not self._stop.wait(interval):
                    if stop_event is not None and stop_event.is_set():
                        return
                    self.feed(data[off:off + piece])
                    off += piece
            except OSError as e:
                self.feed_error = e

        self._feeder = threading.Thread(target=run, daemon=True, name=f"feed-{self.name}")
        self._feeder.start()

    def stop_feeder(self):
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(15)

    def finish(self):
        """Ends the body; returns (status, response body)."""
        self.stop_feeder()
        if self.content_length is None:
            self.conn.send(b"0\r\n\r\n")
        resp = self.conn.read_head()
        body, _ = self.conn.read_body(resp)
        self.conn.close()
        return resp.status, body

    def abort(self, reset=True):
        self.stop_feeder()
        if reset:
            self.conn.reset()
        else:
            self.conn.close()


def put(port, name, data, chunked=False, timeout=20.0):
    """Uploads `data` as NAME; returns (status, body)."""
    if chunked:
        up = LiveUpload(port, name, timeout=timeout)
        for off in range(0, len(data), 65536):
            up.feed(data[off:off + 65536])
        return up.finish()
    resp, body, _ = http(port, "PUT", f"/streams/{name}", body=data, timeout=timeout)
    return resp.status, body


# ---------------------------------------------------------------------------
# the daemon under test

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup(nofile):
    """preexec_fn: the descriptor limit, and death with the parent (so a
    killed test run leaves no daemon behind)."""
    def setup():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if isinstance(nofile, tuple):
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
        elif nofile:
            want = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if _libc is not None:
            _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    return setup


SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|"
                          r"SUMMARY: (Address|Undefined|Leak)")


class Daemon:
    """One streamerd on a random loopback port, its stderr in a file."""

    def __init__(self, binary, args, workdir, label, nofile=DAEMON_NOFILE, slow=1.0):
        self.binary = binary
        self.args = list(args)
        self.workdir = workdir
        self.label = label
        self.nofile = nofile
        self.slow = slow
        self.proc = None
        self.port = None
        self.errpath = None
        self.stopped_status = None

    def start(self):
        ports = random.SystemRandom()
        for attempt in range(8):
            self.port = ports.randrange(20000, 60000)
            self.errpath = os.path.join(self.workdir, f"{self.label}.{attempt}.err")
            outpath = os.path.join(self.workdir, f"{self.label}.{attempt}.out")
            cmd = [self.binary, "--listen", f"{HOST}:{self.port}"] + self.args
            with open(self.errpath, "wb") as err, open(outpath, "wb") as out:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=err, close_fds=True,
                                             preexec_fn=_child_setup(self.nofile))
            deadline = now() + 15 * self.slow
            while now() < deadline and self.proc.poll() is None:
                try:
                    fetch_metrics(self.port, timeout=1.0)
                    if self.proc.poll() is None:
                        return self
                except (OSError, Fail, Closed, ProtocolError):
                    pass
                time.sleep(0.05)  # readiness poll step
            if self.proc.poll() is None:
                self.kill()
                raise Fail(f"daemon {self.label} not ready after {15 * self.slow:.0f} s: "
                           f"{self.log_tail(3)}")
            text = self.log_text()
            if re.search(r"bind|in use|EADDRINUSE", text, re.I):
                continue
            m = re.search(r"arguments were not expected: ?(.*)|"
                          r"(--[\w-]+)[^\n]*(not expected|unknown|unrecognized)", text)
            if m:
                raise Fail(f"daemon refused its options ({self.describe_exit()}): "
                           f"{(m.group(1) or m.group(2)).strip()}")
            raise Fail(f"daemon {self.label} exited at start ({self.describe_exit()}): "
                       f"{self.log_tail(5)}")
        raise Fail("no free port found in 8 tries")

    # -- state

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def describe_exit(self):
        rc = self.proc.poll()
        if rc is None:
            return "running"
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = "?"
            return f"killed by signal {-rc} ({name})"
        return f"exit status {rc}"

    def check_alive(self, what=""):
        if not self.alive():
            san = self.sanitizer_report()
            raise Fail(f"daemon {self.label} died{(' ' + what) if what else ''}: "
                       f"{self.describe_exit()}"
                       + (f"; {san}" if san else f"; log: {self.log_tail(3)}"))

    def log_text(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_bytes(self):
        try:
            return os.path.getsize(self.errpath)
        except OSError:
            return 0

    def log_tail(self, n):
        lines = [line for line in self.log_text().splitlines() if line.strip()]
        return " | ".join(line[:200] for line in lines[-n:]) or "(empty log)"

    def sanitizer_report(self):
        for line in self.log_text().splitlines():
            if SANITIZER_RE.search(line):
                return "sanitizer: " + line.strip()[:300]
        return ""

    def proc_status(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise Fail(f"no {field} in /proc/{self.pid}/status")

    def rss_kib(self):
        return self.proc_status("VmRSS")

    def threads(self):
        return self.proc_status("Threads")

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self, timeout=5.0):
        self.check_alive()
        try:
            return fetch_metrics(self.port, timeout=timeout * self.slow)
        except (OSError, Closed, ProtocolError) as e:
            self.check_alive("during GET /metrics")
            raise Fail(f"GET /metrics: {e!r}")

    # -- end

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, seconds=15):
        """SIGTERM, then wait; returns "" or why the stop was not clean."""
        if self.proc is None:
            return ""
        if self.proc.poll() is not None:
            return ""  # its death is reported by whoever saw it
        self.proc.terminate()
        try:
            self.proc.wait(seconds * self.slow)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"daemon {self.label} still running {seconds * self.slow:.0f} s after SIGTERM"
        san = self.sanitizer_report()
        if san:
            return f"daemon {self.label}: {san}"
        if self.proc.returncode != 0:
            return f"daemon {self.label}: {self.describe_exit()} after SIGTERM: {self.log_tail(2)}"
        return ""


def daemon_options(binary):
    """The options a daemon binary lists in its --help."""
    try:
        out = subprocess.run([binary, "--help"], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=20).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit(f"faults.py: cannot run {binary} --help: {e}")
    return set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", out))


def sanitized_binary(binary):
    """True if the binary is built with AddressSanitizer."""
    try:
        with open(binary, "rb") as f:
            tail = b""
            while True:
                block = f.read(1 << 20)
                if not block:
                    return False
                if b"__asan_init" in tail + block:
                    return True
                tail = block[-16:]
    except OSError:
        return False


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


# ---------------------------------------------------------------------------
# the run: phases share a context

class Context:
    def __init__(self, binary, seed, scale, slow, workdir, verbose):
        self.binary = binary
        self.seed = seed
        self.scale = scale
        self.slow = slow
        self.workdir = workdir
        self.verbose = verbose
        self.options = daemon_options(binary)
        self.daemons = []
        self.stop = threading.Event()
        self.phase = None

    def rng(self, *parts):
        """A generator that depends only on the seed and `parts`."""
        return random.Random("/".join(str(p) for p in (self.seed,) + parts))

    def n(self, count, minimum=1):
        return max(minimum, int(round(count * self.scale)))

    def log(self, msg):
        if self.verbose:
            print(f"#   [{self.phase}] {msg}", flush=True)

    def daemon(self, label, args, optional=(), nofile=DAEMON_NOFILE):
        """Starts a daemon; every --option in `args` must be in its --help
        (else the phase fails: "daemon refused option X"); the (option,
        value) pairs of `optional` are passed only if it knows them."""
        for a in args:
            if a.startswith("--") and a not in self.options:
                raise Fail(f"daemon refused option {a} (not in its --help; the phase needs it)")
        full = ["--log-level", "info", "--drain-timeout", "1"]
        if "--file-dir" in self.options:
            full += ["--file-dir", self.workdir]
        full += list(args)
        self.skipped = []
        for opt, value in optional:
            if opt in self.options:
                full += [opt, value]
            else:
                self.skipped.append(opt)
        d = Daemon(self.binary, full, self.workdir, f"{self.phase}-{label}",
                   nofile=nofile, slow=self.slow)
        self.daemons.append(d)
        self.log(f"starting {label}: {' '.join(shlex.quote(a) for a in full)}")
        return d.start()

    def stop_daemons(self):
        problems = []
        for d in self.daemons:
            why = d.stop()
            if why:
                problems.append(why)
        self.daemons = []
        return problems

    def kill_daemons(self):
        for d in self.daemons:
            try:
                d.kill()
            except Exception:
                pass


def gauges(d):
    m = d.metrics()
    return {
        "fds": d.fds(),
        "readers": m.get("streamerd_readers"),
        "connections": m.get("streamerd_connections"),
        "streams": m.get("streamerd_streams"),
    }


def fmt_gauges(g, keys=("fds", "readers", "connections", "streams")):
    return " ".join(f"{k}={'-' if g.get(k) is None else '%g' % g[k]}" for k in keys)


def await_baseline(d, base, keys, seconds, slack=None, what="after the clients left"):
    """Polls until every gauge in `keys` is at most its baseline (+ slack);
    returns the values seen, or fails after `seconds`."""
    slack = slack or {}
    deadline = now() + seconds * d.slow
    while True:
        d.check_alive(what)
        cur = gauges(d)
        over = [k for k in keys if base.get(k) is not None and cur.get(k) is not None
                and cur[k] > base[k] + slack.get(k, 0)]
        if not over:
            return cur
        if now() > deadline:
            raise Fail(f"{what}: not back to the baseline within {seconds * d.slow:.0f} s: "
                       + ", ".join(f"{k} {cur[k]:g} (baseline {base[k]:g}"
                                   + (f" + {slack[k]}" if slack.get(k) else "") + ")"
                                   for k in over))
        time.sleep(0.1)  # poll step


def require_metrics(d, names):
    m = d.metrics()
    missing = [n for n in names if n not in m]
    if missing:
        raise Fail("/metrics has no " + ", ".join(missing) + " (the daemon must export it)")
    return m


def healthy(ctx, d, tag):
    """The daemon is alive and serves: an upload read back, then deleted."""
    d.check_alive(f"({tag})")
    rng = ctx.rng("health", tag, d.label)
    data = rng.randbytes(65536 + rng.randrange(4096))
    name = f"health-{rng.randrange(10**9)}"
    try:
        status, body = put(d.port, name, data, timeout=10 * ctx.slow)
        if status != 201:
            raise Fail(f"health check ({tag}): PUT /streams/{name} answered {status}")
        resp, got, state = http(d.port, "GET", f"/streams/{name}", timeout=10 * ctx.slow)
        if resp.status != 200 or got != data or state != "complete":
            raise Fail(f"health check ({tag}): GET /streams/{name}: {resp.status}, "
                       f"{len(got)} of {len(data)} bytes, {state}, "
                       f"{'same' if got == data else 'different'} bytes")
        resp, _, _ = http(d.port, "DELETE", f"/streams/{name}", timeout=10 * ctx.slow)
        if resp.status != 204:
            raise Fail(f"health check ({tag}): DELETE /streams/{name} answered {resp.status}")
    except (OSError, Closed, ProtocolError) as e:
        d.check_alive(f"({tag})")
        raise Fail(f"health check ({tag}): {e!r}")


# ---------------------------------------------------------------------------
# phase: abandon

ABANDON_KINDS = [  # (kind, weight); the first group stops mid-way
    ("request_line", 10), ("headers_sent", 10), ("response_header", 15), ("mid_body", 15),
    ("queued", 10), ("wait_name", 10), ("upload", 10),
    # ordinary clients, whose bytes are checked
    ("roundtrip", 5), ("complete", 4), ("range", 5), ("follow", 4), ("demo", 1), ("metrics", 1),
]
ORDINARY = {"roundtrip", "complete", "range", "follow", "demo", "metrics"}


def _cut(conn, rng):
    """Ends an abandoning client: a plain close or a reset, by the seed."""
    if rng.random() < 0.5:
        conn.close()
        return "close"
    conn.reset()
    return "reset"


def _abandon_client(ctx, i, env):
    """One client of the abandon phase. Returns (kind, None) or (kind, error)."""
    rng = ctx.rng("abandon", "client", i)
    kind = rng.choices([k for k, _ in ABANDON_KINDS], [w for _, w in ABANDON_KINDS])[0]
    if ctx.stop.is_set():
        return kind, "skipped"
    A, B = env["A"], env["B"]
    t = 10.0 * ctx.slow
    target = rng.choice(["/streams/demo", "/streams/complete", "/streams/live"])
    c = None
    try:
        if kind == "request_line":
            c = Conn(A.port, timeout=t)
            req = c.request_bytes("GET", target)
            c.send(req[:rng.randrange(0, req.index(CRLF))])
            _cut(c, rng)
        elif kind == "headers_sent":
            c = Conn(A.port, timeout=t)
            if rng.random() < 0.5:
                c.request("GET", target)
            else:
                c.request("PUT", f"/streams/up-{ctx.seed}-{i}", [("Content-Length", "1000")])
                env["uploads"].append(f"up-{ctx.seed}-{i}")
            _cut(c, rng)
        elif kind in ("response_header", "mid_body"):
            c = Conn(A.port, timeout=t)
            hdrs = []
            if target != "/streams/demo" and rng.random() < 0.3:
                hdrs = [("Range", f"bytes={rng.randrange(0, 100000)}-")]
            c.request("GET", target, hdrs)
            if kind == "response_header" and rng.random() < 0.5:
                c.fill(rng.randrange(1, 200))  # a random part of the header
            else:
                resp = c.read_head()
                if resp.status not in (200, 206):
                    return kind, f"GET {target} {hdrs}: {resp.status}"
                if kind == "mid_body":
                    limit = rng.randrange(1, 200 if target == "/streams/demo" else 200000)
                    c.read_body(resp, limit=limit, deadline=now() + 1.5)
            _cut(c, rng)
        elif kind == "queued":
            # B's three slots are held for the whole phase: this one waits
            c = Conn(B.port, timeout=t)
            c.request("GET", "/streams/q")
            time.sleep(rng.uniform(0, 0.3))  # the abandon point, not a wait for a condition
            _cut(c, rng)
        elif kind == "wait_name":
            c = Conn(A.port, timeout=t)
            c.request("GET", f"/streams/nx-{ctx.seed}-{i}?wait=5")
            time.sleep(rng.uniform(0, 0.3))  # the abandon point
            _cut(c, rng)
        elif kind == "upload":
            name = f"up-{ctx.seed}-{i}"
            size = rng.randrange(1000, 300000)
            data = rng.randbytes(size)
            cut = rng.randrange(0, size)
            env["uploads"].append(name)
            if rng.random() < 0.5:
                up = LiveUpload(A.port, name, timeout=t)
            else:
                up = LiveUpload(A.port, name, timeout=t, content_length=size)
            c = up.conn
            for off in range(0, cut, 32768):
                up.feed(data[off:min(cut, off + 32768)])
            _cut(c, rng)
        elif kind == "roundtrip":
            name = f"ok-{ctx.seed}-{i}"
            data = rng.randbytes(rng.randrange(0, 200000))
            status, body = put(A.port, name, data, chunked=rng.random() < 0.5, timeout=t)
            if status != 201:
                return kind, f"PUT /streams/{name} ({len(data)} bytes): {status} {body[:100]!r}"
            resp, got, state = http(A.port, "GET", f"/streams/{name}", timeout=t)
            if resp.status != 200 or state != "complete" or sha(got) != sha(data):
                return kind, (f"GET /streams/{name}: {resp.status}, {state}, {len(got)} of "
                              f"{len(data)} bytes, sha256 {'ok' if got == data else 'differs'}")
            resp, _, _ = http(A.port, "DELETE", f"/streams/{name}", timeout=t)
            if resp.status != 204:
                return kind, f"DELETE /streams/{name}: {resp.status}"
        elif kind == "complete":
            data = env["complete"]
            resp, got, state = http(A.port, "GET", "/streams/complete", timeout=t)
            if resp.status != 200 or state != "complete" or got != data \
                    or resp.get("content-length") != str(len(data)):
                return kind, (f"GET /streams/complete: {resp.status}, {state}, {len(got)} of "
                              f"{len(data)} bytes, Content-Length {resp.get('content-length')}, "
                              f"sha256 {'ok' if got == data else 'differs'}")
        elif kind == "range":
            data = env["complete"]
            n = len(data)
            if rng.random() < 0.2:
                k = rng.randrange(1, n)
                spec, first, last = f"-{k}", n - k, n - 1
            else:
                first = rng.randrange(0, n)
                last = rng.randrange(first, n)
                spec = f"{first}-{last}"
            resp, got, state = http(A.port, "GET", "/streams/complete",
                                    [("Range", f"bytes={spec}")], timeout=t)
            want_cr = f"bytes {first}-{last}/{n}"
            if resp.status != 206 or resp.get("content-range") != want_cr \
                    or state != "complete" or got != data[first:last + 1]:
                return kind, (f"Range bytes={spec}: {resp.status}, Content-Range "
                              f"{resp.get('content-range')!r} (want {want_cr!r}), {state}, "
                              f"{len(got)} bytes, {'ok' if got == data[first:last + 1] else 'wrong'}")
        elif kind == "follow":
            live = env["live"]
            c = Conn(A.port, timeout=t)
            c.request("GET", "/streams/live")
            resp = c.read_head()
            if resp.status != 200 or not resp.chunked():
                return kind, f"GET /streams/live: {resp.status}, chunked {resp.chunked()}"
            k = rng.randrange(1, 65536)
            got, state = c.read_body(resp, limit=k, deadline=now() + 5 * ctx.slow)
            want = live.snapshot()[:len(got)]
            if got != want or len(got) == 0:
                return kind, f"GET /streams/live: {len(got)} bytes ({state}) not a prefix of the upload"
            c.close()
        elif kind == "demo":
            c = Conn(A.port, timeout=t)
            c.request("GET", "/streams/demo")
            resp = c.read_head()
            got, state = c.read_body(resp, limit=1, deadline=now() + 3 * ctx.slow)
            if resp.status == 200 and not got.startswith(b"streamerd demo line "):
                return kind, f"GET /streams/demo: first bytes {got[:40]!r}"
            if resp.status != 200 or not got:
                return kind, f"GET /streams/demo: {resp.status}, {len(got)} bytes"
            c.close()
        elif kind == "metrics":
            fetch_metrics(A.port, timeout=t)
        return kind, None
    except (OSError, Closed, ProtocolError, Fail) as e:
        if ctx.stop.is_set():
            return kind, "skipped"
        return kind, f"{type(e).__name__}: {e}"
    finally:
        if c is not None:
            c.close()


def phase_abandon(ctx):
    n = ctx.n(2000)
    rng = ctx.rng("abandon")
    A = ctx.daemon("main", ["--max-readers", "200", "--queue-timeout", "10",
                            "--max-wait", "30"])
    B = ctx.daemon("capped", ["--no-demo", "--max-readers", "3", "--queue-timeout", "30"])
    t = 10 * ctx.slow
    complete = rng.randbytes(1 << 20)
    status, body = put(A.port, "complete", complete)
    if status != 201:
        raise Fail(f"setup: PUT /streams/complete: {status} {body[:100]!r}")
    live = LiveUpload(A.port, "live", timeout=t)
    live.feed(rng.randbytes(262144))
    live.start_feeder(ctx.rng("abandon", "live"), 2048, 0.02, 16 << 20, ctx.stop)
    q = LiveUpload(B.port, "q", timeout=t)
    q.feed(b"q" * 1024)
    holders = []
    for _ in range(3):
        c = Conn(B.port, timeout=t)
        c.request("GET", "/streams/q?wait=10")
        resp = c.read_head()
        if resp.status != 200:
            raise Fail(f"setup: a reader of B's stream q got {resp.status}")
        got, _ = c.read_body(resp, limit=1024, deadline=now() + t)
        if len(got) < 1024:
            raise Fail("setup: a reader of B's stream q did not get its first bytes")
        holders.append(c)
    healthy(ctx, A, "before")
    base_a, base_b = gauges(A), gauges(B)
    ctx.log(f"baseline A {fmt_gauges(base_a)}; B {fmt_gauges(base_b)}")

    env = {"A": A, "B": B, "complete": complete, "live": live, "uploads": []}
    counts, errors = {}, []
    died = None
    t0 = now()
    done = 0
    workers = 32
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = set()
        next_i = 0
        deadline = t0 + 120 * ctx.slow
        while (next_i < n or pending) and now() < deadline:
            while next_i < n and len(pending) < 2 * workers and died is None:
                pending.add(pool.submit(_abandon_client, ctx, next_i, env))
                next_i += 1
            finished = {f for f in pending if f.done()}
            for f in finished:
                kind, err = f.result()
                pending.discard(f)
                if err == "skipped":
                    continue
                done += 1
                counts[kind] = counts.get(kind, 0) + 1
                if err:
                    errors.append((kind, err))
            if died is None:
                for d in (A, B):
                    if not d.alive():
                        died = (d, now() - t0, done)
                        ctx.stop.set()
            if died is not None and next_i >= n and not pending:
                break
            if died is not None:
                next_i = n  # submit no more
            if not finished:
                time.sleep(0.005)  # poll step of the completion loop
        if next_i < n or pending:
            ctx.stop.set()
            raise Fail(f"clients still running after {120 * ctx.slow:.0f} s "
                       f"({done} of {n} done)")
    elapsed = now() - t0
    if died is not None:
        d, at, k = died
        first = f"; first client errors: {errors[:2]}" if errors else ""
        raise Fail(f"daemon {d.label} {d.describe_exit()} {at:.2f} s into the phase, after "
                   f"{k} of {n} clients (seed {ctx.seed}){first}; "
                   f"{d.sanitizer_report() or 'log: ' + d.log_tail(2)}")
    if errors:
        A.check_alive()
        B.check_alive()
        raise Fail(f"{len(errors)} client(s) failed, e.g. " +
                   "; ".join(f"{k}: {e}" for k, e in errors[:3]))
    # the uploads that were cut: delete their streams
    for name in env["uploads"]:
        resp, _, _ = http(A.port, "DELETE", f"/streams/{name}", timeout=t)
        if resp.status not in (204, 404):
            raise Fail(f"DELETE /streams/{name} (an upload cut mid-way): {resp.status}")
    keys = ("fds", "readers", "connections", "streams")
    after_a = await_baseline(A, base_a, keys, 20, what="daemon main after the clients left")
    after_b = await_baseline(B, base_b, keys, 20, what="daemon capped after the clients left")
    # the live stream, complete and read back whole
    if live.feed_error is not None:
        raise Fail(f"feeding the live upload: {live.feed_error!r}")
    status, body = live.finish()
    data = live.snapshot()
    if status != 201:
        raise Fail(f"the live upload, finished: {status} {body[:100]!r}")
    resp, got, state = http(A.port, "GET", "/streams/live", timeout=30 * ctx.slow)
    if resp.status != 200 or state != "complete" or sha(got) != sha(data):
        raise Fail(f"GET /streams/live after the upload ended: {resp.status}, {state}, "
                   f"{len(got)} of {len(data)} bytes")
    for c in holders:
        c.close()
    q.abort(reset=False)
    healthy(ctx, A, "after")
    healthy(ctx, B, "after")
    require_metrics(A, ["streamerd_connections", "streamerd_readers"])
    cut = sum(v for k, v in counts.items() if k not in ORDINARY)
    checked = sum(v for k, v in counts.items() if k in ORDINARY)
    return (f"{done} clients in {elapsed:.1f} s: {cut} cut "
            f"[{', '.join(f'{k} {counts.get(k, 0)}' for k, _ in ABANDON_KINDS if k not in ORDINARY)}], "
            f"{checked} checked [{', '.join(f'{k} {counts.get(k, 0)}' for k in sorted(ORDINARY))}]; "
            f"live stream {len(data)} bytes intact; main {fmt_gauges(base_a)} -> "
            f"{fmt_gauges(after_a)}; capped {fmt_gauges(base_b)} -> {fmt_gauges(after_b)}")


# ---------------------------------------------------------------------------
# phase registry and main

PHASES = {}


def phase(name):
    def register(fn):
        PHASES[name] = fn
        return fn
    return register


phase("abandon")(phase_abandon)


def run_phase(ctx, name):
    ctx.phase = name
    ctx.stop = threading.Event()
    t0 = now()
    limit = int(150 * ctx.slow)

    def on_alarm(signum, frame):
        raise Fail(f"phase still running after {limit} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    result, why = None, None
    try:
        result = PHASES[name](ctx)
    except Fail as e:
        why = str(e)
    except Exception as e:  # a bug of the suite, or an unexpected client error
        why = f"{type(e).__name__}: {e}"
        if ctx.verbose:
            traceback.print_exc()
        for d in ctx.daemons:
            if not d.alive():
                why += f" (daemon {d.label} {d.describe_exit()})"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        ctx.stop.set()
    if why is not None and ctx.verbose:
        for d in ctx.daemons:
            print(f"#   [{name}] {d.label} log tail: {d.log_tail(8)}")
    problems = ctx.stop_daemons()
    if why is None and problems:
        why = "; ".join(problems)
    secs = now() - t0
    if why is None:
        print(f"ok {name} ({result}; {secs:.1f} s)", flush=True)
        return True
    print(f"FAIL {name}: {why} [{secs:.1f} s]", flush=True)
    return False


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Seeded fault injection against streamerd (see docs/streamerd.md).")
    ap.add_argument("--daemon", required=True, help="path of the streamerd binary")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    ap.add_argument("--phase", action="append", choices=list(PHASES), default=None,
                    help="a phase to run (repeatable; default: all)")
    ap.add_argument("--scale", type=float, default=None,
                    help="multiplies client counts (default 1, 0.5 for an ASan daemon)")
    ap.add_argument("--sanitized", choices=["auto", "yes", "no"], default="auto",
                    help="the daemon is an ASan build: fewer clients, longer deadlines "
                         "(default: detected from the binary)")
    ap.add_argument("--keep", action="store_true", help="keep the daemons' logs")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    binary = os.path.abspath(args.daemon)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"faults.py: {args.daemon} is not an executable", file=sys.stderr)
        return 2
    asan = sanitized_binary(binary) if args.sanitized == "auto" else args.sanitized == "yes"
    scale = args.scale if args.scale is not None else (0.5 if asan else 1.0)
    slow = 3.0 if asan else 1.0
    phases = args.phase or list(PHASES)
    replay = ["python3", os.path.relpath(os.path.abspath(__file__)), "--daemon", args.daemon,
              "--seed", str(seed)]
    for p in args.phase or []:
        replay += ["--phase", p]
    if args.scale is not None:
        replay += ["--scale", str(args.scale)]
    print(f"seed {seed}", flush=True)
    print(f"replay: {' '.join(shlex.quote(a) for a in replay)}", flush=True)
    print(f"# daemon {binary}{' (AddressSanitizer build)' if asan else ''}, scale {scale:g}, "
          f"phases {' '.join(phases)}", flush=True)

    # our own clients need many descriptors (1000 idle connections at once)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(16384, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2048:
        print(f"# warning: only {want} descriptors for the clients", flush=True)

    workdir = tempfile.mkdtemp(prefix="streamerd-faults.")
    ctx = Context(binary, seed, scale, slow, workdir, args.verbose)

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
        ctx.stop.set()
        ctx.kill_daemons()
        if args.keep or failed:
            print(f"# daemon logs in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed (seed {seed}, {now() - t0:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
