"""The federal API with data in every province, for the browser tests of the national
dashboard and the open-data page (test_fed_web.py): a private PostgreSQL, the federal-api
daemon (optionally a second one on the same database), ministry and public tokens, and
snapshots of participants_registered and seed_funding_npr for every local level but a few
silent ones, pushed by test hubs of all seven provinces."""
import json
import os
import random
import ssl
import urllib.error
import urllib.parse
import urllib.request

import openapi
from fedclient import Federal, HubUplink, snapshot
from harness import ROOT

SEXES = ["FEMALE", "MALE", "OTHER"]
CATEGORIES = ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE", "COMMUNITY"]
PERIOD = "2026-03"
TREND = ["2026-01", "2026-02", "2026-03"]


def local_levels():
    """[(code, district, province, name)] of the 753 local levels."""
    out = []
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv")) as f:
        next(f)
        for line in f:
            p, _, d, _, code, name = line.rstrip("\n").split(",")[:6]
            out.append((int(code), int(d), int(p), name))
    return out


def silent(code):
    """Some local levels send nothing: the map hatches them."""
    return code % 11 == 0


def cells(rng, scale):
    """Registrations by category x sex with their margins, and seed funding by sex."""
    out = {}
    ck = lambda: rng.randrange(2 ** 32)  # noqa: E731
    by = {(c, s): rng.randrange(0, scale * (4 if s == "MALE" else 1 if s == "FEMALE" else 0) + 1)
          for c in CATEGORIES for s in SEXES}
    def put(ind, grp, key, nu, co=None):
        if nu:
            out[(ind, grp, key)] = (nu, 0, ck(), nu if co is None else co)
    for (c, s), n in by.items():
        put("participants_registered", "category,sex", (c, s), n)
    for s in SEXES:
        put("participants_registered", "sex", (s,), sum(by[(c, s)] for c in CATEGORIES))
    for c in CATEGORIES:
        put("participants_registered", "category", (c,), sum(by[(c, s)] for s in SEXES))
    put("participants_registered", "", (), sum(by.values()))
    tp, ta = 0, 0
    for s in SEXES:
        persons = rng.randrange(0, 3)
        if persons:
            amount = persons * rng.randrange(20000, 60000)
            put("seed_funding_npr", "sex", (s,), amount, persons)
            tp, ta = tp + persons, ta + amount
    if tp:
        put("seed_funding_npr", "", (), ta, tp)
    return out


def load(fed, pki, seed=16):
    """Pushes the data: every local level but the silent ones in PERIOD, and Koshi's and
    Bagmati's in the other months of TREND too."""
    rng = random.Random(seed)
    hubs = {p: HubUplink(fed, pki, p, per_batch=50, window=4) for p in range(1, 8)}
    for code, _, p, _ in local_levels():
        if silent(code):
            continue
        scale = 2 + code % 7
        for period in TREND:
            if period == PERIOD or p in (1, 3):
                hubs[p].add(snapshot(code, period, 1, cells(rng, scale)))
    for h in hubs.values():
        h.push(deadline=120)
        assert h.refusals == [], h.refusals[:3]
        h.close()


class Database:
    """A database of its own in the session's PostgreSQL (the pages' tests must neither see
    nor leave data in the one the other federal tests share)."""

    def __init__(self, pg, name):
        pg.psql("DROP DATABASE IF EXISTS %s" % name, db="postgres")
        pg.psql("CREATE DATABASE %s" % name)
        self.pg, self.name = pg, name
        self.conninfo = pg.conninfo.replace("dbname=reintegration", "dbname=" + name)

    def psql(self, sql):
        return self.pg.psql(sql, db=self.name)


class FedWeb:
    """fed (Federal), base URL of its HTTPS port; pg: a Database or Postgres."""

    def __init__(self, workdir, pki, pg, name="federal", open_max_reads=None):
        pki.issue("federal")
        for p in range(3, 8):
            if not os.path.exists(pki.path("province-%d.crt" % p)):
                pki.issue("province", str(p))
        self.pki = pki
        self.fed = Federal(workdir, pki, pg, name=name)
        if open_max_reads:
            self.fed.configure("[federal]\nopen_max_reads = %d\n" % open_max_reads)
        self.fed.start()
        self.base = "https://127.0.0.1:%d" % self.fed.https_port

    def second(self, workdir, name="federal2", open_max_reads=None):
        """Another federal-api on the same database."""
        f = Federal(workdir, self.pki, self.fed.pg, name=name)
        if open_max_reads:
            f.configure("[federal]\nopen_max_reads = %d\n" % open_max_reads)
        return f.start()

    def request(self, method, path, body=None, headers=None, port=None):
        """(status, headers, parsed JSON or text) of one HTTPS request."""
        url = "https://127.0.0.1:%d%s" % (port or self.fed.https_port, path)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(url, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if isinstance(body, dict):
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.fed.ctx, timeout=30) as r:
                status, text, hdrs = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read().decode(), e.headers
        if hdrs.get("Content-Type", "").startswith("application/json") and text:
            parsed = json.loads(text)
            # The session and open-data routes are described like every other.
            if path.startswith(("/v1/", "/open/v1/")):
                openapi.check("federal", method, path, status, parsed)
            return status, hdrs, parsed
        return status, hdrs, text

    def indicator(self, token, code, **params):
        st, body, _ = self.fed.get("/v1/indicators/%s?%s" % (code, urllib.parse.urlencode(params)),
                                   token)
        assert st == 200, body
        return body
