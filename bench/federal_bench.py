#!/usr/bin/python3
"""Federal API benchmark (issue 5, item 5): snapshot ingest rate beside PostgreSQL COPY of the
same rows into the same schema, and HTTPS query latency (p50/p99) with concurrent clients over
a national dataset, all in one run on a private PostgreSQL 15.

Dataset: every one of the 753 municipalities x MONTHS months (Gregorian month periods) x every
declared grouping of every catalogue indicator, each cell filled (dense: the worst case; about
300 cells per snapshot). The issue asks for 120 months (26.9 M cells); --months sets the
fraction loaded. The dataset is encoded by hand (checked against python3-protobuf), one
province per process (--jobs), so that 120 months builds in about a minute and a half here.

1. Ingest: 7 hub clients (one per province, mutual TLS 1.3, Python ssl, frames encoded
   before the clock starts) push their municipalities' snapshots at once, batches of --batch
   snapshots with a window of 2; timed until every batch is acknowledged (committed).
2. COPY baseline: the same cell rows (as TSV, written before timing) are COPYed with psql
   into a table of one row per cell (the store's layout before version 4: partitioned by
   period kind, the same six-column primary key) in a second database migrated with the same
   migrations. That database
   is then dropped, a CHECKPOINT taken and the loaded database vacuumed (VACUUM (ANALYZE)),
   so that the queries do not run beside the checkpoint of both loads or beside autovacuum's
   first pass over the newly loaded cells.
3. Queries: --clients processes send a fixed mix (below) over keep-alive HTTPS for --seconds;
   latency per request as seen by the client, p50/p99 over all requests and p99 per query.

Prints a Markdown table and adds it with the command to the Federal API section of
docs/BENCHMARKS.md (--no-append to skip). Timings are reported, never asserted."""
import argparse
import datetime
import http.client
import itertools
import multiprocessing
import os
import random
import shlex
import shutil
import ssl
import struct
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

COPY_TABLE = """
CREATE TABLE cell_rows (
    period_kind smallint NOT NULL, period text NOT NULL, municipality integer NOT NULL,
    indicator text NOT NULL, grouping text NOT NULL, key text NOT NULL,
    numerator bigint NOT NULL, denominator bigint NOT NULL,
    cell_key bigint NOT NULL CHECK (cell_key >= 0 AND cell_key < 4294967296),
    contributors bigint NOT NULL,
    PRIMARY KEY (period_kind, period, municipality, indicator, grouping, key)
) PARTITION BY LIST (period_kind);
CREATE TABLE cell_rows_year PARTITION OF cell_rows FOR VALUES IN (0);
CREATE TABLE cell_rows_quarter PARTITION OF cell_rows FOR VALUES IN (1);
CREATE TABLE cell_rows_month PARTITION OF cell_rows FOR VALUES IN (2);
CREATE TABLE cell_rows_bs_month PARTITION OF cell_rows FOR VALUES IN (3);
CREATE TABLE cell_rows_fiscal_trimester PARTITION OF cell_rows FOR VALUES IN (4);
CREATE TABLE cell_rows_fiscal_year PARTITION OF cell_rows FOR VALUES IN (5);
"""

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
    in catalogue order; the same for every snapshot."""
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
    tsv_path. Returns the frames as (last_seq, bytes) and the cell and snapshot counts."""
    prov, levels, periods, batch, seed, tsv_path = args
    rng = random.Random("%d/%d" % (seed, prov))
    tpl = templates()
    # Values stay below 40, so their fields are precomputed; cell_key is encoded per cell.
    f4 = [field(4, 0, n) if n else b"" for n in range(41)]
    f5 = [field(5, 0, n) if n else b"" for n in range(41)]
    f7 = [field(7, 0, n) for n in range(41)]
    snaps, n_cells = [], 0
    with open(tsv_path, "w") as tsv:
        for code, p, _ in levels:
            if p != prov:
                continue
            for per in periods:
                parts, rows = [], []
                head = "2\t%s\t%d\t" % (per, code)
                for ind, g, key, ratio, pre in tpl:
                    den = 1 + int(rng.random() * 39)
                    nu = int(rng.random() * (den + 1)) if ratio else den
                    de = den if ratio else 0
                    ck = rng.getrandbits(32)
                    body = pre + f4[nu] + f5[de] + (field(6, 0, ck) if ck else b"") + f7[den]
                    parts.append(b"\x22" + varint(len(body)) + body)
                    rows.append("%s%s\t%s\t%s\t%d\t%d\t%d\t%d\n" % (head, ind, g, key, nu, de, ck,
                                                                    den))
                n_cells += len(rows)
                tsv.writelines(rows)
                snaps.append(field(1, 0, code) + field(2, 2, per.encode()) + field(3, 0, 1)
                             + b"".join(parts))
    frames = []
    for i in range(0, len(snaps), batch):
        chunk = snaps[i:i + batch]
        body = field(1, 0, i + 1) + field(2, 0, i + len(chunk))
        body += b"".join(field(3, 2, s) for s in chunk)
        data = field(5, 2, body)
        frames.append((i + len(chunk), struct.pack(">I", len(data)) + data))
    return prov, frames, n_cells, len(snaps)


def build(months, batch, seed, work, jobs):
    """Builds the dataset, one province per worker process: frames per province and the COPY
    TSV at work/cells.tsv. Returns (periods, frames, tsv path, cells, snapshots)."""
    levels = local_levels()
    periods = ["%04d-%02d" % (2020 + i // 12, i % 12 + 1) for i in range(months)]
    args = [(p, levels, periods, batch, seed, os.path.join(work, "cells-%d.tsv" % p))
            for p in range(1, 8)]
    frames, n_cells, n_snaps = {}, 0, 0
    with multiprocessing.Pool(jobs) as pool:
        for prov, fr, nc, ns in pool.imap_unordered(build_province, args):
            frames[prov], n_cells, n_snaps = fr, n_cells + nc, n_snaps + ns
    # The hand encoding must be what python3-protobuf makes of the same batch.
    env = pb.Envelope()
    env.ParseFromString(frames[1][0][1][4:])
    assert env.SerializeToString() == frames[1][0][1][4:], "hand-encoded frame differs"
    assert env.rollup_batch.snapshots[0].cells[0].indicator == CATALOGUE[0][0]
    tsv_path = os.path.join(work, "cells.tsv")
    with open(tsv_path, "wb") as out:
        for _, _, _, _, _, part in args:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
            os.unlink(part)
    return periods, frames, tsv_path, n_cells, n_snaps


def push(fed, pki, prov, frames, errors):
    try:
        c = WireClient(fed.sync_port, pki, "province-%d" % prov)
        c.hello(os.urandom(16))
        inflight = []
        for last, frame in frames:
            while len(inflight) >= 2:
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


def append_run(text):
    """Adds a run at the end of the "## Federal API (issue 5)" section of docs/BENCHMARKS.md
    (the other sections belong to other benchmarks)."""
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(path) as f:
        doc = f.read()
    start = doc.find("\n## Federal API (issue 5)")
    if start < 0:
        doc = doc.rstrip("\n") + "\n\n## Federal API (issue 5)\n\n" + text
    else:
        end = doc.find("\n## ", start + 1)
        end = len(doc) if end < 0 else end + 1
        doc = doc[:end].rstrip("\n") + "\n\n" + text + ("\n" if end < len(doc) else "") \
            + doc[end:]
    with open(path, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--pool", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="processes building the dataset (one province each at a time)")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="fed-bench-")
    pg = None
    fed = None
    try:
        t0 = time.time()
        periods, frames, tsv_path, n_cells, n_snaps = build(a.months, a.batch, 1, work, a.jobs)
        print("dataset: %d snapshots, %d cells, built in %.1f s" % (n_snaps, n_cells,
                                                                   time.time() - t0))
        pki = Pki(os.path.join(work, "pki"))
        pki.issue("federal", *sum([["province", str(p)] for p in range(1, 8)], []))
        # Same server settings for ingest and COPY; larger WAL so checkpoints do not dominate.
        pg = Postgres(extra_conf="max_wal_size = 4GB\ncheckpoint_timeout = 15min")
        fed = Federal(work, pki, pg)
        with open(fed.config) as f:
            text = f.read()
        with open(fed.config, "w") as f:
            f.write(text.replace("[tls]", "pool_size = %d\nlog_level = warn\n[tls]" % a.pool))
        fed.start()
        tokens = {"ministry": fed.token("ministry", "bench-ministry"),
                  "public": fed.token("public", "bench-public")}
        # 1. ingest
        errors = []
        threads = [threading.Thread(target=push, args=(fed, pki, p, frames[p], errors))
                   for p in range(1, 8)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingest_s = time.perf_counter() - t0
        assert not errors, errors
        stored = int(pg.psql("SELECT count(*) FROM cells")[0][0])
        assert stored == n_cells, (stored, n_cells)
        # 2. COPY baseline into a second database with the same migrations
        pg.psql("CREATE DATABASE copybench")
        mig = os.path.join(ROOT, "federal-api", "migrations")
        for name in sorted(os.listdir(mig)):
            pg.psql(open(os.path.join(mig, name)).read(), db="copybench")
        # The baseline table: one row per cell, the layout the store had before version 4
        # (partitioned by period kind, the six-column primary key); cells is a view now.
        pg.psql(COPY_TABLE, db="copybench")
        t0 = time.perf_counter()
        pg.psql("\\copy cell_rows FROM '%s'" % tsv_path, db="copybench")
        copy_s = time.perf_counter() - t0
        assert pg.psql("SELECT count(*) FROM cell_rows", db="copybench") == [[str(n_cells)]]
        # The copy is not queried: drop it, and write out what both loads left dirty, so that
        # the query phase does not share the disk with the checkpoint of the loads.
        pg.psql("DROP DATABASE copybench")
        pg.psql("CHECKPOINT")
        # 3. queries
        levels = [(c, p, d) for c, p, d in local_levels()]
        # After a bulk load autovacuum vacuums all of cells_month (minutes at 120 months), which
        # on 2 cores would share them with the query phase; do it first, as after a backfill.
        t0 = time.perf_counter()
        pg.psql("VACUUM (ANALYZE)")
        vacuum_s = time.perf_counter() - t0
        with multiprocessing.Pool(a.clients) as pool:
            res = pool.map(client, [(fed.https_port, pki.path("ca.crt"), tokens, periods,
                                     levels, a.seconds, i) for i in range(a.clients)])
        by_kind = {}
        for l, _ in res:
            for kind, x in l:
                by_kind.setdefault(kind, []).append(x)
        lat = [x for xs in by_kind.values() for x in xs]
        errs = sum(e for _, e in res)
        rows = [
            ("snapshot ingest (7 hubs, mutual TLS, batch %d, window 2)" % a.batch,
             "**%s cells/s** (%s snapshots/s; %s cells in %.1f s)"
             % (format(int(n_cells / ingest_s), ","), format(int(n_snaps / ingest_s), ","),
                format(n_cells, ","), ingest_s)),
            ("PostgreSQL COPY of the same rows into a row-per-cell table (`cells` before version 4; psql \\copy)",
             "**%s rows/s** (%.1f s)" % (format(int(n_cells / copy_s), ","), copy_s)),
            ("ingest / COPY", "%.2f" % (copy_s / ingest_s)),
            ("query latency, %d clients, %d s, fixed mix" % (a.clients, a.seconds),
             "**p50 %.1f ms, p99 %.1f ms** (%d requests, %.0f req/s, %d non-200)"
             % (pct(lat, 50) * 1000, pct(lat, 99) * 1000, len(lat), len(lat) / a.seconds,
                errs)),
        ]
        cmd = "/usr/bin/python3 bench/federal_bench.py " + " ".join(
            shlex.quote(x) for x in sys.argv[1:])
        table = ["### %s: 753 municipalities x %d months, full groupings"
                 % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), a.months),
                 "", "```", cmd.strip(), "```", "", "| measure | result |", "| --- | --- |"]
        table += ["| %s | %s |" % r for r in rows]
        table += ["", "Before the queries: copy database dropped, CHECKPOINT, VACUUM (ANALYZE) "
                  "of the loaded database (%.0f s)." % vacuum_s]
        table += ["", "p99 by query (ms): " + "; ".join(
            "%s %.1f (%d)" % (QUERY_MIX[k][2].split("?")[0].split("/")[-1] + "?"
                              + QUERY_MIX[k][2].split("?")[1].replace("period={m}&", ""),
                              pct(xs, 99) * 1000, len(xs))
            for k, xs in sorted(by_kind.items()))]
        text = "\n".join(table) + "\n"
        print(text)
        if not a.no_append:
            append_run(text)
    finally:
        if fed:
            fed.stop()
        if pg:
            pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
