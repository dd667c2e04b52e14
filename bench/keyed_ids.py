#!/usr/bin/python3
"""Keyed record ids, before and after, in one run: node import and hub durable ingest of the
same rows by the binaries of protocol 1 (time-ordered UUIDv7 ids, hub records keyed by id) and
by this tree's (HMAC-keyed ids, hub records keyed by (municipality, id)).

The foundation issue asks that neither lose more than 10 %. For each build, alternating which
goes first, --repeat times (median, min and max reported):
  1. node import: `municipal-node init` a fresh node, then time `import --kind persons` of the
     same CSV (bench/import_bench.py's generator), wall and CPU seconds of the child;
  2. hub ingest: a fresh hub; --nodes nodes, each with its own share of the rows imported
     beforehand, run `municipal-node sync` at once; the time until every sync has exited (all
     acknowledged: durable at the hub), and separately until the hub's rollups are stored
     (rollup queue and dirty snapshots at 0).
The "before" binaries are built from commit BEFORE (default fb5117e, the last of protocol 1)
into build/bench/before unless --before-bin names them. Every run checks that the hub holds
every row. Results go to build/bench/keyed_ids.json; --write appends the table made from that
JSON to docs/BENCHMARKS.md. Timings are reported, never asserted."""
import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

import import_bench  # noqa: E402

PKI = os.path.join(ROOT, "deploy", "pki.sh")
CODES = [10703, 10401, 10101, 10102, 10103, 10104, 10105, 10106]


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                    r.stderr))
    return r


def build_before(commit, out):
    if os.path.exists(os.path.join(out, "bin", "municipal-node")):
        return os.path.join(out, "bin")
    tree = tempfile.mkdtemp(prefix="reint-before-")
    sh(["git", "-C", ROOT, "worktree", "add", "--detach", tree, commit])
    try:
        sh(["make", "-C", tree, "-j2", "all"])
        os.makedirs(out, exist_ok=True)
        shutil.copytree(os.path.join(tree, "build", "bin"), os.path.join(out, "bin"),
                        dirs_exist_ok=True)
    finally:
        sh(["git", "-C", ROOT, "worktree", "remove", "--force", tree])
    return os.path.join(out, "bin")


def child_times(args):
    """Runs args; returns (wall s, CPU s of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    sh(args)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.split()
                out[k] = float(v)
        return out


def init_node(bin_dir, work, pki, code, hub_port):
    d = os.path.join(work, "node-%d" % code)
    sh([os.path.join(bin_dir, "municipal-node"), "init", "--municipality", str(code), "--dir", d,
        "--hub", "127.0.0.1:%d" % hub_port, "--pki", pki, "--http-listen",
        "127.0.0.1:%d" % free_port()])
    return os.path.join(d, "node.ini")


def one_run(bin_dir, work, pki, csvs, rows, nodes):
    """Import (timed for the first node's CSV) and hub ingest of every node's CSV."""
    node_bin = os.path.join(bin_dir, "municipal-node")
    hub_dir = os.path.join(work, "hub")
    os.makedirs(hub_dir)
    sync_port, http_port = free_port(), free_port()
    cfg = os.path.join(hub_dir, "hub.ini")
    with open(cfg, "w") as f:
        f.write("[hub]\nprovince = 1\ndata_dir = %s\nsync_listen = 127.0.0.1:%d\n"
                "http_listen = 127.0.0.1:%d\nhttps_listen =\n[tls]\nca = %s/ca.crt\n"
                "cert = %s/province-1.crt\nkey = %s/province-1.key\ncrl =\n"
                % (os.path.join(hub_dir, "data"), sync_port, http_port, pki, pki, pki))
    configs = [init_node(bin_dir, work, pki, code, sync_port) for code in CODES[:nodes]]
    imp_wall, imp_cpu = child_times([node_bin, "--config", configs[0], "import", "--kind",
                                     "persons", csvs[0]])
    for c, path in zip(configs[1:], csvs[1:]):
        sh([node_bin, "--config", c, "import", "--kind", "persons", path])
    hub = subprocess.Popen([os.path.join(bin_dir, "provincial-hub"), "--config", cfg],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert hub.stdout.readline().decode().startswith("ready")
        t0 = time.perf_counter()
        syncs = [subprocess.Popen([node_bin, "--config", c, "sync", "--timeout", "600"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for c in configs]
        for s in syncs:
            if s.wait() != 0:
                raise SystemExit("a sync failed")
        acked = time.perf_counter() - t0
        while True:
            m = metrics(http_port)
            if m.get("hub_rollup_dirty", 1) == 0 and m.get("hub_rollup_queue", 0) == 0 and \
                    m["hub_records_stored_total"] >= rows * nodes:
                break
            if time.perf_counter() - t0 > 900:
                raise SystemExit("the hub's rollups did not finish")
            time.sleep(0.05)
        rolled = time.perf_counter() - t0
        stored = m["hub_records_stored_total"]
    finally:
        hub.terminate()
        hub.wait()
    if stored != rows * nodes:
        raise SystemExit("the hub stored %d records, not %d" % (stored, rows * nodes))
    return {"import_wall_s": imp_wall, "import_cpu_s": imp_cpu, "hub_acked_s": acked,
            "hub_rolled_s": rolled}


def summary(xs):
    xs = sorted(xs)
    return {"median": xs[len(xs) // 2], "min": xs[0], "max": xs[-1], "runs": xs}


def table(res):
    rows = res["rows"] * res["nodes"]
    lines = ["| figure | before (%s) | after (%s) | after / before (rate) |" %
             (res["before_commit"], res["after_commit"]),
             "|---|---|---|---|"]
    for key, what, n in (("import_wall_s", "node import of %d rows, rows/s" % res["rows"],
                          res["rows"]),
                         ("hub_acked_s", "hub ingest of %d records from %d nodes, all acknowledged,"
                          " records/s" % (rows, res["nodes"]), rows),
                         ("hub_rolled_s", "the same, rollups stored, records/s", rows)):
        b, a = res["before"][key], res["after"][key]
        lines.append("| %s | %.0f (%.0f..%.0f) | %.0f (%.0f..%.0f) | %.2f |" % (
            what, n / b["median"], n / b["max"], n / b["min"], n / a["median"], n / a["max"],
            n / a["min"], b["median"] / a["median"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # A province's resync: 8 municipalities of 25,000 records each, five times the national
    # average (4 million records over 753 municipalities); --rows 200000 --nodes 4 is the
    # stress case of very large municipalities (random index inserts grow with them).
    ap.add_argument("--rows", type=int, default=25000, help="rows per node")
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", default="fb5117e")
    ap.add_argument("--before-bin", help="binaries of the before build (default: built)")
    ap.add_argument("--write", action="store_true", help="append to docs/BENCHMARKS.md")
    args = ap.parse_args()
    out = os.path.join(ROOT, "build", "bench")
    os.makedirs(out, exist_ok=True)
    before_bin = args.before_bin or build_before(args.before, os.path.join(out, "before"))
    after_bin = os.path.join(ROOT, "build", "bin")
    work = tempfile.mkdtemp(prefix="reint-keyed-", dir="/var/tmp")
    pki = os.path.join(work, "pki")
    sh([PKI, "init", pki])
    sh([PKI, "issue", pki, "province", "1"] +
       sum((["municipality", str(c)] for c in CODES[:args.nodes]), []))
    csvs = []
    for i in range(args.nodes):
        p = os.path.join(work, "p%d.csv" % i)
        import_bench.write_csv(p, args.rows, 100 + i)
        csvs.append(p)
    runs = {"before": [], "after": []}
    load = os.getloadavg()[0]
    for rep in range(args.repeat):
        order = ("before", "after") if rep % 2 == 0 else ("after", "before")
        for which in order:
            d = os.path.join(work, "%s-%d" % (which, rep))
            os.makedirs(d)
            r = one_run(before_bin if which == "before" else after_bin, d, pki, csvs,
                        args.rows, args.nodes)
            runs[which].append(r)
            print("%s run %d: %s" % (which, rep, json.dumps(r)), flush=True)
            shutil.rmtree(d)
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
    res = {"command": " ".join(["bench/keyed_ids.py"] + sys.argv[1:]),
           "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "load_at_start": load, "rows": args.rows, "nodes": args.nodes,
           "before_commit": args.before, "after_commit": commit,
           "before": {k: summary([r[k] for r in runs["before"]]) for k in runs["before"][0]},
           "after": {k: summary([r[k] for r in runs["after"]]) for k in runs["after"][0]}}
    with open(os.path.join(out, "keyed_ids.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = ("\n## Keyed record ids, before and after (%s)\n\nCommand: `/usr/bin/python3 %s`"
            " (median of %d runs, min..max; load average %.2f at the start%s; the builds "
            "alternate which goes first). Generated from build/bench/keyed_ids.json.\n\n%s\n"
            % (res["date"], res["command"], args.repeat, load,
               ", ABOVE 1" if load > 1 else "", table(res)))
    print(text)
    if args.write:
        with open(os.path.join(ROOT, "docs", "BENCHMARKS.md"), "a") as f:
            f.write(text)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
