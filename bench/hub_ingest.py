#!/usr/bin/python3
"""Hub durable ingest benchmark (issue 2, item 7), with its raw SQLite baseline in the same run.

1. Prepares, before the hub starts: a PKI, N municipal-node stores of province 1, each loaded
   through the real CSV import path (tests/system/gen.py and nodegen.py rows, `municipal-node
   import`): persons, services and enterprises in the demo generator's proportions
   (bench/mix.py, tools/caseload.py's defaults), as the national bench's real nodes.
2. Starts a provincial hub on free loopback ports (store on the same disk as the baseline's),
   starts all N `municipal-node sync` at once and times until the rollups of every record the
   hub acknowledged are stored (hub /metrics: nothing dirty, nothing queued); records/s =
   total / that time (the time to the last acknowledgement is recorded beside it). With
   --federal, each hub run is followed (or preceded: the order alternates) by a second one
   whose snapshots a federal tier (PostgreSQL + federal-api) receives: the time until it has
   committed every one (which its next answer then holds) is recorded, with that run's own
   rate to rollups stored, reported beside the judged one; the judged run has no federal tier
   beside it, as its baseline has none (PostgreSQL would take the same two cores). The
   federal tier is stopped after its run. Checks that the hub holds exactly the total, and
   the federal tier every snapshot. Hub CPU seconds come from
   /proc/<pid>/stat, its peak RSS from VmHWM.
3. Runs build/bench/sqlite_upsert (bench/sqlite_upsert.c, built by make bench-build) on the
   same outbox bytes with the hub's schema, index, pragmas, upsert statement and checkpoint
   thread (common/walckpt.c at the hub's threshold), at the hub's own rows per commit (the
   median of its runs so far), alternating with the hub runs (A B B A ...).

Writes build/bench/hub_ingest.json (bench/benchlib.py), from which bench/report.py makes the
tables of docs/BENCHMARKS.md; exits non-zero when a work-done check fails (every record and
its rollups stored, the baseline upserted the same bytes with the hub's schema). Timings are
reported, never asserted."""
import argparse
import concurrent.futures
import datetime
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gen  # noqa: E402
import benchlib  # noqa: E402
import harness  # noqa: E402
import mix  # noqa: E402

NODE_BIN = os.path.join(harness.BIN, "municipal-node")
HUB_BIN = os.path.join(harness.BIN, "provincial-hub")
TICKS = os.sysconf("SC_CLK_TCK")


def province_codes(province):
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), encoding="utf-8") as f:
        next(f)
        return [int(line.split(",")[4]) for line in f if line.split(",")[0] == str(province)]


def prepare_node(workdir, pki_dir, code, rows, seed, hub_port, window, batch):
    """Runs in a worker process: init a node store, write its caseload's CSVs (rows records:
    persons, services and enterprises in the demo generator's proportions, bench/mix.py) and
    import them, each kind through `municipal-node import`."""
    t0 = time.time()
    cl = gen.Caseload(code, seed)
    csvs, _ = mix.caseload(cl, rows, workdir, str(code))
    n_p, n_s, n_e = mix.split(rows, 0)
    del cl
    t_gen = time.time() - t0

    class _Hub:
        sync_port = hub_port

    pki = harness.Pki.__new__(harness.Pki)  # the PKI exists already; do not init it again
    pki.dir = pki_dir
    node = harness.Node(workdir, pki, code, _Hub)
    with open(node.config) as f:
        text = f.read()
    text = re.sub(r"(?m)^window = .*$", "window = %d" % window, text)
    text = re.sub(r"(?m)^batch_records = .*$", "batch_records = %d" % batch, text)
    with open(node.config, "w") as f:
        f.write(text)
    t1 = time.time()
    out = []
    for kind, path in csvs:
        out.append(node.import_csv(kind, path).stdout.strip())
        os.unlink(path)
    return {"code": code, "db": node.db, "config": node.config, "gen_s": t_gen,
            "import_s": time.time() - t1, "import": "; ".join(out),
            "kinds": [n_p, n_s, n_e]}


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def proc_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "sqlite": sqlite3.sqlite_version}


def hub_upsert_sql():
    """The hubstore__upsert_sql literal of provincial-hub/hubstore.c (hubstore_put's
    statement), its C string pieces joined."""
    with open(os.path.join(ROOT, "provincial-hub", "hubstore.c"), encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"hubstore__upsert_sql\s*=\s*(.*?);\s*\n", src, re.S)
    if not m:
        return None
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))


def perf_top(data, limit):
    r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                        "--percent-limit", "1", "--sort", "dso,symbol"],
                       capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    return lines[:limit]


def schema_of(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return [r[0] for r in c.execute(
            "SELECT sql FROM sqlite_master WHERE name IN ('records', 'records_key')"
            " ORDER BY name")]
    finally:
        c.close()


def wait_metrics(hub, cond, timeout):
    """Polls the hub's /metrics until cond(metrics) holds; returns (seconds since the call,
    the metrics), or (None, metrics) after timeout. Polling observes the hub's own counters
    (it is not a guess at how long the work takes); each poll costs the hub one small HTTP
    answer and a walk of its allocator's free lists (mallinfo2): every 20 ms, not 5 (at 5 ms
    that walk alone was 3 % of the hub's CPU in a perf profile)."""
    t0 = time.monotonic()
    while True:
        m = hub.metrics()
        if cond(m):
            return time.monotonic(), m
        if time.monotonic() - t0 > timeout:
            return None, m
        time.sleep(0.02)


def rollups_stored(m):
    """Every committed record noted by the rollup engine and every snapshot recomputed and
    stored (provincial-hub/main.c: hub_rollup_queue, hub_rollup_dirty)."""
    return m.get("hub_rollup_queue", 1) == 0 and m.get("hub_rollup_dirty", 1) == 0


def sync_phase(work, rep, pki, hub_port, nodes, args, fed=None):
    """Starts a fresh hub, runs every node's sync at once, returns the measurements: the time
    until every node's batches were acknowledged (durable), until the rollups of all of them
    were stored, and (with fed) until the federal tier acknowledged every snapshot."""
    hub = harness.Hub(os.path.join(work, "run-%d" % rep), pki, 1)
    with open(hub.config) as f:
        text = f.read()
    with open(hub.config, "w") as f:
        f.write(text.replace("sync_listen = 127.0.0.1:%d" % hub.sync_port,
                             "sync_listen = 127.0.0.1:%d" % hub_port))
    if fed is not None:
        hub.configure("[uplink]\nfederal = 127.0.0.1:%d\n" % fed.sync_port)
    hub.sync_port = hub_port
    perf = None
    t_fed = None
    try:
        hub.start()
        pid = hub.proc.pid
        m0 = hub.metrics()
        if args.perf and rep == 0:
            perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "499",
                                     "-p", str(pid), "-o",
                                     os.path.join(work, "perf.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        cpu0 = proc_cpu(pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        procs = []
        for n in nodes:
            with open(os.path.join(work, "sync-%d-%d.log" % (rep, n["code"])), "wb") as log:
                procs.append(subprocess.Popen(
                    [NODE_BIN, "--config", n["config"], "sync", "--timeout", "150"],
                    stdout=subprocess.DEVNULL, stderr=log))
        failed = []
        for n, p in zip(nodes, procs):
            try:
                rc = p.wait(timeout=170)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            if rc != 0:
                failed.append((n["code"], rc))
        t_ack = time.monotonic()
        cpu_ack = proc_cpu(pid) - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if failed:
            sys.exit("sync failed for %s (municipality, exit status); logs in %s"
                     % (failed, work))
        # The timer of the headline figure stops here, when the rollups of everything the
        # hub acknowledged are stored, not at the last acknowledgement.
        t_roll, m_roll = wait_metrics(hub, rollups_stored, args.rollup_timeout)
        cpu_roll = proc_cpu(pid) - cpu0
        if fed is not None and t_roll is not None:
            # Separately: until the federal tier has acknowledged (committed) every snapshot.
            t_fed, _ = wait_metrics(
                hub, lambda m: m.get("hub_uplink_backlog", 1) == 0 and rollups_stored(m),
                args.rollup_timeout)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            perf = None
        hwm = proc_hwm_kib(pid)
        m1 = hub.metrics()
        hub.stop()
    finally:
        if perf:
            perf.kill()
            perf.wait()
        if hub.alive():
            hub.stop()
    c = sqlite3.connect("file:%s?mode=ro" % hub.db, uri=True)
    held, body_bytes = c.execute("SELECT count(*), sum(length(body)) FROM records").fetchone()
    snaps, dirty = c.execute("SELECT count(*), coalesce(sum(dirty), 0) FROM rollup_snapshots"
                             ).fetchone()
    # What the engine decoded (its shadow rows: one per record it noted, of each kind) and the
    # municipalities it has snapshots of: a record the noting skipped would leave them short
    # while nothing stays dirty or queued.
    shadow = [c.execute("SELECT count(*) FROM rollup_%s" % t).fetchone()[0]
              for t in ("person", "service", "enterprise")]
    snap_muns = c.execute("SELECT count(DISTINCT municipality) FROM rollup_snapshots"
                          ).fetchone()[0]
    c.close()
    stored = int(m1["hub_records_stored_total"] - m0["hub_records_stored_total"])
    commits = int(m1["hub_commits_total"] - m0["hub_commits_total"])
    out = {"ack_s": t_ack - t0, "rate_ack": args.records / (t_ack - t0),
           "roll_s": (t_roll - t0) if t_roll else None,
           "rate": args.records / (t_roll - t0) if t_roll else 0.0,
           "fed_s": (t_fed - t0) if t_fed else None,
           "cpu_ack": cpu_ack, "cpu": cpu_roll,
           "hwm_kib": hwm, "bytes": body_bytes, "schema": schema_of(hub.db),
           "cpu_nodes": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
           "commits": commits, "stored": stored, "held": held,
           "rows_per_commit": stored / max(commits, 1), "snapshots": snaps,
           "dirty_left": dirty, "rollups_done": t_roll is not None,
           "shadow": shadow, "snapshot_municipalities": snap_muns,
           "batches": int(m1["hub_batches_total"] - m0["hub_batches_total"]),
           # The store's log copied back by its checkpoint thread, and by the loop's own
           # commits (only when the thread cannot keep the log under 4 x its threshold).
           "checkpoints": int(m1.get("hub_store_checkpoints_total", 0)
                              - m0.get("hub_store_checkpoints_total", 0)),
           "checkpoints_inline": int(m1.get("hub_store_checkpoints_inline_total", 0)
                                     - m0.get("hub_store_checkpoints_inline_total", 0))}
    if not args.keep:
        shutil.rmtree(hub.dir, ignore_errors=True)
    return out


def baseline(work, exe, txn, args, nodes):
    """bench/sqlite_upsert on the node stores' outbox bytes, txn rows per commit."""
    db = os.path.join(work, "baseline-%d.db" % txn)
    r = subprocess.run([exe, db, str(txn), str(args.batch)] + [n["db"] for n in nodes],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("sqlite_upsert failed:\n" + r.stderr)
    kv = dict(x.split("=", 1) for x in r.stdout.split())
    kv["schema"] = schema_of(db)
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    kv["held"] = c.execute("SELECT count(*) FROM records").fetchone()[0]
    c.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    return kv


def start_federal(work, pki, rep):
    """A federal tier on a fresh database (one per run, so that every run starts equal)."""
    from fedclient import Federal  # noqa: E402
    import pg as pgmod  # noqa: E402
    if not hasattr(start_federal, "pg"):
        start_federal.pg = pgmod.Postgres()
    else:
        start_federal.pg.start()  # stopped after the previous hub run (stop_federal)
    pg = start_federal.pg
    pg.psql("DROP DATABASE IF EXISTS reintegration", db="postgres")
    pg.psql("CREATE DATABASE reintegration", db="postgres")
    return Federal(os.path.join(work, "fed-%d" % rep), pki, pg).start()


def stop_federal(fed):
    """Stops federal-api and its PostgreSQL (its autovacuum and checkpoints after a run's
    ingest must not run beside the baseline)."""
    fed.stop()
    start_federal.pg.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=8, help="municipal nodes syncing at once")
    ap.add_argument("--records", type=int, default=400000,
                    help="total records (persons, services, enterprises)")
    ap.add_argument("--window", type=int, default=8, help="[sync] window of every node")
    ap.add_argument("--batch", type=int, default=2000, help="[sync] batch_records of every node")
    ap.add_argument("--workdir", default=None,
                    help="parent of the run's temp dir (default /var/tmp: a real disk)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="pairs of (hub run, baseline run), in alternating order")
    ap.add_argument("--federal", action="store_true",
                    help="also run a federal tier (PostgreSQL) and time until it acknowledged "
                         "every snapshot")
    ap.add_argument("--rollup-timeout", type=float, default=600,
                    help="bound on the wait for the rollups (and the federal tier)")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -g the hub during the sync phase; print the top symbols")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    codes = province_codes(1)
    if not 1 <= args.nodes <= len(codes):
        ap.error("--nodes must be 1..%d (province 1 municipalities)" % len(codes))
    if args.records < args.nodes:
        ap.error("--records must be at least --nodes")
    for exe in (NODE_BIN, HUB_BIN):
        if not os.access(exe, os.X_OK):
            sys.exit("%s is missing: run make first" % exe)
    res = benchlib.Result("hub_ingest", "bench/hub_ingest.py", params=vars(args))
    work = tempfile.mkdtemp(prefix="hub-ingest-", dir=args.workdir or "/var/tmp")
    fed = None
    try:
        # 1. Preparation: nothing here is timed.
        t_prep = time.time()
        # make bench-build: the baseline links the hub's checkpoint thread (libcommon).
        baseline_bin = os.path.join(ROOT, "build", "bench", "sqlite_upsert")
        if not os.access(baseline_bin, os.X_OK):
            sys.exit("%s is missing: run make bench-build" % baseline_bin)
        base_sql = subprocess.run([baseline_bin, "--print-sql"], capture_output=True,
                                  text=True, check=True).stdout.splitlines()[1]
        res.check("baseline statement is the hub's upsert (hubstore__upsert_sql)",
                  hub_upsert_sql() == base_sql, base_sql)

        pki = harness.Pki(os.path.join(work, "pki"))
        idents = ["province", "1"] + sum((["municipality", str(c)] for c in codes[:args.nodes]),
                                         [])
        if args.federal:
            idents = ["federal"] + idents
        pki.issue(*idents)
        hub_port = harness.free_port()
        per = [args.records // args.nodes + (1 if i < args.records % args.nodes else 0)
               for i in range(args.nodes)]
        with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count()) as ex:
            futs = [ex.submit(prepare_node, work, pki.dir, codes[i], per[i], 1000 + i,
                              hub_port, args.window, args.batch) for i in range(args.nodes)]
            nodes = [f.result() for f in futs]
        held = [0, 0, 0]
        for n, want in zip(nodes, per):
            c = sqlite3.connect("file:%s?mode=ro" % n["db"], uri=True)
            by_kind = dict(c.execute("SELECT kind, count(*) FROM records GROUP BY kind"))
            c.close()
            got = sum(by_kind.values())
            if got != want:
                sys.exit("node %d holds %d outbox entries, expected %d (%s)"
                         % (n["code"], got, want, n["import"]))
            # RECORD_KIND_PERSON, _SERVICE, _ENTERPRISE (proto/reintegration.proto)
            held = [h + by_kind.get(k, 0) for h, k in zip(held, (1, 2, 3))]
        kinds = [sum(n["kinds"][k] for n in nodes) for k in range(3)]
        res.data["extra"]["records"] = dict(zip(("persons", "services", "enterprises"), kinds))
        res.check("the nodes hold persons, services and enterprises in the demo's proportions",
                  held == kinds and (all(kinds) or args.records < 20),
                  "held %s, planned %s" % (held, kinds))
        print("prepared %d nodes, %d records (persons, services, enterprises: %s) in %.1f s "
              "(import %.1f s summed)"
              % (args.nodes, args.records, kinds, time.time() - t_prep,
                 sum(n["import_s"] for n in nodes)), file=sys.stderr)

        # Every repetition starts from the same node stores: a copy taken now.
        for n in nodes:
            shutil.copytree(os.path.dirname(n["db"]), os.path.dirname(n["db"]) + ".orig")
        runs, base = [], []
        order = benchlib.alternating(args.repeat)
        res.data["order"] = order
        fed_runs = []

        def hub_run(with_federal):
            """One hub run from the node stores' copies, with a federal tier or not."""
            nonlocal fed
            for n in nodes:
                d = os.path.dirname(n["db"])
                shutil.rmtree(d)
                shutil.copytree(d + ".orig", d)
            k = len(runs) + len(fed_runs)
            if with_federal:
                fed = start_federal(work, pki, k)
            r = sync_phase(work, k, pki, hub_port, nodes, args, fed)
            if fed:
                snaps_fed = int(fed.pg.psql("SELECT count(*) FROM snapshots")[0][0])
                res.check("federal run %d: the federal tier holds every snapshot of the hub"
                          % (len(fed_runs) + 1), snaps_fed == r["snapshots"] and r["fed_s"],
                          "federal %d, hub %d" % (snaps_fed, r["snapshots"]))
                stop_federal(fed)
                fed = None
            (fed_runs if with_federal else runs).append(r)

        for step in order:
            if step == "A":
                # With --federal, the run with the federal tier goes first every other time.
                first = args.federal and len(runs) % 2 == 1
                if first:
                    hub_run(True)
                hub_run(False)
                if args.federal and not first:
                    hub_run(True)
            else:
                # The baseline commits as many rows per transaction as the hub did: the
                # hub's own average, measured in the hub runs so far (the first step of
                # the order is always a hub run).
                txn = max(1, round(statistics.median(x["rows_per_commit"] for x in runs)))
                b = baseline(work, baseline_bin, txn, args, nodes)
                b["txn"] = txn
                base.append(b)
            print("%s: %s" % (step, ("hub %.0f records/s acked, %.0f with rollups stored; "
                                     "checkpoints %d on the store's thread, %d in commits"
                                     % (runs[-1]["rate_ack"], runs[-1]["rate"],
                                        runs[-1]["checkpoints"],
                                        runs[-1]["checkpoints_inline"]))
                              if step == "A" else ("raw %s rows/s at %d rows/commit; "
                                                   "checkpoints %s on the thread, %s in commits"
                                                   % (base[-1]["rows_per_s"], base[-1]["txn"],
                                                      base[-1]["ckpt_runs"],
                                                      base[-1]["ckpt_inline"]))),
                  file=sys.stderr)

        # Work-done checks: every run stored everything, rollups included.
        for kind, rs in (("hub", runs), ("federal", fed_runs)):
            for i, r in enumerate(rs):
                res.check("%s run %d stored every record" % (kind, i + 1),
                          r["held"] == args.records and r["stored"] == args.records,
                          "held %d, metrics %d, expected %d" % (r["held"], r["stored"],
                                                                args.records))
                res.check("%s run %d stored the rollups of every record" % (kind, i + 1),
                          r["rollups_done"] and r["dirty_left"] == 0 and r["snapshots"] > 0,
                          "%d snapshots, %d dirty" % (r["snapshots"], r["dirty_left"]))
                res.check("%s run %d: the engine decoded every record, and has snapshots of "
                          "every municipality" % (kind, i + 1),
                          r["shadow"] == kinds and r["snapshot_municipalities"] == args.nodes,
                          "persons, services, enterprises decoded %s, planned %s; snapshots "
                          "of %d municipalities of %d" % (r["shadow"], kinds,
                                                          r["snapshot_municipalities"],
                                                          args.nodes))
        res.check("as many runs with the federal tier as without",
                  len(fed_runs) == (len(runs) if args.federal else 0),
                  "%d and %d" % (len(fed_runs), len(runs)))
        for i, b in enumerate(base):
            res.check("baseline run %d upserted every record, the same bytes" % (i + 1),
                      int(b["rows"]) == args.records and b["held"] == args.records
                      and int(b["bytes"]) == runs[0]["bytes"],
                      "%s rows, %s bytes; hub %d bytes" % (b["rows"], b["bytes"],
                                                           runs[0]["bytes"]))
            res.check("baseline run %d has the hub's schema" % (i + 1),
                      b["schema"] == runs[0]["schema"], b["schema"])

        # Checkpoints of each run (on the store's thread, in commits): the hub's and the
        # baseline's, which run the same thread at the same threshold.
        res.data["extra"]["checkpoints"] = {
            "hub": [[r["checkpoints"], r["checkpoints_inline"]] for r in runs],
            "baseline": [[int(b["ckpt_runs"]), int(b["ckpt_inline"])] for b in base]}
        res.figure("hub_rate", "hub durable ingest with rollups stored (%d nodes, %s records: "
                   "persons, services, enterprises in the demo's proportions)"
                   % (args.nodes, f"{args.records:,}"), "records/s", goal=">= 0.8 x raw SQLite",
                   goal_value=0.8, goal_on="ratio", baseline="raw_rate", headline=True)
        res.samples("hub_rate", [r["rate"] for r in runs])
        res.figure("raw_rate", "raw SQLite upsert at the hub's commit size", "rows/s")
        res.samples("raw_rate", [float(b["rows_per_s"]) for b in base])
        res.figure("hub_rate_ack", "hub ingest to the last acknowledgement (rollups not "
                   "waited for)", "records/s", baseline="raw_rate")
        res.samples("hub_rate_ack", [r["rate_ack"] for r in runs])
        if args.federal:
            res.figure("hub_fed_s", "until the federal tier acknowledged every snapshot (runs "
                       "with the federal tier)", "s", better="lower")
            res.samples("hub_fed_s", [r["fed_s"] or 0.0 for r in fed_runs])
            res.figure("hub_rate_fed", "hub ingest with rollups stored while the federal "
                       "tier receives its snapshots on the same cores", "records/s",
                       baseline="raw_rate")
            res.samples("hub_rate_fed", [r["rate"] for r in fed_runs])
        res.figure("rows_per_commit", "hub rows per commit (measured: stored / commits)",
                   "rows")
        res.samples("rows_per_commit", [r["rows_per_commit"] for r in runs])
        res.figure("baseline_txn", "baseline rows per commit", "rows")
        res.samples("baseline_txn", [b["txn"] for b in base])
        res.figure("hub_cpu_s", "hub CPU to rollups stored", "s", better="lower")
        res.samples("hub_cpu_s", [r["cpu"] for r in runs])
        res.figure("raw_cpu_s", "baseline CPU", "s", better="lower")
        res.samples("raw_cpu_s", [float(b["cpu_seconds"]) for b in base])
        res.figure("hub_hwm_mib", "hub peak RSS (VmHWM)", "MiB", better="lower")
        res.samples("hub_hwm_mib", [r["hwm_kib"] / 1024 for r in runs])
        res.figure("nodes_cpu_s", "all node sync processes, CPU", "s", better="lower")
        res.samples("nodes_cpu_s", [r["cpu_nodes"] for r in runs])
        if args.perf:
            res.data["extra"]["perf_top"] = perf_top(os.path.join(work, "perf.data"), 25)
        res.write()
        return res.exit_status()
    finally:
        if fed:
            fed.stop()
        if getattr(start_federal, "pg", None):
            start_federal.pg.destroy()
        if args.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
