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

    def await_data(self):
        """Blocks (up to the timeout) until some bytes past what was read are
        buffered; False at EOF. Consumes nothing."""
        return bool(self.buf) or self.fill()

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
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
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

    def __init__(self, binary, args, workdir, label, nofile=DAEMON_NOFILE, slow=1.0, env=None):
        self.binary = binary
        self.args = list(args)
        self.workdir = workdir
        self.label = label
        self.nofile = nofile
        self.slow = slow
        self.env = env
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
                                             stderr=err, close_fds=True, env=self.env,
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
        if self.proc.poll() is not None:  # (a phase that saw it die reports that instead)
            return f"daemon {self.label} had died: {self.describe_exit()}"
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
    def __init__(self, binary, seed, scale, slow, workdir, verbose, kinds=None):
        self.binary = binary
        self.kinds = kinds  # abandon: the client kinds to draw from (default all)
        # the daemons' timeouts (--header-timeout 2 ...) are multiplied by it
        self.tscale = 2 if slow > 1 else 1
        self.sanitized = slow > 1
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

    def daemon(self, label, args, optional=(), nofile=DAEMON_NOFILE, env=None):
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
                   nofile=nofile, slow=self.slow, env=env)
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
    fds = d.fds()  # before our /metrics connection adds one
    m = d.metrics()
    return {
        "fds": fds,
        "readers": m.get("streamerd_readers"),
        "connections": m.get("streamerd_connections"),
        "streams": m.get("streamerd_streams"),
    }


def baseline(d):
    """gauges() once the daemon's descriptor count has settled (a stream
    deleted just before may still be closing its file)."""
    settle(d, 5 * d.slow, quiet=0.5)
    return gauges(d)


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
            raise Fail(f"health check ({tag}): PUT /streams/{name} answered {status} {body[:80]!r}")
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


def cut(conn, rng):
    """Ends an abandoning client: a plain close or a reset, by the seed."""
    if rng.random() < 0.5:
        conn.close()
        return "close"
    conn.reset()
    return "reset"


def _abandon_client(ctx, i, env):
    """One client of the abandon phase. Returns (kind, None) or (kind, error)."""
    rng = ctx.rng("abandon", "client", i)
    kinds = [(k, w) for k, w in ABANDON_KINDS if not ctx.kinds or k in ctx.kinds]
    kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
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
            cut(c, rng)
        elif kind == "headers_sent":
            c = Conn(A.port, timeout=t)
            if rng.random() < 0.5:
                c.request("GET", target)
            else:
                c.request("PUT", f"/streams/up-{ctx.seed}-{i}", [("Content-Length", "1000")])
                env["uploads"].append(f"up-{ctx.seed}-{i}")
            cut(c, rng)
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
            cut(c, rng)
        elif kind == "queued":
            # B's three slots are held: this one waits (--queue-timeout 1), and
            # leaves before or after its 503
            c = Conn(B.port, timeout=t)
            c.request("GET", "/streams/q")
            time.sleep(rng.uniform(0, 1.5))  # the abandon point, not a wait for a condition
            cut(c, rng)
        elif kind == "wait_name":
            c = Conn(A.port, timeout=t)
            c.request("GET", f"/streams/nx-{ctx.seed}-{i}?wait=5")
            time.sleep(rng.uniform(0, 0.3))  # the abandon point
            cut(c, rng)
        elif kind == "upload":
            name = f"up-{ctx.seed}-{i}"
            size = rng.randrange(1000, 300000)
            data = rng.randbytes(size)
            stop_at = rng.randrange(0, size)
            env["uploads"].append(name)
            if rng.random() < 0.5:
                up = LiveUpload(A.port, name, timeout=t)
            else:
                up = LiveUpload(A.port, name, timeout=t, content_length=size)
            c = up.conn
            for off in range(0, stop_at, 32768):
                up.feed(data[off:min(stop_at, off + 32768)])
            cut(c, rng)
            if rng.random() < 0.5:  # at once, racing the daemon's own end of the upload
                resp, _, _ = http(A.port, "DELETE", f"/streams/{name}", timeout=t)
                if resp.status not in (204, 404):
                    return kind, f"DELETE /streams/{name} right after the cut: {resp.status}"
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


class SlotRotator:
    """Keeps the reader slots of a capped stream busy and turning over: up to
    `slots` readers hold them, one more waits; every `period` s the oldest
    holder (if any) leaves, so a freed slot passes to whoever waits, an
    abandoned waiter or not. Each holder checks the stream's first bytes."""

    def __init__(self, port, path, slots, first, rng, period, timeout, stop):
        self.port, self.path, self.slots, self.first = port, path, slots, first
        self.rng, self.period, self.timeout, self.stop = rng, period, timeout, stop
        self.errors = []
        self.rotations = 0
        self.turned_away = 0
        self.holding = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rotator")

    def start(self):
        self._thread.start()

    def await_holding(self, seconds):
        deadline = now() + seconds
        while self.holding < self.slots and now() < deadline and not self.errors:
            time.sleep(0.02)  # poll step
        if self.holding < self.slots:
            raise Fail(f"setup: only {self.holding} of {self.slots} readers of the capped "
                       f"stream got a slot ({self.errors[:1]})")

    def finish(self):
        self._done.set()
        self._thread.join(30)

    def _run(self):
        waiting, holding = [], []  # [(conn, since)]
        next_turn = now() + self.period
        try:
            for _ in range(10**6):
                if self._done.is_set() or self.stop.is_set():
                    return
                while len(waiting) + len(holding) < self.slots + 1:
                    c = Conn(self.port, timeout=self.timeout)
                    c.request("GET", self.path)
                    waiting.append((c, now()))
                ready = selectors.DefaultSelector()
                for c, _ in waiting:
                    ready.register(c.sock, selectors.EVENT_READ, c)
                got = {key.data for key, _ in ready.select(0.02)}
                ready.close()
                for c, since in list(waiting):
                    if c in got:
                        waiting.remove((c, since))
                        resp = c.read_head()
                        body, _ = c.read_body(resp, limit=len(self.first),
                                              deadline=now() + self.timeout)
                        if resp.status == 503:  # waited over --queue-timeout: intended
                            self.turned_away += 1
                            c.close()
                        elif resp.status != 200 or body[:len(self.first)] != self.first:
                            self.errors.append(f"a reader got {resp.status}, {body[:20]!r}")
                            c.close()
                        else:
                            holding.append((c, now()))
                    elif now() - since > 20:
                        self.errors.append("a reader waited 20 s for a slot while slots "
                                           "turned over")
                        return
                self.holding = len(holding)
                if holding and now() >= next_turn:
                    c, _ = holding.pop(0)
                    cut(c, self.rng)
                    self.rotations += 1
                    next_turn = now() + self.period
        except (OSError, Closed, ProtocolError) as e:
            if not self.stop.is_set():
                self.errors.append(repr(e))
        finally:
            for c, _ in waiting + holding:
                c.close()


def phase_abandon(ctx):
    n = ctx.n(2000)
    rng = ctx.rng("abandon")
    # the streams of cut uploads are deleted right after the cut, and again at
    # the end (the daemon may register one after that first DELETE): room for
    # all of them all the same
    A = ctx.daemon("main", ["--max-readers", "200", "--queue-timeout", "10",
                            "--max-wait", "30"], optional=[("--max-streams", str(n + 1000))])
    B = ctx.daemon("capped", ["--no-demo", "--max-readers", "3", "--queue-timeout", "1"])
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
    healthy(ctx, A, "before")
    healthy(ctx, B, "before")
    base_a, base_b = baseline(A), baseline(B)
    ctx.log(f"baseline A {fmt_gauges(base_a)}; B {fmt_gauges(base_b)}")
    rotator = SlotRotator(B.port, "/streams/q?wait=10", 3, b"q" * 1024,
                          ctx.rng("abandon", "rotator"), 0.1, t, ctx.stop)
    rotator.start()
    rotator.await_holding(t)

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
    rotator.finish()
    if rotator.errors:
        raise Fail(f"the readers that keep B's slots busy: {rotator.errors[:3]}")
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
    q.abort(reset=False)
    healthy(ctx, A, "after")
    healthy(ctx, B, "after")
    require_metrics(A, ["streamerd_connections", "streamerd_readers"])
    n_cut = sum(v for k, v in counts.items() if k not in ORDINARY)
    checked = sum(v for k, v in counts.items() if k in ORDINARY)
    return (f"{done} clients in {elapsed:.1f} s: {n_cut} cut "
            f"[{', '.join(f'{k} {counts.get(k, 0)}' for k, _ in ABANDON_KINDS if k not in ORDINARY)}], "
            f"{checked} checked [{', '.join(f'{k} {counts.get(k, 0)}' for k in sorted(ORDINARY))}]; "
            f"live stream {len(data)} bytes intact; {rotator.rotations} slots of capped "
            f"freed and passed on ({rotator.turned_away} waiters turned away with 503); main {fmt_gauges(base_a)} -> "
            f"{fmt_gauges(after_a)}; capped {fmt_gauges(base_b)} -> {fmt_gauges(after_b)}")


# ---------------------------------------------------------------------------
# phase: fdlimit


def settle(d, seconds, quiet=1.0):
    """Polls the daemon's descriptor count until it has not changed for
    `quiet` s (at most `seconds`); returns it."""
    deadline = now() + seconds
    last, since = d.fds(), now()
    while now() < deadline:
        time.sleep(0.1)  # poll step
        d.check_alive("while its descriptors were filling up")
        cur = d.fds()
        if cur != last:
            last, since = cur, now()
        elif now() - since >= quiet:
            break
    return last


def probe(port, method, path, body=None, timeout=3.0):
    """One request on a new connection: its status, "closed", or "no answer"
    (still in the listen backlog, or not answered within `timeout`)."""
    try:
        c = Conn(port, timeout=timeout)
    except socket.timeout:
        return "no connection"
    except OSError as e:
        return f"connect: {e.strerror or e}"
    try:
        c.request(method, path, body=body, close=True)
        return str(c.read_head().status)
    except socket.timeout:
        return "no answer"
    except (Closed, OSError):
        return "closed"
    finally:
        c.close()


def ubsan_env_without_vptr(workdir):
    """The environment with UBSAN_OPTIONS' suppressions plus `vptr:*`.

    At the descriptor limit UBSan's vptr check misfires: to see whether an
    object's memory is readable it writes it into a pipe it creates
    (IsAccessibleMemoryRange in sanitizer_common), and with no descriptor
    left for that pipe every dynamic-type check reports "object has invalid
    vptr" ("<memory cannot be printed>"), e.g. for Boost's error_category or
    CAF's tuple_vals_impl. The fdlimit daemon of a sanitized build therefore
    runs without vptr reports; every other check stays on."""
    env = dict(os.environ)
    opts = env.get("UBSAN_OPTIONS", "")
    lines = ["vptr:*"]
    kept = []
    for opt in filter(None, opts.split(":")):
        key, _, value = opt.partition("=")
        if key == "suppressions":
            try:
                with open(value) as f:
                    lines.append(f.read())
            except OSError:
                pass
        else:
            kept.append(opt)
    path = os.path.join(workdir, "ubsan-fdlimit.supp")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    env["UBSAN_OPTIONS"] = ":".join(kept + [f"suppressions={path}"])
    return env


def phase_fdlimit(ctx):
    limit = 96
    env = ubsan_env_without_vptr(ctx.workdir) if ctx.sanitized else None
    d = ctx.daemon("limited", ["--no-demo"], nofile=(limit, limit), env=env)
    rng = ctx.rng("fdlimit")
    t = 5 * ctx.slow
    healthy(ctx, d, "before")
    base = baseline(d)
    log0 = d.log_bytes()
    uploads, idle = [], []
    try:
        for i in range(8):  # a socket and a stream file each
            up = LiveUpload(d.port, f"fd-{i}", timeout=t)
            up.feed(rng.randbytes(1000))
            uploads.append(up)
        for _ in range(2 * limit):  # more than it can hold: the rest wait in the backlog
            try:
                idle.append(Conn(d.port, timeout=t))
            except OSError:
                break
        full = settle(d, 10 * ctx.slow)
        d.check_alive("at its descriptor limit")
        # new requests at the limit, at once: each must get a 503 (or a
        # close) within the probe timeout, not wait in the backlog
        outcomes = {}
        probes = [("new GET /metrics", "GET", "/metrics", None),
                  ("new PUT", "PUT", "/streams/fd-probe", b"x" * 1000)]

        def run_probe(label, method, path, body):
            outcomes[label] = probe(d.port, method, path, body=body, timeout=5 * ctx.slow)

        threads = [threading.Thread(target=run_probe, args=p, daemon=True) for p in probes]
        for th in threads:
            th.start()
        for th in threads:
            th.join(20 * ctx.slow)
        try:  # the first idle connection was accepted while there was room
            idle[0].request("GET", "/metrics")
            resp = idle[0].read_head()
            idle[0].read_body(resp)
            outcomes["accepted idle GET /metrics"] = str(resp.status)
        except socket.timeout:
            outcomes["accepted idle GET /metrics"] = "no answer"
        except (Closed, OSError):
            outcomes["accepted idle GET /metrics"] = "closed"
        d.check_alive("after requests at its descriptor limit")
        unanswered = [k for k, _, _, _ in probes
                      if not re.fullmatch(r"closed|\d{3}", outcomes.get(k, ""))]
        # a window at the limit, with connections waiting in the backlog
        window = 3.0
        cpu0, logw0 = d.cpu_seconds(), d.log_bytes()
        time.sleep(window)  # a measurement window, not a wait for a condition
        d.check_alive("at its descriptor limit")
        cpu, logw = d.cpu_seconds() - cpu0, d.log_bytes() - logw0
        if cpu > 0.6:
            raise Fail(f"busy at its descriptor limit: {cpu:.2f} CPU-s in a {window:.0f} s window "
                       f"({full} descriptors of {limit}); log grew {logw} bytes meanwhile")
        if logw > 16384:
            raise Fail(f"its log grew {logw} bytes in a {window:.0f} s window at its descriptor limit "
                       f"(e.g. {d.log_tail(1)})")
    finally:
        for c in idle:
            c.close()
    statuses = []
    for up in uploads:
        try:
            status, _ = up.finish()
        except (OSError, Closed, ProtocolError) as e:
            d.check_alive("after its clients left")
            status = repr(e)
        statuses.append(status)
    if any(s != 201 for s in statuses):
        raise Fail(f"uploads started before the limit was hit, finished after: {statuses} "
                   "(expected 201 each)")
    for i in range(8):
        resp, _, _ = http(d.port, "DELETE", f"/streams/fd-{i}", timeout=t)
        if resp.status != 204:
            raise Fail(f"DELETE /streams/fd-{i}: {resp.status}")
    http(d.port, "DELETE", "/streams/fd-probe", timeout=t)
    after = await_baseline(d, base, ("fds", "readers", "connections", "streams"), 15)
    healthy(ctx, d, "after")
    logged = d.log_bytes() - log0
    if logged > 65536:
        raise Fail(f"its log grew {logged} bytes during the phase (bound 64 KiB)")
    m = require_metrics(d, ["streamerd_accept_errors_total"])
    if unanswered:
        raise Fail("at its descriptor limit, " + ", ".join(f"{k} -> {outcomes.get(k)}" for k in unanswered)
                   + f" within {5 * ctx.slow:.0f} s (expected a 503 or a close; log: "
                   f"{d.log_tail(1)})")
    return (f"limit {limit}: {full} descriptors in use at the peak; " +
            ", ".join(f"{k} -> {v}" for k, v in outcomes.items()) +
            f"; {cpu:.2f} CPU-s in {window:.0f} s at the limit; log +{logged} bytes; "
            f"accept errors {m['streamerd_accept_errors_total']:g}; "
            f"{fmt_gauges(base)} -> {fmt_gauges(after)}")


# ---------------------------------------------------------------------------
# phase: slowheaders


def phase_slowheaders(ctx):
    ht = 2 * ctx.tscale
    n = ctx.n(300)
    d = ctx.daemon("main", ["--no-demo", "--header-timeout", str(ht),
                            "--keepalive-timeout", str(ht + 1),
                            "--max-connections", str(n + 100)],
                   nofile=max(DAEMON_NOFILE, n + 1024))
    rng = ctx.rng("slowheaders")
    small = rng.randbytes(4096)
    status, _ = put(d.port, "small", small)
    if status != 201:
        raise Fail(f"setup: PUT /streams/small: {status}")
    healthy(ctx, d, "before")
    base = baseline(d)
    m0 = d.metrics()
    head = b"GET /streams/small HTTP/1.1\r\nHost: x\r\nX-Slow: "
    lat, probe_errors = [], []
    stop_probe = threading.Event()

    def prober():
        for _ in range(100000):
            if stop_probe.is_set():
                return
            t = now()
            try:
                resp, body, state = http(d.port, "GET", "/streams/small", timeout=5 * ctx.slow)
                if resp.status != 200 or body != small or state != "complete":
                    probe_errors.append(f"{resp.status}, {len(body)} bytes, {state}")
                else:
                    lat.append(now() - t)
            except (OSError, Closed, ProtocolError) as e:
                probe_errors.append(repr(e))
            stop_probe.wait(0.05)

    sel = selectors.DefaultSelector()
    clients = []
    bad = []
    t0 = now()
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5 * ctx.slow)
            s.connect((HOST, d.port))
            s.setblocking(False)
            cl = {"i": i, "sock": s, "t0": now(), "sent": 0, "next": now(),
                  "closed": None, "data": b""}
            clients.append(cl)
            sel.register(s, selectors.EVENT_READ, cl)
        th = threading.Thread(target=prober, daemon=True)
        th.start()
        open_ = set(range(n))
        deadline = now() + ht + 8 * ctx.slow

        def closed(cl):
            cl["closed"] = now()
            open_.discard(cl["i"])
            sel.unregister(cl["sock"])
            cl["sock"].close()

        while open_ and now() < deadline:
            for key, _ in sel.select(0.02):
                cl = key.data
                try:
                    data = cl["sock"].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    cl["data"] += data
                else:
                    closed(cl)
            t = now()
            for i in list(open_):
                cl = clients[i]
                if cl["next"] > t:
                    continue
                k = cl["sent"]
                byte = head[k:k + 1] or b"a"
                try:
                    cl["sock"].send(byte)
                    cl["sent"] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed(cl)
                    continue
                cl["next"] = t + rng.uniform(0.2, 0.6)
        stop_probe.set()
        th.join(10 * ctx.slow)
        if open_:
            raise Fail(f"{len(open_)} of {n} slow clients still open {now() - t0:.1f} s after they "
                       f"started (--header-timeout {ht})")
    finally:
        stop_probe.set()
        for cl in clients:
            if cl["closed"] is None:
                cl["sock"].close()
        sel.close()
    d.check_alive("after the slow clients")
    times = [cl["closed"] - cl["t0"] for cl in clients]
    for cl in clients:
        st = re.match(rb"HTTP/1\.[01] (\d{3})", cl["data"])
        if cl["data"] and (not st or st.group(1) != b"408"):
            bad.append(f"client {cl['i']} got {cl['data'][:40]!r}")
    if bad:
        raise Fail(f"{len(bad)} slow clients got an answer other than 408 or a close, e.g. {bad[0]}")
    early = [x for x in times if x < ht - 0.5]
    late = [x for x in times if x > ht + 3 * ctx.slow]
    if early:
        raise Fail(f"{len(early)} slow clients closed after {min(early):.2f} s, before "
                   f"--header-timeout {ht}")
    if late:
        raise Fail(f"{len(late)} slow clients closed only after {max(late):.2f} s "
                   f"(--header-timeout {ht})")
    if probe_errors:
        raise Fail(f"{len(probe_errors)} ordinary requests failed meanwhile, e.g. {probe_errors[0]}")
    if len(lat) < 10:
        raise Fail(f"only {len(lat)} ordinary requests answered meanwhile")
    p50, p99, mx = percentile(lat, 50), percentile(lat, 99), max(lat)
    if p99 > 0.5 * ctx.slow or mx > 1.0 * ctx.slow:
        raise Fail(f"ordinary requests slow meanwhile: p50 {p50 * 1000:.0f} ms, p99 "
                   f"{p99 * 1000:.0f} ms, max {mx * 1000:.0f} ms")
    after = await_baseline(d, base, ("fds", "readers", "connections"), 10)
    healthy(ctx, d, "after")
    key = 'streamerd_timeouts_total{phase="header"}'
    m = require_metrics(d, [key, "streamerd_connections"])
    got = m[key] - m0.get(key, 0)
    if got < n:
        raise Fail(f"{key} grew by {got:g}, expected at least {n}")
    return (f"{n} slow clients closed after {min(times):.2f}-{max(times):.2f} s "
            f"(--header-timeout {ht}); {len(lat)} ordinary GETs meanwhile: p50 "
            f"{p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {mx * 1000:.1f} ms; header "
            f"timeouts +{got:g}; {fmt_gauges(base)} -> {fmt_gauges(after)}")


# ---------------------------------------------------------------------------
# phase: idle


def phase_idle(ctx):
    n = ctx.n(1000)
    cap = max(10, n // 2)
    ht, kt = 2 * ctx.tscale, 3 * ctx.tscale
    d = ctx.daemon("main", ["--no-demo", "--max-connections", str(cap),
                            "--header-timeout", str(ht), "--keepalive-timeout", str(kt)],
                   nofile=max(DAEMON_NOFILE, cap + 1024))
    rng = ctx.rng("idle")
    healthy(ctx, d, "before")
    base = baseline(d)
    m0 = d.metrics()
    sel = selectors.DefaultSelector()
    conns = []
    refused = 0
    t0 = now()
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(3 * ctx.slow)
            try:
                s.connect((HOST, d.port))
            except OSError:
                s.close()
                refused += 1
                continue
            asked = rng.random() < 0.5
            if asked:  # one request, then idle on a kept-alive connection
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            s.setblocking(False)
            c = {"i": i, "sock": s, "t0": now(), "asked": asked, "data": b"", "closed": None}
            conns.append(c)
            sel.register(s, selectors.EVENT_READ, c)
        opened = now() - t0
        left = len(conns)
        deadline = now() + max(ht, kt) + 8 * ctx.slow
        while left and now() < deadline:
            for key, _ in sel.select(0.05):
                c = key.data
                try:
                    data = c["sock"].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    c["data"] += data
                    continue
                c["closed"] = now()
                sel.unregister(c["sock"])
                c["sock"].close()
                left -= 1
        if left:
            raise Fail(f"{left} idle connections still open {now() - t0:.1f} s after they were "
                       f"opened (--header-timeout {ht}, --keepalive-timeout {kt})")
    finally:
        for c in conns:
            if c["closed"] is None:
                c["sock"].close()
        sel.close()
    d.check_alive("after the idle connections")
    if opened > min(ht, kt) - 0.5:
        raise Fail(f"opening {n} connections took {opened:.1f} s: too slow to test the cap")
    rejected, accepted, bad = [], [], []
    for c in conns:
        codes = re.findall(rb"HTTP/1\.[01] (\d{3})", c["data"])
        life = c["closed"] - c["t0"]
        if codes[:1] == [b"503"] or (not codes and life < min(ht, kt) - 0.5):
            rejected.append(c)
        else:
            accepted.append(c)
            if c["asked"] and codes[:1] != [b"200"]:
                bad.append(f"connection {c['i']}: answered {codes[:2]} to GET /metrics")
            if not c["asked"] and codes:
                bad.append(f"connection {c['i']} (no request): got {c['data'][:40]!r}")
            if life < min(ht, kt) - 0.5 or life > max(ht, kt) + 3 * ctx.slow:
                bad.append(f"connection {c['i']} closed after {life:.2f} s")
    if bad:
        raise Fail(f"{len(bad)} accepted idle connections misbehaved, e.g. {'; '.join(bad[:3])}")
    if len(accepted) > cap:
        raise Fail(f"{len(accepted)} connections accepted and kept, over --max-connections {cap}")
    if len(accepted) < cap - 5:
        raise Fail(f"only {len(accepted)} connections kept, --max-connections is {cap}")
    after = await_baseline(d, base, ("fds", "readers", "connections"), 10)
    healthy(ctx, d, "after")
    rej, hdr_, idl = ("streamerd_connections_rejected_total",
                      'streamerd_timeouts_total{phase="header"}',
                      'streamerd_timeouts_total{phase="idle"}')
    m = require_metrics(d, [rej, hdr_, idl, "streamerd_connections"])
    grew = {k: m[k] - m0.get(k, 0) for k in (rej, hdr_, idl)}
    if grew[rej] < len(rejected):
        raise Fail(f"{rej} grew by {grew[rej]:g}, but {len(rejected)} connections were refused")
    if grew[hdr_] + grew[idl] < len(accepted):
        raise Fail(f"header+idle timeouts grew by {grew[hdr_] + grew[idl]:g}, but "
                   f"{len(accepted)} idle connections were closed")
    ages = [c["closed"] - c["t0"] for c in accepted]
    return (f"{n} connections in {opened:.2f} s: {len(rejected)} refused (got 503: "
            f"{sum(1 for c in rejected if c['data'])}), {refused} refused at connect, "
            f"{len(accepted)} kept (cap {cap}) and closed after {min(ages):.2f}-{max(ages):.2f} s; "
            f"rejected +{grew[rej]:g}, header timeouts +{grew[hdr_]:g}, idle timeouts "
            f"+{grew[idl]:g}; {fmt_gauges(base)} -> {fmt_gauges(after)}")


# ---------------------------------------------------------------------------
# phase: noread


def stream_readers(d, name):
    return d.metrics().get(f'streamerd_stream_readers{{stream="{name}"}}', 0)


def poll(d, cond, seconds, what):
    deadline = now() + seconds
    while True:
        d.check_alive(what)
        v = cond()
        if v:
            return v
        if now() > deadline:
            raise Fail(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.05)  # poll step


SEND_DROP_LOG = re.compile(r"(send|write|sending|writing)[^\n]{0,60}(timeout|timed out)|"
                           r"(timeout|timed out)[^\n]{0,60}(send|writ|consumer|reader|slot)|"
                           r"not read|no progress|stall|dropp", re.I)


def phase_noread(ctx):
    # at most 300: each stuck consumer holds a full socket send buffer (MiBs)
    # in the kernel
    n = min(300, ctx.n(100))
    st = 2 * ctx.tscale
    d = ctx.daemon("main", ["--no-demo", "--max-readers", str(n), "--send-timeout", str(st),
                            "--queue-timeout", "30"])
    rng = ctx.rng("noread")
    # big enough that a consumer that does not read stalls the daemon's send
    # (its socket buffer grows up to tcp_wmem's maximum)
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem = 4 << 20
    size = min(64 << 20, max(16 << 20, 2 * wmem + (1 << 20)))
    big = rng.randbytes(size)
    status, _ = put(d.port, "big", big, timeout=60 * ctx.slow)
    if status != 201:
        raise Fail(f"setup: PUT /streams/big: {status}")
    healthy(ctx, d, "before")
    base = baseline(d)
    m0 = d.metrics()
    log0 = d.log_bytes()
    stuck = []
    queued = {}
    try:
        for _ in range(n):
            c = Conn(d.port, timeout=5 * ctx.slow, rcvbuf=4096)
            c.request("GET", "/streams/big")
            stuck.append(c)
        t_full = now()
        poll(d, lambda: stream_readers(d, "big") >= n, 10 * ctx.slow,
             f"{n} consumers that do not read hold a reader each")

        def late_reader():  # over the cap: waits for a slot a stuck one frees
            t = now()
            try:
                c = Conn(d.port, timeout=30 * ctx.slow)
                c.request("GET", "/streams/big", close=True)
                resp = c.read_head()
                c.await_data()
                queued["first"] = now() - t
                body, state = c.read_body(resp)
                c.close()
                queued.update(status=resp.status, state=state, ok=body == big,
                              bytes=len(body))
            except (OSError, Closed, ProtocolError) as e:
                queued["error"] = repr(e)

        th = threading.Thread(target=late_reader, daemon=True)
        th.start()
        poll(d, lambda: stream_readers(d, "big") <= 1, st + 10 * ctx.slow,
             f"the stuck consumers dropped (--send-timeout {st})")
        t_drop = now() - t_full
        th.join(60 * ctx.slow)
        if th.is_alive() or "error" in queued:
            raise Fail(f"the consumer queued behind the stuck ones: {queued.get('error', 'no end')}")
        if queued["status"] != 200 or not queued["ok"] or queued["state"] != "complete":
            raise Fail(f"the consumer queued behind the stuck ones: {queued['status']}, "
                       f"{queued['state']}, {queued['bytes']} of {len(big)} bytes, "
                       f"{'the' if queued['ok'] else 'not the'} uploaded bytes")
        # the daemon closed the stuck ones: its gauges are back while we still hold them
        after = await_baseline(d, base, ("fds", "readers", "connections"), 10,
                               what="with the stuck consumers dropped (still open on our side)")
    finally:
        for c in stuck:
            c.close()
    t = now()
    c = Conn(d.port, timeout=30 * ctx.slow)
    try:
        c.request("GET", "/streams/big", close=True)
        resp = c.read_head()
        c.await_data()
        ttfb = now() - t
        body, state = c.read_body(resp)
    finally:
        c.close()
    if resp.status != 200 or body != big or state != "complete":
        raise Fail(f"a new consumer after the drop: {resp.status}, {len(body)} bytes, {state}")
    if ttfb > 1.0 * ctx.slow:
        raise Fail(f"a new consumer after the drop waited {ttfb:.2f} s for its first bytes")
    with open(d.errpath, "rb") as f:
        f.seek(log0)
        lines = [line for line in f.read().decode("utf-8", "replace").splitlines()
                 if SEND_DROP_LOG.search(line)]
    if not lines:
        raise Fail("the log says nothing about the consumers dropped by --send-timeout "
                   f"(tail: {d.log_tail(2)})")
    healthy(ctx, d, "after")
    key = 'streamerd_timeouts_total{phase="send"}'
    m = require_metrics(d, [key])
    grew = m[key] - m0.get(key, 0)
    if grew < n:
        raise Fail(f"{key} grew by {grew:g}, expected at least {n}")
    return (f"{n} consumers that never read dropped {t_drop:.2f} s after they all held a slot "
            f"(--send-timeout {st}); the one queued behind them got its slot after "
            f"{queued['first']:.2f} s and all {size >> 20} MiB; a new one its first bytes after "
            f"{ttfb * 1000:.0f} ms; send timeouts +{grew:g}; {len(lines)} log lines, e.g. "
            f"{lines[0][24:140]!r}; {fmt_gauges(base)} -> {fmt_gauges(after)}")


# ---------------------------------------------------------------------------
# phase: tinystreams


class KeepAlive:
    """Requests one after another on one kept-alive connection; a new one only
    after a response that said Connection: close."""

    def __init__(self, port, timeout):
        self.port, self.timeout = port, timeout
        self.conn = None
        self.connections = 0

    def do(self, method, path, headers=(), body=None, chunked=False):
        if self.conn is None:
            self.conn = Conn(self.port, timeout=self.timeout)
            self.connections += 1
        c = self.conn
        if chunked:
            c.request(method, path, [("Transfer-Encoding", "chunked")] + list(headers))
            c.send((b"%x\r\n" % len(body) + body + CRLF if body else b"") + b"0\r\n\r\n")
        else:
            c.request(method, path, headers, body)
        resp = c.read_head()
        data, state = c.read_body(resp, method)
        if (resp.get("connection") or "").lower() == "close" or resp.version == "HTTP/1.0":
            c.close()
            self.conn = None
        return resp, data, state

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_parallel(fn, port, jobs, workers, timeout):
    """Runs fn(ka, i) for i in range(jobs) on `workers` threads, each with its
    own KeepAlive connection `ka`; fn returns an error text or None. Returns
    the first error, or None."""
    errors = []
    lock = threading.Lock()
    todo = iter(range(jobs))

    def worker():
        ka = KeepAlive(port, timeout)
        try:
            while not errors:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                err = fn(ka, i)
                if err:
                    errors.append(err)
        except (OSError, Closed, ProtocolError) as e:
            errors.append(repr(e))
        finally:
            ka.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for th in threads:
        th.start()
    deadline = now() + 120
    for th in threads:
        th.join(max(0.1, deadline - now()))
    if any(th.is_alive() for th in threads):
        errors.append("workers still running after 120 s")
    return errors[0] if errors else None


def phase_tinystreams(ctx):
    n = ctx.n(1000)
    parts, failures = [], []
    for storage in ("memory", "file"):
        try:
            parts.append(_tinystreams(ctx, storage, n))
        except Fail as e:
            failures.append(f"{storage} storage: {e}")
        for d in list(ctx.daemons):
            why = d.stop()
            ctx.daemons.remove(d)
            if why:
                failures.append(f"{storage} storage: {why}")
    if failures:
        raise Fail("; ".join(failures) + ("; " + "; ".join(parts) if parts else ""))
    return "; ".join(parts)


def _tinystreams(ctx, storage, n):
    """Two rounds of n one-byte uploads then DELETEs: the first shows what n
    streams cost and that deleting them gives it back (descriptors exactly,
    memory near the baseline: the allocator may keep freed pages), the
    second that nothing grows per round (a leak would)."""
    d = ctx.daemon(storage, ["--no-demo", "--storage", storage],
                   optional=[("--max-streams", str(n + 100))],
                   nofile=max(DAEMON_NOFILE, n + 1024))  # file storage: one per stream
    skipped = ctx.skipped
    rng = ctx.rng("tinystreams", storage)
    t = 10 * ctx.slow

    def warm(ka, i):
        resp, _, _ = ka.do("PUT", f"/streams/w{i}", body=b"w")
        resp2, _, _ = ka.do("DELETE", f"/streams/w{i}")
        return None if (resp.status, resp2.status) == (201, 204) else \
            f"warm-up w{i}: {resp.status} {resp2.status}"

    err = run_parallel(warm, d.port, 20, 4, t)
    if err:
        raise Fail(err)
    base = baseline(d)
    rss0, thr0 = d.rss_kib(), d.threads()
    rounds = []
    for r in range(2):
        values = [rng.randrange(256) for _ in range(n)]
        chunked = [rng.random() < 0.5 for _ in range(n)]

        def upload(ka, i):
            resp, body, _ = ka.do("PUT", f"/streams/t{i}", body=bytes([values[i]]),
                                  chunked=chunked[i])
            if resp.status != 201:
                return f"PUT /streams/t{i} ({'chunked' if chunked[i] else 'Content-Length'}): " \
                       f"{resp.status} {body[:80]!r}"
            return None

        t0 = now()
        err = run_parallel(upload, d.port, n, 4, t)
        d.check_alive("after the uploads")
        if err:
            raise Fail(f"round {r + 1}: {err}")
        up_s = now() - t0
        rss1, thr1, fds1 = d.rss_kib(), d.threads(), d.fds()
        peak = (f"{n} uploads in {up_s:.1f} s: RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB, "
                f"fds {base['fds']} -> {fds1}, threads {thr0} -> {thr1}")
        m = d.metrics()
        if m.get("streamerd_streams") != base["streams"] + n:
            raise Fail(f"streamerd_streams is {m.get('streamerd_streams')} after {n} "
                       f"uploads (baseline {base['streams']:g})")
        for i in rng.sample(range(n), 20):
            resp, body, state = http(d.port, "GET", f"/streams/t{i}", timeout=t)
            if resp.status != 200 or body != bytes([values[i]]) or state != "complete":
                raise Fail(f"GET /streams/t{i}: {resp.status} {body[:10]!r} {state}")
        grew = (rss1 - rss0) / 1024
        if grew > 100 * ctx.tscale:
            raise Fail(f"RSS grew {grew:.1f} MiB for {n} one-byte streams (bound "
                       f"{100 * ctx.tscale} MiB): {peak}")
        if thr1 > thr0 + 2:
            raise Fail(f"threads grew with the streams: {peak}")

        def delete(ka, i):
            resp, _, _ = ka.do("DELETE", f"/streams/t{i}")
            return None if resp.status == 204 else f"DELETE /streams/t{i}: {resp.status}"

        err = run_parallel(delete, d.port, n, 4, t)
        if err:
            raise Fail(f"round {r + 1}: {err}")
        after = await_baseline(d, base, ("fds", "readers", "connections", "streams"), 10,
                               what=f"round {r + 1}, after deleting the streams")
        if ctx.tscale > 1:
            # ASan's quarantine holds freed memory (256 MiB by default): RSS
            # does not come back; LeakSanitizer checks for leaks at exit
            bound = float("inf")
        elif r == 0:
            # near the baseline: at most 16 MiB (or half the growth) above it
            bound = rss0 + max(16 * 1024, (rss1 - rss0) // 2)
        else:
            # the second round must not keep more than the first
            bound = rounds[0][2] + max(4 * 1024, (rss1 - rss0) // 10)
        deadline = now() + 5 * ctx.slow
        rss2 = d.rss_kib()
        while rss2 > bound and now() < deadline:
            time.sleep(0.1)  # poll step
            rss2 = d.rss_kib()
        if rss2 > bound:
            raise Fail(f"round {r + 1}: RSS {rss2 / 1024:.1f} MiB after deleting the {n} streams "
                       f"(bound {bound / 1024:.1f} MiB; " +
                       ("after round 1: %.1f MiB; " % (rounds[0][2] / 1024) if r else "") +
                       f"{peak})")
        rounds.append((peak, rss1, rss2, after["fds"]))
    healthy(ctx, d, f"{storage} after")
    return (f"{storage}: {rounds[0][0]}; after DELETE: RSS {rounds[0][2] / 1024:.1f} MiB, fds "
            f"{rounds[0][3]}; round 2: peak {rounds[1][1] / 1024:.1f}, after "
            f"{rounds[1][2] / 1024:.1f} MiB"
            + (f" (no {' '.join(skipped)})" if skipped else ""))


# ---------------------------------------------------------------------------
# phase: ordinary


def phase_ordinary(ctx):
    d = ctx.daemon("main", ["--no-demo"])
    rng = ctx.rng("ordinary")
    t = 10 * ctx.slow
    problems = []
    done = []
    healthy(ctx, d, "before")
    ended = rng.randbytes(100000)
    status, _ = put(d.port, "e", ended)
    if status != 201:
        raise Fail(f"setup: PUT /streams/e: {status}")
    base = baseline(d)

    def sub(name):
        def wrap(fn):
            done.append(name)
            try:
                fn()
            except Fail as e:
                problems.append(f"{name}: {e}")
            except (OSError, Closed, ProtocolError) as e:
                d.check_alive(f"in check {name}")
                problems.append(f"{name}: {type(e).__name__}: {e}")
            return fn
        return wrap

    def expect(cond, msg):
        if not cond:
            raise Fail(msg)

    @sub("live body chunked (HTTP/1.1), close-delimited (HTTP/1.0), HEAD = GET")
    def _():
        up = LiveUpload(d.port, "live", timeout=t)
        d1, d2 = rng.randbytes(3000), rng.randbytes(5000)
        up.feed(d1)
        c11, c10, ch = Conn(d.port, timeout=t), Conn(d.port, timeout=t), Conn(d.port, timeout=t)
        try:
            c11.request("GET", "/streams/live?wait=5")
            r11 = c11.read_head()
            c10.request("GET", "/streams/live?wait=5", version="1.0")
            r10 = c10.read_head()
            ch.request("HEAD", "/streams/live")
            rh = ch.read_head()
            up.feed(d2)
            status, _ = up.finish()
            expect(status == 201, f"the upload: {status}")
            b11, s11 = c11.read_body(r11)
            b10, s10 = c10.read_body(r10)
        finally:
            for c in (c11, c10, ch):
                c.close()
        expect(r11.status == 200 and r11.chunked() and r11.get("content-length") is None,
               f"HTTP/1.1 GET of a live stream: {r11.status}, headers {r11.headers}")
        expect(r11.get("x-stream-state") == "live", f"X-Stream-State {r11.get('x-stream-state')}")
        expect(s11 == "complete" and b11 == d1 + d2,
               f"HTTP/1.1 live body: {s11}, {len(b11)} of {len(d1 + d2)} bytes")
        expect(r10.status == 200 and not r10.chunked() and r10.get("content-length") is None,
               f"HTTP/1.0 GET of a live stream: {r10.status} {r10.version}, Transfer-Encoding "
               f"{r10.get('transfer-encoding')!r}, Content-Length {r10.get('content-length')!r} "
               "(expected a body delimited by the close)")
        expect(b10 == d1 + d2 and s10 == "complete",
               f"HTTP/1.0 live body: {len(b10)} of {len(d1 + d2)} bytes, {s10}")
        expect(rh.normalized() == r11.normalized(),
               f"HEAD of a live stream: {rh.normalized()} != GET's {r11.normalized()}")

    @sub("a failed producer truncates its consumers")
    def _():
        up = LiveUpload(d.port, "fail1", timeout=t)
        d1 = rng.randbytes(5000)
        up.feed(d1)
        ca, cb = Conn(d.port, timeout=t), Conn(d.port, timeout=t)
        try:
            ca.request("GET", "/streams/fail1?wait=5")
            ra = ca.read_head()
            a1, _ = ca.read_body(ra, limit=len(d1), deadline=now() + t)
            cb.request("GET", "/streams/fail1", [("Range", "bytes=0-9999")])
            rb = cb.read_head()
            b1, _ = cb.read_body(rb, limit=len(d1), deadline=now() + t)
            up.abort(reset=True)
            a2, sa = ca.read_body(ra)
            b2, sb = cb.read_body(rb)
        finally:
            ca.close()
            cb.close()
        expect(ra.status == 200 and ra.chunked(), f"GET of the live stream: {ra.status}")
        expect(sa == "truncated" and a1 + a2 == d1,
               f"chunked consumer of a reset upload: {sa}, {len(a1 + a2)} of {len(d1)} bytes "
               "(expected no final chunk)")
        expect(rb.status == 206, f"Range bytes=0-9999 on a live stream: {rb.status}")
        expect(sb == "truncated" and b1 + b2 == d1,
               f"range consumer (Content-Length {rb.get('content-length')}) of a reset upload: "
               f"{sb}, {len(b1 + b2)} bytes")
        # a Content-Length upload that stops short, closed (not reset)
        up = LiveUpload(d.port, "fail2", timeout=t, content_length=100000)
        up.feed(d1)
        c = Conn(d.port, timeout=t)
        try:
            c.request("GET", "/streams/fail2?wait=5")
            r = c.read_head()
            g1, _ = c.read_body(r, limit=len(d1), deadline=now() + t)
            up.abort(reset=False)
            g2, s = c.read_body(r)
        finally:
            c.close()
        expect(s == "truncated" and g1 + g2 == d1,
               f"consumer of an upload short of its Content-Length: {s}, {len(g1 + g2)} bytes")
        # a GET after the failure must not look complete either
        resp, body, state = http(d.port, "GET", "/streams/fail1", timeout=t)
        expect(resp.status >= 400 or (state == "truncated" and body == d1[:len(body)]),
               f"GET of the failed stream afterwards: {resp.status}, {state}, {len(body)} bytes, "
               f"X-Stream-State {resp.get('x-stream-state')}")

    @sub("Host")
    def _():
        c = Conn(d.port, timeout=t)
        try:
            c.request("GET", "/streams/e", host=False, close=True)
            r = c.read_head()
        finally:
            c.close()
        expect(r.status == 400, f"HTTP/1.1 GET without Host: {r.status} (expected 400)")
        c = Conn(d.port, timeout=t)
        try:
            c.request("GET", "/streams/e", host=False, version="1.0")
            r = c.read_head()
            body, _ = c.read_body(r)
        finally:
            c.close()
        expect(r.status == 200 and body == ended, f"HTTP/1.0 GET without Host: {r.status}")

    @sub("ranges: bytes=-0 and past the end are 416")
    def _():
        for spec in ("-0", f"{len(ended)}-"):
            resp, _, _ = http(d.port, "GET", "/streams/e", [("Range", f"bytes={spec}")], timeout=t)
            want = f"bytes */{len(ended)}"
            expect(resp.status == 416 and resp.get("content-range") == want,
                   f"Range bytes={spec}: {resp.status}, Content-Range {resp.get('content-range')!r} "
                   f"(expected 416, {want!r})")
        a = rng.randrange(0, len(ended))
        b = rng.randrange(a, len(ended))
        resp, body, _ = http(d.port, "GET", "/streams/e", [("Range", f"bytes={a}-{b}")], timeout=t)
        expect(resp.status == 206 and body == ended[a:b + 1]
               and resp.get("content-range") == f"bytes {a}-{b}/{len(ended)}",
               f"Range bytes={a}-{b}: {resp.status} {resp.get('content-range')}, {len(body)} bytes")

    @sub("HEAD = GET (ended stream, range, 404)")
    def _():
        for path, hdrs in (("/streams/e", []), ("/streams/e", [("Range", "bytes=10-99")]),
                           ("/streams/nope", [])):
            c = Conn(d.port, timeout=t)
            try:
                c.request("GET", path, hdrs)
                rg = c.read_head()
                c.read_body(rg)
                c.request("HEAD", path, hdrs)
                rh = c.read_head()
                extra = c.buf[:]
            finally:
                c.close()
            expect(rh.normalized() == rg.normalized(),
                   f"HEAD {path} {hdrs}: {rh.normalized()} != GET's {rg.normalized()}")
            expect(not extra, f"HEAD {path}: {len(extra)} bytes after the header")

    @sub("ended stream: Content-Length, keep-alive, pipelining")
    def _():
        c = Conn(d.port, timeout=t)
        try:
            c.send(c.request_bytes("GET", "/streams/e") * 2)
            for k in range(2):
                r = c.read_head()
                body, state = c.read_body(r)
                expect(r.status == 200 and r.get("content-length") == str(len(ended))
                       and not r.chunked() and body == ended and state == "complete"
                       and r.get("x-stream-state") == "ended",
                       f"pipelined GET {k + 1}: {r.status}, Content-Length "
                       f"{r.get('content-length')}, {len(body)} bytes, {state}")
        finally:
            c.close()

    for name in ("live", "fail1", "fail2"):
        http(d.port, "DELETE", f"/streams/{name}", timeout=t)
    d.check_alive()
    after = await_baseline(d, base, ("fds", "readers", "connections", "streams"), 10)
    healthy(ctx, d, "after")
    if problems:
        raise Fail(f"{len(problems)} of {len(done)} checks failed: " + "; ".join(problems))
    return f"{len(done)} checks; {fmt_gauges(base)} -> {fmt_gauges(after)}"


# ---------------------------------------------------------------------------
# phase registry and main

PHASES = {}


def phase(name):
    def register(fn):
        PHASES[name] = fn
        return fn
    return register


for _name, _fn in (("abandon", phase_abandon), ("fdlimit", phase_fdlimit),
                   ("slowheaders", phase_slowheaders), ("idle", phase_idle),
                   ("noread", phase_noread), ("tinystreams", phase_tinystreams),
                   ("ordinary", phase_ordinary)):
    phase(_name)(_fn)


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
        for d in ctx.daemons:  # a client error because the daemon died: say that first
            if not d.alive():
                why = (f"daemon {d.label} died: {d.describe_exit()}; "
                       f"{d.sanitizer_report() or 'log: ' + d.log_tail(2)} (a client saw: {why})")
                break
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
    ap.add_argument("--kinds", default=None,
                    help="abandon: only these client kinds, comma-separated (of "
                         + ", ".join(k for k, _ in ABANDON_KINDS) + ")")
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
    kinds = None
    if args.kinds:
        kinds = set(args.kinds.split(","))
        unknown = kinds - {k for k, _ in ABANDON_KINDS}
        if unknown:
            print(f"faults.py: unknown --kinds {','.join(sorted(unknown))}", file=sys.stderr)
            return 2
        replay += ["--kinds", args.kinds]
    print(f"seed {seed}", flush=True)
    print(f"replay: {' '.join(shlex.quote(a) for a in replay)}", flush=True)
    print(f"# daemon {binary}{' (AddressSanitizer build)' if asan else ''}, scale {scale:g}, "
          f"phases {' '.join(phases)}", flush=True)

    # our own clients need many descriptors (1000 idle connections at once)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(16384, int(1200 * scale) + 1024)  # idle opens 1000 x scale at once
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2048:
        print(f"# warning: only {want} descriptors for the clients", flush=True)

    workdir = tempfile.mkdtemp(prefix="streamerd-faults.")
    ctx = Context(binary, seed, scale, slow, workdir, args.verbose, kinds)

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
