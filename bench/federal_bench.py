#!/usr/bin/python3
"""Federal API benchmark (issue 5, item 5): snapshot ingest rate beside PostgreSQL COPY of the
same rows into the same schema, and HTTPS query latency (p50/p99) with concurrent clients over
a national dataset, all in one run on a private PostgreSQL 15.

Dataset: every one of the 753 municipalities x MONTHS months (Gregorian month periods) x every
declared grouping of every catalogue indicator, each cell filled (dense: the worst case for the
work per cell; 299 cells per snapshot; the first ingest run checks that CATALOGUE is what the
product declares, GET /v1/indicators). The issue asks for 120 months (26.9 M cells);
--months sets the fraction loaded. --cells-per-snapshot N makes it sparse, as a resync's
snapshots are (the national bench's mixed caseload averages about 11 cells a snapshot): each
cell of the dense snapshot is kept with probability N / 299 (at least one a snapshot), so
that the work per snapshot (its revision check, its header row, its share of a commit) weighs
as it does in the product; run it with the hub's own batch and window (--batch 200 --window 8,
provincial-hub's defaults) and --name federal_sparse. The dataset is encoded by hand (checked
against python3-protobuf), one province per process (--jobs), so that 120 months builds in
about a minute and a half here.

1. Ingest: 7 hub clients (one per province, mutual TLS 1.3, Python ssl, frames encoded
   before the clock starts) push their municipalities' snapshots at once, batches of --batch
   snapshots with a window of --window (2); timed until every batch is acknowledged
   (committed). Checked after each run, against values computed as the dataset is built:
   every snapshot and cell stored (their count, the sums of numerators, denominators and
   contributors of the cells), and each province's aggregates (province_cells: rows, sums,
   and an MD5 of every row in key order) equal to the sums of its municipalities' cells.
2. COPY baseline: the same snapshots (as TSV, written before timing) are COPYed with psql
   into the product's layout, their headers into snapshots and their cells, one row of
   arrays per snapshot, into snapshot_cells (migration 0004, LZ4 since 0011), in a fresh
   database migrated with the product's migrations, with the product's commit size and
   writers: the first ingest run's transactions are counted (the distinct xmin of its
   snapshot rows), and the COPY commits every snapshots/transactions snapshots over 3
   connections (federal-api's default pool of 4 keeps one for reads); a check counts the
   COPY's transactions the same way. Ingest and COPY alternate (A B B A ...);
   after each run its database is dropped and a CHECKPOINT taken, outside the timers. The
   last ingest's database is kept for the queries: right after its run, before the checks
   read the store, the breakdown (below) is asked 5 times as a ministry would ask it after a
   resync (the headline figure, 5 requests of one run; autovacuum may start beside it: its
   state is recorded); then the database is vacuumed (VACUUM (ANALYZE), as after a backfill)
   and checkpointed, so that autovacuum's first pass over it runs beside neither a later COPY
   nor the other queries.
3. Queries (--no-queries: none): --clients processes send a fixed mix (below) over
   keep-alive HTTPS for --seconds; latency per request as seen by the client, p50/p99 over
   all requests and p99 per query; then the breakdown of 753 local levels x 12 months, 5
   times on one connection again (breakdown_ms: its best case, vacuumed, no ingest). Each
   breakdown answer must hold the data: the municipality-months with a participant and the
   sum of their totals, as built (benchlib.breakdown).

Writes build/bench/NAME.json (--name: federal; bench/benchlib.py), from which bench/report.py
makes the tables of docs/BENCHMARKS.md. Timings are reported, never asserted."""
import argparse
import http.client
import hashlib
import itertools
import multiprocessing
import os
import random
import shutil
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
from harness import Pki, pb  # noqa: E402
from fedclient import Federal  # noqa: E402
from pg import Postgres  # noqa: E402
from wireclient import WireClient  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "bench"))
import benchlib  # noqa: E402

def pg_array(xs, quote):
    """A PostgreSQL array literal for COPY's text format (every text element quoted: keys
    and groupings hold commas, the total's are empty)."""
    if quote:
        return "{" + ",".join('"%s"' % x.replace("\\", "\\\\").replace('"', '\\"')
                              for x in xs) + "}"
    return "{" + ",".join(str(x) for x in xs) + "}"


VALUES = {
    "category": ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE", "COMMUNITY"],
    "sex": ["FEMALE", "MALE", "OTHER"],
    "age_band": ["0_14", "15_24", "25_39", "40_59", "60_PLUS"],
    "caste_group": ["DALIT", "JANAJATI", "MADHESI", "MUSLIM", "BRAHMIN_CHHETRI", "OTHER",
                    "UNDISCLOSED"],
    "disability": ["YES", "NO"],
    "destination_country": ["QA", "SA", "AE", "MY", "KW", "IN", "JP", "KR", "BH", "OM"],
    "service_type": ["PRE_DEPARTURE_ORIENTATION", "RETURN_COUNSELLING", "PSYCHOSOCIAL_SUPPORT",
                     "ENTREPRENEURSHIP_TRAINING", "FINANCIAL_LITERACY", "SKILLS_TRAINING",
                     "SEED_FUNDING", "LOAN", "BANK_ACCOUNT", "JOB_PLACEMENT", "LEGAL_AID",
                     "HEALTH_REFERRAL"],
    "programme": ["M4SD", "RERP", "MUNICIPAL", "PROVINCIAL", "FEDERAL", "OTHER"],
    "provider": ["MRC", "MUNICIPALITY", "NGO", "BANK", "COOPERATIVE", "TRAINING_INSTITUTE",
                 "HEALTH_FACILITY", "OTHER"],
    "action": ["STARTED", "EXPANDED"],
    "sector": ["AGRICULTURE", "LIVESTOCK", "FOOD_PROCESSING", "RETAIL", "HOSPITALITY",
               "MANUFACTURING", "HANDICRAFT", "SERVICES", "OTHER"],
    "owner_sex": ["FEMALE", "MALE", "OTHER"],
    "owner_category": ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE",
                       "COMMUNITY"],
}
# Declared groupings of the v1 catalogue (common/catalogue.c), ratios marked.
CATALOGUE = [
    ("participants_registered", False, ["", "category", "sex", "age_band", "caste_group",
                                        "disability", "category,sex", "sex,age_band"]),
    ("returnees_registered", False, ["", "sex", "age_band", "destination_country",
                                     "sex,age_band"]),
    ("persons_served", False, ["", "service_type", "sex", "category", "programme",
                               "service_type,sex"]),
    ("services_delivered", False, ["", "service_type", "sex", "programme", "provider"]),
    ("enterprises_supported", False, ["", "action", "sector", "owner_sex", "owner_category",
                                      "owner_sex,owner_category"]),
    ("jobs_created", False, ["", "sector", "owner_sex"]),
    ("enterprises_active", True, ["", "sector"]),
    ("seed_funding_npr", False, ["", "sex", "category", "programme"]),
    ("enterprises_with_loan", True, ["", "sector"]),
    ("bank_accounts_opened", False, ["", "sex"]),
    ("no_remigration_intention", True, ["", "sex"]),
    ("referrals_pending", False, ["", "service_type"]),
    ("services_unavailable", False, ["", "service_type"]),
    ("reporting_completeness", True, [""]),
    ("reporting_timeliness", True, [""]),
]

QUERY_MIX = [
    # (weight, role, path template) — {m} month, {p} province, {d} district, {c} municipality
    (3, "ministry", "/v1/indicators/participants_registered?period={m}&by=sex"),
    (2, "ministry", "/v1/indicators/participants_registered?period={m}&by=category,sex"),
    (2, "ministry", "/v1/indicators/persons_served?period={m}&province={p}&by=service_type"),
    (1, "ministry", "/v1/indicators/enterprises_active?period={m}&by=sector"),
    (1, "ministry", "/v1/indicators/returnees_registered?period={m}&district={d}&by=sex,age_band"),
    (1, "ministry", "/v1/indicators/services_delivered?period={m}&municipality={c}&by=provider"),
    (2, "public", "/v1/indicators/participants_registered?period={m}&by=sex,age_band"),
    (1, "public", "/v1/indicators/seed_funding_npr?period={m}&province={p}&by=programme&format=csv"),
    (1, "ministry", "/v1/dataValueSets?period={m}&province={p}"),
]


def local_levels():
    out = []
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv")) as f:
        next(f)
        for line in f:
            p, _, d, _, code = line.split(",")[:5]
            out.append((int(code), int(p), int(d)))
    return out


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    """One protobuf field: the tag, then a varint (wire 0) or a length-delimited payload."""
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def templates():
    """(indicator, grouping, key, ratio, encoded fields 1-3 of the RollupCell) of one snapshot,
    in catalogue order; the same for every snapshot (299 cells)."""
    out = []
    for ind, ratio, groupings in CATALOGUE:
        for g in groupings:
            dims = g.split(",") if g else []
            for key in itertools.product(*[VALUES[d] for d in dims]):
                pre = field(1, 2, ind.encode()) + (field(2, 2, g.encode()) if g else b"")
                pre += b"".join(field(3, 2, k.encode()) for k in key)
                out.append((ind, g, ",".join(key), ratio, pre))
    return out


def build_province(args):
    """Encodes one province's snapshots by hand (the wire format of proto/reint.proto, fields
    in number order and zero values omitted as python3-protobuf does; checked against it in
    build) into length-prefixed Envelope frames, and writes the same cells as COPY TSV to
    tsv_path. Returns the frames as (last_seq, bytes), the cell and snapshot counts, what the
    province's aggregates (province_cells) must hold once they are stored: (rows, sum of
    numerators, of denominators, of cell keys, of contributors, the MD5 of every row in
    order: agg_digest), each row the sum of its municipalities' cells (its cell key modulo
    2^32), and each snapshot's participants_registered total {(municipality, period): n}."""
    prov, levels, periods, batch, seed, tsv_path, limit, per_snap = args
    rng = random.Random("%d/%d" % (seed, prov))
    tpl = templates()
    # Sparse: each cell kept with probability keep (None: every cell, dense).
    keep = per_snap / len(tpl) if per_snap and per_snap < len(tpl) else None
    # Values stay below 40, so their fields are precomputed; cell_key is encoded per cell.
    f4 = [field(4, 0, n) if n else b"" for n in range(41)]
    f5 = [field(5, 0, n) if n else b"" for n in range(41)]
    f7 = [field(7, 0, n) for n in range(41)]
    snaps, n_cells, agg, totals = [], 0, {}, {}
    mine = [lv for lv in levels if lv[1] == prov][:limit]
    with open(tsv_path, "w") as tsv, open(tsv_path + ".snap", "w") as snap_tsv:
        for code, p, _ in mine:
            for per in periods:
                parts, rows = [], []
                head = "2\t%s\t%d\t" % (per, code)
                cells = (list(enumerate(tpl)) if keep is None else
                         [(i, c) for i, c in enumerate(tpl) if rng.random() < keep])
                for i, (ind, g, key, ratio, pre) in cells or [(0, tpl[0])]:
                    den = 1 + int(rng.random() * 39)
                    nu = int(rng.random() * (den + 1)) if ratio else den
                    de = den if ratio else 0
                    ck = rng.getrandbits(32)
                    body = pre + f4[nu] + f5[de] + (field(6, 0, ck) if ck else b"") + f7[den]
                    parts.append(b"\x22" + varint(len(body)) + body)
                    # numerator_key (migration 0007): these frames carry none (field 10), so
                    # the product stores 0, and so does the baseline.
                    rows.append((ind, g, key, nu, de, ck, den, 0))
                    if i == 0:  # participants_registered, its total
                        totals[code, per] = nu
                    a = agg.setdefault((per, i), [0, 0, 0, 0])
                    a[0], a[1], a[2], a[3] = a[0] + nu, a[1] + de, a[2] + ck, a[3] + den
                n_cells += len(rows)
                # The product's layout (migrations 0004, 0007): one row of arrays per snapshot,
                # and its header row in snapshots.
                cols = list(zip(*rows))
                tsv.write(head + "\t".join([pg_array(c, True) for c in cols[:3]] +
                                           [pg_array(c, False) for c in cols[3:]]) + "\n")
                snap_tsv.write("%d\t%s\t2\t%d\t1\t2026-01-01 00:00:00+00\n" % (code, per, prov))
                snaps.append(field(1, 0, code) + field(2, 2, per.encode()) + field(3, 0, 1)
                             + b"".join(parts))
    frames = []
    for i in range(0, len(snaps), batch):
        chunk = snaps[i:i + batch]
        body = field(1, 0, i + 1) + field(2, 0, i + len(chunk))
        body += b"".join(field(3, 2, s) for s in chunk)
        # Protocol 2: the uplink outbox sequence of each snapshot (packed).
        body += field(4, 2, b"".join(varint(q) for q in range(i + 1, i + len(chunk) + 1)))
        data = field(5, 2, body)
        frames.append((i + len(chunk), struct.pack(">I", len(data)) + data))
    rows = [(per, tpl[i][0], tpl[i][1], tpl[i][2], a[0], a[1], a[2] % (1 << 32), a[3])
            for (per, i), a in agg.items()]
    sums = (len(rows), sum(r[4] for r in rows), sum(r[5] for r in rows),
            sum(r[6] for r in rows), sum(r[7] for r in rows), agg_digest(rows))
    return prov, frames, n_cells, len(snaps), sums, totals


def agg_digest(rows):
    """MD5 of aggregate rows (period, indicator, grouping, key, numerator, denominator,
    cell_key, contributors), sorted by their first four, one line each, tab-separated: what
    province_sums asks PostgreSQL for (the key's order byte-wise, COLLATE "C")."""
    text = "\n".join("\t".join(str(x) for x in r) for r in sorted(
        rows, key=lambda r: tuple(x.encode() for x in r[:4])))
    return hashlib.md5(text.encode()).hexdigest()


def build(months, batch, seed, work, jobs, limit, per_snap):
    """Builds the dataset, one province per worker process: frames per province and the COPY
    TSV at work/cells.tsv; per_snap cells a snapshot on average (0: every cell, dense).
    Returns (periods, frames, tsv path, cells, snapshots, the province aggregates' sums by
    province and the snapshots' participants_registered totals: build_province)."""
    levels = local_levels()
    periods = ["%04d-%02d" % (2020 + i // 12, i % 12 + 1) for i in range(months)]
    args = [(p, levels, periods, batch, seed, os.path.join(work, "cells-%d.tsv" % p), limit,
             per_snap) for p in range(1, 8)]
    frames, n_cells, n_snaps, sums, totals = {}, 0, 0, {}, {}
    with multiprocessing.Pool(jobs) as pool:
        for prov, fr, nc, ns, agg, tot in pool.imap_unordered(build_province, args):
            frames[prov], n_cells, n_snaps, sums[prov] = fr, n_cells + nc, n_snaps + ns, agg
            totals.update(tot)
    # The hand encoding must be what python3-protobuf makes of the same batch.
    env = pb.Envelope()
    env.ParseFromString(frames[1][0][1][4:])
    assert env.SerializeToString() == frames[1][0][1][4:], "hand-encoded frame differs"
    assert env.rollup_batch.snapshots[0].cells[0].indicator == CATALOGUE[0][0]
    tsv_path = os.path.join(work, "cells.tsv")
    for suffix in ("", ".snap"):
        with open(tsv_path + suffix, "wb") as out:
            for a in args:
                with open(a[5] + suffix, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                os.unlink(a[5] + suffix)
    return periods, frames, tsv_path, n_cells, n_snaps, sums, totals


def push(fed, pki, prov, frames, window, errors):
    try:
        c = WireClient(fed.sync_port, pki, "province-%d" % prov)
        c.hello(os.urandom(16))
        inflight = []
        for last, frame in frames:
            while len(inflight) >= window:
                r = c.recv()
                assert r.WhichOneof("msg") == "ack" and r.ack.acked_seq == inflight.pop(0), r
            c.send_raw(frame)
            inflight.append(last)
        while inflight:
            r = c.recv()
            assert r.WhichOneof("msg") == "ack" and r.ack.acked_seq == inflight.pop(0), r
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.append("province %d: %r" % (prov, e))


def client(args):
    port, cafile, tokens, periods, levels, seconds, seed = args
    rng = random.Random(seed)
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    mix = [(i, r, t) for i, (w, r, t) in enumerate(QUERY_MIX) for _ in range(w)]
    lat, errors = [], 0
    end = time.time() + seconds
    while time.time() < end:
        kind, role, tmpl = rng.choice(mix)
        code, prov, dist = rng.choice(levels)
        path = tmpl.format(m=rng.choice(periods), p=prov, d=dist, c=code)
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": "Bearer " + tokens[role]})
        r = conn.getresponse()
        r.read()
        lat.append((kind, time.perf_counter() - t0))
        if r.status != 200:
            errors += 1
    conn.close()
    return lat, errors


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class PgDb:
    """The private PostgreSQL seen through one of its databases (Federal reads conninfo)."""

    def __init__(self, pg, name):
        self.pg, self.name = pg, name

    @property
    def conninfo(self):
        return self.pg.conninfo.replace("dbname=reintegration", "dbname=" + self.name)

    def psql(self, sql):
        return self.pg.psql(sql, db=self.name)


def province_sums(db):
    """What province_cells holds, by province: (rows, sum of numerators, of denominators, of
    cell keys, of contributors, MD5 of every row in order), as build_province's sums."""
    line = ("concat_ws(E'\\t', period, indicator, grouping, key, numerator, denominator, "
            "cell_key, contributors)")
    order = ", ".join('%s COLLATE "C"' % c for c in ("period", "indicator", "grouping", "key"))
    rows = db.psql("SELECT province, count(*), sum(numerator), sum(denominator), sum(cell_key),"
                   " sum(contributors), md5(string_agg(%s, E'\\n' ORDER BY %s))"
                   " FROM province_cells GROUP BY province" % (line, order))
    return {int(r[0]): tuple(int(x) for x in r[1:6]) + (r[6],) for r in rows}


def catalogue(fed):
    """The product's catalogue as CATALOGUE spells it: (code, ratio, groupings), from
    GET /v1/indicators."""
    status, body, _ = fed.get("/v1/indicators", fed.token("public", "bench-catalogue"))
    assert status == 200, (status, body)
    return [(x["code"], x["aggregation"] == "ratio", x["groupings"]) for x in body["indicators"]]


def ingest_run(work, pki, pg, frames, window, i, loaded=None):
    """One ingest into a fresh database by a fresh federal-api (the product's pool size and
    settings): every province pushes at once; timed until every batch is acknowledged. Then
    loaded(fed), if given, before anything reads the store; then the work-done counts (which
    read every cell). The first run also asks the product for its catalogue."""
    db = PgDb(pg, "fed%d" % i)
    pg.psql("CREATE DATABASE %s" % db.name, db="postgres")
    fed = Federal(work, pki, db, name="federal-%d" % i)
    with open(fed.config) as f:
        text = f.read()
    with open(fed.config, "w") as f:
        f.write(text.replace("[tls]", "log_level = warn\n[tls]"))
    fed.start()
    errors = []
    threads = [threading.Thread(target=push, args=(fed, pki, p, frames[p], window, errors))
               for p in frames]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if loaded:
        loaded(fed)
    n_commits = commits(db)
    cells = [int(x) for x in db.psql("SELECT count(*), sum(numerator), sum(denominator), "
                                     "sum(contributors) FROM cells")[0]]
    snaps = int(db.psql("SELECT count(*) FROM snapshots")[0][0])
    return fed, db, {"s": elapsed, "errors": errors, "cells": cells[0], "snapshots": snaps,
                     "cell_sums": cells[1:], "commits": n_commits, "provinces": province_sums(db),
                     "catalogue": catalogue(fed) if i == 0 else None}


# The COPY baseline's connections: federal-api's default pool (4) writes with all but the one
# it keeps for reads.
COPY_CONNS = 3


def commits(db):
    """The transactions that stored the snapshots: each row's xmin names the transaction that
    inserted it (every snapshot of the dataset is stored once, never replaced)."""
    return int(db.psql("SELECT count(DISTINCT xmin::text) FROM snapshots")[0][0])


def copy_scripts(work, tsv_path, per_commit, conns):
    """Splits the COPY TSV into psql scripts, one per connection, that COPY per_commit
    snapshots (their header rows, then their rows of arrays) per transaction, the transactions
    dealt to the connections in turn. Written once, before any timer. Returns the paths and
    the number of transactions."""
    paths = [os.path.join(work, "copy-%d.sql" % w) for w in range(conns)]
    outs = [open(p, "w") for p in paths]
    n = 0
    try:
        with open(tsv_path + ".snap") as snap, open(tsv_path) as cells:
            while True:
                heads = list(itertools.islice(snap, per_commit))
                if not heads:
                    break
                rows = list(itertools.islice(cells, len(heads)))
                assert len(rows) == len(heads), "the TSV files disagree"
                outs[n % conns].write("BEGIN;\nCOPY snapshots FROM STDIN;\n%s\\.\n"
                                      "COPY snapshot_cells FROM STDIN;\n%s\\.\nCOMMIT;\n"
                                      % ("".join(heads), "".join(rows)))
                n += 1
    finally:
        for f in outs:
            f.close()
    return paths, n


def copy_run(pg, scripts, i):
    """COPY of the same snapshots into a fresh database migrated with the product's
    migrations: their header rows into snapshots and their cells, one row of arrays per
    snapshot, into snapshot_cells (the layout of migration 0004, its arrays compressed with LZ4
    since migration 0011), committing as often as the product's ingest did and over as many
    connections as it writes with (copy_scripts). Timed: the psql processes, from their start
    to the last one's exit."""
    db = PgDb(pg, "copy%d" % i)
    pg.psql("CREATE DATABASE %s" % db.name, db="postgres")
    mig = os.path.join(ROOT, "federal-api", "migrations")
    for name in sorted(os.listdir(mig)):
        with open(os.path.join(mig, name)) as f:
            db.psql(f.read())
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.sock, "-p", str(pg.port),
           "-U", "postgres", "-d", db.name, "-f"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd + [path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for path in scripts]
    errs = [p.communicate()[1] for p in procs]
    elapsed = time.perf_counter() - t0
    failed = ["psql %s exited %d: %s" % (os.path.basename(path), p.returncode,
                                         e.decode(errors="replace")[-500:])
              for path, p, e in zip(scripts, procs, errs) if p.returncode != 0]
    if failed:
        raise AssertionError("; ".join(failed))
    cells = int(db.psql("SELECT count(*) FROM cells")[0][0])
    snaps = int(db.psql("SELECT count(*) FROM snapshots")[0][0])
    return db, {"s": elapsed, "cells": cells, "snapshots": snaps, "commits": commits(db)}


def drop(pg, db):
    """Drops a database and checkpoints, outside any timer, so that the next run does not
    share the disk with what this one left dirty."""
    pg.psql("DROP DATABASE IF EXISTS %s" % db.name, db="postgres")
    pg.psql("CHECKPOINT", db="postgres")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--municipalities", type=int, default=0,
                    help="at most this many municipalities per province (0: all 753)")
    ap.add_argument("--batch", type=int, default=20, help="snapshots a batch")
    ap.add_argument("--window", type=int, default=2, help="batches in flight per hub client")
    ap.add_argument("--cells-per-snapshot", type=int, default=0,
                    help="sparse: about this many cells a snapshot (0: every cell, dense)")
    ap.add_argument("--queries", action=argparse.BooleanOptionalAction, default=True,
                    help="the query latency and the breakdown on the last ingest's database")
    ap.add_argument("--name", default="federal", help="the JSON's name (build/bench/NAME.json)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5,
                    help="pairs of (ingest, COPY), in alternating order")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="processes building the dataset (one province each at a time)")
    a = ap.parse_args()
    if a.batch < 1 or a.window < 1 or a.cells_per_snapshot < 0:
        ap.error("--batch and --window must be at least 1, --cells-per-snapshot at least 0")
    res = benchlib.Result(a.name, "bench/federal_bench.py", params=vars(a))
    work = tempfile.mkdtemp(prefix="fed-bench-", dir="/var/tmp")
    pg = None
    fed = None
    try:
        t0 = time.time()
        periods, frames, tsv_path, n_cells, n_snaps, sums, totals = build(
            a.months, a.batch, 1, work, a.jobs, a.municipalities or None, a.cells_per_snapshot)
        # The breakdown's year (the data's first) and what its answers must hold: the
        # municipality-months with data and the sum of their totals.
        year = periods[0][:4]
        first_year = {k: v for k, v in totals.items() if k[1].startswith(year + "-")}
        expect = (len(first_year), sum(first_year.values()))
        tokens = {}
        print("dataset: %d snapshots, %d cells, built in %.1f s" % (n_snaps, n_cells,
                                                                   time.time() - t0),
              file=sys.stderr)
        pki = Pki(os.path.join(work, "pki"))
        pki.issue("federal", *sum([["province", str(p)] for p in range(1, 8)], []))
        # PostgreSQL's default settings for both sides (pg.py sets only the socket, the port,
        # max_connections = 100 and shared_buffers = 128MB, PostgreSQL's own defaults).
        pg = Postgres()
        ingests, copies = [], []
        scripts = per_commit = n_tx = None
        order = benchlib.alternating(a.repeat)
        res.data["order"] = order
        for k, step in enumerate(order):
            # The last ingest's database is kept for the queries.
            last = a.queries and (k == len(order) - 1 or
                                  (step == "A" and "A" not in order[k + 1:]))
            if step == "A":
                if fed:
                    fed.stop()
                    drop(pg, fed.pg)
                # Kept for the queries: the breakdown first, as a ministry would ask it right
                # after a resync, before anything else reads the store (autovacuum may start
                # beside it, as it would); its autovacuum state then is recorded.
                loaded = None
                if last:
                    def loaded(f):
                        tokens.update({"ministry": f.token("ministry", "bench-ministry"),
                                       "public": f.token("public", "bench-public")})
                        res.figure("breakdown_loaded_ms", "753 local levels x 12 months in "
                                   "one answer (by=municipality&series=month), one client, "
                                   "right after the load, 5 requests in one run", "ms",
                                   better="lower", goal="< 1000 ms", goal_value=1000,
                                   headline=True)
                        benchlib.breakdown(res, "breakdown_loaded_ms", f.https_port,
                                           pki.path("ca.crt"), tokens["ministry"], year,
                                           expect)
                        res.data["extra"]["breakdown_loaded_autovacuum"] = f.pg.psql(
                            "SELECT relname, last_autovacuum, last_autoanalyze FROM "
                            "pg_stat_user_tables WHERE relname LIKE 'snapshot_cells%' "
                            "ORDER BY relname")
                fed, db, r = ingest_run(work, pki, pg, frames, a.window, len(ingests), loaded)
                ingests.append(r)
                if not last:
                    fed.stop()
                    drop(pg, db)
                    fed = None
                else:
                    # Vacuumed and checkpointed now, so that autovacuum's first pass over the
                    # loaded cells and the checkpoint of the load run beside neither a later
                    # COPY nor the other queries.
                    t0 = time.perf_counter()
                    db.psql("VACUUM (ANALYZE)")
                    vacuum_s = time.perf_counter() - t0
                    pg.psql("CHECKPOINT", db="postgres")
            else:
                if scripts is None:
                    # The product's commit size, measured in the ingest run(s) before this
                    # one (the order starts with A), and its writers: the pool less the
                    # connection it keeps for reads (federal-api/db.h).
                    per_commit = max(1, round(n_snaps / statistics.median(
                        [max(1, x["commits"]) for x in ingests])))
                    scripts, n_tx = copy_scripts(work, tsv_path, per_commit, COPY_CONNS)
                db, r = copy_run(pg, scripts, len(copies))
                copies.append(r)
                drop(pg, db)
            print("%s: %.0f cells/s" % (step, n_cells / r["s"]), file=sys.stderr)
        declared = ingests[0]["catalogue"]
        res.check("the dataset holds every indicator and grouping the product declares",
                  declared == [(ind, ratio, g) for ind, ratio, g in CATALOGUE],
                  "GET /v1/indicators: %s" % declared)
        for i, r in enumerate(ingests):
            res.check("ingest run %d: every batch acknowledged" % (i + 1), not r["errors"],
                      r["errors"])
            res.check("ingest run %d: each province's aggregates are the sums of its "
                      "municipalities' cells" % (i + 1), r["provinces"] == sums,
                      "province_cells (rows, numerators, denominators, cell keys, "
                      "contributors, MD5 of the rows): %s; expected %s" % (r["provinces"], sums))
            want = [sum(x[k] for x in sums.values()) for k in (1, 2, 4)]
            res.check("ingest run %d stored every snapshot and cell" % (i + 1),
                      r["cells"] == n_cells and r["snapshots"] == n_snaps and
                      r["cell_sums"] == want,
                      "%d cells, %d snapshots, sums of numerators, denominators, contributors "
                      "%s; expected %d, %d, %s" % (r["cells"], r["snapshots"], r["cell_sums"],
                                                   n_cells, n_snaps, want))
        for i, r in enumerate(copies):
            res.check("COPY run %d stored every snapshot and cell" % (i + 1),
                      r["cells"] == n_cells and r["snapshots"] == n_snaps,
                      "%d cells, %d snapshots; expected %d, %d" % (r["cells"], r["snapshots"],
                                                                   n_cells, n_snaps))
            product = statistics.median(x["commits"] for x in ingests)
            res.check("COPY run %d committed once per %d snapshots, as the product did"
                      % (i + 1, per_commit),
                      r["commits"] == n_tx and abs(n_tx - product) <= max(1, product / 20),
                      "%d transactions stored snapshots, %d planned; in the ingest runs %s"
                      % (r["commits"], n_tx, [x["commits"] for x in ingests]))
        shape = "%s cells" % f"{n_cells:,}"
        if a.cells_per_snapshot:
            shape = "sparse: %s snapshots of %.1f cells on average, %s" % (
                f"{n_snaps:,}", n_cells / n_snaps, shape)
        res.figure("ingest_rate", "federal snapshot ingest (7 hubs, mutual TLS, batch %d, "
                   "window %d, default pool), %s" % (a.batch, a.window, shape), "cells/s",
                   goal=">= 0.8 x COPY", goal_value=0.8, goal_on="ratio", baseline="copy_rate",
                   headline=True)
        res.samples("ingest_rate", [n_cells / r["s"] for r in ingests])
        res.figure("copy_rate", "PostgreSQL COPY of the same snapshots into snapshots and "
                   "snapshot_cells (the product's layout: arrays, LZ4), %d snapshots a commit "
                   "over %d connections, as the product" % (per_commit, COPY_CONNS), "cells/s")
        res.samples("copy_rate", [n_cells / r["s"] for r in copies])
        res.data["extra"].update({
            "cells": n_cells, "snapshots": n_snaps,
            "ingest_commits": [x["commits"] for x in ingests],
            "copy_commits": [x["commits"] for x in copies],
            "copy_snapshots_per_commit": per_commit, "copy_connections": COPY_CONNS})
        res.note("The COPY baseline stores the snapshots' rows (headers and arrays) only; the "
                 "ingest also maintains the province aggregates (province_cells).")
        if a.queries:
            # Queries on the last ingested database (not dropped; vacuumed after its run).
            mine = [x for p in range(1, 8)
                    for x in [y for y in local_levels() if y[1] == p][:a.municipalities]]
            levels = [lv for lv in local_levels() if not a.municipalities or lv in mine]
            with multiprocessing.Pool(a.clients) as pool:
                out = pool.map(client, [(fed.https_port, pki.path("ca.crt"), tokens, periods,
                                         levels, a.seconds, i) for i in range(a.clients)])
            by_kind = {}
            for l, _ in out:
                for kind, x in l:
                    by_kind.setdefault(kind, []).append(x)
            lat = [x for xs in by_kind.values() for x in xs]
            errs = sum(e for _, e in out)
            res.check("every query answered 200", errs == 0 and len(lat) > 0,
                      "%d requests, %d not 200" % (len(lat), errs))
            res.figure("query_p99_ms", "query p99, %d clients, %d s, fixed mix, idle ingest"
                       % (a.clients, a.seconds), "ms", better="lower")
            res.sample("query_p99_ms", pct(lat, 99) * 1000)
            res.figure("query_p50_ms", "query p50", "ms", better="lower")
            res.sample("query_p50_ms", pct(lat, 50) * 1000)
            res.figure("breakdown_ms", "the same breakdown after VACUUM (ANALYZE) and "
                       "CHECKPOINT, no ingest running (its best case), 5 requests in one run",
                       "ms", better="lower")
            benchlib.breakdown(res, "breakdown_ms", fed.https_port, pki.path("ca.crt"),
                               tokens["ministry"], year, expect)
            res.data["extra"].update({
                "vacuum_s": vacuum_s, "requests": len(lat),
                "p99_by_query_ms": {QUERY_MIX[k][2]: pct(xs, 99) * 1000
                                    for k, xs in sorted(by_kind.items())}})
            res.note("Query latency is one figure per run (p99 over all requests), not a "
                     "median of 5; the national p99 under ingest is bench/national.py's.")
        res.write()
        return res.exit_status()
    finally:
        if fed:
            fed.stop()
        if pg:
            pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
