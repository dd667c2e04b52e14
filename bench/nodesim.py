#!/usr/bin/python3
"""Many simulated municipal nodes in one process (the load generator of bench/national.py).

Each simulated municipality has its own certificate (deploy/pki.sh, URI SAN
municipality:CODE), its own store incarnation and an outbox numbered from sequence 1, and
speaks protocol version 2 as common/sync.c does to its province's hub over mutual TLS 1.3:
Hello{protocol_version 2, max_frame, calendar BS, last_seq} -> HelloReply{acked_seq,
resend_requested, max_frame}; Batches with per-record seqs (a window of several in flight,
each frame kept below the hub's max_frame) -> Acks; ResendComplete after a full resend.

Records are every kind a node sends (persons, services, enterprises, availability, month
closes), drawn by bench/mix.py from the demo's generator (its proportions and distributions;
events as month pairs), and encoded once, at generation, by the generated protobuf module, so
that sending is only framing. The generator keeps the ground truth of the national figures
(mix.Truth); the driver (bench/national.py) never reads the truth back from the product.

Driven by JSON lines on stdin, one reply line on stdout per command:
  {"cmd": "idle"}                connect all, Hello with an empty outbox (ResendComplete if
                                 asked), and stay connected and idle
  {"cmd": "close"}               close every connection
  {"cmd": "load"}                connect all, send whatever the hub lacks, wait for all acks
  {"cmd": "replay"}              connect all and send each municipality's last --batch
                                 records again as one batch (already held: the hub stores
                                 nothing new), so that every session has carried a full batch;
                                 stay connected
  {"cmd": "background", "rate": R, "days": D}
                                 add about R new records a second (new persons registered in
                                 the last D days with their services and enterprises) to
                                 random municipalities, sent as they are made
  {"cmd": "stop_background"}     stop adding; reply once every record is acked
  {"cmd": "truth"}               the ground truth now
  {"cmd": "quit"}"""
import argparse
import asyncio
import ctypes
import datetime
import json
import os
import random
import ssl
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "gen", "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import reintegration_pb2 as pb  # noqa: E402
import mix  # noqa: E402
from mix import bs, gen, nodegen  # noqa: E402

PROTOCOL_VERSION = 2
MAX_FRAME = 4 << 20  # what we accept (HelloReply and Acks are small)

SSL_CTRL_MODE = 33
SSL_MODE_NO_AUTO_CHAIN = 0x8
_LIBSSL = None


def send_certificate_alone(c):
    """Makes context c send its certificate file as it is, as common/tls.c does between tiers
    (SSL_MODE_NO_AUTO_CHAIN), instead of adding the CA that OpenSSL finds in the verification
    store: a hub keeps a parsed copy of every certificate a session sent, which the idle
    memory figure measures. Python's ssl module has no setting for it, so the mode is set on
    the context's SSL_CTX through ctypes, taken where CPython keeps it (the first field after
    the object header); the pointer is checked first: the verify mode read through it must
    follow the context's verify_mode as it is changed."""
    global _LIBSSL
    if _LIBSSL is None:
        lib = ctypes.CDLL("libssl.so.3")
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long,
                                     ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        _LIBSSL = lib
    lib = _LIBSSL
    p = ctypes.c_void_p.from_address(id(c) + object.__basicsize__).value
    want = c.verify_mode
    seen = []
    for vm in (ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
        c.verify_mode = vm
        seen.append(lib.SSL_CTX_get_verify_mode(p) if p else -1)
    c.verify_mode = want
    if seen != [1, 3]:  # SSL_VERIFY_PEER, then with SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        raise RuntimeError("nodesim: cannot find the SSL_CTX of an ssl.SSLContext "
                           "(verify modes %s): this Python keeps it elsewhere" % seen)
    before = lib.SSL_CTX_ctrl(p, SSL_CTRL_MODE, 0, None)
    after = lib.SSL_CTX_ctrl(p, SSL_CTRL_MODE, SSL_MODE_NO_AUTO_CHAIN, None)
    if after != before | SSL_MODE_NO_AUTO_CHAIN:
        raise RuntimeError("nodesim: SSL_MODE_NO_AUTO_CHAIN not set (mode %#x -> %#x)"
                           % (before, after))


def varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


class RecentCaseload(gen.Caseload):
    """gen.Caseload whose registrations fall in the last `days` days (background imports)."""

    def __init__(self, municipality, seed, days):
        super().__init__(municipality, seed)
        self.days = days

    def _date(self, lo_days, hi_days):
        return super()._date(1, max(1, self.days))


class Muni:
    """One simulated municipality: its outbox (encoded Batch.records entries) and session."""

    def __init__(self, code, province, rng):
        self.code = code
        self.province = province
        self.incarnation = rng.randbytes(16)
        self.entries = []  # entries[i] has sequence i + 1
        self.acked = 0
        self.serial = 0
        self.reader = self.writer = None
        self.resend = False
        self.busy = False
        self.peer_max = 4 << 20
        self.largest_frame = 0  # the largest Batch frame sent on the current connection


class Sim:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        with open(args.topology) as f:
            topo = json.load(f)
        self.ports = {int(p): port for p, port in topo["hub_ports"].items()}
        self.munis = [Muni(m["code"], m["province"], self.rng) for m in topo["municipalities"]]
        self.pki = topo["pki"]
        self.truth = mix.Truth()
        self.ms = int(time.time() * 1000)
        self.counter = 0
        self.bg_task = None
        self.sent_records = 0
        self.refusals = 0
        self.refusal_samples = []
        self.errors = []
        self.kinds = {}

    # Records -----------------------------------------------------------------------------

    def _record(self, m):
        """A Record with a fresh UUIDv7-shaped id and version for municipality m."""
        m.serial += 1
        self.counter += 1
        ms = self.ms + self.counter // 64
        r = pb.Record()
        r.id = (ms.to_bytes(6, "big") + bytes([0x70 | (m.serial >> 24 & 0x0F),
                                               m.serial >> 16 & 0xFF, 0x80 | (m.code >> 16 & 0x3F)])
                + (m.code & 0xFFFF).to_bytes(2, "big") + (m.serial & 0xFFFF).to_bytes(2, "big")
                + self.rng.randbytes(3))
        r.municipality = m.code
        r.version = (ms << 16) | (self.counter & 0xFFFF)
        return r

    def _append(self, m, r):
        rec = r.SerializeToString()
        m.entries.append(b"\x1a" + varint(len(rec)) + rec)
        kind = r.WhichOneof("body")
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def _people(self, m, cl, np, ns, ne):
        """np persons of caseload cl, ns services and ne enterprises of them, appended to m's
        outbox and to the truth."""
        ids = {}
        for _ in range(np):
            p = cl.new_person()
            r = self._record(m)
            r.person.years_abroad = -1
            for k, v in cl.expected_person(p).items():
                setattr(r.person, k, v)
            ids[p["local_id"]] = r.id
            self._append(m, r)
        lids = list(cl.persons)
        for _ in range(ns):
            s = cl.new_service(lids[cl.rng.randrange(len(lids))])
            r = self._record(m)
            r.service.person_id = ids[s["person_local_id"]]
            for k, v in cl.expected_service(s).items():
                setattr(r.service, k, v)
            self._append(m, r)
        ents = []
        for _ in range(ne):
            e = nodegen.new_enterprise(cl, lids[cl.rng.randrange(len(lids))])
            r = self._record(m)
            r.enterprise.owner_id = ids[e["owner_local_id"]]
            for k, v in nodegen.expected_enterprise(e).items():
                setattr(r.enterprise, k, v)
            self._append(m, r)
            ents.append(e)
        self.truth.add_more(m.code, list(cl.persons.values()), list(cl.services.values()), ents)

    def make_municipality(self, m, n):
        """n records of every kind for municipality m (mix.py), with their truth."""
        seed = self.rng.getrandbits(64)
        cl = mix.SpanCaseload(m.code, seed, self.args.years)
        today = self.truth.today
        lo, hi = mix.closed_range(cl.rng, today, self.args.years)
        n_close = max(0, hi - lo + 1)
        n_av = min(mix.AVAILABILITY_ROWS, max(0, n - n_close - 1))
        if n_close + n_av >= n:  # a tiny municipality: fewer closes, still one person
            n_close = max(0, n - n_av - 1)
            lo = hi - n_close + 1
        np, ns, ne = mix.split(n, n_close + n_av)
        self._people(m, cl, np, ns, ne)
        rows = nodegen.availability_rows(cl.rng, n_av)
        for a in rows:
            r = self._record(m)
            for k, v in nodegen.expected_availability(a).items():
                setattr(r.availability, k, v)
            self._append(m, r)
        self.truth.add_availability(m.code, rows)
        if n_close:
            for y, mo, day in mix.month_closes(lo, hi, cl.rng, today):
                r = self._record(m)
                r.month_close.year = y
                r.month_close.month = mo
                r.month_close.bikram_sambat = True
                r.month_close.closed_day = bs.day_number(day)
                self._append(m, r)
            self.truth.add_closes(lo, hi)

    def make_recent(self, m, n, days):
        """About n new records for m: persons registered in the last `days` days, with their
        services and enterprises in the demo's proportions (a clerk's import)."""
        cl = RecentCaseload(m.code, self.rng.getrandbits(64), days)
        cl.serial = m.serial + 1000000  # local ids only name rows within this caseload
        np, ns, ne = mix.split(n, 0)
        self._people(m, cl, np, ns, ne)

    def self_check(self):
        """The encoded entries parse back as a Batch of the generated module, as they must."""
        m = Muni(10101, 1, random.Random(1))
        saved, self.truth = self.truth, mix.Truth()
        kinds = dict(self.kinds)
        self.make_municipality(m, 200)
        self.truth, self.kinds = saved, kinds
        b = pb.Batch()
        b.ParseFromString(b"".join(m.entries))
        seen = {r.WhichOneof("body") for r in b.records}
        assert seen == {"person", "service", "enterprise", "availability", "month_close"}, seen
        for r in b.records:
            assert len(r.id) == 16 and r.municipality == 10101 and r.version > 0, r
            if r.HasField("person"):
                assert r.person.registered_month > 190000 and r.person.registered_bs_month > 200000
            if r.HasField("service"):
                assert len(r.service.person_id) == 16 and r.service.bs_month > 200000, r

    def generate(self, total):
        """total records over all municipalities, sizes skewed as caseloads are (a few large
        urban municipalities, many small rural ones), each at least --batch records so that
        every session carries a full batch."""
        w = [self.rng.lognormvariate(0, 0.8) for _ in self.munis]
        floor = min(self.args.batch, total // max(1, len(self.munis)))
        spare = max(0, total - floor * len(self.munis))
        s = sum(w)
        counts = [floor + int(spare * x / s) for x in w]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        for m, n in zip(self.munis, counts):
            self.make_municipality(m, n)

    # Sessions ----------------------------------------------------------------------------

    def ctx(self, code):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.minimum_version = ssl.TLSVersion.TLSv1_3
        c.load_verify_locations(os.path.join(self.pki, "ca.crt"))
        c.check_hostname = False
        c.load_cert_chain(os.path.join(self.pki, "municipality-%d.crt" % code),
                          os.path.join(self.pki, "municipality-%d.key" % code))
        send_certificate_alone(c)
        return c

    @staticmethod
    async def send_env(m, env):
        data = env.SerializeToString()
        m.writer.write(struct.pack(">I", len(data)) + data)

    @staticmethod
    async def recv(m):
        (n,) = struct.unpack(">I", await m.reader.readexactly(4))
        env = pb.Envelope()
        env.ParseFromString(await m.reader.readexactly(n))
        kind = env.WhichOneof("msg")
        if kind == "error":
            raise ConnectionError("municipality %d: hub error %d: %s"
                                  % (m.code, env.error.code, env.error.message))
        return env, kind

    async def connect(self, m, sem):
        async with sem:
            for attempt in range(60):
                try:
                    m.reader, m.writer = await asyncio.wait_for(asyncio.open_connection(
                        "127.0.0.1", self.ports[m.province], ssl=self.ctx(m.code),
                        server_hostname="localhost"), 20)
                    env = pb.Envelope()
                    env.hello.protocol_version = PROTOCOL_VERSION
                    env.hello.identity = "nodesim-%d" % m.code
                    env.hello.incarnation = m.incarnation
                    env.hello.clock = int(time.time() * 1000)
                    env.hello.last_seq = len(m.entries)
                    env.hello.max_frame = MAX_FRAME
                    env.hello.calendar = pb.CALENDAR_BS
                    await self.send_env(m, env)
                    m.largest_frame = 0
                    while True:
                        reply, kind = await asyncio.wait_for(self.recv(m), 30)
                        if kind == "hello_reply":
                            hr = reply.hello_reply
                            m.peer_max = hr.max_frame or (4 << 20)
                            return hr
                except (OSError, ConnectionError, asyncio.IncompleteReadError,
                        asyncio.TimeoutError, ssl.SSLError) as e:
                    self.close_one(m)
                    last = e
                    await asyncio.sleep(0.2 + 0.1 * attempt)
            raise ConnectionError("municipality %d: cannot connect: %s" % (m.code, last))

    def batch_env(self, m, first, last):
        ents = m.entries[first - 1:last]
        seqs = b"".join(varint(q) for q in range(first, last + 1))
        batch = b"".join([b"\x08", varint(first), b"\x10", varint(last)] + ents
                         + [b"\x22", varint(len(seqs)), seqs])
        env = b"\x1a" + varint(len(batch)) + batch
        return struct.pack(">I", len(env)) + env

    def frames(self, m, start, upto):
        """(last_seq, frame) for entries start..upto, --batch records a frame, fewer when a
        frame would exceed the hub's max_frame (as common/sync.c keeps every batch below it)."""
        out = []
        nxt = start
        while nxt <= upto:
            n = min(self.args.batch, upto - nxt + 1)
            while True:
                f = self.batch_env(m, nxt, nxt + n - 1)
                if len(f) - 4 <= m.peer_max or n == 1:
                    break
                n = max(1, n // 2)
            out.append((nxt + n - 1, f))
            nxt += n
        return out

    async def push(self, m, start, upto, resend):
        """Sends entries start..upto with a window of batches; ResendComplete after if asked."""
        W = self.args.window
        frames = self.frames(m, start, upto)
        inflight = []
        i = 0
        while i < len(frames) or inflight:
            while len(inflight) < W and i < len(frames):
                last, f = frames[i]
                m.writer.write(f)
                m.largest_frame = max(m.largest_frame, len(f))
                inflight.append(last)
                self.sent_records += last - (frames[i - 1][0] if i else start - 1)
                i += 1
            await m.writer.drain()
            env, kind = await asyncio.wait_for(self.recv(m), 300)
            if kind != "ack":
                continue
            self.note_refusals(env.ack)
            m.acked = max(m.acked, env.ack.acked_seq)
            inflight.pop(0)
        if resend:
            env = pb.Envelope()
            env.resend_complete.incarnation = m.incarnation
            env.resend_complete.last_seq = upto
            await self.send_env(m, env)
            while True:
                env, kind = await asyncio.wait_for(self.recv(m), 300)
                if kind == "ack":
                    break

    def note_refusals(self, ack):
        """Counts the records a hub refused, keeps a few reasons for the driver's replies and
        logs every one: the generators must make only valid records, so a refusal is a bug
        here that would otherwise show only as figures that never reach the truth."""
        self.refusals += len(ack.refusals)
        for r in ack.refusals:
            sys.stderr.write("nodesim: REFUSED by a hub: seq %d %s: %s\n"
                             % (r.seq, r.field, r.reason))
            if len(self.refusal_samples) < 10:
                self.refusal_samples.append("%s: %s" % (r.field, r.reason))
        if ack.refusals:
            sys.stderr.flush()

    async def replay(self, m, sem):
        """Connects m and sends its last --batch entries again as one batch (held already)."""
        if m.writer is None:
            hr = await self.connect(m, sem)
            m.acked = hr.acked_seq
            m.resend = hr.resend_requested
        if m.resend or m.acked < len(m.entries):
            raise ConnectionError("municipality %d: replay before a load" % m.code)
        first = max(1, len(m.entries) - self.args.batch + 1)
        f = self.batch_env(m, first, len(m.entries))
        if len(f) - 4 > m.peer_max:
            raise ConnectionError("municipality %d: a full batch exceeds the hub's max_frame"
                                  % m.code)
        m.writer.write(f)
        m.largest_frame = max(m.largest_frame, len(f))
        await m.writer.drain()
        while True:
            env, kind = await asyncio.wait_for(self.recv(m), 300)
            if kind == "ack":
                self.note_refusals(env.ack)
                return

    async def session(self, m, sem, idle):
        for attempt in range(20):
            try:
                if m.writer is None:
                    hr = await self.connect(m, sem)
                    m.acked = hr.acked_seq
                    m.resend = hr.resend_requested
                upto = 0 if idle else len(m.entries)
                if m.acked < upto or m.resend:
                    await self.push(m, m.acked + 1, upto, m.resend)
                    m.resend = False
                return
            except (OSError, ConnectionError, asyncio.IncompleteReadError,
                    asyncio.TimeoutError, ssl.SSLError) as e:
                self.errors.append(str(e)[:200])
                self.close_one(m)
                await asyncio.sleep(0.5)
        raise ConnectionError("municipality %d: gave up" % m.code)

    def close_one(self, m):
        if m.writer is not None:
            try:
                m.writer.transport.abort()
            except Exception:
                pass
        m.reader = m.writer = None

    async def all_sessions(self, idle):
        sem = asyncio.Semaphore(self.args.connect_parallel)
        await asyncio.gather(*(self.session(m, sem, idle) for m in self.munis))

    async def background(self, rate, days):
        """About rate new records a second in ticks of 0.5 s, each tick's records going to a
        few municipalities (a clerk's import each: new persons of the last `days` days with
        their services and enterprises), sent as one session each."""
        sem = asyncio.Semaphore(self.args.connect_parallel)
        tasks = set()
        while True:
            t0 = time.monotonic()
            n = max(1, int(rate / 2))
            chosen = self.rng.sample(self.munis, min(len(self.munis), 20))
            per = max(1, n // len(chosen))
            for m in chosen:
                self.make_recent(m, per, days)
            for m in chosen:
                if not m.busy:
                    m.busy = True
                    t = asyncio.ensure_future(self._bg_send(m, sem))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0, 0.5 - (time.monotonic() - t0)))

    async def _bg_send(self, m, sem):
        try:
            await self.session(m, sem, idle=False)
        finally:
            m.busy = False

    async def run(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self.self_check()
        t0 = time.monotonic()
        self.generate(self.args.records)
        self.reply({"ready": True, "records": sum(len(m.entries) for m in self.munis),
                    "municipalities": len(self.munis), "gen_s": time.monotonic() - t0})
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            c = cmd["cmd"]
            t0 = time.monotonic()
            out = {"cmd": c}
            try:
                if c in ("idle", "load"):
                    sent0 = self.sent_records
                    await self.all_sessions(idle=(c == "idle"))
                    out["records_sent"] = self.sent_records - sent0
                    out["connected"] = sum(1 for m in self.munis if m.writer is not None)
                elif c == "replay":
                    sem = asyncio.Semaphore(self.args.connect_parallel)
                    await asyncio.gather(*(self.replay(m, sem) for m in self.munis))
                    out["connected"] = sum(1 for m in self.munis if m.writer is not None)
                    fr = [m.largest_frame for m in self.munis]
                    out["frame_min"], out["frame_max"] = min(fr), max(fr)
                    out["full_batches"] = sum(1 for m in self.munis
                                              if len(m.entries) >= self.args.batch)
                elif c == "close":
                    for m in self.munis:
                        self.close_one(m)
                elif c == "background":
                    self.bg_task = asyncio.ensure_future(self.background(cmd["rate"],
                                                                         cmd["days"]))
                elif c == "stop_background":
                    if self.bg_task:
                        self.bg_task.cancel()
                        self.bg_task = None
                    while any(m.busy for m in self.munis):
                        await asyncio.sleep(0.05)
                    await self.all_sessions(idle=False)
                elif c == "truth":
                    pass
                elif c == "quit":
                    break
                out["ok"] = True
            except Exception as e:  # reported to the driver, which stops the run
                out["ok"] = False
                out["error"] = "%s: %s" % (type(e).__name__, e)
            out["elapsed"] = time.monotonic() - t0
            out["truth"] = self.truth.figures()
            out["records"] = sum(len(m.entries) for m in self.munis)
            out["kinds"] = self.kinds
            out["refusals"] = self.refusals
            out["refusal_samples"] = self.refusal_samples
            out["errors"] = self.errors[-5:]
            out["cpu_s"] = sum(os.times()[:2])
            self.reply(out)

    @staticmethod
    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topology", required=True, help="JSON: pki, hub_ports, municipalities")
    ap.add_argument("--records", type=int, default=400000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch", type=int, default=2000, help="records per batch (node default)")
    ap.add_argument("--window", type=int, default=8, help="batches in flight (node default)")
    ap.add_argument("--connect-parallel", type=int, default=64)
    ap.add_argument("--years", type=int, default=10, help="span of registrations (120 months)")
    args = ap.parse_args()
    asyncio.run(Sim(args).run())


if __name__ == "__main__":
    main()
