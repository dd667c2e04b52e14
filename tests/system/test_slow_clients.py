"""Every HTTP listener holds against a hostile network (issue 18): while 1,100 idle TCP
connections and 300 connections sending a request head a byte a second (over TLS on the
HTTPS ports) press on one port, from 127.0.0.2 and up, a legitimate client on 127.0.0.1 is
served every second: the node's HTTP intake port, the hub's HTTPS port, the federal HTTPS
port, one at a time, on the real daemons. The flood reopens whatever the server closes, so
the pressure lasts the whole hold.

It relies on the HTTP server's defaults alone (common/http.h: 1,024 connections with the
oldest connection still waiting for a request head closed to admit a new one, 32 per
address, a 10 s head deadline), which the daemons get without options.

The last tests send the head of a 1 MiB body without a token and only 64 KiB of the body:
the answer (401 or 413) must come while the client still has most of the body to send. The
federal API holds a body without a credential to 64 KiB (and a directive's to 256 KiB), so
the Content-Length alone gets 413; the node and the hub check the token in
http_server_opts.on_head, before any of the body is read."""
import os
import re
import resource
import selectors
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest

from fedclient import Federal
from harness import BIN, Hub, Node, run
from pg import postgres  # noqa: F401  (session fixture)

HOLD_S = 20
IDLE = 1100
SLOW = 300
# Connections per source address: under the servers' per-address cap (32), so that the
# flood reaches the global cap (1,024) instead of being refused address by address.
PER_ADDR = 30
IDLE_BASE, SLOW_BASE = 2, 60  # 127.0.0.2.. for the idle ones, 127.0.0.60.. for the slow ones
# Connections reopened per second at most. Each reopening at the cap closes the connection
# that waited longest, so this is the churn rate: at 20 a second a connection lives ~50 s
# at the cap, and the slow ones meet their head deadline (10 s) before eviction.
REOPEN_PER_S = 20
NOFILE = 8192


@pytest.fixture(scope="module", autouse=True)
def open_files():
    """The flood needs some 1,500 sockets in this process, and each daemon 1,024 and more:
    the limit is raised here, and the daemons, started by these tests, inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    got = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert got >= 4096, "open-file limit %d (hard %s): too low to flood a server" % (got, hard)
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---- the daemons (one of each for the module) ----------------------------------------------

@pytest.fixture(scope="module")
def hub(pki, tmp_path_factory):
    h = Hub(str(tmp_path_factory.mktemp("slowhub")), pki, 1)
    # Before the start: the hub reads its tokens when it starts.
    h.officer = run([os.path.join(BIN, "provincial-hub"), "--config", h.config, "token",
                     "officer"]).stdout.strip()
    h.start()
    yield h
    h.kill9()


@pytest.fixture(scope="module")
def node(pki, hub, tmp_path_factory):
    n = Node(str(tmp_path_factory.mktemp("slownode")), pki, 10703, hub)
    n.token = n.cli("token", "asha").stdout.strip()
    server = n.serve()
    yield n
    server.kill9()


@pytest.fixture(scope="module")
def fed(pki, postgres, tmp_path_factory):  # noqa: F811
    pki.issue("federal")
    f = Federal(str(tmp_path_factory.mktemp("slowfed")), pki, postgres).start()
    f.ministry = f.token("ministry", "slow-clients-%d" % time.time_ns())
    yield f
    f.kill9()


# ---- the flood ---------------------------------------------------------------------------

class Flood:
    """IDLE idle TCP connections and SLOW connections that send a request head one byte a
    second (over TLS when tls is set), bound to 127.0.0.2 and up, PER_ADDR per address, kept
    in one thread; a connection the server closes is reopened from the same address."""

    def __init__(self, port, tls=False):
        self.port = port
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE
        self.sel = selectors.DefaultSelector()
        self.dropped = {"idle": 0, "slow": 0}
        self.statuses = {}  # first status code the server sent a flood connection -> count
        self.open_errors = {}
        self.peak = 0
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.failure = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, kind, i):
        base = IDLE_BASE if kind == "idle" else SLOW_BASE
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(5)
            s.bind(("127.0.0.%d" % (base + i // PER_ADDR), 0))
            s.connect(("127.0.0.1", self.port))
            if kind == "slow":
                if self.ctx:
                    s = self.ctx.wrap_socket(s)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: flood\r\nX-Slow: ")
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, [kind, i, b""])
        except (OSError, ssl.SSLError) as e:
            # Refused or dropped during the handshake: the server's choice, counted and
            # retried like a closed one.
            name = type(e).__name__
            self.open_errors[name] = self.open_errors.get(name, 0) + 1
            s.close()
            return False
        return True

    def _drop(self, key, todo):
        kind, i, head = key.data
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
        if m:
            code = m.group(1).decode()
            self.statuses[code] = self.statuses.get(code, 0) + 1
        self.sel.unregister(key.fileobj)
        key.fileobj.close()
        self.dropped[kind] += 1
        todo.append((kind, i))

    def _run(self):
        try:
            todo = [("idle", i) for i in range(IDLE)] + [("slow", i) for i in range(SLOW)]
            for kind, i in todo:
                self._open(kind, i)
            todo = []
            self.peak = len(self.sel.get_map())
            self.ready.set()
            next_byte = next_reopen = time.monotonic() + 1
            while not self.stopping.is_set():
                for key, _ in self.sel.select(timeout=0.1):
                    try:
                        data = key.fileobj.recv(4096)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    except (OSError, ssl.SSLError):
                        data = b""
                    if data:
                        key.data[2] = (key.data[2] + data)[:64]
                    else:
                        self._drop(key, todo)
                if time.monotonic() >= next_byte:
                    next_byte += 1
                    for key in list(self.sel.get_map().values()):
                        if key.data[0] == "slow":
                            try:
                                key.fileobj.send(b"a")
                            except (ssl.SSLWantWriteError, BlockingIOError):
                                pass
                            except (OSError, ssl.SSLError):
                                self._drop(key, todo)
                if todo and time.monotonic() >= next_reopen:
                    next_reopen = time.monotonic() + 1.0 / REOPEN_PER_S
                    kind, i = todo.pop(0)
                    if not self._open(kind, i):
                        todo.append((kind, i))
                self.peak = max(self.peak, len(self.sel.get_map()))
        except Exception as e:  # reported by the test, which would otherwise pass idle
            self.failure = repr(e)
            self.ready.set()
        finally:
            for key in list(self.sel.get_map().values()):
                key.fileobj.close()
            self.sel.close()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(120), "the flood did not open its connections within 120 s"
        assert self.failure is None, "the flood failed: " + self.failure
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(30)


def fetch(url, token=None, ctx=None):
    """Status of GET url, or the exception that stopped it."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:  # noqa: BLE001  (every failure is the finding)
        return repr(e)


def hold_and_serve(flood, requests):
    """Every second for HOLD_S s, each (url, token, ctx) in requests from 127.0.0.1; returns
    the answers that were not 200 and how many requests were made."""
    bad, made = [], 0
    start = time.monotonic()
    for tick in range(HOLD_S):
        for url, token, ctx in requests:
            status = fetch(url, token, ctx)
            made += 1
            if status != 200:
                bad.append("%.1f s: %s: %s" % (time.monotonic() - start, url, status))
        time.sleep(max(0.0, start + tick + 1 - time.monotonic()))
    assert flood.failure is None, "the flood failed: " + flood.failure
    return bad, made


def check_flood(flood, daemon, bad, made):
    print("flood on port %d: peak %d connections, closed by the server %s, first answers %s, "
          "failed opens %s; %d legitimate requests" % (flood.port, flood.peak, flood.dropped,
                                                      flood.statuses, flood.open_errors, made))
    assert not bad, "legitimate requests failed during the flood:\n" + "\n".join(bad[:20])
    assert made >= 2 * HOLD_S
    assert daemon.alive()
    # The premise: the server was at its global cap (it closed idle connections to admit
    # others) and its head deadline closed the slow ones (408).
    assert flood.peak >= 1024, "the flood held only %d connections" % flood.peak
    assert flood.dropped["idle"] > 0, "no idle connection was ever closed: the cap was not reached"
    assert flood.statuses.get("408", 0) > 0, \
        "no slow connection got 408: %s %s" % (flood.statuses, flood.dropped)


def test_node_intake_port_serves_clients_through_a_flood(node):
    with Flood(node.http_port) as flood:
        base = "http://127.0.0.1:%d" % node.http_port
        bad, made = hold_and_serve(flood, [(base + "/healthz", None, None),
                                           (base + "/v1/status", node.token, None)])
    check_flood(flood, node.server, bad, made)


def test_hub_https_port_serves_clients_through_a_flood(hub, pki):
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    with Flood(hub.https_port, tls=True) as flood:
        base = "https://127.0.0.1:%d" % hub.https_port
        bad, made = hold_and_serve(flood, [(base + "/healthz", None, ctx),
                                           (base + "/v1/indicators", hub.officer, ctx)])
    check_flood(flood, hub, bad, made)


def test_federal_https_port_serves_clients_through_a_flood(fed):
    with Flood(fed.https_port, tls=True) as flood:
        base = "https://127.0.0.1:%d" % fed.https_port
        bad, made = hold_and_serve(flood, [(base + "/healthz", None, fed.ctx),
                                           (base + "/v1/indicators", fed.ministry, fed.ctx)])
    check_flood(flood, fed, bad, made)


# ---- a large body without a token ------------------------------------------------------------

BODY = 1024 * 1024
SENT = 64 * 1024
ANSWER_WAIT_S = 12


def answer_to_unread_body(port, path, tls_ctx=None):
    """Sends the head of a BODY-byte POST to path without a token and SENT bytes of the body,
    then waits for an answer while the rest is still unsent. Returns the status, or a
    sentence saying why there was none."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if tls_ctx:
            s = tls_ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (path, BODY)).encode())
        try:
            s.sendall(b"x" * SENT)
        except (OSError, ssl.SSLError):
            pass  # the server answered and closed already; its answer is still to be read
        s.settimeout(ANSWER_WAIT_S)
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            return ("no answer within %d s with %d of %d body bytes sent: the server waits "
                    "for the body" % (ANSWER_WAIT_S, SENT, BODY))
        except (OSError, ssl.SSLError) as e:
            return "connection failed before an answer: %r" % e
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
        return int(m.group(1)) if m else "no status line: %r" % got[:80]
    finally:
        s.close()


NOT_WIRED = ("%s: the server took the body instead of refusing its head (408: it read what "
             "came, then the stalled client missed the body rate); is the token checked in on_head?")


def test_federal_refuses_an_unauthenticated_1mib_body_before_reading_it(fed):
    status = answer_to_unread_body(fed.https_port, "/v1/directives", fed.ctx)
    assert status in (401, 413), status
    assert fed.alive()


def test_node_refuses_an_unauthenticated_1mib_body_before_reading_it(node):
    status = answer_to_unread_body(node.http_port, "/v1/persons")
    assert status in (401, 413), NOT_WIRED % status
    assert node.server.alive()


def test_hub_refuses_an_unauthenticated_1mib_body_before_reading_it(hub, pki):
    # The hub's HTTPS API takes no body on any route: 405 says so as early as 401 or 413.
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    status = answer_to_unread_body(hub.https_port, "/v1/gaps", ctx)
    assert status in (401, 405, 413), NOT_WIRED % status
    assert hub.alive()
