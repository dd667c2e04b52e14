#!/usr/bin/python3
"""Many simulated municipal nodes in one process (issue 7's load generator).

Each simulated municipality has its own certificate (deploy/pki.sh, URI SAN
municipality:CODE), its own store incarnation and an outbox of person records numbered from
sequence 1, and speaks the node protocol of common/sync.c to its province's hub over mutual
TLS 1.3: Hello -> HelloReply{acked_seq, resend_requested}; Batches (window of several in
flight) -> Acks; ResendComplete after a full resend. Records are encoded by hand (plain
protobuf wire format, checked against the generated module at start) so that one Python
process can drive hundreds of thousands of records a second.

The generator decides every record and keeps the ground truth of the national indicators
it checks (participants_registered per Gregorian year: total, by sex, by category; per
Gregorian month by sex); the
driver (bench/national.py) never reads the truth back from the product.

Driven by JSON lines on stdin, one reply line on stdout per command:
  {"cmd": "idle"}                connect all, Hello with an empty outbox (ResendComplete if
                                 asked), and stay connected and idle
  {"cmd": "close"}               close every connection
  {"cmd": "load"}                connect all, send whatever the hub lacks, wait for all acks
  {"cmd": "background", "rate": R, "days": D}
                                 add R new records a second (registered in the last D days)
                                 to random municipalities, sent as they are made
  {"cmd": "stop_background"}     stop adding; reply once every record is acked
  {"cmd": "truth"}               the ground truth now
  {"cmd": "quit"}"""
import argparse
import asyncio
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
import reintegration_pb2 as pb  # noqa: E402

SEXES = ["FEMALE", "MALE", "OTHER"]
CATEGORIES = ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE", "COMMUNITY"]
COUNTRIES = [b"QA", b"AE", b"SA", b"MY", b"KW", b"IN", b"JP", b"KR", b"BH", b"OM"]
EPOCH = datetime.date(1970, 1, 1)
TODAY = datetime.date.today()
TODAY_DAY = (TODAY - EPOCH).days


def varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


V = [varint(i) for i in range(128)]
NEG1 = varint(-1)


def year_of(day):
    return (EPOCH + datetime.timedelta(days=day)).year


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


class Sim:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        with open(args.topology) as f:
            topo = json.load(f)
        self.ports = {int(p): port for p, port in topo["hub_ports"].items()}
        self.munis = [Muni(m["code"], m["province"], self.rng) for m in topo["municipalities"]]
        self.pki = topo["pki"]
        self.truth = {}  # "YEAR|sex|FEMALE" -> n, "YEAR|category|RETURNEE", "YEAR||"
        self.ms = int(time.time() * 1000)
        self.counter = 0
        self.bg_task = None
        self.sent_records = 0
        self.refusals = 0
        self.errors = []

    # Records -----------------------------------------------------------------------------

    def _tally(self, day, sex, cat):
        d = EPOCH + datetime.timedelta(days=day)
        y = d.year
        for k in ("%d||" % y, "%d|sex|%s" % (y, SEXES[sex - 1]),
                  "%d|category|%s" % (y, CATEGORIES[cat - 1]),
                  "%d-%02d|sex|%s" % (y, d.month, SEXES[sex - 1])):
            self.truth[k] = self.truth.get(k, 0) + 1

    def make_record(self, m, lo_day, hi_day):
        """Appends one plausible person to m's outbox and to the truth."""
        r = self.rng.random
        m.serial += 1
        self.counter += 1
        # Caseloads: returnees and their families dominate; men are most returnees.
        x = r()
        cat = 1 if x < 0.45 else 2 if x < 0.70 else 3 if x < 0.85 else 4 if x < 0.95 else 5
        x = r()
        if cat == 1:
            sex = 2 if x < 0.80 else 1 if x < 0.995 else 3
        else:
            sex = 1 if x < 0.60 else 2 if x < 0.995 else 3
        x = r()
        band = 2 if x < 0.25 else 3 if x < 0.70 else 4 if x < 0.95 else 5 if x < 0.98 else 1
        day = lo_day + int(r() * (hi_day - lo_day + 1))
        caste = 1 + int(r() * 7)
        body = [b"\x08", V[cat], b"\x10", V[1 if r() < 0.4 else 2], b"\x18", V[sex],
                b"\x20", V[band], b"\x28", V[caste], b"\x30", V[1 if r() < 0.05 else 2],
                b"\x38", varint(day)]
        if cat != 5:
            body += [b"\x42\x02", COUNTRIES[int(r() * 10)]]
        if cat == 1:
            rd = EPOCH + datetime.timedelta(days=day - int(r() * 300))
            body += [b"\x48", V[1 + int(r() * 15)], b"\x50", varint(rd.year * 100 + rd.month),
                     b"\x58", V[1 + int(r() * 3)]]
        else:
            body += [b"\x48", NEG1]
        body.append(b"\x60\x01")
        pbody = b"".join(body)
        # UUIDv7 layout: 48-bit ms, version 7, then bits that make it unique per record.
        ms = self.ms + self.counter // 64
        rid = (ms.to_bytes(6, "big") + bytes([0x70 | (m.serial >> 24 & 0x0F), m.serial >> 16 & 0xFF,
               0x80 | (m.code >> 16 & 0x3F)]) + (m.code & 0xFFFF).to_bytes(2, "big")
               + (m.serial & 0xFFFF).to_bytes(2, "big") + self.rng.randbytes(3))
        version = (ms << 16) | (self.counter & 0xFFFF)
        rec = b"".join([b"\x0a\x10", rid, b"\x10", varint(m.code), b"\x18", varint(version),
                        b"\x52", varint(len(pbody)), pbody])
        m.entries.append(b"\x1a" + varint(len(rec)) + rec)
        self._tally(day, sex, cat)

    def self_check(self):
        """The hand encoding parses as the generated module's Record, as it must."""
        m = Muni(10101, 1, random.Random(1))
        saved = dict(self.truth)
        self.make_record(m, TODAY_DAY - 100, TODAY_DAY - 1)
        self.truth = saved
        b = pb.Batch()
        b.ParseFromString(m.entries[0])
        r = b.records[0]
        assert len(r.id) == 16 and r.municipality == 10101 and r.version > 0, r
        assert r.WhichOneof("body") == "person" and r.person.sex in (1, 2, 3), r
        assert r.person.years_abroad == -1 or r.person.years_abroad >= 1, r

    def generate(self, total):
        """total records over all municipalities, sizes skewed as caseloads are (a few
        large urban municipalities, many small rural ones), registered over 5 years."""
        w = [self.rng.lognormvariate(0, 0.8) for _ in self.munis]
        s = sum(w)
        counts = [int(total * x / s) for x in w]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lo = TODAY_DAY - 5 * 365
        for m, n in zip(self.munis, counts):
            for _ in range(n):
                self.make_record(m, lo, TODAY_DAY - 1)

    # Sessions ----------------------------------------------------------------------------

    def ctx(self, code):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.minimum_version = ssl.TLSVersion.TLSv1_3
        c.load_verify_locations(os.path.join(self.pki, "ca.crt"))
        c.check_hostname = False
        c.load_cert_chain(os.path.join(self.pki, "municipality-%d.crt" % code),
                          os.path.join(self.pki, "municipality-%d.key" % code))
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
                    env.hello.protocol_version = 1
                    env.hello.identity = "nodesim-%d" % m.code
                    env.hello.incarnation = m.incarnation
                    env.hello.clock = int(time.time() * 1000)
                    env.hello.last_seq = len(m.entries)
                    await self.send_env(m, env)
                    while True:
                        reply, kind = await asyncio.wait_for(self.recv(m), 30)
                        if kind == "hello_reply":
                            return reply.hello_reply
                except (OSError, ConnectionError, asyncio.IncompleteReadError,
                        asyncio.TimeoutError, ssl.SSLError) as e:
                    self.close_one(m)
                    last = e
                    await asyncio.sleep(0.2 + 0.1 * attempt)
            raise ConnectionError("municipality %d: cannot connect: %s" % (m.code, last))

    def batch_env(self, m, first, last):
        ents = m.entries[first - 1:last]
        seqs = b"".join(varint(s) for s in range(first, last + 1))
        batch = b"".join([b"\x08", varint(first), b"\x10", varint(last)] + ents
                         + [b"\x22", varint(len(seqs)), seqs])
        env = b"\x1a" + varint(len(batch)) + batch
        return struct.pack(">I", len(env)) + env

    async def push(self, m, start, upto, resend):
        """Sends entries start..upto with a window of batches; ResendComplete after if asked."""
        B, W = self.args.batch, self.args.window
        inflight = []
        nxt = start
        while nxt <= upto or inflight:
            while len(inflight) < W and nxt <= upto:
                last = min(nxt + B - 1, upto)
                m.writer.write(self.batch_env(m, nxt, last))
                inflight.append(last)
                self.sent_records += last - nxt + 1
                nxt = last + 1
            await m.writer.drain()
            env, kind = await asyncio.wait_for(self.recv(m), 300)
            if kind != "ack":
                continue
            self.refusals += len(env.ack.refusals)
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
        """rate new records a second, registered over the last `days` days, in ticks of
        0.5 s, each tick's records going to a few municipalities as one batch each (as
        nodes whose clerks just imported a sheet)."""
        spans = [(TODAY_DAY - days, TODAY_DAY - 1)]
        sem = asyncio.Semaphore(self.args.connect_parallel)
        tasks = set()
        while True:
            t0 = time.monotonic()
            n = max(1, int(rate / 2))
            chosen = self.rng.sample(self.munis, min(len(self.munis), 20))
            for i in range(n):
                m = chosen[i % len(chosen)]
                lo, hi = self.rng.choice(spans)
                self.make_record(m, lo, hi)
            for m in chosen:
                if not getattr(m, "busy", False):
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
                    while any(getattr(m, "busy", False) for m in self.munis):
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
            out["truth"] = self.truth
            out["records"] = sum(len(m.entries) for m in self.munis)
            out["refusals"] = self.refusals
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
    args = ap.parse_args()
    asyncio.run(Sim(args).run())


if __name__ == "__main__":
    main()
