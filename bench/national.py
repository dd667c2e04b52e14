#!/usr/bin/python3
"""National simulation (issues 7 and 17): 753 municipalities -> 7 provincial hubs -> federal API
on PostgreSQL, all on this machine over loopback, every link mutual TLS 1.3.

What runs (all real binaries from build/bin, nothing mocked):
  - a private PostgreSQL (tests/system/pg.py) and the real federal-api on it;
  - the 7 real provincial hubs, each with [uplink] federal = the federal API;
  - --real-nodes real `municipal-node serve` processes (default 3, a small, a median and a
    large municipality of the simulated size distribution), fed through the real import path
    (persons, services and enterprises CSV, drawn by tests/system/gen.py);
  - every other municipality simulated by bench/nodesim.py (one asyncio process, one session
    and one certificate per municipality, protocol version 2 as common/sync.c speaks it), with
    every record kind in the demo generator's proportions (bench/mix.py).
The generators hold the ground truth (mix.Truth): per Gregorian year of the span, national
participants_registered (total and by sex), services_delivered, referrals_pending,
enterprises_supported, services_unavailable and the numerator of reporting_completeness;
and the records held (federal /v1/coverage, which the hubs report). A phase's timer stops when
every one of those national figures equals the truth and every hub's rollups and uplink are
drained: the federal answer then holds every record's effect. The records held (which the hubs
report on a slower cadence) are then checked against the truth, after the timer, and after
each resync every municipality's participants_registered of every year (by=municipality). A
wait that never gets there fails the bench (exit 1).

Figures (build/bench/national.json through bench/benchlib.py; each one sample per run, --repeat
runs):
  resync_s       every store wiped (hub data dirs deleted, federal database recreated), the
                 tiers restarted empty, every municipality resends everything: time from the
                 hubs' start until the federal answer holds every record (goal < 60 s for
                 4,000,000 records over 753 municipalities);
  floor_s        the physical floor of that resync: CPU seconds of every tier (hubs,
                 federal-api, PostgreSQL, real nodes; /proc/<pid>/stat) / the machine's cores;
                 per-record CPU per tier in extra;
  fresh_p99_s    one person imported at a real node (the import's exit is the clerk's commit)
                 -> the federal answer for its municipality, year and sex moved; p99 over
                 --samples samples from the small, median and large real nodes in turn, under
                 the simulator's mixed background (--bg-rate records/s); goal < 1 s, judged
                 at 4,000,000 records only;
  query_p99_ms   national queries (5 indicators, random month of the 120) over keep-alive
                 HTTPS while the freshness background ingests; goal < 5 ms;
  breakdown_ingest_ms  every local level month by month over the last full year in one answer
                 (issue 16's breakdown), 5 requests a run on one connection under the same
                 background; goal < 1,000 ms;
  idle_kib       hub memory per idle node connection: every simulated session closed, the
                 hubs restarted, then every session reconnects and carries a full batch
                 (--batch records, its last ones again) and stays idle until the hubs are
                 drained; then every simulated session closes (the real nodes stay): the heap
                 the hubs give back (mallinfo2, /metrics process_heap_in_use_bytes; less any
                 change of SQLite's own memory; mmapped chunks included) / sessions: what the
                 sessions held; goal < 16 KiB, judged when the batch is the node's full one
                 (--batch 2000, which needs 2,000 records a municipality). Beside it
                 idle_rss_kib, the hubs' RSS growth from the restart less SQLite's growth / sessions (an upper bound: it also holds the hubs' work on
                 the replayed batches and the allocator's fragmentation), and sock_kib, the
                 kernel's TCP socket memory (/proc/net/sockstat, whole machine) the sessions
                 released when they closed, per session."""
import argparse
import datetime
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
import benchlib  # noqa: E402
import mix  # noqa: E402
import harness  # noqa: E402
from fedclient import Federal  # noqa: E402
import bs  # noqa: E402
import pg as pgmod  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SEXES = ["FEMALE", "MALE", "OTHER"]
FULL_RECORDS = 4000000
FULL_MUNICIPALITIES = 753
NODE_BATCH = 2000  # the municipal node's records per batch (municipal-node's [sync] batch)
# (truth prefix, indicator): the yearly national figures checked (besides participants by sex).
TOTALS = [("del", "services_delivered"), ("pend", "referrals_pending"),
          ("ent", "enterprises_supported"), ("unav", "services_unavailable"),
          ("close", "reporting_completeness")]
QUERIES = ["/v1/indicators/participants_registered?period={m}&by=sex",
           "/v1/indicators/participants_registered?period={m}&by=category,sex",
           "/v1/indicators/services_delivered?period={m}&by=service_type",
           "/v1/indicators/enterprises_supported?period={m}&by=sector",
           "/v1/indicators/referrals_pending?period={m}&by=service_type"]
T0 = time.monotonic()


def log(msg):
    sys.stderr.write("[%7.1f] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class Failed(Exception):
    """A work-done check failed: the run stops and the bench exits 1."""


# /proc ----------------------------------------------------------------------------------

def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu(pid, children=False):
    f = stat_fields(pid)
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])  # reaped children (PostgreSQL backends that exited)
    return t / TICKS


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tcp_mem_kib():
    """The kernel's TCP socket buffer memory, whole machine (/proc/net/sockstat, pages)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * PAGE / 1024
    return 0.0


def pg_cpu(pg):
    """CPU seconds of the postmaster, its live children and its reaped children."""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        pm = int(f.readline())
    total = proc_cpu(pm, children=True)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = stat_fields(int(d))
                if int(f[1]) == pm:
                    total += (int(f[11]) + int(f[12])) / TICKS
            except (OSError, IndexError):
                pass
    return total


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def hist_quantile(m0, m1, name, q):
    """The upper bound (ms) of the bucket holding quantile q (0..1) of the observations of
    Prometheus histogram `name` made between the scrapes m0 and m1 (None when there were
    none; the string ">1000" when it lies above the last finite bucket, 1 s)."""
    pre = name + '_bucket{le="'
    bounds = sorted((float(k[len(pre):-2]), m1[k] - m0.get(k, 0)) for k in m1
                    if k.startswith(pre))
    total = bounds[-1][1] if bounds else 0
    if total <= 0:
        return None
    for le, below in bounds:
        if below >= q * total:
            return le * 1000 if le != float("inf") else ">1000"
    return ">1000"


# National queries while ingest runs (a separate process, so that the driver's polling does
# not share its interpreter) -----------------------------------------------------------------

def query_client(port, cafile, token, months, seconds, seed, paths=None):
    """(latencies, errors) of one keep-alive HTTPS client asking paths (QUERIES) in a loop for
    seconds."""
    paths = paths or QUERIES
    rng = random.Random(seed)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    lat, errors = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        path = rng.choice(paths).format(m=rng.choice(months))
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            errors += 1
    conn.close()
    return lat, errors


# The chain ------------------------------------------------------------------------------

def geography(limit):
    """(code, province) of every local level, or of `limit` of them spread over the 7
    provinces (the smoke test's tiny size)."""
    out = []
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            c = line.split(",")
            out.append((int(c[4]), int(c[0])))
    if limit and limit < len(out):
        by = {}
        for code, p in out:
            by.setdefault(p, []).append((code, p))
        out = []
        while len(out) < limit:
            for p in sorted(by):
                if by[p] and len(out) < limit:
                    out.append(by[p].pop(0))
    return out


class Chain:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.pg = self.fed = self.sim = None
        self.hubs = {}
        self.nodes = []  # (Node, Caseload, serve Daemon)
        self.token = None
        self.sim_truth = {}
        self.sim_records = 0

    def start(self):
        a = self.args
        self.geo = geo = geography(a.municipalities)
        t = time.monotonic()
        self.pki = harness.Pki(os.path.join(self.work, "pki"))
        idents = ["federal"]
        for p in range(1, 8):
            idents += ["province", str(p)]
        for code, _ in geo:
            idents += ["municipality", str(code)]
        self.pki.issue(*idents)
        self.pki_s = time.monotonic() - t
        log("PKI: %d certificates in %.1f s" % (len(geo) + 8, self.pki_s))
        self.pg = pgmod.Postgres()
        self.fed = Federal(self.work, self.pki, self.pg).start()
        self.token = self.fed.token("ministry", "national-bench")
        for p in range(1, 8):
            hub = harness.Hub(self.work, self.pki, p)
            with open(hub.config, "a") as f:
                f.write("[uplink]\nfederal = 127.0.0.1:%d\ncoverage_seconds = %d\n"
                        % (self.fed.sync_port, self.args.coverage_seconds))
            self.hubs[p] = hub.start()
        log("PostgreSQL, federal-api and 7 hubs up")
        self.start_real_nodes()
        topo = {"pki": self.pki.dir,
                "hub_ports": {str(p): h.sync_port for p, h in self.hubs.items()},
                "municipalities": [{"code": c, "province": p} for c, p in geo
                                   if c not in self.real_codes]}
        tpath = os.path.join(self.work, "topology.json")
        with open(tpath, "w") as f:
            json.dump(topo, f)
        self.sim_log = open(os.path.join(self.work, "nodesim.log"), "wb")
        self.sim = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bench", "nodesim.py"), "--topology", tpath,
             "--records", str(a.records - self.real_records), "--seed", str(a.seed),
             "--batch", str(a.batch), "--window", str(a.window), "--years", str(a.years)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.sim_log, text=True)
        ready = json.loads(self.sim.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise Failed("nodesim did not start; see %s" % self.sim_log.name)
        self.sim_gen_s = ready["gen_s"]
        self.sim_n = ready["municipalities"]
        r = self.sim_cmd({"cmd": "truth"})
        log("nodesim: %d records %s over %d simulated municipalities generated in %.1f s"
            % (r["records"], r["kinds"], self.sim_n, ready["gen_s"]))

    def start_real_nodes(self):
        """Real nodes in 3 provinces, sized as a small, a median and a large municipality (the
        simulator's sizes are lognormal around records / municipalities), each fed its
        persons, services and enterprises through `municipal-node import`."""
        a = self.args
        by_prov = {}
        for code, p in self.geo:
            by_prov.setdefault(p, []).append(code)
        provs = [p for p in (1, 3, 5, 7, 2, 4, 6) if p in by_prov][:a.real_nodes]
        avg = a.records / max(1, len(self.geo))
        sizes = [max(10, int(avg * f)) for f in (0.4, 1.0, 3.0, 0.7, 1.5, 0.2, 2.0)]
        self.real_codes, self.real_records, self.real_truth = [], 0, mix.Truth()
        for i, prov in enumerate(provs):
            code = by_prov[prov][len(by_prov[prov]) // 2]
            node = harness.Node(self.work, self.pki, code, self.hubs[prov])
            cl = mix.SpanCaseload(code, 1000 + i, a.years)
            csvs, ents = mix.caseload(cl, sizes[i], self.work, "init-%d" % code)
            for kind, path in csvs:
                node.import_csv(kind, path)
            self.real_truth.add_more(code, list(cl.persons.values()),
                                     list(cl.services.values()), ents)
            self.real_records += sum(mix.split(sizes[i], 0))
            self.nodes.append((node, cl, node.serve()))
            self.real_codes.append(code)
        log("real municipal nodes %s serving, %s records imported"
            % (self.real_codes, [mix.split(s, 0) for s in sizes[:len(provs)]]))

    def sim_send(self, cmd):
        self.sim.stdin.write(json.dumps(cmd) + "\n")
        self.sim.stdin.flush()

    def sim_reply(self):
        line = self.sim.stdout.readline()
        if not line:
            raise Failed("nodesim exited; see %s" % self.sim_log.name)
        r = json.loads(line)
        if not r.get("ok"):
            raise Failed("nodesim %s failed: %s (%s)" % (r.get("cmd"), r.get("error"),
                                                        r.get("errors")))
        self.sim_truth = r["truth"]
        self.sim_records = r["records"]
        self.sim_refusals = (r["refusals"], r["refusal_samples"])
        if r["refusals"]:
            # No refused record ever reaches the truth, so waiting for convergence would only
            # run into the timeout: stop now with the hubs' reasons.
            raise Failed("the hubs refused %d simulated records (nodesim %s): %s"
                         % (r["refusals"], r.get("cmd"), r["refusal_samples"]))
        return r

    def sim_cmd(self, cmd):
        self.sim_send(cmd)
        return self.sim_reply()

    # Truth and the federal answer ---

    def truth(self):
        return mix.Truth.merge(self.sim_truth, self.real_truth.figures())

    def records(self):
        return self.sim_records + self.real_records

    def answer(self, indicator, period, by="", municipality=None):
        q = "&by=%s" % by if by else ""
        q += "&municipality=%d" % municipality if municipality else ""
        st, a, _ = self.fed.get("/v1/indicators/%s?period=%s%s" % (indicator, period, q),
                                self.token)
        if st != 200:
            raise AssertionError("federal answered %d: %s" % (st, a))
        return a

    def total(self, indicator, period):
        t = self.answer(indicator, period)["total"]
        return t["numerator"] if "numerator" in t else t["value"]

    def mismatches(self, truth, every=False):
        """The national figures that differ from the truth, and the records held (the first
        difference only, unless every)."""
        bad = []
        for y in mix.years(truth):
            got = {r["sex"]: r["value"] for r in self.answer("participants_registered", y, "sex")["rows"]
                   if r["value"]}
            want = {s: truth["reg|%d|%s" % (y, s)] for s in SEXES
                    if truth.get("reg|%d|%s" % (y, s))}
            if got != want:
                bad.append(("participants_registered", y, got, want))
                if not every:
                    return bad  # the first difference is enough while records still arrive
            for key, ind in TOTALS:
                got, want = self.total(ind, y), truth.get("%s|%d" % (key, y), 0)
                if got != want:
                    bad.append((ind, y, got, want))
                    if not every:
                        return bad
        return bad

    def municipality_mismatches(self, truth):
        """Every municipality's participants_registered of every year at the federal answer
        (one answer by=municipality a year) against the generators': the national totals the
        timer waits for could hide records counted under the wrong municipality. Returns the
        differences, (year, municipality, answer, truth)."""
        bad = []
        for y in mix.years(truth):
            want = {int(k.split("|")[2]): v for k, v in truth.items()
                    if k.startswith("regm|%d|" % y) and v}
            got = {}
            for ans in self.answer("participants_registered", y, "municipality")["answers"]:
                v = (ans.get("total") or {}).get("value", 0)
                if v:
                    got[ans["area"]["code"]] = v
            bad += [(y, c, got.get(c, 0), want.get(c, 0)) for c in sorted(set(got) | set(want))
                    if got.get(c, 0) != want.get(c, 0)]
        return bad

    def coverage_mismatch(self):
        """The records the hubs report holding (federal /v1/coverage) against the generators'
        count, and the dead letters (none expected); None when they agree. The hubs send their
        coverage on a slower cadence than snapshots, so this is checked after the timer."""
        st, cov, _ = self.fed.get("/v1/coverage", self.token)
        if st != 200:
            return ("coverage answered", st)
        held = sum(m["records"] for m in cov["municipalities"])
        if held != self.records() or cov["dead_letters"] != 0:
            return ("coverage records, dead letters, truth", held, cov["dead_letters"],
                    self.records())
        return None

    def quiet(self):
        """Every hub has noted, rolled up and delivered everything to the federal tier. Raises
        Failed when a hub has refused a record (the truth counts every record generated, so
        the figures would never meet it)."""
        for p, h in self.hubs.items():
            m = harness.scrape(h.http_port)
            if m.get("hub_records_refused_total", 0):
                raise Failed("hub %d refused %d records (hub_records_refused_total; the reasons "
                             "are in nodesim.log and the hub's dead_letters); nodesim so far: %s"
                             % (p, m["hub_records_refused_total"], self.sim_refusals))
            if m["hub_uplink_backlog"] != 0 or m["hub_rollup_dirty"] != 0 or \
                    m.get("hub_rollup_queue", 0) != 0:
                return False
        return True

    def wait_converged(self, timeout, poll=0.25):
        """Until every national figure equals the truth and the hubs are drained; returns the
        time it first held (the start of the poll that saw it). Raises Failed when it does not
        hold within timeout."""
        truth = self.truth()
        end = time.monotonic() + timeout
        bad = None
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                drained = self.quiet()  # first: it fails fast on refused records
                bad = self.mismatches(truth)
                if not bad and not drained:
                    bad = ["hub rollups or uplinks not drained"]
            except (OSError, AssertionError, KeyError) as e:
                bad = [str(e)[:300]]
            if not bad:
                break
            if os.environ.get("NATIONAL_TRACE"):
                log("waiting: %s" % (bad[:1],))
            time.sleep(poll)
        else:
            try:
                bad = self.mismatches(truth, every=True) or bad
            except (OSError, AssertionError, KeyError) as e:
                bad = [str(e)[:300]]
            raise Failed("the national figures did not reach the truth in %d s: %s"
                         % (timeout, bad[:12]))
        return t

    def wait_coverage(self, timeout, poll=0.25):
        """Until the hubs' coverage at the federal tier counts every record (the hubs send it at
        most every 10 s); returns the time it first held. Raises Failed when it does not hold
        within timeout."""
        end = time.monotonic() + timeout
        cov = None
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                cov = self.coverage_mismatch()
            except (OSError, KeyError) as e:
                cov = str(e)[:300]
            if cov is None:
                return t
            time.sleep(poll)
        raise Failed("the hubs' coverage did not reach the truth in %d s: %s" % (timeout, cov))

    # Resources ---

    def cpu(self):
        """CPU seconds by (tier, pid); a process started later counts from 0."""
        out = {}
        ds = [("hubs", h) for h in self.hubs.values()] + [("federal", self.fed)] + \
            [("nodes", srv) for _, _, srv in self.nodes]
        for tier, d in ds:
            if d.alive():
                out[(tier, d.proc.pid)] = proc_cpu(d.proc.pid)
        out[("postgres", 0)] = pg_cpu(self.pg)
        return out

    @staticmethod
    def cpu_delta(c0, c1):
        d = {"hubs": 0.0, "federal": 0.0, "postgres": 0.0, "nodes": 0.0}
        for (tier, pid), v in c1.items():
            d[tier] += v - c0.get((tier, pid), 0.0)
        return d

    def sqlite_kib(self):
        """SQLite's memory in every hub (sqlite3_memory_used, from /metrics), KiB."""
        return sum(float(harness.scrape(h.http_port)["sqlite_memory_used_bytes"])
                   for h in self.hubs.values()) / 1024

    def heap_kib(self):
        """Heap every hub has handed out and not taken back (mallinfo2, from /metrics), KiB."""
        return sum(float(harness.scrape(h.http_port)["process_heap_in_use_bytes"])
                   for h in self.hubs.values()) / 1024

    def connected(self):
        return sum(int(harness.scrape(h.http_port)["hub_connected"]) for h in self.hubs.values())

    def stop(self):
        if self.sim and self.sim.poll() is None:
            try:
                self.sim_send({"cmd": "quit"})
                self.sim.wait(timeout=20)
            except Exception:
                self.sim.kill()
                self.sim.wait()
        for _, _, srv in self.nodes:
            srv.stop()
        for h in self.hubs.values():
            if h.alive():
                h.stop()
        if self.fed and self.fed.alive():
            self.fed.stop()
        if self.pg:
            self.pg.destroy()


# Phases ---------------------------------------------------------------------------------

def phase_load(ch, res, timeout):
    c0 = ch.cpu()
    t0 = time.monotonic()
    r = ch.sim_cmd({"cmd": "load"})
    t1 = ch.wait_converged(timeout)
    res.check("initial load reaches the truth", True, "%d records in %.1f s"
              % (ch.records(), t1 - t0))
    res.data["extra"]["initial_load"] = {"records": ch.records(), "sent": r["records_sent"],
                                         "acked_s": r["elapsed"], "converged_s": t1 - t0,
                                         "cpu": ch.cpu_delta(c0, ch.cpu())}
    log("initial load: %d records at the federal answer after %.1f s" % (ch.records(), t1 - t0))


def phase_memory(ch, res, run):
    ch.sim_cmd({"cmd": "close"})
    harness.wait_for(lambda: ch.connected() == len(ch.nodes), 60, "simulated sessions closed")
    # Fresh hub processes: memory freed by closed sessions stays in the allocator's free lists,
    # and new sessions reusing it would look nearly free. From a restart, the difference also
    # holds the page cache the replayed batches read, so it is an upper bound.
    for h in ch.hubs.values():
        h.stop()
        h.start()
    harness.wait_for(lambda: ch.connected() == len(ch.nodes), 60, "the real nodes reconnected")
    time.sleep(1)
    rss0 = sum(vm_rss_kib(h.proc.pid) for h in ch.hubs.values())
    sql0 = ch.sqlite_kib()
    sock0 = tcp_mem_kib()
    r = ch.sim_cmd({"cmd": "replay"})
    time.sleep(3)  # idle: whatever the hub releases when a connection idles is released
    harness.wait_for(ch.quiet, 120, "the hubs drained the replayed batches")
    rss1 = sum(vm_rss_kib(h.proc.pid) for h in ch.hubs.values())
    sql1 = ch.sqlite_kib()
    sock1 = tcp_mem_kib()
    heap1 = ch.heap_kib()
    n = r["connected"]
    connected = ch.connected()
    # What the sessions themselves hold: the heap the hubs give back when exactly these idle
    # sessions close (every real node stays connected), less SQLite's own change meanwhile.
    ch.sim_cmd({"cmd": "close"})
    harness.wait_for(lambda: ch.connected() == len(ch.nodes), 60, "simulated sessions closed")
    time.sleep(1)
    heap2 = ch.heap_kib()
    sql2 = ch.sqlite_kib()
    sock2 = tcp_mem_kib()
    res.check("memory run %d: every simulated session connected and carried a full batch" % run,
              n == ch.sim_n and r["full_batches"] == ch.sim_n and connected >= n,
              "%d connected, %d carried %d records, frames %d..%d bytes"
              % (n, r["full_batches"], ch.args.batch, r["frame_min"], r["frame_max"]))
    # SQLite's own memory (the page cache the replayed batches read) is not the sessions'.
    res.sample("idle_kib", ((heap1 - heap2) - (sql1 - sql2)) / max(1, n))
    res.sample("idle_rss_kib", ((rss1 - rss0) - (sql1 - sql0)) / max(1, n))
    res.sample("sock_kib", (sock1 - sock2) / max(1, n))
    res.data["extra"].setdefault("memory", []).append(
        {"sessions": n, "hub_rss_kib": [rss0, rss1], "hub_heap_kib": [heap1, heap2],
         "sqlite_kib": [sql0, sql1, sql2], "tcp_mem_kib": [sock0, sock1, sock2],
         "frame_bytes": [r["frame_min"], r["frame_max"]]})
    log("memory %d: %d sessions; hub heap %d KiB idle, %d KiB once they closed (%.1f KiB each "
        "without SQLite); hub RSS %d -> %d KiB from restart (%.1f KiB each without SQLite); "
        "SQLite %d -> %d -> %d KiB; TCP memory %.0f -> %.0f -> %.0f KiB"
        % (run, n, heap1, heap2, ((heap1 - heap2) - (sql1 - sql2)) / max(1, n), rss0, rss1,
           ((rss1 - rss0) - (sql1 - sql0)) / max(1, n), sql0, sql1, sql2, sock0, sock1,
           sock2))


def phase_freshness(ch, res, args, run):
    today = datetime.date.today()
    ch.sim_cmd({"cmd": "background", "rate": args.bg_rate, "days": 30})
    recs0 = ch.sim_records
    time.sleep(1)
    lat, t_fresh0 = [], time.monotonic()
    year = today.year
    jan1 = datetime.date(year, 1, 1)
    for i in range(args.samples):
        node, cl, _ = ch.nodes[i % len(ch.nodes)]
        p = cl.new_person()
        reg = jan1 + datetime.timedelta(days=cl.rng.randint(0, max(0, (today - jan1).days - 1)))
        p["_reg"] = reg
        p["registered_on"] = bs.bs_str(reg)
        # The generator dated the return before its own registration day; it must stay on or
        # before this one too (the node refuses a return after the registration).
        if p.get("return_date"):
            p["return_date"] = bs.bs_str(reg - datetime.timedelta(days=cl.rng.randint(0, 300)))
        # The background adds persons of this year elsewhere: the sample is watched in
        # the answer for its own municipality, which only it moves.
        want = sum(1 for x in cl.persons.values()
                   if x["_reg"].year == year and x["sex"] == p["sex"])
        path = os.path.join(ch.work, "fresh-%d-%d.csv" % (run, i))
        cl.write_csv(path, "persons", rows=[p])
        node.import_csv("persons", path)
        t_commit = time.monotonic()
        ch.real_truth.add_more(node.municipality, [p], [], [])
        ch.real_records += 1
        while True:
            rows = ch.answer("participants_registered", year, "sex", node.municipality)["rows"]
            got = {r["sex"]: r["value"] for r in rows}.get(p["sex"], 0)
            if got >= want:
                break
            if time.monotonic() - t_commit > 120:
                raise Failed("freshness sample %d: %s %d stayed at %d for 120 s"
                             % (i, p["sex"], want, got))
            time.sleep(0.02)
        lat.append(time.monotonic() - t_commit)
        time.sleep(args.gap)
    fresh_s = time.monotonic() - t_fresh0
    r = ch.sim_cmd({"cmd": "stop_background"})
    bg = ch.sim_records - recs0
    ch.wait_converged(args.timeout)
    res.check("freshness run %d: %d samples, the background's records all at the truth"
              % (run, len(lat)), len(lat) == args.samples, "%d background records" % bg)
    res.sample("fresh_p99_s", pct(lat, 99))
    res.sample("fresh_p50_s", statistics.median(lat))
    res.data["extra"].setdefault("freshness", []).append(
        {"samples": len(lat), "latencies_s": [round(x, 4) for x in lat], "bg_records": bg,
         "bg_rate": bg / max(0.001, fresh_s), "nodes": ch.real_codes})
    log("freshness %d: %d samples p50 %.3f s p99 %.3f s; background %d records"
        % (run, len(lat), statistics.median(lat), pct(lat, 99), bg))
    return r


def phase_queries(ch, res, args, run):
    """National queries over the 120 months while the background ingests (its own phase, so
    that the freshness samples do not wait behind it)."""
    # The 120 months up to and including the current one: the background writes into the last
    # 30 days, so that on any day of the month the months it changes are among those asked
    # (until 2026-12-06 the current month was left out, and how much of the background fell
    # into the months asked depended on the day of the month of the run).
    d = datetime.date.today().replace(day=1)
    months = [d.strftime("%Y-%m")]
    while len(months) < 12 * args.years:
        d = (d - datetime.timedelta(days=1)).replace(day=1)
        months.append(d.strftime("%Y-%m"))
    ch.sim_cmd({"cmd": "background", "rate": args.bg_rate, "days": 30})
    recs0 = ch.sim_records
    m0 = ch.fed.metrics()
    with multiprocessing.Pool(1) as pool:
        lat, errors = pool.apply(query_client, (ch.fed.https_port, ch.pki.path("ca.crt"),
                                                ch.token, months, args.query_seconds, run))
        m1 = ch.fed.metrics()
        # The floor: the same client asking /healthz (no database, no audit row) under the
        # same background, what an answer served from federal-api's memory would approach.
        floor, floor_errors = pool.apply(query_client, (
            ch.fed.https_port, ch.pki.path("ca.crt"), ch.token, months,
            max(1.0, args.query_seconds / 4), run, ["/healthz"]))
    # The breakdown of every local level month by month (issue 16) under the same background
    # (federal_bench.py measures it on an idle store only), over the last full year, whose 12
    # months all hold registrations whatever the day of the run (a caseload of one year: the
    # year holding most of the 12 months asked).
    years = [m[:4] for m in months]
    year = years[12] if len(years) > 12 else max(set(years), key=years.count)
    benchlib.breakdown(res, "breakdown_ingest_ms", ch.fed.https_port, ch.pki.path("ca.crt"),
                       ch.token, year)
    cache = {k: int(m1.get("federal_coverage_%s" % k, 0) - m0.get("federal_coverage_%s" % k, 0))
             for k in ("cache_hits_total", "cache_misses_total", "notifications_total")}
    tokens = {k: int(m1.get("federal_token_cache_%s" % k, 0)
                     - m0.get("federal_token_cache_%s" % k, 0))
              for k in ("hits_total", "misses_total", "drops_total")}
    ch.sim_cmd({"cmd": "stop_background"})
    bg = ch.sim_records - recs0
    ch.wait_converged(args.timeout)
    res.check("query run %d: every query answered 200, the background ingested" % run,
              errors == 0 and floor_errors == 0 and lat and floor and bg > 0,
              "%d queries, %d errors; %d /healthz, %d errors; %d background records"
              % (len(lat), errors, len(floor), floor_errors, bg))
    res.sample("query_p99_ms", pct(lat, 99) * 1000)
    res.sample("query_floor_p99_ms", pct(floor, 99) * 1000)
    # Where the client's time goes: federal-api's own time per answer (request handed to its
    # handler -> answer written) and the busy turns of its event loop, from its histograms
    # (bucket bounds, not exact quantiles).
    server = {"answer_p50_le_ms": hist_quantile(m0, m1, "federal_https_server_answer_seconds", .5),
              "answer_p99_le_ms": hist_quantile(m0, m1, "federal_https_server_answer_seconds",
                                                .99),
              "loop_busy_p99_le_ms": hist_quantile(m0, m1, "federal_loop_busy_seconds", .99),
              "loop_busy_p999_le_ms": hist_quantile(m0, m1, "federal_loop_busy_seconds", .999),
              "loop_cpu_p99_le_ms": hist_quantile(m0, m1, "federal_loop_cpu_seconds", .99),
              "loop_cpu_p999_le_ms": hist_quantile(m0, m1, "federal_loop_cpu_seconds", .999)}
    res.data["extra"].setdefault("queries", []).append(
        {"n": len(lat), "p50_ms": pct(lat, 50) * 1000, "p90_ms": pct(lat, 90) * 1000,
         "p99_ms": pct(lat, 99) * 1000, "max_ms": max(lat) * 1000, "bg_records": bg,
         "p99_5_ms": pct(lat, 99.5) * 1000, "p99_9_ms": pct(lat, 99.9) * 1000,
         "months": len(months), "coverage_cache": cache, "token_cache": tokens,
         "federal_api": server,
         "floor": {"n": len(floor), "p50_ms": pct(floor, 50) * 1000,
                   "p99_ms": pct(floor, 99) * 1000}})
    log("queries %d: %d national queries, p50 %.2f ms p90 %.2f ms p99 %.2f ms p99.5 %.2f ms "
        "p99.9 %.2f ms, background %d records; coverage kept for %d answers, read for %d, %d "
        "notifications; token kept for %d, looked up for %d; federal-api's "
        "answer p50 <= %s ms, p99 <= %s ms, loop turn p99 <= %s ms, p99.9 <= %s ms (CPU p99 "
        "<= %s ms, p99.9 <= %s ms); /healthz under the same ingest: p50 %.2f ms, p99 %.2f ms"
        % (run, len(lat), pct(lat, 50) * 1000, pct(lat, 90) * 1000, pct(lat, 99) * 1000,
           pct(lat, 99.5) * 1000, pct(lat, 99.9) * 1000, bg,
           cache["cache_hits_total"], cache["cache_misses_total"], cache["notifications_total"],
           tokens["hits_total"], tokens["misses_total"], server["answer_p50_le_ms"], server["answer_p99_le_ms"], server["loop_busy_p99_le_ms"],
           server["loop_busy_p999_le_ms"], server["loop_cpu_p99_le_ms"],
           server["loop_cpu_p999_le_ms"], pct(floor, 50) * 1000, pct(floor, 99) * 1000))


def phase_resync(ch, res, args, run):
    ch.sim_cmd({"cmd": "close"})
    # The real nodes keep running: they reconnect by their own backoff and resend everything
    # when the empty hub asks for it.
    for h in ch.hubs.values():
        h.stop()
    ch.fed.stop()
    for h in ch.hubs.values():
        shutil.rmtree(os.path.join(h.dir, "data"))
    ch.pg.psql("DROP DATABASE reintegration", db="postgres")
    ch.pg.psql("CREATE DATABASE reintegration", db="postgres")
    ch.fed.start()
    ch.token = ch.fed.token("ministry", "national-bench-%d" % run)
    c0 = ch.cpu()
    sim0 = proc_cpu(ch.sim.pid)
    t0 = time.monotonic()
    for h in ch.hubs.values():
        h.start()
    c0.update({k: 0.0 for k in ch.cpu() if k not in c0})
    ch.sim_send({"cmd": "load"})
    ch.sim_reply()
    acked = time.monotonic() - t0
    t1 = ch.wait_converged(args.timeout)
    # The CPU over the timed interval only: read at convergence, before the wait for the
    # hubs' coverage (up to 10 s more, with the tiers' checkpoints and vacuums in it).
    c1 = ch.cpu()
    sim1 = proc_cpu(ch.sim.pid)
    cpu = ch.cpu_delta(c0, c1)
    t_cov = ch.wait_coverage(args.timeout)
    n = ch.records()
    res.check("resync %d: the federal answer holds every record's effect, the hubs' coverage "
              "every record" % run, True,
              "%d records, %.1f s; coverage %.1f s" % (n, t1 - t0, t_cov - t0))
    truth = ch.truth()
    bad = ch.municipality_mismatches(truth)
    res.check("resync %d: every municipality's registrations of every year equal the "
              "generators' (after the timer)" % run, not bad,
              "%d of %d (year, municipality) differ, first %s"
              % (len(bad), sum(1 for k, v in truth.items() if k.startswith("regm|") and v),
                 bad[:5]))
    res.sample("resync_s", t1 - t0)
    res.sample("floor_s", sum(cpu.values()) / os.cpu_count())
    res.data["extra"].setdefault("resync", []).append(
        {"records": n, "acked_s": acked, "converged_s": t1 - t0, "coverage_s": t_cov - t0,
         "cpu_s": cpu, "cpu_us_per_record": {k: v / n * 1e6 for k, v in cpu.items()},
         # The simulated nodes' CPU over the same interval: not in the floor (they stand for
         # 753 machines), but it ran on the same two cores.
         "sim_cpu_s": sim1 - sim0})
    log("resync %d: %d records at the federal answer after %.1f s (acked %.1f s, coverage "
        "%.1f s); CPU %s, simulated nodes %.1f s"
        % (run, n, t1 - t0, acked, t_cov - t0, {k: round(v, 1) for k, v in cpu.items()},
           sim1 - sim0))


PHASES = ("memory", "freshness", "queries", "resync")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=None,
                    help="records of all municipalities together (4,000,000; quick 200,000)")
    ap.add_argument("--municipalities", type=int, default=0, help="0: all 753")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each phase (5; quick 1)")
    ap.add_argument("--samples", type=int, default=100, help="freshness samples per run")
    ap.add_argument("--bg-rate", type=int, default=2000,
                    help="background records/s from simulated municipalities")
    ap.add_argument("--query-seconds", type=float, default=20)
    ap.add_argument("--gap", type=float, default=0.2, help="pause between freshness samples")
    ap.add_argument("--real-nodes", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2000, help="simulated nodes' records per batch")
    ap.add_argument("--window", type=int, default=8, help="simulated nodes' batches in flight")
    ap.add_argument("--years", type=int, default=10, help="span of the caseload (120 months)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=int, default=900, help="bound on each convergence wait")
    ap.add_argument("--coverage-seconds", type=int, default=10,
                    help="the hubs' [uplink] coverage_seconds (10, the product's default; the "
                    "resync's timer stops before its coverage is awaited)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help="the phases to run after the initial load (default all: %s)"
                    % ",".join(PHASES))
    ap.add_argument("--name", default="national",
                    help="the result's name: build/bench/NAME.json and its section in the docs "
                    "(e.g. national_4m for a run of some phases at full size beside the default)")
    args = ap.parse_args()
    if not re.fullmatch(r"national[a-z0-9_]*", args.name):
        ap.error("--name: national followed by lower-case letters, digits or _")
    phases = [p for p in args.phases.split(",") if p]
    if not phases or set(phases) - set(PHASES):
        ap.error("--phases: a comma-separated list of %s" % ", ".join(PHASES))
    q = benchlib.quick()
    if args.records is None:
        args.records = 200000 if q else FULL_RECORDS
    if args.repeat is None:
        args.repeat = 1 if q else 5
    full = args.records >= FULL_RECORDS and (args.municipalities in (0, FULL_MUNICIPALITIES))
    res = benchlib.Result(args.name, "bench/national.py", params=vars(args))
    res.figure("resync_s", "all-Nepal resync to the federal answer, %s mixed records at the "
               "start plus the phases' backgrounds (each resync's count: its check)"
               % format(args.records, ","), "s", better="lower",
               goal="< 60 s at 4,000,000 records, 753 municipalities",
               goal_value=60 if full else None, headline=True, baseline="floor_s",
               note=None if full else "not at full size: no goal judged")
    res.figure("floor_s", "physical floor of that resync: CPU s of every tier / cores", "s",
               better="lower")
    res.figure("fresh_p99_s", "freshness p99, clerk's commit to the national answer, %s "
               "records at the start (%d samples a run, mixed background)"
               % (format(args.records, ","), args.samples), "s", better="lower",
               goal="< 1 s at 4,000,000 records", goal_value=1.0 if full else None,
               headline=True, note=None if full else "not at full size: no goal judged")
    res.figure("fresh_p50_s", "freshness p50", "s", better="lower")
    res.figure("query_p99_ms", "national query p99 over %d x %d months while ingest runs"
               % (len(geography(args.municipalities)), 12 * args.years), "ms", better="lower",
               goal="< 5 ms", goal_value=5.0, headline=True)
    res.figure("query_floor_p99_ms", "the same client asking /healthz (no database) under the "
               "same ingest, p99: what an answer from federal-api's memory would approach", "ms",
               better="lower")
    res.figure("breakdown_ingest_ms", "753 local levels x 12 months in one answer "
               "(by=municipality&series=month, the last full year) while ingest runs, one "
               "client, 5 requests a run", "ms", better="lower", goal="< 1000 ms", goal_value=1000)
    # A full batch is the node's: 2,000 records (a frame of about 256 KiB, which the hub must
    # not keep once the session idles). A replay of fewer records judges nothing.
    node_batch = args.batch >= NODE_BATCH
    res.figure("idle_kib", "hub memory per idle node connection after a batch of %s records"
               % format(args.batch, ","), "KiB", better="lower",
               goal="< 16 KiB after a batch of %s records" % format(NODE_BATCH, ","),
               goal_value=16.0 if node_batch else None, headline=True,
               note=None if node_batch else "not the node's full batch: no goal judged")
    res.figure("idle_rss_kib", "hub RSS growth per idle node connection from restarted hubs, "
               "less SQLite's growth (an upper bound: also the hubs' work on the batches)", "KiB",
               better="lower")
    res.figure("sock_kib", "kernel TCP socket memory per idle connection (whole machine)",
               "KiB", better="lower")
    work = tempfile.mkdtemp(prefix="national-", dir="/var/tmp")
    log("work directory %s" % work)
    ch = Chain(args, work)
    try:
        ch.start()
        phase_load(ch, res, args.timeout)
        for phase in PHASES:
            for i in range(args.repeat if phase in phases else 0):
                if phase == "memory":
                    phase_memory(ch, res, i)
                elif phase == "freshness":
                    phase_freshness(ch, res, args, i)
                elif phase == "queries":
                    phase_queries(ch, res, args, i)
                else:
                    # The resyncs of one run grew 11 % along it (2026-12-05): the machine's
                    # speed beside each tells the machine's drift from the product's.
                    res.calibrate("before resync %d" % (i + 1))
                    phase_resync(ch, res, args, i)
        refusals, samples = ch.sim_refusals
        res.check("no record refused by a hub", refusals == 0, "%d refused: %s"
                  % (refusals, samples))
    except (Failed, AssertionError) as e:
        res.check("run completed", False, str(e)[:1000])
    finally:
        ch.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res.data["extra"]["setup"] = {"pki_s": getattr(ch, "pki_s", None),
                                  "sim_gen_s": getattr(ch, "sim_gen_s", None),
                                  "real_nodes": getattr(ch, "real_codes", []),
                                  "proportions": mix.PROPORTIONS,
                                  "availability_rows": mix.AVAILABILITY_ROWS}
    res.note("Resync: the timer stops when six national figures (participants by sex, services "
             "delivered, referrals pending, enterprises supported, services unavailable, "
             "reporting completeness: every record kind), for every year, equal the generators' "
             "truth and the hubs are drained; the records the hubs report holding (coverage) are "
             "then checked against the truth, after the timer. The floor counts the real nodes "
             "but not the simulator. Freshness: the federal answer for the sample's "
             "municipality, written in the same transaction as the national aggregates.")
    res.write()
    log("done in %.0f s" % (time.monotonic() - T0))
    sys.exit(res.exit_status())


if __name__ == "__main__":
    main()
