"""Every HTTP(S) server answers pipelined requests, all of them, in order (issue 18: the hub's
HTTPS server answered 18 of 100 and then hung until the idle timeout), and a query that is not
UTF-8 gets 400, not 500."""
import os
import random
import socket
import ssl
import time

import pytest

from fedclient import Federal
from harness import BIN, Hub, Node, run
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import FreshDatabase

N = 100


def _connect(port, tls_ca):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    if not tls_ca:
        return raw
    ctx = ssl.create_default_context(cafile=tls_ca)
    ctx.check_hostname = False
    return ctx.wrap_socket(raw)


def _responses(sock, n):
    """Reads n HTTP/1.1 responses; returns their status codes in order."""
    buf = b""
    out = []
    deadline = time.time() + 30
    while len(out) < n and time.time() < deadline:
        while b"\r\n\r\n" in buf and len(out) < n:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for h in lines[1:]:
                k, _, v = h.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(rest) < length:
                break
            out.append(int(lines[0].split()[1]))
            buf = rest[length:]
        if len(out) >= n:
            break
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        buf += chunk
    return out


def pipelined(port, plan, tls_ca=None, token=None):
    """Sends every (path, expected status) of plan in one write, then reads the answers."""
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    req = b"".join(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (p, auth)).encode()
                   for p, _ in plan)
    s = _connect(port, tls_ca)
    try:
        s.sendall(req)
        got = _responses(s, len(plan))
    finally:
        s.close()
    assert len(got) == len(plan), "%d of %d answered" % (len(got), len(plan))
    assert got == [st for _, st in plan]


def plan_of(ok_path, other_path, other_status, seed):
    r = random.Random(seed)
    return [(ok_path, 200) if r.random() < 0.5 else (other_path, other_status) for _ in range(N)]


def one(port, path, tls_ca=None, token=None):
    s = _connect(port, tls_ca)
    try:
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n"
                   % (path, auth)).encode())
        return _responses(s, 1)[0]
    finally:
        s.close()


def test_hub_http_and_https_answer_100_pipelined_requests_in_order(pki, workdir, procs):
    hub = Hub(workdir, pki, 1)
    token = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config, "token",
                 "pipe"]).stdout.strip()
    hub.start()
    procs.append(hub)
    ca = pki.path("ca.crt")
    pipelined(hub.https_port, plan_of("/v1/gaps", "/v1/nothing", 404, 1), ca, token)
    pipelined(hub.https_port, plan_of("/v1/indicators", "/v1/gaps?period=nope", 400, 2), ca,
              token)
    pipelined(hub.http_port, plan_of("/metrics", "/nothing", 404, 3))
    for bad in ("/v1/gaps?period=%FF%FE", "/v1/gaps?period=2026%C3%28",
                "/v1/indicators/%FF?period=2026"):
        assert one(hub.https_port, bad, ca, token) == 400, bad


def test_node_http_answers_100_pipelined_requests_in_order(pki, workdir, procs):
    hub = Hub(workdir, pki, 1)
    node = Node(workdir, pki, 10703, hub)
    token = node.cli("token", "pipe").stdout.strip()
    procs.append(node.serve())
    pipelined(node.http_port, plan_of("/healthz", "/nothing", 404, 4))
    pipelined(node.http_port, plan_of("/v1/status", "/v1/nothing", 404, 5), None, token)
    for bad in ("/v1/status?x=%FF", "/v1/followups?q=%C3%28"):
        assert one(node.http_port, bad, None, token) == 400, bad


def test_federal_https_and_http_answer_100_pipelined_requests_in_order(pki, workdir, procs,
                                                                      postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
    procs.append(fed)
    token = fed.token("ministry", "pipe-%d" % time.time_ns())
    ca = pki.path("ca.crt")
    pipelined(fed.https_port, plan_of("/v1/indicators", "/v1/nothing", 404, 6), ca, token)
    pipelined(fed.http_port, plan_of("/healthz", "/nothing", 404, 7))
    for bad in ("/v1/indicators/participants_registered?period=%FF",
                "/v1/indicators/participants_registered?period=2026&by=%C3%28"):
        assert one(fed.https_port, bad, ca, token) == 400, bad
