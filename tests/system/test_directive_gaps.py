"""A relay cannot suppress a directive by skipping its serial (issue 18). The federal tier's
serials are consecutive; a node or a hub that receives serial 3 while it holds 1 records 2 as
missing, shows it in `status` and /metrics, asks for it (DirectiveAck.missing) at once and at
every session, and takes it when it comes. The hub and the federal tier answer such a request
with the directives they hold."""
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from fedclient import Federal
from harness import ROOT, Hub, Node, pb, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import FreshDatabase
from test_directives import DirectiveFederal, directive_body, hub_session, ack
from wireclient import WireClient

KEY = "gap-test-1"


@pytest.fixture(scope="module")
def signer(pki):
    run([os.path.join(ROOT, "deploy", "pki.sh"), "directive-key", pki.dir, KEY])
    return pki.path("directive-%s.key" % KEY), pki.path("directive-%s.pub" % KEY)


def signed(key, serial):
    """A SignedDirective of this serial, signed with the directive key (openssl pkeyutl)."""
    d = pb.Directive()
    d.serial = serial
    d.key_id = KEY
    d.issued_at = int(time.time() * 1000)
    d.effective_from_day = int(time.time() // 86400)
    d.title = "Directive %d" % serial
    d.text = "Gap test"
    body = d.SerializeToString()
    with tempfile.TemporaryDirectory() as t:
        bp = os.path.join(t, "body")
        with open(bp, "wb") as f:
            f.write(body)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", bp],
                             capture_output=True, check=True).stdout
    sd = pb.SignedDirective()
    sd.key_id = KEY
    sd.body = body
    sd.signature = sig
    return sd


class FakeUpstream:
    """A peer with an upstream identity's key (a province for a node, the federal tier for a
    hub) that relays directives 1 and 3, records the DirectiveAcks it gets, and sends more on
    request of the test."""

    def __init__(self, pki, stem, directives):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(pki.path(stem + ".crt"), pki.path(stem + ".key"))
        self.ctx.load_verify_locations(pki.path("ca.crt"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.directives = directives
        self.acks = []
        self.conn = None
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _send(self, s, env):
        data = env.SerializeToString()
        s.sendall(struct.pack(">I", len(data)) + data)

    def _recv(self, s):
        def exact(n):
            b = b""
            while len(b) < n:
                c = s.recv(n - len(b))
                if not c:
                    raise EOFError
                b += c
            return b
        (n,) = struct.unpack(">I", exact(4))
        env = pb.Envelope()
        env.ParseFromString(exact(n))
        return env

    def _serve(self):
        while True:
            raw, _ = self.sock.accept()
            try:
                s = self.ctx.wrap_socket(raw, server_side=True)
                hello = self._recv(s)
                assert hello.WhichOneof("msg") == "hello"
                reply = pb.Envelope()
                reply.hello_reply.clock = int(time.time() * 1000)
                reply.hello_reply.max_frame = 4 << 20
                for sd in self.directives:
                    reply.hello_reply.directives.append(sd)
                self._send(s, reply)
                with self.lock:
                    self.conn = s
                while True:
                    env = self._recv(s)
                    if env.WhichOneof("msg") == "directive_ack":
                        with self.lock:
                            self.acks.append((env.directive_ack.serial,
                                              list(env.directive_ack.missing)))
            except (OSError, ssl.SSLError, EOFError, AssertionError):
                raw.close()

    def push(self, sd):
        env = pb.Envelope()
        env.directive.CopyFrom(sd)
        with self.lock:
            self._send(self.conn, env)


def asked_for(up, serial):
    with up.lock:
        return any(serial in missing for _, missing in up.acks)


def test_node_records_asks_for_and_fills_a_skipped_serial(pki, workdir, procs, signer):
    key, pub = signer
    d1, d2, d3 = (signed(key, s) for s in (1, 2, 3))
    up = FakeUpstream(pki, "province-1", [d1, d3])
    hub = Hub(workdir, pki, 1)  # only for its address in the node's config
    node = Node(workdir, pki, 10703, hub)
    with open(node.config) as f:
        text = f.read()
    text = text.replace("127.0.0.1:%d" % hub.sync_port, "127.0.0.1:%d" % up.port)
    # init lists every directive-*.pub of the tests' PKI: this node trusts this key alone.
    text = re.sub(r"\nkeys = [^\n]*\n", "\nkeys = %s=%s\n" % (KEY, pub), text)
    with open(node.config, "w") as f:
        f.write(text)
    procs.append(node.serve())
    wait_for(lambda: asked_for(up, 2), 20, "the node to ask for directive 2")
    st = node.status(alarms=["directives_missing"])
    assert st["directive_gaps"] == [2] and st["directive_gaps_total"] == 1, st
    assert "MISSING" in node.status_text()
    from test_revocation import node_metric
    assert node_metric(node, "node_directive_gaps") == 1
    up.push(d2)
    wait_for(lambda: node.status()["directive_gaps"] == [], 20, "the gap filled")
    assert node_metric(node, "node_directive_gaps") == 0
    with up.lock:
        assert (2, []) in up.acks, up.acks
    out = node.cli("directives").stdout
    assert "Directive 2" in out and "Directive 3" in out


def test_hub_records_asks_for_and_fills_a_skipped_serial(pki, workdir, procs, signer):
    key, pub = signer
    pki.issue("federal")
    d1, d2, d3 = (signed(key, s) for s in (1, 2, 3))
    up = FakeUpstream(pki, "federal", [d1, d3])
    hub = Hub(workdir, pki, 1)
    hub.configure("[uplink]\nfederal = 127.0.0.1:%d\n[directives]\nkeys = %s=%s\n"
                  % (up.port, KEY, pub)).start()
    procs.append(hub)
    wait_for(lambda: asked_for(up, 2), 20, "the hub to ask for directive 2")
    assert hub.metrics()["hub_directive_gaps"] == 1
    up.push(d2)
    wait_for(lambda: hub.metrics()["hub_directive_gaps"] == 0, 20, "the gap filled")

    # The hub answers a node's request for a serial it holds (a node that lacks 2).
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(os.urandom(16))
    assert len(reply.directives) == 3
    env = pb.Envelope()
    env.directive_ack.serial = 3
    env.directive_ack.missing.append(2)
    c.send(env)
    got = c.recv()
    assert got.WhichOneof("msg") == "directive", got
    body = pb.Directive()
    body.ParseFromString(got.directive.body)
    assert body.serial == 2
    c.close()


def test_federal_answers_a_hubs_request_for_missing_serials(pki, workdir, procs, postgres):  # noqa: F811
    pki.issue("federal")
    run([os.path.join(ROOT, "deploy", "pki.sh"), "directive-key", pki.dir, "fed-gap-1"])
    fed = DirectiveFederal(workdir, pki, FreshDatabase(postgres), key_id="fed-gap-1",
                           name="federal-gaps").start()
    procs.append(fed)
    admin = fed.token("admin", "gap-admin-%d" % time.time_ns())
    serials = []
    for i in range(3):
        st, a = fed.post("/v1/directives", admin, directive_body(title="D%d" % i, targets=[]))
        assert st == 201, a
        serials.append(a["serial"])
    c, reply = hub_session(fed, pki, os.urandom(16))
    assert len(reply.directives) == 3
    ack(c, serials[2])
    env = pb.Envelope()
    env.directive_ack.missing.append(serials[1])
    c.send(env)
    got = c.recv()
    assert got.WhichOneof("msg") == "directive", got
    body = pb.Directive()
    body.ParseFromString(got.directive.body)
    assert body.serial == serials[1] and body.title == "D1"
    c.close()
