#!/usr/bin/env python3
"""End-to-end tests of aspipe (docs/aspipe.md) on loopback.

Scenario "cuts": `aspipe listen` and `aspipe connect` talk through a cutting
proxy (this process) that kills the TCP connection (a reset on both sides)
at random points chosen by a seed: after a number of relayed bytes, and
now and then inside the handshake; after a cut the "network" stays down for
a random moment (new connections are closed at once). SIZE bytes go from
the connector to the listener and some bytes the other way at the same
time; both must exit 0 and the sha256 at each end must match.

Scenario "gone": the listener is killed for good; the connector must give
up with a message and exit status 3 within its limit. Then the other way
round: the connector is killed; the listener gives up after its
--reconnect-timeout (1 s here), exit status 3. And a listener restarted on
the same port refuses the old session: the connector ends at once, exit 4.

Scenario "second": while a session is in use, a second `aspipe connect` is
refused (exit 4, the reason in its log); the first session then ends
cleanly with its bytes intact.

The seed (random unless --seed) is printed first, with the command that
replays it. Every wait is bounded (--deadline).
"""

import argparse
import fcntl
import hashlib
import os
import random
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

EXIT_GAVE_UP = 3


def log(msg):
    print(f"[aspipe_e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


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


def make_file(path, size, rng):
    """Writes `size` seeded pseudo-random bytes; returns their sha256."""
    h = hashlib.sha256()
    block = rng.randbytes(1 << 20)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            # Vary the blocks cheaply so no two MiB are equal.
            chunk = struct.pack("<Q", i) + block[8:]
            chunk = chunk[:left]
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
            i += 1
    return h.hexdigest()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def reset_close(sock):
    """Closes with a reset (SO_LINGER 0): the connection is killed."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class cutting_proxy:
    """Relays 127.0.0.1:port to the target and kills connections.

    Cuts: when the bytes relayed (both directions, all connections) cross
    the next of `cut_points`; and, with probability `handshake_cut`, a
    connection is killed after 0..59 bytes (inside the hello or welcome).
    After each cut, new connections are closed at once for up to
    `max_outage` seconds."""

    def __init__(self, target_port, cut_points, rng, handshake_cut,
                 max_outage):
        self.target_port = target_port
        self.cut_points = sorted(cut_points)
        self.rng = rng
        self.handshake_cut = handshake_cut
        self.max_outage = max_outage
        self.lock = threading.Lock()
        self.relayed = 0
        self.cuts = 0
        self.handshake_cuts = 0
        self.refused = 0
        self.down_until = 0.0
        self.conns = []
        self.stopping = False
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)  # the accept loop checks `stopping`
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                if self.stopping:
                    return
                continue
            except OSError:
                return
            client.setblocking(True)
            with self.lock:
                if self.stopping:
                    reset_close(client)
                    return
                down = time.monotonic() < self.down_until
                limit = None
                if not down and self.rng.random() < self.handshake_cut:
                    limit = self.rng.randrange(0, 60)
            if down:
                with self.lock:
                    self.refused += 1
                reset_close(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1",
                                                   self.target_port), 5)
            except OSError:
                reset_close(client)
                continue
            server.settimeout(None)  # blocking descriptors: splice below
            conn = {"client": client, "server": server, "dead": False,
                    "bytes": 0, "limit": limit}
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self.relay, args=(conn,),
                             daemon=True).start()

    def kill(self, conn, handshake=False):
        """Kills `conn` (called by its relay thread only)."""
        with self.lock:
            if conn["dead"]:
                return
            conn["dead"] = True
            if handshake:
                self.handshake_cuts += 1
            else:
                self.cuts += 1
            self.down_until = time.monotonic() + self.rng.uniform(
                0, self.max_outage)
        reset_close(conn["client"])
        reset_close(conn["server"])

    def relay(self, conn):
        """Relays both directions of one connection in one thread, so that
        a kill (a close with a reset) never races a blocked recv. The bytes
        move with splice(2) through a kernel pipe per direction (no copy
        into Python), up to the next cut point exactly."""
        client, server = conn["client"], conn["server"]
        peer = {client: server, server: client}
        pipes = {}
        for src in (client, server):
            r, w = os.pipe()
            try:
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
            pipes[src] = (r, w)
        try:
            self.relay_loop(conn, peer, pipes)
        finally:
            for r, w in pipes.values():
                os.close(r)
                os.close(w)

    def relay_loop(self, conn, peer, pipes):
        client, server = conn["client"], conn["server"]
        sources = [client, server]
        while sources:
            if self.stopping:
                self.kill(conn)
                return
            try:
                ready, _, _ = select.select(sources, [], [], 0.2)
            except (OSError, ValueError):
                self.kill(conn)
                return
            for src in ready:
                dst = peer[src]
                # How far this read may go: to the next cut at most.
                allowed = 1 << 20
                handshake_cut = False
                with self.lock:
                    limit = conn["limit"]
                    if limit is not None:
                        allowed = min(allowed, limit - conn["bytes"])
                        handshake_cut = True
                    if self.cut_points:
                        allowed = min(allowed,
                                      self.cut_points[0] - self.relayed)
                if allowed <= 0:
                    self.kill(conn, handshake=handshake_cut)
                    return
                r, w = pipes[src]
                try:
                    n = os.splice(src.fileno(), w, allowed)
                except OSError:
                    self.kill(conn)
                    return
                if n == 0:
                    # An orderly end: pass it on.
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    sources.remove(src)
                    continue
                with self.lock:
                    conn["bytes"] += n
                    self.relayed += n
                    at_limit = limit is not None and conn["bytes"] >= limit
                    at_cut = False
                    while self.cut_points and \
                            self.cut_points[0] <= self.relayed:
                        self.cut_points.pop(0)
                        at_cut = True
                left = n
                try:
                    while left > 0:
                        left -= os.splice(r, dst.fileno(), left)
                except OSError:
                    self.kill(conn)
                    return
                if at_limit or at_cut:
                    self.kill(conn, handshake=at_limit)
                    return
        with self.lock:
            conn["dead"] = True
        for x in (client, server):
            try:
                x.close()
            except OSError:
                pass

    def stop(self):
        """Stops accepting and relaying: every thread ends within 0.2 s."""
        with self.lock:
            self.stopping = True
        self.thread.join(5)
        try:
            self.listener.close()
        except OSError:
            pass


def start_listener(aspipe, workdir, stdin, stdout, extra, deadline):
    """Starts `aspipe listen 0`; returns (process, port, log path)."""
    log_path = os.path.join(workdir, "listen.log")
    logf = open(log_path, "wb")
    p = subprocess.Popen([aspipe, "listen", "0", "--bind", "127.0.0.1"]
                         + extra, stdin=stdin, stdout=stdout, stderr=logf)
    logf.close()
    port = None
    while time.monotonic() < deadline and port is None:
        with open(log_path, "rb") as f:
            m = re.search(rb"listening on [^ ]*:(\d+)", f.read())
        if m:
            port = int(m.group(1))
        elif p.poll() is not None:
            break
        else:
            time.sleep(0.02)
    if port is None:
        p.kill()
        p.wait()
        raise SystemExit("FAIL: the listener did not say its port: "
                         + tail(log_path))
    return p, port, log_path


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no log)"


def wait_all(procs, deadline):
    """Waits for every process until `deadline`; kills the rest."""
    for p in procs:
        left = deadline - time.monotonic()
        try:
            p.wait(timeout=max(left, 0.01))
        except subprocess.TimeoutExpired:
            pass
    late = [p for p in procs if p.poll() is None]
    for p in late:
        p.kill()
        p.wait()
    return late


def scenario_cuts(args, rng, workdir):
    size = args.size_mib << 20
    back_size = args.back_kib << 10
    log(f"cuts: {args.size_mib} MiB connector -> listener, {args.back_kib} "
        f"KiB back, about {args.cuts} cuts")
    t0 = time.monotonic()
    up_in = os.path.join(workdir, "up.in")
    up_out = os.path.join(workdir, "up.out")
    down_in = os.path.join(workdir, "down.in")
    down_out = os.path.join(workdir, "down.out")
    up_sha = make_file(up_in, size, rng)
    down_sha = make_file(down_in, back_size, rng)
    log(f"inputs written in {time.monotonic() - t0:.1f} s")
    # Cut points over all relayed bytes (both directions, replays included).
    cut_points = [rng.randrange(1, size) for _ in range(args.cuts)]
    deadline = time.monotonic() + args.deadline
    window = ["--window", args.window]
    with open(down_in, "rb") as lin, open(up_out, "wb") as lout:
        listener, port, listen_log = start_listener(
            args.aspipe, workdir, lin, lout,
            window + ["--reconnect-timeout", "60"], deadline)
    proxy = cutting_proxy(port, cut_points, rng, args.handshake_cut,
                          args.max_outage)
    connect_log = os.path.join(workdir, "connect.log")
    with open(up_in, "rb") as cin, open(down_out, "wb") as cout, \
            open(connect_log, "wb") as clog:
        connector = subprocess.Popen(
            [args.aspipe, "connect", f"127.0.0.1:{proxy.port}",
             "--max-attempts", "100", "--backoff-max", "0.5",
             "--connect-timeout", "5"] + window,
            stdin=cin, stdout=cout, stderr=clog)
    late = wait_all([connector, listener], deadline)
    proxy.stop()
    elapsed = time.monotonic() - t0
    log(f"relayed {proxy.relayed} bytes, {proxy.cuts} cuts, "
        f"{proxy.handshake_cuts} in the handshake, {proxy.refused} "
        f"connections refused while down, {elapsed:.1f} s")
    failures = []
    if late:
        failures.append(f"{len(late)} process(es) still running after "
                        f"{args.deadline} s (killed)")
    if connector.returncode != 0:
        failures.append(f"connector exited {connector.returncode}")
    if listener.returncode != 0:
        failures.append(f"listener exited {listener.returncode}")
    got_up = sha256_of(up_out)
    got_down = sha256_of(down_out)
    if got_up != up_sha:
        failures.append(f"listener's output sha256 {got_up} != {up_sha} "
                        f"({os.path.getsize(up_out)} of {size} bytes)")
    if got_down != down_sha:
        failures.append(f"connector's output sha256 {got_down} != "
                        f"{down_sha} ({os.path.getsize(down_out)} of "
                        f"{back_size} bytes)")
    if args.cuts > 0 and proxy.cuts == 0:
        failures.append("the proxy never cut a connection")
    if failures:
        log("connector log:\n" + tail(connect_log))
        log("listener log:\n" + tail(listen_log))
        return failures
    log(f"cuts: OK, sha256 {up_sha[:16]}... and {down_sha[:16]}... match")
    return []


def scenario_gone(args, rng, workdir):
    log("gone: the listener dies for good; the connector must give up")
    deadline = time.monotonic() + args.deadline
    listener, port, listen_log = start_listener(
        args.aspipe, workdir, subprocess.DEVNULL, subprocess.DEVNULL, [],
        deadline)
    connect_log = os.path.join(workdir, "connect_gone.log")
    with open(connect_log, "wb") as clog:
        # stdin stays open (a pipe we never close): only the giving up ends
        # the connector.
        connector = subprocess.Popen(
            [args.aspipe, "connect", f"127.0.0.1:{port}", "--max-attempts",
             "4", "--backoff-max", "0.2", "--connect-timeout", "1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=clog)
    connector.stdin.write(os.urandom(64 * 1024))
    connector.stdin.flush()
    # Wait until connected, then kill the listener.
    connected = False
    while time.monotonic() < deadline and connector.poll() is None:
        with open(connect_log, "rb") as f:
            if b"connected" in f.read():
                connected = True
                break
        time.sleep(0.02)
    listener.send_signal(signal.SIGKILL)
    listener.wait()
    t_kill = time.monotonic()
    # The limit: 4 attempts, at most 1 s each, waits of at most 0.2 s.
    limit = 4 * 1.0 + 4 * 0.2 + 5.0
    late = wait_all([connector], min(deadline, t_kill + limit * 3))
    took = time.monotonic() - t_kill
    connector.stdin.close()
    failures = []
    text = tail(connect_log, 40)
    if not connected:
        failures.append("the connector never connected")
    if late:
        failures.append(f"the connector did not give up within "
                        f"{limit * 3:.0f} s")
    elif connector.returncode != EXIT_GAVE_UP:
        failures.append(f"the connector exited {connector.returncode}, "
                        f"expected {EXIT_GAVE_UP}")
    if "error" not in text:
        failures.append("the connector's log has no error message")
    if failures:
        log("connector log:\n" + text)
        return failures
    last = [l for l in text.splitlines() if "error" in l][-1:]
    log(f"gone: OK, gave up after {took:.1f} s: {last[0] if last else ''}")
    return scenario_connector_gone(args, workdir) + \
        scenario_restart(args, workdir)


def scenario_restart(args, workdir):
    """The listener is restarted on the same port: it has a new session, so
    the connector's resume is refused and it ends at once with exit 4."""
    log("restart: a restarted listener refuses the old session")
    deadline = time.monotonic() + args.deadline
    first, port, _ = start_listener(
        args.aspipe, workdir, subprocess.PIPE, subprocess.DEVNULL, [],
        deadline)
    connect_log = os.path.join(workdir, "connect_restart.log")
    with open(connect_log, "wb") as clog:
        connector = subprocess.Popen(
            [args.aspipe, "connect", f"127.0.0.1:{port}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=clog)
    failures = []
    if not wait_for_text(connect_log, b"connected", deadline, connector):
        failures.append("the connector never connected")
    first.send_signal(signal.SIGKILL)
    first.wait()
    first.stdin.close()
    log_path = os.path.join(workdir, "listen_restart.log")
    with open(log_path, "wb") as logf:
        second = subprocess.Popen(
            [args.aspipe, "listen", str(port), "--bind", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=logf)
    late = wait_all([connector], min(deadline, time.monotonic() + 15))
    connector.stdin.close()
    second.send_signal(signal.SIGKILL)
    second.wait()
    second.stdin.close()
    text = tail(connect_log, 40)
    if late:
        failures.append("the connector did not end within 15 s")
    elif connector.returncode != 4:
        failures.append(f"the connector exited {connector.returncode}, "
                        "expected 4")
    if "unknown session" not in text:
        failures.append("the connector's log does not name the refusal")
    if failures:
        log("connector log:\n" + text)
        log("new listener log:\n" + tail(log_path))
        return failures
    log("restart: OK, refused with exit 4")
    return []


def scenario_connector_gone(args, workdir):
    """The other way round: the connector dies for good; the listener gives
    up after --reconnect-timeout with exit 3."""
    log("gone: the connector dies for good; the listener must give up")
    deadline = time.monotonic() + args.deadline
    listener, port, listen_log = start_listener(
        args.aspipe, workdir, subprocess.PIPE, subprocess.DEVNULL,
        ["--reconnect-timeout", "1"], deadline)
    connector = subprocess.Popen(
        [args.aspipe, "connect", f"127.0.0.1:{port}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    failures = []
    if not wait_for_text(listen_log, b"connected", deadline, listener):
        failures.append("the connector never connected")
    connector.send_signal(signal.SIGKILL)
    connector.wait()
    t_kill = time.monotonic()
    late = wait_all([listener], min(deadline, t_kill + 30))
    took = time.monotonic() - t_kill
    listener.stdin.close()
    if late:
        failures.append("the listener did not give up within 30 s")
    elif listener.returncode != EXIT_GAVE_UP:
        failures.append(f"the listener exited {listener.returncode}, "
                        f"expected {EXIT_GAVE_UP}")
    text = tail(listen_log, 40)
    if "did not come back" not in text:
        failures.append("the listener's log does not say why it gave up")
    if failures:
        log("listener log:\n" + text)
        return failures
    log(f"gone: OK, the listener gave up after {took:.1f} s")
    return []


def wait_for_text(path, text, deadline, proc=None):
    """Polls the log at `path` for `text` until `deadline` (or until `proc`
    exits); returns whether it appeared."""
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if text in f.read():
                return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def scenario_second(args, rng, workdir):
    log("second: a second peer is refused while a session is in use")
    deadline = time.monotonic() + args.deadline
    payload_a = rng.randbytes(100 * 1024)
    payload_b = rng.randbytes(50 * 1024)
    out_a = os.path.join(workdir, "second_listener.out")
    out_b = os.path.join(workdir, "second_first.out")
    with open(out_a, "wb") as lout:
        listener, port, listen_log = start_listener(
            args.aspipe, workdir, subprocess.PIPE, lout, [], deadline)
    first_log = os.path.join(workdir, "second_first.log")
    with open(first_log, "wb") as flog, open(out_b, "wb") as fout:
        first = subprocess.Popen(
            [args.aspipe, "connect", f"127.0.0.1:{port}"],
            stdin=subprocess.PIPE, stdout=fout, stderr=flog)
    failures = []
    if not wait_for_text(first_log, b"connected", deadline, first):
        failures.append("the first peer never connected")
    second_log = os.path.join(workdir, "second_second.log")
    with open(second_log, "wb") as slog:
        second = subprocess.Popen(
            [args.aspipe, "connect", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slog)
    # A refusal is final: no retrying up to --max-attempts (40).
    if wait_all([second], min(deadline, time.monotonic() + 10)):
        failures.append("the second peer did not give up within 10 s")
    elif second.returncode != 4:
        failures.append(f"the second peer exited {second.returncode}, "
                        "expected 4")
    if b"already serves a session" not in open(second_log, "rb").read():
        failures.append("the second peer's log does not say why it was "
                        "refused")
    # The first session is unharmed: both directions end cleanly.
    first.stdin.write(payload_a)
    first.stdin.close()
    listener.stdin.write(payload_b)
    listener.stdin.close()
    late = wait_all([first, listener], deadline)
    if late:
        failures.append("the first session did not end by itself")
    if first.returncode != 0 or listener.returncode != 0:
        failures.append(f"the first session exited {first.returncode}/"
                        f"{listener.returncode}, expected 0/0")
    if open(out_a, "rb").read() != payload_a:
        failures.append("the listener did not get the first peer's bytes")
    if open(out_b, "rb").read() != payload_b:
        failures.append("the first peer did not get the listener's bytes")
    if failures:
        log("second peer log:\n" + tail(second_log))
        log("first peer log:\n" + tail(first_log))
        log("listener log:\n" + tail(listen_log))
        return failures
    log("second: OK, refused with exit 4; the first session ended cleanly")
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aspipe", required=True, help="the aspipe binary")
    ap.add_argument("--seed", type=int, help="replay this seed")
    ap.add_argument("--scenario", choices=["all", "cuts", "gone", "second"],
                    default="all")
    ap.add_argument("--size-mib", type=int, default=256,
                    help="MiB from connector to listener (256: about 16 s, "
                         "17 s under ASan+UBSan)")
    ap.add_argument("--back-kib", type=int, default=2048,
                    help="KiB from listener to connector")
    ap.add_argument("--cuts", type=int,
                    help="cut points (default: one per 16 MiB)")
    ap.add_argument("--handshake-cut", type=float, default=0.15,
                    help="probability that a connection dies in the "
                         "handshake")
    ap.add_argument("--max-outage", type=float, default=1.0,
                    help="longest 'network down' after a cut, seconds")
    ap.add_argument("--window", default="16M", help="aspipe --window")
    ap.add_argument("--deadline", type=float, default=240,
                    help="seconds a scenario may take")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1 << 32)
    asan = sanitized_binary(args.aspipe)
    if args.cuts is None:
        args.cuts = max(2, args.size_mib // 16)
    replay = [sys.executable, os.path.abspath(__file__), "--aspipe",
              args.aspipe, "--seed", str(seed), "--scenario", args.scenario,
              "--size-mib", str(args.size_mib), "--cuts", str(args.cuts),
              "--back-kib", str(args.back_kib), "--window", args.window]
    log(f"seed {seed}{' (ASan build)' if asan else ''}; replay with: "
        + " ".join(shlex.quote(x) for x in replay))
    rng = random.Random(seed)
    failures = []
    with tempfile.TemporaryDirectory(prefix="aspipe_e2e.") as workdir:
        if args.scenario in ("all", "cuts"):
            failures += scenario_cuts(args, rng, workdir)
        if args.scenario in ("all", "gone"):
            failures += scenario_gone(args, rng, workdir)
        if args.scenario in ("all", "second"):
            failures += scenario_second(args, rng, workdir)
    if failures:
        for f in failures:
            log("FAIL: " + f)
        log("replay with: " + " ".join(shlex.quote(x) for x in replay))
        return 1
    log("all OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
