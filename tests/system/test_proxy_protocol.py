"""Behind a TCP load balancer that speaks PROXY protocol v2 (issue 18): the federal tier takes
each client's address from the header, so the failed-token limiter tells clients apart. 1,000
bad tokens from one client do not stop a valid token, from that client or any other, and do
not limit another client's mistakes; the audit names the client's address, not the
balancer's. A PROXY header from an address not configured is refused."""
import http.client
import json
import os
import socket
import ssl
import struct
import threading
import time

from fedclient import Federal
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import FreshDatabase

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst, sport, dport):
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(addr)) + addr


class Balancer:
    """A TCP proxy on 127.0.0.1 that presents every client as src (a PROXY v2 header before
    the bytes, as HAProxy's send-proxy-v2 does)."""

    def __init__(self, backend_port, src):
        self.backend = backend_port
        self.src = src
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        n = 0
        while True:
            c, _ = self.sock.accept()
            n += 1
            b = socket.create_connection(("127.0.0.1", self.backend))
            b.sendall(proxy_v2(self.src, "127.0.0.1", 40000 + n % 20000, self.backend))
            for a, z in ((c, b), (b, c)):
                threading.Thread(target=self._pump, args=(a, z), daemon=True).start()

    @staticmethod
    def _pump(a, z):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                z.sendall(d)
        except OSError:
            pass
        for s in (a, z):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Client:
    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.check_hostname = False
        self.conn = None

    def get(self, path, token):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                                            context=self.ctx, timeout=20)
                self.conn.request("GET", path, headers={"Authorization": "Bearer " + token})
                r = self.conn.getresponse()
                self.body = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status
            except (http.client.HTTPException, OSError):
                if self.conn:
                    self.conn.close()
                self.conn = None
        raise AssertionError("no answer from the balancer")


def test_behind_a_proxy_protocol_balancer_bad_tokens_stop_no_valid_one(pki, workdir, procs,
                                                                      postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres), auth_max_failures=20, name="fed-proxy")
    fed.configure("[federal]\nproxy_from = 127.0.0.1\n").start()
    procs.append(fed)
    valid = fed.token("ministry", "proxy-ministry-%d" % time.time_ns())
    ca = pki.path("ca.crt")
    attacker = Client(Balancer(fed.https_port, "203.0.113.7").port, ca)
    colleague = Client(Balancer(fed.https_port, "198.51.100.9").port, ca)
    path = "/v1/indicators"

    statuses = [attacker.get(path, "fed_%032x" % i) for i in range(1000)]
    assert statuses.count(401) >= 20 and statuses.count(429) > 0, \
        (statuses.count(401), statuses.count(429))
    assert set(statuses) <= {401, 429}
    # The valid token is served, from the attacker's address and from another one.
    assert attacker.get(path, valid) == 200
    assert colleague.get(path, valid) == 200
    # Another client's bad token (same prefix as the attacker's last) is its own: 401, not 429.
    assert colleague.get(path, "fed_%032x" % 999) == 401

    # The audit holds the clients' addresses, never only the balancer's.
    admin = fed.token("admin", "proxy-admin-%d" % time.time_ns())
    assert colleague.get("/v1/audit?limit=200", admin) == 200
    body = json.loads(colleague.body)
    peers = {r["peer"].rsplit(":", 1)[0] for r in body["audit"]}
    assert "203.0.113.7" in peers and "198.51.100.9" in peers, peers

    # A connection from the balancer's address without a header is closed.
    raw = socket.create_connection(("127.0.0.1", fed.https_port), timeout=10)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    try:
        ctx.wrap_socket(raw).sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = False
    except (ssl.SSLError, OSError):
        refused = True
    raw.close()
    assert refused
    m = fed.metrics()
    assert m["federal_https_server_proxy_refused_total"] >= 1
