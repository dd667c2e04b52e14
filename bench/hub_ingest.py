#!/usr/bin/python3
"""Hub durable ingest benchmark (issue 2, item 7), with its raw SQLite baseline in the same run.

1. Prepares, before the hub starts: a PKI, N municipal-node stores of province 1, each loaded
   through the real CSV import path (tests/system/gen.py rows, `municipal-node import`).
2. Starts a provincial hub on free loopback ports (store on the same disk as the baseline's),
   starts all N `municipal-node sync` at once and times until every one has exited 0; checks
   that the hub holds exactly the total; records/s = total / elapsed. Hub CPU seconds come
   from /proc/<pid>/stat, its peak RSS from VmHWM.
3. Runs bench/sqlite_upsert.c (compiled here with cc -O2) on the same outbox bytes with the
   hub's schema, index, pragmas and upsert statement, at 2,000 and 10,000 rows per commit.

Prints a Markdown table and appends it, with the date and the command, to docs/BENCHMARKS.md.
Timings are reported, never asserted."""
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
import gen  # noqa: E402
import harness  # noqa: E402

NODE_BIN = os.path.join(harness.BIN, "municipal-node")
HUB_BIN = os.path.join(harness.BIN, "provincial-hub")
TICKS = os.sysconf("SC_CLK_TCK")


def province_codes(province):
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), encoding="utf-8") as f:
        next(f)
        return [int(line.split(",")[4]) for line in f if line.split(",")[0] == str(province)]


def prepare_node(workdir, pki_dir, code, rows, seed, hub_port, window, batch):
    """Runs in a worker process: init a node store, write its CSV, import it."""
    t0 = time.time()
    cl = gen.Caseload(code, seed)
    for _ in range(rows):
        cl.new_person()
    csv_path = os.path.join(workdir, "persons-%d.csv" % code)
    cl.write_csv(csv_path, "persons")
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
    out = node.import_csv("persons", csv_path).stdout.strip()
    os.unlink(csv_path)
    return {"code": code, "db": node.db, "config": node.config, "gen_s": t_gen,
            "import_s": time.time() - t1, "import": out}


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
            "SELECT sql FROM sqlite_master WHERE name IN ('records', 'records_municipality')"
            " ORDER BY name")]
    finally:
        c.close()


def sync_phase(work, rep, pki, hub_port, nodes, args):
    """Starts a fresh hub, runs every node's sync at once, returns the measurements."""
    hub = harness.Hub(os.path.join(work, "run-%d" % rep), pki, 1)
    with open(hub.config) as f:
        text = f.read()
    with open(hub.config, "w") as f:
        f.write(text.replace("sync_listen = 127.0.0.1:%d" % hub.sync_port,
                             "sync_listen = 127.0.0.1:%d" % hub_port))
    hub.sync_port = hub_port
    perf = None
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
        elapsed = time.monotonic() - t0
        cpu_hub = proc_cpu(pid) - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            perf = None
        hwm = proc_hwm_kib(pid)
        m1 = hub.metrics()
        if failed:
            sys.exit("sync failed for %s (municipality, exit status); logs in %s"
                     % (failed, work))
        hub.stop()
    finally:
        if perf:
            perf.kill()
            perf.wait()
        if hub.alive():
            hub.stop()
    c = sqlite3.connect("file:%s?mode=ro" % hub.db, uri=True)
    held, body_bytes = c.execute("SELECT count(*), sum(length(body)) FROM records").fetchone()
    c.close()
    stored = int(m1["hub_records_stored_total"] - m0["hub_records_stored_total"])
    if held != args.records or stored != args.records:
        sys.exit("hub holds %d records (metrics say %d stored); expected %d"
                 % (held, stored, args.records))
    out = {"elapsed": elapsed, "rate": args.records / elapsed, "cpu": cpu_hub,
           "hwm_kib": hwm, "bytes": body_bytes, "schema": schema_of(hub.db),
           "cpu_nodes": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
           "commits": int(m1["hub_commits_total"] - m0["hub_commits_total"]),
           "batches": int(m1["hub_batches_total"] - m0["hub_batches_total"])}
    if not args.keep:
        shutil.rmtree(hub.dir, ignore_errors=True)
    return out


def baseline(work, exe, txn, args, nodes, hub_run):
    """bench/sqlite_upsert on the node stores' outbox bytes; checks it saw what the hub did."""
    db = os.path.join(work, "baseline-%d.db" % txn)
    r = subprocess.run([exe, db, str(txn), str(args.batch)] + [n["db"] for n in nodes],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("sqlite_upsert failed:\n" + r.stderr)
    kv = dict(x.split("=", 1) for x in r.stdout.split())
    if int(kv["rows"]) != args.records or int(kv["bytes"]) != hub_run["bytes"]:
        sys.exit("baseline saw %s rows / %s bytes; the hub stored %d / %d"
                 % (kv["rows"], kv["bytes"], args.records, hub_run["bytes"]))
    if schema_of(db) != hub_run["schema"]:
        print("WARNING: the baseline's schema differs from the hub's:\n%s\n%s"
              % (schema_of(db), hub_run["schema"]), file=sys.stderr)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    return kv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=8, help="municipal nodes syncing at once")
    ap.add_argument("--records", type=int, default=400000, help="total person rows")
    ap.add_argument("--window", type=int, default=8, help="[sync] window of every node")
    ap.add_argument("--batch", type=int, default=2000, help="[sync] batch_records of every node")
    ap.add_argument("--txn", default="2000,10000",
                    help="baseline rows per transaction, comma-separated")
    ap.add_argument("--workdir", default=None,
                    help="parent of the run's temp dir (default /var/tmp: a real disk)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="sync phases (each with a fresh hub) and baselines; medians reported")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -g the hub during the sync phase; print the top symbols")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--no-append", action="store_true", help="do not write docs/BENCHMARKS.md")
    ap.add_argument("--note", default="", help="a line added under the result in the docs")
    args = ap.parse_args()
    codes = province_codes(1)
    if not 1 <= args.nodes <= len(codes):
        ap.error("--nodes must be 1..%d (province 1 municipalities)" % len(codes))
    if args.records < args.nodes:
        ap.error("--records must be at least --nodes")
    txns = [int(x) for x in args.txn.split(",") if x]
    for exe in (NODE_BIN, HUB_BIN):
        if not os.access(exe, os.X_OK):
            sys.exit("%s is missing: run make first" % exe)
    command = " ".join(["/usr/bin/python3", "bench/hub_ingest.py"] +
                       [shlex.quote(a) for a in sys.argv[1:]])

    load0 = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="hub-ingest-", dir=args.workdir or "/var/tmp")
    try:
        # 1. Preparation: nothing here is timed.
        t_prep = time.time()
        cc = subprocess.run(["cc", "-std=c11", "-O2", "-D_POSIX_C_SOURCE=200809L", "-o",
                             os.path.join(work, "sqlite_upsert"),
                             os.path.join(ROOT, "bench", "sqlite_upsert.c"), "-lsqlite3"],
                            capture_output=True, text=True)
        if cc.returncode != 0:
            sys.exit("cc bench/sqlite_upsert.c failed:\n" + cc.stderr)
        baseline_bin = os.path.join(work, "sqlite_upsert")
        base_sql = subprocess.run([baseline_bin, "--print-sql"], capture_output=True,
                                  text=True, check=True).stdout.splitlines()[1]
        hub_sql = hub_upsert_sql()
        if hub_sql != base_sql:
            print("WARNING: bench/sqlite_upsert.c's upsert differs from provincial-hub/hubstore.c's "
                  "hubstore__upsert_sql; update the baseline", file=sys.stderr)

        pki = harness.Pki(os.path.join(work, "pki"))
        pki.issue("province", "1", *sum((["municipality", str(c)] for c in codes[:args.nodes]), []))
        hub_port = harness.free_port()
        per = [args.records // args.nodes + (1 if i < args.records % args.nodes else 0)
               for i in range(args.nodes)]
        with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count()) as ex:
            futs = [ex.submit(prepare_node, work, pki.dir, codes[i], per[i], 1000 + i,
                              hub_port, args.window, args.batch) for i in range(args.nodes)]
            nodes = [f.result() for f in futs]
        for n, want in zip(nodes, per):
            c = sqlite3.connect("file:%s?mode=ro" % n["db"], uri=True)
            got = c.execute("SELECT count(*) FROM records").fetchone()[0]
            c.close()
            if got != want:
                sys.exit("node %d holds %d outbox entries, expected %d (%s)"
                         % (n["code"], got, want, n["import"]))
        print("prepared %d nodes, %d records in %.1f s (import %.1f s summed)"
              % (args.nodes, args.records, time.time() - t_prep,
                 sum(n["import_s"] for n in nodes)), file=sys.stderr)

        # Every repetition starts from the same node stores: a copy taken now.
        for n in nodes:
            shutil.copytree(os.path.dirname(n["db"]), os.path.dirname(n["db"]) + ".orig")
        runs, base = [], {t: [] for t in txns}
        for rep in range(args.repeat):
            for n in nodes:
                d = os.path.dirname(n["db"])
                shutil.rmtree(d)
                shutil.copytree(d + ".orig", d)
            runs.append(sync_phase(work, rep, pki, hub_port, nodes, args))
            for t in txns:
                base[t].append(baseline(work, baseline_bin, t, args, nodes, runs[-1]))
            print("run %d: hub %.0f records/s, raw %s rows/s" % (
                rep + 1, runs[-1]["rate"],
                ", ".join("%s" % base[t][-1]["rows_per_s"] for t in txns)), file=sys.stderr)

        # Report: medians over the repetitions, every run's figure beside them.
        mach = machine()
        med = statistics.median
        hub_rate = med(r["rate"] for r in runs)
        rates = {t: [float(b["rows_per_s"]) for b in base[t]] for t in txns}
        ref = med(rates[txns[0]])
        each = lambda xs: ", ".join(f"{x:,.0f}" for x in xs)  # noqa: E731
        rows = [
            ("hub durable ingest, %d node(s), window %d, batch %s"
             % (args.nodes, args.window, f"{args.batch:,}"),
             "**%s records/s** (%s records; runs: %s)"
             % (f"{hub_rate:,.0f}", f"{args.records:,}", each(r["rate"] for r in runs))),
        ]
        for t in txns:
            rows.append(("raw SQLite upsert, %s rows/commit" % f"{t:,}",
                         "**%s rows/s** (runs: %s; CPU %.2f s)"
                         % (f"{med(rates[t]):,.0f}", each(rates[t]),
                            med(float(b["cpu_seconds"]) for b in base[t]))))
        cpu = med(r["cpu"] for r in runs)
        elapsed = med(r["elapsed"] for r in runs)
        rows += [
            ("ratio hub / raw", ", ".join("**%.2f** against %s rows/commit"
                                          % (hub_rate / med(rates[t]), f"{t:,}") for t in txns)),
            ("hub CPU during sync", "%.2f s in %.2f s (%.0f%% of one core)"
             % (cpu, elapsed, 100 * cpu / elapsed)),
            ("hub peak RSS (VmHWM)", "%.1f MiB" % (max(r["hwm_kib"] for r in runs) / 1024)),
            ("all node sync processes, CPU", "%.2f s" % med(r["cpu_nodes"] for r in runs)),
            ("hub group commits", "%d for %d batches, %s rows per commit on average"
             % (runs[0]["commits"], runs[0]["batches"],
                f"{args.records / max(runs[0]['commits'], 1):,.0f}")),
            ("goal: >= 100,000 records/s; >= 0.5 x raw",
             "%s; %s" % ("met" if hub_rate >= 100000 else "NOT met",
                         "met" if hub_rate >= 0.5 * ref else "NOT met")),
            ("machine", "%d cores, %s, Linux %s, SQLite %s; load average %.2f at the start"
             % (mach["nproc"], mach["cpu"], mach["kernel"], mach["sqlite"], load0)),
        ]
        table = "| measure | result |\n| --- | --- |\n" + "".join(
            "| %s | %s |\n" % r for r in rows)
        print(table)
        if args.perf:
            top = perf_top(os.path.join(work, "perf.data"), 25)
            print("perf, hub during sync (self time, dso/symbol):")
            print("\n".join(top))
        if not args.no_append:
            doc = os.path.join(ROOT, "docs", "BENCHMARKS.md")
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            with open(doc, "a", encoding="utf-8") as f:
                f.write("\n### %s: %d node%s, window %d, batch %d, %s records, median of %d\n\n"
                        % (stamp, args.nodes, "s" if args.nodes > 1 else "", args.window,
                           args.batch, f"{args.records:,}", args.repeat))
                f.write("```\n%s\n```\n\n%s" % (command, table))
                if args.note:
                    f.write("\n%s\n" % args.note)
            print("appended to docs/BENCHMARKS.md", file=sys.stderr)
    finally:
        if args.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
