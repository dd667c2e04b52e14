"""Protocol version 1, as it shipped: the schema kept in tests/compat/v1 compiled at test time
with Debian's protoc, and a sync client that speaks only it, the way a node not yet upgraded
does during a rollout (federal first, then hubs, then nodes)."""
import atexit
import importlib
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from harness import ROOT

V1_DIR = os.path.join(ROOT, "tests", "compat", "v1")
_v1 = None


def v1():
    """The v1 schema's Python module (reint.compat.v1), compiled once per test process."""
    global _v1
    if _v1 is None:
        out = tempfile.mkdtemp(prefix="reint-v1-pb-")
        atexit.register(shutil.rmtree, out, True)  # each run left one in /tmp
        subprocess.run(["protoc", "--proto_path=" + V1_DIR, "--python_out=" + out,
                        "reintegration_v1.proto"], check=True)
        sys.path.insert(0, out)
        _v1 = importlib.import_module("reintegration_v1_pb2")
    return _v1


class V1Client:
    """A v1 node: Hello with protocol_version 1 and nothing v2 added."""

    def __init__(self, port, pki, cert_stem):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(pki.path("ca.crt"))
        ctx.check_hostname = False
        ctx.load_cert_chain(pki.path(cert_stem + ".crt"), pki.path(cert_stem + ".key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.pb = v1()

    def send(self, env):
        data = env.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        env = self.pb.Envelope()
        env.ParseFromString(self._read(n))
        return env

    def hello(self, incarnation, version=1):
        env = self.pb.Envelope()
        env.hello.protocol_version = version
        env.hello.identity = "v1-node"
        env.hello.incarnation = incarnation
        env.hello.clock = int(time.time() * 1000)
        env.hello.last_seq = 1 << 20  # a v1 node announced its last sequence too
        self.send(env)
        return self.recv()

    def batch(self, first_seq, records):
        env = self.pb.Envelope()
        env.batch.first_seq = first_seq
        env.batch.last_seq = first_seq + len(records) - 1
        for i, r in enumerate(records):
            env.batch.records.append(r)
            env.batch.seqs.append(first_seq + i)
        self.send(env)
        return self.recv()

    def close(self):
        self.sock.close()
