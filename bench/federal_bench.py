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
provincial-hub's defaults) and --name federal_sparse. The cells of the sums (jobs_created,
seed_funding_npr) carry their tops, as a hub sends them (the product keeps them in cell_tops
for disclosure control). --corrections (0.1) of the snapshots are then corrected: sent again
at revision 2 with new values, one in ten of them without cells (everything they held
removed), so that the ingest's replacement path is measured too. The dataset is encoded by
hand (checked against python3-protobuf), one province per process (--jobs), so that 120
months builds in about a minute and a half here.

1. Ingest: 7 hub clients (one per province, mutual TLS 1.3, Python ssl, frames encoded
   before the clock starts) push their municipalities' snapshots at once, batches of --batch
   snapshots with a window of --window (2); timed until every batch is acknowledged
   (committed). Then (after the breakdown below, in the kept run) the corrections over the
   same connections, every province at once, timed the same way (fix_rate, snapshots/s).
   Checked after each run, against values computed as the dataset is built: every snapshot,
   correction and cell stored (their counts, the sums of numerators, denominators and
   contributors of the cells, the tops' rows and sums), and each province's aggregates
   (province_cells: rows, sums, and an MD5 of every row in key order) equal to the sums of
   its municipalities' cells as corrected.
2. COPY baseline: the same snapshots (as TSV, written before timing) are COPYed with psql
   into the product's layout, their headers into snapshots, their cells, one row of arrays
   per snapshot, into snapshot_cells (migration 0004, LZ4 since 0011) and their tops into
   cell_tops, in a fresh database migrated with the product's migrations, with the product's
   commit size and writers: the first ingest run's transactions are counted (the distinct
   xmin of its snapshot rows), and the COPY commits every snapshots/transactions snapshots
   over 3 connections (federal-api's default pool of 4 keeps one for reads); a check counts
   the COPY's transactions the same way. Then the corrections in SQL (sql_fix_rate), at the
   product's commit size for them: each snapshot's header row updated to revision 2, its
   rows of arrays and tops deleted, the new ones COPYed. Ingest and COPY alternate (A B B A
   ...); after each run its database is dropped and a CHECKPOINT taken, outside the timers.
   The last ingest's database is kept for the queries: right after its load, before the
   corrections and before the checks read the store, the breakdown (below) is asked 5 times
   as a ministry would ask it after a resync (the headline figure, 5 requests of one run;
   autovacuum may start beside it: its state is recorded); after the run (corrections
   included) the database is vacuumed (VACUUM (ANALYZE), as after a backfill)
   and checkpointed, so that autovacuum's first pass over it runs beside neither a later COPY
   nor the other queries.
3. Queries (--no-queries: none): --clients processes send a fixed mix (below) over
   keep-alive HTTPS for --seconds; latency per request as seen by the client, p50/p99 over
   all requests and p99 per query; then the breakdown of 753 local levels x 12 months, 5
   times on one connection again (breakdown_ms: its best case, vacuumed, no ingest). Each
   breakdown answer must hold the data: the municipality-months with a participant and the
   sum of their totals, as built (benchlib.breakdown; after the load for the first, after the
   corrections for the second).

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
# The sums among them: their cells carry tops (the largest two contributions, fields 8 and 9),
# which the product keeps in cell_tops for disclosure control (migration 0007).
SUMS = {"jobs_created", "seed_funding_npr"}
# One corrected snapshot in FIX_EMPTY is sent with no cells: everything it held is removed.
FIX_EMPTY = 10

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
    build) into length-prefixed Envelope frames, and writes the same rows as COPY TSV: at
    tsv_path the rows of arrays (snapshot_cells), .snap the header rows (snapshots), .tops the
    tops of the sum cells (cell_tops). With fix > 0, that fraction of the snapshots is then
    corrected: sent again at revision 2 with new values (one in FIX_EMPTY with no cells: its
    data removed), frames of their own (the sequence goes on), their keys in .fixkeys, their
    new rows in .fix and .fixtops. Returns a dict: the frames as (last_seq, bytes) (frames,
    fix_frames); the counts: cells and snapshots of the load, fixed snapshots, emptied (those
    without cells), final_cells (the cells stored in the end); what the province's aggregates
    (province_cells) must hold once the corrections are stored (sums: rows, sum of
    numerators, of denominators, of cell keys, of contributors, the MD5 of every row in
    order, agg_digest; each row the sum of its municipalities' cells, its cell key modulo
    2^32); what cell_tops must hold then (tops: rows, sums of top1 and top2, the MD5 of every
    row in key order); what the cells of each municipality must sum to then (munis:
    {municipality: (cells, numerators, denominators, cell keys, contributors)}); and the
    participants_registered totals {(municipality, period): n} after the load (totals) and
    after the corrections (final_totals)."""
    prov, levels, periods, batch, seed, tsv_path, limit, per_snap, fix = args
    rng = random.Random("%d/%d" % (seed, prov))
    tpl = templates()
    # Sparse: each cell kept with probability keep (None: every cell, dense).
    keep = per_snap / len(tpl) if per_snap and per_snap < len(tpl) else None
    # Values stay below 40, so their fields are precomputed; cell_key is encoded per cell.
    f4 = [field(4, 0, n) if n else b"" for n in range(41)]
    f5 = [field(5, 0, n) if n else b"" for n in range(41)]
    f7 = [field(7, 0, n) for n in range(41)]

    def snapshot(code, per, rev, empty=False):
        """One snapshot: its encoding, its cells (template index, numerator, denominator,
        cell key, contributors) and the tops of its sums (template index, top1, top2)."""
        parts, rows, tops = [], [], []
        cells = [] if empty else (
            list(enumerate(tpl)) if keep is None else
            [(i, c) for i, c in enumerate(tpl) if rng.random() < keep]) or [(0, tpl[0])]
        for i, (ind, g, key, ratio, pre) in cells:
            den = 1 + int(rng.random() * 39)
            nu = int(rng.random() * (den + 1)) if ratio else den
            de = den if ratio else 0
            ck = rng.getrandbits(32)
            body = pre + f4[nu] + f5[de] + (field(6, 0, ck) if ck else b"") + f7[den]
            if ind in SUMS:
                # The largest two contributions, as a hub sends them (proto: top1 + top2 <=
                # numerator, top2 <= top1, top2 0 with one contributor).
                t1 = (nu + 1) // 2 + int(rng.random() * (nu // 2 + 1))
                t2 = 0 if den == 1 else int(rng.random() * (min(t1, nu - t1) + 1))
                body += field(8, 0, t1) + (field(9, 0, t2) if t2 else b"")
                tops.append((i, t1, t2))
            parts.append(b"\x22" + varint(len(body)) + body)
            rows.append((i, nu, de, ck, den))
        enc = field(1, 0, code) + field(2, 2, per.encode()) + field(3, 0, rev) + b"".join(parts)
        return enc, rows, tops

    def write(cells_f, tops_f, code, per, rows, tops):
        # The product's layout (migrations 0004, 0007): one row of arrays per snapshot (none
        # for a snapshot without cells); numerator_key 0, as these frames carry none (field
        # 10), so the product stores 0. The sums' tops in cell_tops, one row each.
        if rows:
            cols = list(zip(*[tpl[i][:3] + (nu, de, ck, den, 0)
                              for i, nu, de, ck, den in rows]))
            cells_f.write("2\t%s\t%d\t" % (per, code) + "\t".join(
                [pg_array(c, True) for c in cols[:3]] + [pg_array(c, False) for c in cols[3:]])
                + "\n")
        for i, t1, t2 in tops:
            tops_f.write("%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n" % ((code, per, prov) + tpl[i][:3]
                                                             + (t1, t2)))

    load, fixes, agg, totals, final_totals, munis, top_rows = [], [], {}, {}, {}, {}, []
    n_cells = n_final = n_emptied = 0
    mine = [lv for lv in levels if lv[1] == prov][:limit]
    names = ("", ".snap", ".tops", ".fix", ".fixkeys", ".fixtops")
    out = {x: open(tsv_path + x, "w") for x in names}
    try:
        for code, p, _ in mine:
            for per in periods:
                enc, rows, tops = snapshot(code, per, 1)
                load.append(enc)
                n_cells += len(rows)
                write(out[""], out[".tops"], code, per, rows, tops)
                out[".snap"].write("%d\t%s\t2\t%d\t1\t2026-01-01 00:00:00+00\n"
                                   % (code, per, prov))
                if rows[0][0] == 0:  # participants_registered, its total
                    totals[code, per] = rows[0][1]
                if fix and rng.random() < fix:
                    empty = rng.random() < 1 / FIX_EMPTY
                    enc, rows, tops = snapshot(code, per, 2, empty)
                    fixes.append(enc)
                    n_emptied += empty
                    out[".fixkeys"].write("%d\t%s\n" % (code, per))
                    write(out[".fix"], out[".fixtops"], code, per, rows, tops)
                # What the store holds in the end: the corrected snapshot, or the loaded one.
                n_final += len(rows)
                if rows and rows[0][0] == 0:
                    final_totals[code, per] = rows[0][1]
                m = munis.setdefault(code, [0, 0, 0, 0, 0])
                for i, nu, de, ck, den in rows:
                    a = agg.setdefault((per, i), [0, 0, 0, 0])
                    a[0], a[1], a[2], a[3] = a[0] + nu, a[1] + de, a[2] + ck, a[3] + den
                    m[0], m[1], m[2], m[3], m[4] = m[0] + 1, m[1] + nu, m[2] + de, m[3] + ck, \
                        m[4] + den
                top_rows += [(code, per, prov) + tpl[i][:3] + (t1, t2) for i, t1, t2 in tops]
    finally:
        for f in out.values():
            f.close()
    rows = [(per, tpl[i][0], tpl[i][1], tpl[i][2], a[0], a[1], a[2] % (1 << 32), a[3])
            for (per, i), a in agg.items()]
    sums = (len(rows), sum(r[4] for r in rows), sum(r[5] for r in rows),
            sum(r[6] for r in rows), sum(r[7] for r in rows), agg_digest(rows))
    # In stored()'s order: municipality, then period, indicator, grouping and key byte-wise.
    tops = (len(top_rows), sum(r[6] for r in top_rows), sum(r[7] for r in top_rows),
            rows_md5(top_rows, lambda r: (r[0],) + tuple(x.encode() for x in r[1:2] + r[3:6])))
    return {"prov": prov, "frames": batches(load, batch, 1),
            "fix_frames": batches(fixes, batch, len(load) + 1), "cells": n_cells,
            "snapshots": len(load), "fixed": len(fixes), "emptied": n_emptied,
            "final_cells": n_final, "sums": sums, "tops": tops,
            # A municipality whose every snapshot was emptied holds no cell: no row either.
            "munis": {k: tuple(v) for k, v in munis.items() if v[0]}, "totals": totals,
            "final_totals": final_totals}


def batches(snaps, batch, first):
    """Encoded snapshots as length-prefixed Envelope frames of batch snapshots each, the
    outbox sequence numbering them from first: [(last sequence, frame)]."""
    frames = []
    for i in range(0, len(snaps), batch):
        chunk = snaps[i:i + batch]
        lo, hi = first + i, first + i + len(chunk) - 1
        body = field(1, 0, lo) + field(2, 0, hi)
        body += b"".join(field(3, 2, s) for s in chunk)
        # Protocol 2: the uplink outbox sequence of each snapshot (packed).
        body += field(4, 2, b"".join(varint(q) for q in range(lo, hi + 1)))
        data = field(5, 2, body)
        frames.append((hi, struct.pack(">I", len(data)) + data))
    return frames


def rows_md5(rows, key):
    """MD5 of ROWS sorted by KEY, one line each, their values tab-separated: what sql_md5
    asks PostgreSQL for."""
    text = "\n".join("\t".join(str(x) for x in r) for r in sorted(rows, key=key))
    return hashlib.md5(text.encode()).hexdigest()


def sql_md5(columns, order):
    """The SQL aggregate of rows_md5: COLUMNS joined by tabs, one line a row, in ORDER, whose
    text columns compare byte-wise (bytewise) as rows_md5's keys compare bytes."""
    return "md5(string_agg(concat_ws(E'\\t', %s), E'\\n' ORDER BY %s))" % (
        ", ".join(columns), order)


def bytewise(columns):
    return ", ".join('%s COLLATE "C"' % c for c in columns)


def agg_digest(rows):
    """MD5 of aggregate rows (period, indicator, grouping, key, numerator, denominator,
    cell_key, contributors) in the order of their first four: province_sums' MD5."""
    return rows_md5(rows, lambda r: tuple(x.encode() for x in r[:4]))


def build(months, batch, seed, work, jobs, limit, per_snap, fix):
    """Builds the dataset, one province per worker process: frames per province and the COPY
    TSV at work/cells.tsv (and its companions, build_province); per_snap cells a snapshot on
    average (0: every cell, dense), fix the fraction of snapshots corrected. Returns (periods,
    the TSV's path, the provinces' build_province dicts by province)."""
    levels = local_levels()
    periods = ["%04d-%02d" % (2020 + i // 12, i % 12 + 1) for i in range(months)]
    args = [(p, levels, periods, batch, seed, os.path.join(work, "cells-%d.tsv" % p), limit,
             per_snap, fix) for p in range(1, 8)]
    with multiprocessing.Pool(jobs) as pool:
        provs = {d["prov"]: d for d in pool.imap_unordered(build_province, args)}
    # The hand encoding must be what python3-protobuf makes of the same batch, tops included:
    # the load's first batch, and every batch of corrections (emptied snapshots among them).
    for frame in [provs[1]["frames"][0][1]] + [f for d in provs.values()
                                              for _, f in d["fix_frames"]]:
        env = pb.Envelope()
        env.ParseFromString(frame[4:])
        assert env.SerializeToString() == frame[4:], "hand-encoded frame differs"
    env = pb.Envelope()
    env.ParseFromString(provs[1]["frames"][0][1][4:])
    assert env.rollup_batch.snapshots[0].cells[0].indicator == CATALOGUE[0][0]
    tsv_path = os.path.join(work, "cells.tsv")
    for suffix in ("", ".snap", ".tops", ".fix", ".fixkeys", ".fixtops"):
        with open(tsv_path + suffix, "wb") as out:
            for a in args:
                with open(a[5] + suffix, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                os.unlink(a[5] + suffix)
    return periods, tsv_path, provs


def send_all(c, frames, window):
    """Sends frames with at most window unacknowledged, then waits for every acknowledgement
    (each batch's last sequence, in order, nothing refused). Returns when the last came."""
    inflight = []

    def acked():
        r = c.recv()
        assert r.WhichOneof("msg") == "ack" and r.ack.acked_seq == inflight.pop(0) and \
            not r.ack.refusals, r
    for last, frame in frames:
        while len(inflight) >= window:
            acked()
        c.send_raw(frame)
        inflight.append(last)
    while inflight:
        acked()
    return time.perf_counter()


def push(fed, pki, prov, frames, fixes, window, errors, loaded, go, done):
    """One hub client: the load's frames, then (loaded: a barrier with the timer's thread) its
    corrections on the same connection once go is set; done gets the time of their last
    acknowledgement."""
    c = None
    try:
        c = WireClient(fed.sync_port, pki, "province-%d" % prov)
        c.hello(os.urandom(16))
        send_all(c, frames, window)
    except Exception as e:  # noqa: BLE001
        errors.append("province %d: %r" % (prov, e))
        c = None
    loaded.wait()
    if c is None:
        return
    try:
        if fixes:
            go.wait()
            done.append(send_all(c, fixes, window))
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.append("province %d, corrections: %r" % (prov, e))


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
    key = ("period", "indicator", "grouping", "key")
    md5 = sql_md5(key + ("numerator", "denominator", "cell_key", "contributors"), bytewise(key))
    rows = db.psql("SELECT province, count(*), sum(numerator), sum(denominator), sum(cell_key),"
                   " sum(contributors), %s FROM province_cells GROUP BY province" % md5)
    return {int(r[0]): tuple(int(x) for x in r[1:6]) + (r[6],) for r in rows}


def catalogue(fed):
    """The product's catalogue as CATALOGUE spells it, (code, ratio, groupings), and the codes
    of its sums (SUMS), from GET /v1/indicators."""
    status, body, _ = fed.get("/v1/indicators", fed.token("public", "bench-catalogue"))
    assert status == 200, (status, body)
    return ([(x["code"], x["aggregation"] == "ratio", x["groupings"]) for x in body["indicators"]],
            {x["code"] for x in body["indicators"] if x["aggregation"] == "sum"})


def stored(db):
    """What the store holds: each municipality's cells (count, sums of numerators,
    denominators, cell keys and contributors, from the cells view, which unnests every row of
    arrays), the snapshots and those at revision 2 (corrected), each province's tops (rows,
    sums of top1 and top2, MD5 of every row in key order), as build_province's."""
    munis = {int(r[0]): tuple(int(x) for x in r[1:]) for r in db.psql(
        "SELECT municipality, count(*), sum(numerator), sum(denominator), sum(cell_key), "
        "sum(contributors) FROM cells GROUP BY municipality")}
    snaps = [int(x) for x in db.psql("SELECT count(*), count(*) FILTER (WHERE revision = 2) "
                                     "FROM snapshots")[0]]
    md5 = sql_md5(("municipality", "period", "province", "indicator", "grouping", "key", "top1",
                   "top2"), "municipality, " + bytewise(("period", "indicator", "grouping", "key")))
    tops = {int(r[0]): tuple(int(x) for x in r[1:4]) + (r[4],) for r in db.psql(
        "SELECT province, count(*), sum(top1), sum(top2), %s FROM cell_tops GROUP BY province"
        % md5)}
    return {"munis": munis, "snapshots": snaps[0], "fixed": snaps[1], "tops": tops}


def ingest_run(work, pki, pg, prov, window, i, loaded=None):
    """One ingest into a fresh database by a fresh federal-api (the product's pool size and
    settings): every province pushes its load at once; timed until every batch is
    acknowledged. Then loaded(fed), if given, before anything reads the store; then its
    transactions are counted and the store settled (settle); then the corrections, if any,
    every province at once over the same connections, timed the same way (to the last
    acknowledgement); then the work-done counts (which read every cell).
    The first run also asks the product for its catalogue."""
    db = PgDb(pg, "fed%d" % i)
    pg.psql("CREATE DATABASE %s" % db.name, db="postgres")
    fed = Federal(work, pki, db, name="federal-%d" % i)
    with open(fed.config) as f:
        text = f.read()
    with open(fed.config, "w") as f:
        f.write(text.replace("[tls]", "log_level = warn\n[tls]"))
    fed.start()
    errors = []
    barrier, go, done = threading.Barrier(len(prov) + 1), threading.Event(), []
    threads = [threading.Thread(target=push, args=(fed, pki, p, d["frames"], d["fix_frames"],
                                                   window, errors, barrier, go, done))
               for p, d in prov.items()]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    barrier.wait()
    elapsed = time.perf_counter() - t0
    try:
        if loaded:
            loaded(fed)
        n_commits = commits(db, 1)
        settle(pg, db)
    finally:
        t0 = time.perf_counter()
        go.set()
        for t in threads:
            t.join()
    fix_s = max(done) - t0 if done else 0
    r = stored(db)
    r.update({"s": elapsed, "fix_s": fix_s, "errors": errors, "commits": n_commits,
              "fix_commits": commits(db, 2), "provinces": province_sums(db),
              "catalogue": catalogue(fed) if i == 0 else None})
    return fed, db, r


# The COPY baseline's connections: federal-api's default pool (4) writes with all but the one
# it keeps for reads.
COPY_CONNS = 3


def settle(pg, db):
    """Before the corrections, on both sides, outside the timers: the loaded store vacuumed,
    analysed and checkpointed, so that the corrections start from the same state (as they
    would come, hours after a load) and autovacuum's pass over the load runs beside neither."""
    db.psql("VACUUM (ANALYZE)")
    pg.psql("CHECKPOINT", db="postgres")


def commits(db, revision):
    """The transactions that stored the snapshots of a revision (1: the load, 2: the
    corrections): each row's xmin names the transaction that last wrote it."""
    return int(db.psql("SELECT count(DISTINCT xmin::text) FROM snapshots WHERE revision = %d"
                       % revision)[0][0])


def fields(line):
    """A TSV line's first three fields and the rest."""
    return line.rstrip("\n").split("\t", 3)


def groups(path, per_commit, key):
    """The lines of path in groups: each group the lines of per_commit snapshots, in order,
    key(fields) naming a line's snapshot ((municipality, period)). Yields [[lines]]."""
    with open(path) as f:
        group, seen = [], []
        for line in f:
            k = key(fields(line))
            if not seen or seen[-1] != k:
                if len(seen) == per_commit:
                    yield group
                    group, seen = [], []
                seen.append(k)
            group.append(line)
        if group:
            yield group


def copy_scripts(work, tsv_path, per_commit, conns, fixed=False):
    """Splits the COPY TSV into psql scripts, one per connection, that store per_commit
    snapshots a transaction, the transactions dealt to the connections in turn. The load
    (fixed False): COPY of their header rows, their rows of arrays and the tops of their sums.
    The corrections (fixed True): their header rows set to revision 2, their old rows of arrays
    and tops deleted, COPY of the new ones (none for an emptied snapshot). Written once,
    before any timer. Returns the paths and the number of transactions."""
    tag = "fix" if fixed else "load"
    paths = [os.path.join(work, "%s-%d.sql" % (tag, w)) for w in range(conns)]
    outs = [open(p, "w") for p in paths]
    cells_key = lambda f: (f[2], f[1])  # noqa: E731  kind, period, municipality, ...
    snap_key = lambda f: (f[0], f[1])  # noqa: E731  municipality, period, ...
    n = 0
    try:
        heads = groups(tsv_path + (".fixkeys" if fixed else ".snap"), per_commit, snap_key)
        cells = open(tsv_path + (".fix" if fixed else ""))
        tops = open(tsv_path + (".fixtops" if fixed else ".tops"))
        pending = {"cells": next(cells, None), "tops": next(tops, None)}

        def take(name, f, mine, key):
            # The lines of f that belong to the snapshots mine (the files keep one order).
            out = []
            while pending[name] is not None and key(fields(pending[name])) in mine:
                out.append(pending[name])
                pending[name] = next(f, None)
            return "".join(out)
        for group in heads:
            mine = {snap_key(fields(x)) for x in group}
            rows, top_rows = take("cells", cells, mine, cells_key), take("tops", tops, mine,
                                                                         snap_key)
            if fixed:
                vals = ",".join("(%s,'%s')" % tuple(x.rstrip("\n").split("\t")) for x in group)
                sql = ("UPDATE snapshots s SET revision = 2, updated_at = "
                       "'2026-01-02 00:00:00+00' FROM (VALUES %s) v(m, p) "
                       "WHERE s.municipality = v.m AND s.period = v.p;\n"
                       "DELETE FROM snapshot_cells c USING (VALUES %s) v(m, p) "
                       "WHERE c.period_kind = 2 AND c.period = v.p AND c.municipality = v.m;\n"
                       "DELETE FROM cell_tops t USING (VALUES %s) v(m, p) "
                       "WHERE t.municipality = v.m AND t.period = v.p;\n" % (vals, vals, vals))
            else:
                sql = "COPY snapshots FROM STDIN;\n%s\\.\n" % "".join(group)
            outs[n % conns].write("BEGIN;\n%sCOPY snapshot_cells FROM STDIN;\n%s\\.\n"
                                  "COPY cell_tops FROM STDIN;\n%s\\.\nCOMMIT;\n"
                                  % (sql, rows, top_rows))
            n += 1
        assert pending["cells"] is None and pending["tops"] is None, "the TSV files disagree"
        cells.close()
        tops.close()
    finally:
        for f in outs:
            f.close()
    return paths, n


def psql_run(pg, db, scripts):
    """The psql scripts, one process each, at once; timed from their start to the last one's
    exit. Raises when one fails."""
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
    return elapsed


def copy_run(pg, scripts, fix_scripts, i):
    """COPY of the same snapshots into a fresh database migrated with the product's
    migrations: their header rows into snapshots, their cells, one row of arrays per snapshot,
    into snapshot_cells (the layout of migration 0004, its arrays compressed with LZ4 since
    migration 0011) and the tops of their sums into cell_tops, committing as often as the
    product's ingest did and over as many connections as it writes with (copy_scripts); then,
    the store settled as the product's (settle), the corrections the same way (fix_scripts,
    if any). Each timed on its own (psql_run)."""
    db = PgDb(pg, "copy%d" % i)
    pg.psql("CREATE DATABASE %s" % db.name, db="postgres")
    mig = os.path.join(ROOT, "federal-api", "migrations")
    for name in sorted(os.listdir(mig)):
        with open(os.path.join(mig, name)) as f:
            db.psql(f.read())
    elapsed = psql_run(pg, db, scripts)
    n_commits = commits(db, 1)
    settle(pg, db)
    fix_s = psql_run(pg, db, fix_scripts) if fix_scripts else 0
    r = stored(db)
    r.update({"s": elapsed, "fix_s": fix_s, "commits": n_commits,
              "fix_commits": commits(db, 2)})
    return db, r


def detail(got, want):
    """A store check's detail: the totals compared, and what differs."""
    def tot(x):
        return {"cells, numerators, denominators, cell keys, contributors":
                [sum(m[k] for m in x["munis"].values()) for k in range(5)],
                "municipalities": len(x["munis"]), "snapshots": x["snapshots"],
                "corrected": x["fixed"], "tops (rows, sums of top1 and top2, MD5) by province":
                x["tops"]}
    differ = sorted(k for k in want["munis"].keys() | got["munis"].keys()
                    if want["munis"].get(k) != got["munis"].get(k))
    return "%s; expected %s; municipalities whose cells differ: %s" % (
        tot(got), tot(want), differ[:10] or "none")


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
    ap.add_argument("--corrections", type=float, default=0.1,
                    help="the fraction of snapshots corrected after the load (0: none)")
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
    if a.batch < 1 or a.window < 1 or a.cells_per_snapshot < 0 or not 0 <= a.corrections < 1:
        ap.error("--batch and --window must be at least 1, --cells-per-snapshot at least 0, "
                 "--corrections at least 0 and below 1")
    res = benchlib.Result(a.name, "bench/federal_bench.py", params=vars(a))
    work = tempfile.mkdtemp(prefix="fed-bench-", dir="/var/tmp")
    pg = None
    fed = None
    try:
        t0 = time.time()
        periods, tsv_path, prov = build(a.months, a.batch, 1, work, a.jobs,
                                        a.municipalities or None, a.cells_per_snapshot,
                                        a.corrections)
        total = {k: sum(d[k] for d in prov.values())
                 for k in ("cells", "snapshots", "fixed", "final_cells")}
        n_cells, n_snaps, n_fixed = total["cells"], total["snapshots"], total["fixed"]
        n_emptied = sum(d["emptied"] for d in prov.values())
        sums = {p: d["sums"] for p, d in prov.items()}
        munis = {k: v for d in prov.values() for k, v in d["munis"].items()}
        # The breakdown's year (the data's first) and what its answers must hold: the
        # municipality-months with data and the sum of their totals, after the load and after
        # the corrections.
        year = periods[0][:4]

        def expect_of(key):
            first = {k: v for d in prov.values() for k, v in d[key].items()
                     if k[1].startswith(year + "-")}
            return len(first), sum(first.values())
        expect, final_expect = expect_of("totals"), expect_of("final_totals")
        tokens = {}
        print("dataset: %d snapshots, %d cells, %d snapshots corrected, built in %.1f s"
              % (n_snaps, n_cells, n_fixed, time.time() - t0), file=sys.stderr)
        pki = Pki(os.path.join(work, "pki"))
        pki.issue("federal", *sum([["province", str(p)] for p in range(1, 8)], []))
        # PostgreSQL's default settings for both sides (pg.py sets only the socket, the port,
        # max_connections = 100 and shared_buffers = 128MB, PostgreSQL's own defaults).
        pg = Postgres()
        ingests, copies = [], []
        scripts = per_commit = n_tx = None
        fix_scripts, fix_per_commit, n_fix_tx = [], None, 0
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
                fed, db, r = ingest_run(work, pki, pg, prov, a.window, len(ingests), loaded)
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
                    if n_fixed:
                        fix_per_commit = max(1, round(n_fixed / statistics.median(
                            [max(1, x["fix_commits"]) for x in ingests])))
                        fix_scripts, n_fix_tx = copy_scripts(work, tsv_path, fix_per_commit,
                                                             COPY_CONNS, fixed=True)
                db, r = copy_run(pg, scripts, fix_scripts, len(copies))
                copies.append(r)
                drop(pg, db)
            print("%s: %.0f cells/s%s" % (step, n_cells / r["s"], ", corrections %.0f "
                                          "snapshots/s" % (n_fixed / r["fix_s"])
                                          if n_fixed else ""), file=sys.stderr)
        declared, sums_declared = ingests[0]["catalogue"]
        res.check("the dataset holds every indicator and grouping the product declares, and "
                  "its sums (the cells with tops)",
                  declared == [(ind, ratio, g) for ind, ratio, g in CATALOGUE] and
                  sums_declared == SUMS,
                  "GET /v1/indicators: %s; sums %s" % (declared, sorted(sums_declared)))
        # What the store holds once the corrections are stored.
        want = {"munis": munis, "snapshots": n_snaps, "fixed": n_fixed,
                "tops": {p: d["tops"] for p, d in prov.items() if d["tops"][0]}}
        got = lambda r: {k: r[k] for k in want}  # noqa: E731
        assert sum(x[0] for x in munis.values()) == total["final_cells"]
        for i, r in enumerate(ingests):
            res.check("ingest run %d: every batch acknowledged" % (i + 1), not r["errors"],
                      r["errors"])
            res.check("ingest run %d: each province's aggregates are the sums of its "
                      "municipalities' cells" % (i + 1), r["provinces"] == sums,
                      "province_cells (rows, numerators, denominators, cell keys, "
                      "contributors, MD5 of the rows): %s; expected %s" % (r["provinces"], sums))
            res.check("ingest run %d stored every snapshot, cell, correction and top"
                      % (i + 1), got(r) == want, detail(got(r), want))
        for i, r in enumerate(copies):
            res.check("COPY run %d stored every snapshot, cell, correction and top" % (i + 1),
                      got(r) == want, detail(got(r), want))
            for key, plan, size, what in (("commits", n_tx, per_commit, "load"),
                                          ("fix_commits", n_fix_tx, fix_per_commit,
                                           "corrections"))[:2 if n_fixed else 1]:
                product = statistics.median(x[key] for x in ingests)
                res.check("COPY run %d, %s: committed once per %s snapshots, as the product "
                          "did" % (i + 1, what, size),
                          r[key] == plan and abs(plan - product) <= max(1, product / 20),
                          "%d transactions stored snapshots, %d planned; in the ingest runs %s"
                          % (r[key], plan, [x[key] for x in ingests]))
        shape = "%s cells" % f"{n_cells:,}"
        if a.cells_per_snapshot:
            shape = "sparse: %s snapshots of %.1f cells on average, %s" % (
                f"{n_snaps:,}", n_cells / n_snaps, shape)
        res.figure("ingest_rate", "federal snapshot ingest (7 hubs, mutual TLS, batch %d, "
                   "window %d, default pool), %s, the sums' with tops" % (a.batch, a.window,
                                                                        shape), "cells/s",
                   goal=">= 0.8 x COPY", goal_value=0.8, goal_on="ratio", baseline="copy_rate",
                   headline=True)
        res.samples("ingest_rate", [n_cells / r["s"] for r in ingests])
        res.figure("copy_rate", "PostgreSQL COPY of the same snapshots into snapshots, "
                   "snapshot_cells (the product's layout: arrays, LZ4) and cell_tops, %d "
                   "snapshots a commit "
                   "over %d connections, as the product" % (per_commit, COPY_CONNS), "cells/s")
        res.samples("copy_rate", [n_cells / r["s"] for r in copies])
        if n_fixed:
            res.figure("fix_rate", "federal corrections after the load: %s snapshots (%.0f %%) "
                       "sent again at revision 2 with new values, %s of them without cells "
                       "(their data removed), the same clients, batches and window"
                       % (f"{n_fixed:,}", 100.0 * n_fixed / n_snaps, f"{n_emptied:,}"),
                       "snapshots/s", goal=">= 0.8 x SQL", goal_value=0.8, goal_on="ratio",
                       baseline="sql_fix_rate", headline=True)
            res.samples("fix_rate", [n_fixed / r["fix_s"] for r in ingests])
            res.figure("sql_fix_rate", "the same corrections in SQL: each snapshot's header row "
                       "updated, its rows of arrays and tops deleted and the new ones COPYed, "
                       "%d snapshots a commit over %d connections, as the product"
                       % (fix_per_commit, COPY_CONNS), "snapshots/s")
            res.samples("sql_fix_rate", [n_fixed / r["fix_s"] for r in copies])
        res.data["extra"].update({
            "cells": n_cells, "snapshots": n_snaps, "corrected": n_fixed, "emptied": n_emptied,
            "cells_after_corrections": total["final_cells"],
            "tops": sum(d["tops"][0] for d in prov.values()),
            "ingest_commits": [x["commits"] for x in ingests],
            "copy_commits": [x["commits"] for x in copies],
            "ingest_fix_commits": [x["fix_commits"] for x in ingests],
            "copy_fix_commits": [x["fix_commits"] for x in copies],
            "copy_snapshots_per_commit": per_commit,
            "sql_fix_snapshots_per_commit": fix_per_commit, "copy_connections": COPY_CONNS})
        res.note("The COPY and SQL baselines store the snapshots' rows (headers, arrays and "
                 "tops) only; the ingest also maintains the province aggregates "
                 "(province_cells; for a correction it subtracts the replaced cells from them), "
                 "updates the hub's position and the province's status on every commit, and "
                 "notifies the other federal-api processes when a month gains or loses its "
                 "data. Before the corrections both stores are vacuumed, analysed and "
                 "checkpointed, outside the timers.")
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
                               tokens["ministry"], year, final_expect)
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
