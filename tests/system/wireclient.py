"""A sync-protocol client written with Debian's python3-protobuf and Python's ssl module:
the proof that the wire format is plain protobuf any implementation can speak, and the
tool with which tests send what a well-behaved node never would."""
import os
import socket
import ssl
import struct
import time

from harness import pb


def record_id(n):
    """A UUIDv7-shaped id: 48-bit ms, version 7, variant, then n (test-chosen)."""
    ms = int(time.time() * 1000)
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(2) + n.to_bytes(8, "big"))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return bytes(b)


class WireClient:
    def __init__(self, port, pki, cert_stem, ca=None, expect_hostname=False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca or pki.path("ca.crt"))
        ctx.check_hostname = expect_hostname
        ctx.load_cert_chain(pki.path(cert_stem + ".crt"), pki.path(cert_stem + ".key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""

    def send(self, env):
        data = env.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def send_raw(self, data):
        self.sock.sendall(data)

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
        env = pb.Envelope()
        env.ParseFromString(self._read(n))
        return env

    def closed_after_error(self):
        """Reads until EOF; returns the Error message seen, if any."""
        err = None
        try:
            while True:
                env = self.recv()
                if env.WhichOneof("msg") == "error":
                    err = env.error
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            return err

    def hello(self, incarnation, last_seq=1 << 20, version=2, max_frame=0):
        """Hello announcing last_seq (the receiver refuses batches far beyond it), as the schema
        of build/gen/python speaks it: protocol version 2 (whose records carry month pairs; a
        v1 client is compat.V1Client); max_frame: the frames it takes (0: the default)."""
        env = pb.Envelope()
        env.hello.protocol_version = version
        env.hello.identity = "python"
        env.hello.incarnation = incarnation
        env.hello.clock = int(time.time() * 1000)
        env.hello.last_seq = last_seq
        env.hello.max_frame = max_frame
        self.send(env)
        reply = self.recv()
        assert reply.WhichOneof("msg") == "hello_reply", reply
        return reply.hello_reply

    def batch(self, first_seq, records):
        env = pb.Envelope()
        env.batch.first_seq = first_seq
        env.batch.last_seq = first_seq + len(records) - 1
        for i, r in enumerate(records):
            env.batch.records.append(r)
            env.batch.seqs.append(first_seq + i)
        self.send(env)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def person(municipality, n, version, **fields):
    r = pb.Record()
    r.id = record_id(n)
    r.municipality = municipality
    r.version = version
    r.person.category = fields.get("category", pb.CATEGORY_RETURNEE)
    r.person.sex = fields.get("sex", pb.SEX_FEMALE)
    r.person.age_band = fields.get("age_band", pb.AGE_BAND_25_39)
    # 2024-10-04 (BS 2081-06-18): the pair (2024-10, BS 2081-06).
    r.person.registered_month = fields.get("registered_month", 202410)
    r.person.registered_bs_month = fields.get("registered_bs_month", 208106)
    r.person.destination_country = fields.get("destination_country", "QA")
    r.person.years_abroad = fields.get("years_abroad", 3)
    return r


def with_unknown_field(rec, body, extra):
    """A copy of rec whose body message (e.g. "person") also carries the raw bytes extra: a
    field this schema does not define, as a modified or newer sender would put there."""
    msg = getattr(rec, body)
    crafted = type(msg)()
    crafted.ParseFromString(msg.SerializeToString() + extra)
    out = pb.Record()
    out.CopyFrom(rec)
    getattr(out, body).CopyFrom(crafted)
    assert extra in out.SerializeToString()
    return out


def reply_size(reply, crl, directives):
    """Bytes of an Envelope carrying HelloReply reply with its CRL or without (crl), and with
    its first `directives` directives only: what a receiver must fit in a peer's frames."""
    env = pb.Envelope()
    env.hello_reply.CopyFrom(reply)
    if not crl:
        env.hello_reply.ClearField("crl")
    del env.hello_reply.directives[directives:]
    return env.ByteSize()
