"""Helpers for the federal tier's system tests and benchmark: the federal-api daemon on a
private PostgreSQL, an HTTPS client with bearer tokens, and a hub uplink client (python3-
protobuf over mutual TLS) that pushes RollupBatches with a window and resends whatever is
unacknowledged after a reconnect, the way the hub's uplink must."""
import json
import os
import random
import ssl
import time
import urllib.error
import urllib.request

import openapi
from harness import BIN, Daemon, free_port, ini_set, pb, run
from wireclient import WireClient


class Federal(Daemon):
    def __init__(self, workdir, pki, pg, auth_max_failures=1000, name="federal"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.pki = pki
        self.pg = pg
        self.sync_port = free_port()
        self.https_port = free_port()
        self.http_port = free_port()
        self.config = os.path.join(self.dir, "federal.ini")
        with open(self.config, "w") as f:
            f.write("[federal]\nsync_listen = 127.0.0.1:%d\nhttps_listen = 127.0.0.1:%d\n"
                    "http_listen = 127.0.0.1:%d\npg = %s\nauth_max_failures = %d\n"
                    "[tls]\nca = %s\ncert = %s\nkey = %s\ncrl = %s\n"
                    % (self.sync_port, self.https_port, self.http_port, pg.conninfo,
                       auth_max_failures, pki.path("ca.crt"), pki.path("federal.crt"),
                       pki.path("federal.key"), pki.path("crl.pem")))
        self.ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
        # Test hooks for the next start: e.g. ["--enable-test-hooks", "--test-clock", FILE].
        self.hooks = []

    def start(self):
        self._start([os.path.join(BIN, "federal-api")] + self.hooks +
                    ["--config", self.config, "serve"],
                    os.path.join(self.dir, "federal.log"))
        return self

    def configure(self, text):
        """Sets the INI text's keys before the next start (harness.ini_set)."""
        ini_set(self.config, text)
        return self

    def cli(self, *args, check=True):
        return run([os.path.join(BIN, "federal-api"), "--config", self.config] + list(args),
                   check=check, timeout=60)

    def token(self, role, name, province=None):
        args = ["token", "create", "--role", role]
        if province:
            args += ["--province", str(province)]
        return self.cli(*(args + [name])).stdout.strip()

    def get(self, path, token=None, raw=False):
        """(status, parsed JSON or text, headers) of GET path on the HTTPS API."""
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.https_port, path))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                status, body, headers = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, body, headers = e.code, e.read().decode(), e.headers
        # Every JSON answer the system tests receive is checked against the API's description.
        parsed = openapi.answer("federal", "GET", path, status, body)
        return status, body if raw else parsed, headers

    def post(self, path, token, body):
        """(status, parsed JSON) of POST path with body (a dict, or raw bytes). The answer is
        checked against the API's description, and so is a dict body the API accepted."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.https_port, path),
                                     data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        parsed = openapi.answer("federal", "POST", path, status, text)
        if not isinstance(body, bytes):
            openapi.check_request("federal", "POST", path, status, body)
        return status, parsed

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http_port,
                                    timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    k, v = line.split()
                    out[k] = float(v)
            return out


SUMS = ("seed_funding_npr", "jobs_created")


def snapshot(municipality, period, revision, cells):
    """cells: {(indicator, grouping, key tuple): (numerator, denominator, cell_key, contributors)
    or (..., numerator_key, top1, top2)}. A sum given without its top contributions gets
    consistent ones, as a hub sends them: one contributor adds the rest of what the others,
    each adding numerator // (2 * contributors), do not."""
    s = pb.RollupSnapshot()
    s.municipality = municipality
    s.period = period
    s.revision = revision
    for (ind, grp, key), v in sorted(cells.items()):
        nu, de, ck, co = v[:4]
        nk, t1, t2 = v[4:] if len(v) > 4 else (0, 0, 0)
        if len(v) == 4 and ind in SUMS and nu > 0 and co > 0:
            t2 = nu // (2 * co) if co > 1 else 0
            t1 = nu - (co - 1) * t2
        c = s.cells.add()
        c.indicator = ind
        c.grouping = grp
        c.key.extend(key)
        c.numerator = nu
        c.denominator = de
        c.cell_key = ck
        c.contributors = co
        c.numerator_key = nk
        c.top1 = t1
        c.top2 = t2
    return s


CATEGORIES = ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE", "COMMUNITY"]
SEXES = ["FEMALE", "MALE", "OTHER"]


def random_cells(rng, scale=6):
    """A consistent set of cells: participants by category x sex with their margins and
    total, seed funding by sex (a sum) and enterprises_active (a ratio). Zero cells are
    omitted, as the hub does."""
    cells = {}
    ck = lambda: rng.randrange(2 ** 32)  # noqa: E731
    by_cs = {(c, s): rng.randrange(0, scale) for c in CATEGORIES for s in SEXES}
    def put(ind, grp, key, nu, de=0, co=None):
        if nu or de:
            cells[(ind, grp, key)] = (nu, de, ck(), nu if co is None else co)
    for (c, s), n in by_cs.items():
        put("participants_registered", "category,sex", (c, s), n)
    for s in SEXES:
        put("participants_registered", "sex", (s,), sum(by_cs[(c, s)] for c in CATEGORIES))
    for c in CATEGORIES:
        put("participants_registered", "category", (c,), sum(by_cs[(c, s)] for s in SEXES))
    put("participants_registered", "", (), sum(by_cs.values()))
    amounts = {s: (rng.randrange(0, 4), rng.randrange(0, 200000)) for s in SEXES}
    for s, (persons, amount) in amounts.items():
        if persons:
            put("seed_funding_npr", "sex", (s,), amount, 0, persons)
    tp = sum(p for p, _ in amounts.values())
    if tp:
        put("seed_funding_npr", "", (), sum(a for p, a in amounts.values() if p), 0, tp)
    den = rng.randrange(0, 5)
    put("enterprises_active", "", (), rng.randrange(0, den + 1) if den else 0, den, den)
    return cells


def add_cells(total, cells):
    for k, (nu, de, ck, co) in cells.items():
        t = total.get(k, (0, 0, 0, 0))
        total[k] = (t[0] + nu, t[1] + de, (t[2] + ck) % 2 ** 32, t[3] + co)


class HubUplink:
    """Pushes RollupBatches as province P: one snapshot per sequence number, `per_batch`
    snapshots per batch, `window` batches in flight; after any connection failure it
    reconnects (until `deadline`), says Hello and resends everything above the acked_seq
    the federal tier reports."""

    def __init__(self, fed, pki, province, incarnation=None, per_batch=5, window=4):
        self.fed, self.pki, self.province = fed, pki, province
        self.incarnation = incarnation or os.urandom(16)
        self.per_batch, self.window = per_batch, window
        self.snapshots = []  # index i has sequence i + 1
        self.acked = 0
        self.refusals = []
        self.reconnects = 0
        self.conn = None

    def add(self, snap):
        self.snapshots.append(snap)

    def _connect(self):
        self.conn = WireClient(self.fed.sync_port, self.pki, "province-%d" % self.province)
        env = pb.Envelope()
        env.hello.protocol_version = 1
        env.hello.identity = "test-hub-%d" % self.province
        env.hello.incarnation = self.incarnation
        env.hello.clock = int(time.time() * 1000)
        env.hello.last_seq = len(self.snapshots)
        self.conn.send(env)
        reply = self.conn.recv()
        if reply.WhichOneof("msg") != "hello_reply":
            raise ConnectionError("no hello reply: %s" % reply)
        self.acked = max(self.acked, reply.hello_reply.acked_seq)

    def _batch(self, first):
        env = pb.Envelope()
        last = min(first + self.per_batch - 1, len(self.snapshots))
        env.rollup_batch.first_seq = first
        env.rollup_batch.last_seq = last
        for seq, s in enumerate(self.snapshots[first - 1:last], first):
            env.rollup_batch.snapshots.append(s)
            env.rollup_batch.seqs.append(seq)
        return env, last

    def push(self, deadline=60, on_sent=None):
        """Sends everything and waits for its acks. on_sent(last_seq) is called after each
        batch is written (tests kill things from there)."""
        end = time.time() + deadline
        while self.acked < len(self.snapshots):
            if time.time() > end:
                raise AssertionError("push timed out at acked %d of %d"
                                     % (self.acked, len(self.snapshots)))
            try:
                if self.conn is None:
                    self._connect()
                nxt, inflight = self.acked + 1, []
                while self.acked < len(self.snapshots):
                    while len(inflight) < self.window and nxt <= len(self.snapshots):
                        env, last = self._batch(nxt)
                        self.conn.send(env)
                        inflight.append(last)
                        nxt = last + 1
                        if on_sent:
                            on_sent(last)
                    reply = self.conn.recv()
                    kind = reply.WhichOneof("msg")
                    if kind == "error":
                        raise ConnectionError("error %d: %s" % (reply.error.code,
                                                                reply.error.message))
                    assert kind == "ack", reply
                    assert reply.ack.acked_seq == inflight[0], (reply.ack, inflight)
                    inflight.pop(0)
                    self.acked = reply.ack.acked_seq
                    self.refusals.extend(reply.ack.refusals)
            except (ConnectionError, EOFError, OSError, ssl.SSLError):
                if self.conn:
                    self.conn.close()
                self.conn = None
                self.reconnects += 1
                time.sleep(0.2)
        return self

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None
