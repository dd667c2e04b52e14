#!/usr/bin/python3
"""National simulation (issue 7): 753 municipalities -> 7 provincial hubs -> federal API on
PostgreSQL, all on this machine over loopback, every link mutual TLS.

What runs (all real binaries from build/bin, nothing mocked):
  - a private PostgreSQL 15 (tests/system/pg.py) and the real federal-api on it;
  - the 7 real provincial hubs, each with [uplink] federal = the federal API;
  - K real municipal-node processes (`serve`, default 3, in 3 provinces), fed through their
    real import path (`municipal-node import --kind persons FILE.csv`);
  - the other 750 municipalities simulated by bench/nodesim.py: one asyncio process holding
    one mutual-TLS session per municipality, each with its own certificate from
    deploy/pki.sh, speaking the node protocol of common/sync.c.
The generators (nodesim.py for the simulated ones, tests/system/gen.py for the real nodes)
hold the ground truth: participants_registered per Gregorian year, by sex and by category.

Phases and figures (timings reported, never asserted):
  1. PKI: one `pki.sh issue` call for federal, 7 provinces and 753 municipalities (timed).
  2. Idle memory: each hub's VmRSS before and after every simulated municipality holds an
     idle session (Hello done, nothing to send); (after - before) / sessions.
  3. Initial load: the simulated municipalities send their N records; time until every
     national figure checked equals the truth; CPU seconds per tier per million records.
  4. Freshness: under background load (new records from simulated municipalities, dated in
     earlier years), one person row at a time is imported at a real node; the time from the
     import's commit (the command's exit) until the federal API's national figure for that
     year and sex moves, polled every 50 ms; p50/p99.
  5. Full resync: every session closed, hubs and federal stopped, the hubs' data dirs
     deleted and the federal database dropped and recreated, the tiers started empty, all
     753 municipalities reconnect (the simulated ones at once, the real ones by their own
     backoff) and resend everything; time until every national figure equals the truth, and
     CPU seconds per tier per million records.
Prints a Markdown section and appends it to docs/BENCHMARKS.md (unless --no-append)."""
import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
import harness  # noqa: E402
from fedclient import Federal  # noqa: E402
from gen import Caseload  # noqa: E402
import bs  # noqa: E402
import pg as pgmod  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TODAY = datetime.date.today()
YEARS = list(range(TODAY.year - 5, TODAY.year + 1))
SEXES = ["FEMALE", "MALE", "OTHER"]
CATEGORIES = ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE", "COMMUNITY"]


def log(msg):
    sys.stderr.write("[%7.1f] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


T0 = time.monotonic()


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


# The chain ------------------------------------------------------------------------------

def geography():
    out = []
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            c = line.split(",")
            out.append((int(c[4]), int(c[0])))
    return out


class Chain:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.pg = self.fed = None
        self.hubs = {}
        self.nodes = []  # (Node, Caseload, serve Daemon)
        self.sim = None
        self.token = None

    # Setup ---

    def start(self):
        a = self.args
        geo = geography()
        self.geo = geo
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
                f.write("[uplink]\nfederal = 127.0.0.1:%d\n" % self.fed.sync_port)
            self.hubs[p] = hub.start()
        log("PostgreSQL, federal-api and 7 hubs up")
        by_prov = {}
        for code, p in geo:
            by_prov.setdefault(p, []).append(code)
        real = [by_prov[p][len(by_prov[p]) // 2] for p in (1, 3, 5, 7, 2, 4, 6)[:a.real_nodes]]
        for i, code in enumerate(real):
            prov = int(str(code)[0])
            node = harness.Node(self.work, self.pki, code, self.hubs[prov])
            cl = Caseload(code, 1000 + i)
            for _ in range(a.real_rows):
                cl.new_person()
            path = os.path.join(self.work, "init-%d.csv" % code)
            cl.write_csv(path, "persons")
            node.import_csv("persons", path)
            srv = node.serve()
            self.nodes.append((node, cl, srv))
        self.real_codes = real
        log("real municipal nodes %s serving, %d rows each imported" % (real, a.real_rows))
        topo = {"pki": self.pki.dir,
                "hub_ports": {str(p): h.sync_port for p, h in self.hubs.items()},
                "municipalities": [{"code": c, "province": p} for c, p in geo if c not in real]}
        tpath = os.path.join(self.work, "topology.json")
        with open(tpath, "w") as f:
            json.dump(topo, f)
        self.sim_log = open(os.path.join(self.work, "nodesim.log"), "wb")
        self.sim = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bench", "nodesim.py"), "--topology", tpath,
             "--records", str(a.records - a.real_rows * len(real)), "--seed", str(a.seed),
             "--batch", str(a.batch), "--window", str(a.window)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.sim_log, text=True)
        ready = json.loads(self.sim.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise SystemExit("nodesim did not start; see %s" % self.sim_log.name)
        self.sim_gen_s = ready["gen_s"]
        log("nodesim: %d records over %d simulated municipalities generated in %.1f s"
            % (ready["records"], ready["municipalities"], ready["gen_s"]))
        self.sim_truth = {}

    def sim_send(self, cmd):
        self.sim.stdin.write(json.dumps(cmd) + "\n")
        self.sim.stdin.flush()

    def sim_reply(self):
        line = self.sim.stdout.readline()
        if not line:
            raise SystemExit("nodesim exited; see %s" % self.sim_log.name)
        r = json.loads(line)
        if not r.get("ok"):
            raise SystemExit("nodesim %s failed: %s (%s)" % (r.get("cmd"), r.get("error"),
                                                            r.get("errors")))
        self.sim_truth = r["truth"]
        return r

    def sim_cmd(self, cmd):
        self.sim_send(cmd)
        return self.sim_reply()

    # Truth and the federal answer ---

    def truth(self):
        t = dict(self.sim_truth)
        for _, cl, _ in self.nodes:
            for p in cl.persons.values():
                y = p["_reg"].year
                for k in ("%d||" % y, "%d|sex|%s" % (y, p["sex"]),
                          "%d|category|%s" % (y, p["category"]),
                          "%d-%02d|sex|%s" % (y, p["_reg"].month, p["sex"])):
                    t[k] = t.get(k, 0) + 1
        return t

    def national(self, period, by, municipality=None):
        q = "&municipality=%d" % municipality if municipality else ""
        st, a, _ = self.fed.get("/v1/indicators/participants_registered?period=%s&by=%s%s"
                                % (period, by, q), self.token)
        if st != 200:
            raise AssertionError("federal answered %d: %s" % (st, a))
        return {r[by]: r["value"] for r in a["rows"] if r["value"]}

    def mismatches(self, truth):
        bad = []
        for y in YEARS:
            for by, names in (("sex", SEXES), ("category", CATEGORIES)):
                want = {n: truth.get("%d|%s|%s" % (y, by, n), 0) for n in names}
                want = {k: v for k, v in want.items() if v}
                got = self.national(y, by)
                if got != want:
                    bad.append((y, by, got, want))
        return bad

    def month_mismatches(self, truth):
        """Every Gregorian month of the 5 years, by sex: checked once, after convergence."""
        bad = []
        months = sorted({k.split("|")[0] for k in truth if k.count("-") == 1 and "|sex|" in k})
        for m in months:
            want = {n: truth.get("%s|sex|%s" % (m, n), 0) for n in SEXES}
            want = {k: v for k, v in want.items() if v}
            got = self.national(m, "sex")
            if got != want:
                bad.append((m, got, want))
        return len(months), bad

    def quiet(self):
        """Every hub has noted, rolled up and delivered everything to the federal tier."""
        for h in self.hubs.values():
            m = harness.scrape(h.http_port)
            if m["hub_uplink_backlog"] != 0 or m["hub_rollup_dirty"] != 0:
                return False
        return True

    def wait_converged(self, timeout, poll=0.5):
        """Until the yearly national figures equal the truth and every hub's rollups and
        uplink are drained (so every period's snapshot is at the federal tier); then checks
        every monthly figure once. Returns the time of convergence."""
        truth = self.truth()
        end = time.monotonic() + timeout
        bad = None
        while time.monotonic() < end:
            try:
                bad = self.mismatches(truth)
                if not bad and not self.quiet():
                    bad = ["hub rollups or uplinks not drained"]
            except (OSError, AssertionError) as e:
                bad = [str(e)]
            if not bad:
                t = time.monotonic()
                n, bad = self.month_mismatches(truth)
                if bad:
                    raise SystemExit("yearly figures converged but %d of %d months differ: %s"
                                     % (len(bad), n, bad[:3]))
                self.months_checked = n
                return t
            time.sleep(poll)
        raise SystemExit("national figures did not reach the truth in %d s: %s"
                         % (timeout, bad[:2]))

    def federal_volume(self):
        """What the federal tier received and holds: snapshots received since it started
        (every revision of every (municipality, period)), snapshots and cells held now."""
        m = harness.scrape(self.fed.http_port)
        held = self.pg.psql("SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM cells)")
        # Row writes to the province aggregates (inserts and updates since the database was
        # created): how well the batches' cells were summed before reaching them.
        time.sleep(1.0)  # PostgreSQL publishes table statistics within a second
        pw = self.pg.psql("SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables"
                          " WHERE relname = 'province_cells'")
        return {"snapshots_received": int(m.get("federal_ingest_snapshots_received_total", 0)),
                "snapshots_held": int(held[0][0]), "cells_held": int(held[0][1]),
                "province_writes": int(pw[0][0])}

    # Resources ---

    def cpu(self):
        """CPU seconds by (tier, pid); a process started later counts from 0."""
        out = {}
        for tier, d in [("hubs", h) for h in self.hubs.values()] + [("federal", self.fed)]:
            if d.alive():
                out[(tier, d.proc.pid)] = proc_cpu(d.proc.pid)
        out[("postgres", 0)] = pg_cpu(self.pg)
        return out

    @staticmethod
    def cpu_delta(c0, c1):
        d = {"hubs": 0.0, "federal": 0.0, "postgres": 0.0}
        for (tier, pid), v in c1.items():
            d[tier] += v - c0.get((tier, pid), 0.0)
        return d

    # Teardown ---

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

def phase_idle_memory(ch):
    before = {p: vm_rss_kib(h.proc.pid) for p, h in ch.hubs.items()}
    r = ch.sim_cmd({"cmd": "idle"})
    time.sleep(3)
    after = {p: vm_rss_kib(h.proc.pid) for p, h in ch.hubs.items()}
    conns = {p: int(harness.scrape(h.http_port)["hub_connected"]) for p, h in ch.hubs.items()}
    sessions = sum(conns.values())
    delta = sum(after.values()) - sum(before.values())
    per_hub = {p: (after[p] - before[p]) / max(1, conns[p]) for p in ch.hubs}
    log("idle: %d sessions (%d from nodesim) in %.1f s; hub RSS %d -> %d KiB; %.1f KiB/session"
        % (sessions, r["connected"], r["elapsed"], sum(before.values()), sum(after.values()),
           delta / max(1, sessions)))
    return {"sessions": sessions, "connect_s": r["elapsed"], "before": before, "after": after,
            "kib_per_session": delta / max(1, sessions), "per_hub": per_hub}


def phase_load(ch, name, start_fn, timeout):
    """start_fn() begins the sending; returns elapsed to convergence and CPU per tier."""
    sim0 = ch.sim_cmd({"cmd": "truth"})["cpu_s"]
    c0 = ch.cpu()
    t0 = time.monotonic()
    start_fn()
    ch.sim_send({"cmd": "load"})
    r = ch.sim_reply()
    acked = time.monotonic() - t0
    log("%s: nodesim sent %d records, all acked by the hubs after %.1f s"
        % (name, r["records_sent"], acked))
    t1 = ch.wait_converged(timeout)
    c1 = ch.cpu()
    total = sum(ch.truth()[k] for k in ch.truth() if k.endswith("||"))
    out = {"records": total, "sent": r["records_sent"], "acked_s": acked,
           "converged_s": t1 - t0, "cpu": ch.cpu_delta(c0, c1),
           "sim_cpu": r["cpu_s"] - sim0, "refusals": r["refusals"]}
    out.update(ch.federal_volume())
    log("%s: national figures equal the truth (%d records) after %.1f s; CPU %s; federal %s"
        % (name, total, out["converged_s"], {k: round(v, 1) for k, v in out["cpu"].items()},
           {k: out[k] for k in ("snapshots_received", "snapshots_held", "cells_held",
                                 "province_writes")}))
    return out


def phase_freshness(ch, args):
    r = ch.sim_cmd({"cmd": "background", "rate": args.bg_rate,
                    "days": min(30, (TODAY - datetime.date(TODAY.year, 1, 1)).days)})
    bg_records0 = r["records"]
    time.sleep(3)
    samples = []
    year = TODAY.year
    jan1 = datetime.date(year, 1, 1)
    for i in range(args.samples):
        node, cl, _ = ch.nodes[i % len(ch.nodes)]
        p = cl.new_person()
        reg = jan1 + datetime.timedelta(days=cl.rng.randint(0, (TODAY - jan1).days - 1))
        p["_reg"] = reg
        p["registered_on"] = bs.bs_str(reg)
        # The simulated municipalities add records of this year too, so the sample is
        # watched in the federal answer for its own municipality, which only it moves.
        want = sum(1 for q in cl.persons.values()
                   if q["_reg"].year == year and q["sex"] == p["sex"])
        path = os.path.join(ch.work, "fresh-%d.csv" % i)
        cl.write_csv(path, "persons", rows=[p])
        t_start = time.monotonic()
        node.import_csv("persons", path)
        t_commit = time.monotonic()
        while True:
            got = ch.national(year, "sex", node.municipality).get(p["sex"], 0)
            if got >= want:
                break
            if time.monotonic() - t_commit > 180:
                raise SystemExit("freshness sample %d: %s %d stayed at %d for 180 s"
                                 % (i, p["sex"], want, got))
            time.sleep(0.05)
        t_seen = time.monotonic()
        samples.append((t_seen - t_commit, t_commit - t_start))
        log("freshness %2d: node %d, %s %d: %.2f s after commit (import took %.2f s)"
            % (i, node.municipality, p["sex"], want, t_seen - t_commit, t_commit - t_start))
        time.sleep(args.gap)
    r = ch.sim_cmd({"cmd": "stop_background"})
    bg = r["records"] - bg_records0
    ch.wait_converged(120)
    lat = sorted(s[0] for s in samples)
    return {"samples": len(lat), "p50": statistics.median(lat), "p99": quantile(lat, 0.99),
            "max": lat[-1], "min": lat[0], "import_p50": statistics.median(s[1] for s in samples),
            "bg_records": bg}


def quantile(sorted_vals, q):
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    pos = q * (len(sorted_vals) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def phase_resync(ch, args):
    ch.sim_cmd({"cmd": "close"})
    for h in ch.hubs.values():
        h.stop()
    ch.fed.stop()
    t_wipe = time.monotonic()
    for h in ch.hubs.values():
        shutil.rmtree(os.path.join(h.dir, "data"))
    ch.pg.psql("DROP DATABASE reintegration", db="postgres")
    ch.pg.psql("CREATE DATABASE reintegration", db="postgres")
    ch.fed.start()
    ch.token = ch.fed.token("ministry", "national-bench-2")
    log("stores wiped (%.1f s); federal-api up on an empty database" % (time.monotonic() - t_wipe))

    def start_hubs():
        for h in ch.hubs.values():
            h.start()
        return None
    return phase_load(ch, "resync", start_hubs, args.timeout)


# Report ---------------------------------------------------------------------------------

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d cores (%s), kernel %s" % (os.cpu_count(), model, platform.release())


def per_million(cpu_s, records):
    return cpu_s / records * 1e6


def report(args, ch, mem, load, fresh, resync, cmd):
    def mark(ok):
        return "**met**" if ok else "**not met**"
    L = []
    L.append("## National simulation (issue 7)")
    L.append("")
    L.append("%s, %s. Command:" % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                                  machine()))
    L.append("")
    L.append("```\n%s\n```" % cmd)
    L.append("")
    L.append("Everything on one machine over loopback, every link mutual TLS 1.3: a private "
             "PostgreSQL 15, the real `federal-api`, the 7 real `provincial-hub`s (each with "
             "`[uplink] federal`), %d real `municipal-node serve` processes (%s) fed through "
             "`municipal-node import`, and the other %d municipalities simulated by "
             "`bench/nodesim.py` (one asyncio process, one session and one certificate per "
             "municipality, node protocol of `common/sync.c`, batches of %d, window %d). "
             "Ground truth (participants_registered per year %d-%d, by sex and by category, "
             "national) comes from the generators; a phase ends when those %d national figures "
             "equal it and every hub reports `hub_rollup_dirty` 0 and `hub_uplink_backlog` 0 "
             "(every period's snapshot delivered); then all %d monthly national figures by sex "
             "are checked once against the truth too (0 mismatches, or the run stops)."
             % (len(ch.nodes), ", ".join(map(str, ch.real_codes)), len(ch.geo) - len(ch.nodes),
                args.batch, args.window, YEARS[0], YEARS[-1], len(YEARS) * 8,
                getattr(ch, "months_checked", 0)))
    L.append("")
    L.append("| figure | value | goal |")
    L.append("| --- | --- | --- |")
    if fresh is None:
        L.append("| freshness | not measured in this run (`--samples 0`) | — |")
    else:
        L.append("| freshness: one row imported at a real node (`import` exit = commit) -> the "
               "federal API's participants_registered for its year by sex moved (answer for that "
               "municipality, which the background does not touch; polled every 50 ms; %d samples, "
               "background %d records/s registered in the last 30 days from simulated "
               "municipalities) | p50 %.2f s, "
               "p99 %.2f s (min %.2f, max %.2f) | p99 < 5 s: %s |"
               % (fresh["samples"], args.bg_rate, fresh["p50"], fresh["p99"], fresh["min"],
                  fresh["max"], mark(fresh["p99"] < 5)))
    L.append("| full resync of %s records from %d municipalities (stores wiped; tiers restarted "
             "empty) -> every national figure equal to the truth | %.1f s (hubs had every record "
             "acked after %.1f s) | < 120 s for 4,000,000: %s |"
             % (format(resync["records"], ","), len(ch.geo), resync["converged_s"],
                resync["acked_s"],
                ("%s" % mark(resync["converged_s"] < 120)) if resync["records"] >= 4000000
                else "not run at 4,000,000 here (see below); at this size %s"
                % ("within" if resync["converged_s"] < 120 else "over")))
    L.append("| hub memory per idle connected node (VmRSS of the 7 hubs, %d idle sessions) | "
             "%.1f KiB (per hub: %s) | < 64 KiB: %s |"
             % (mem["sessions"], mem["kib_per_session"],
                ", ".join("%.0f" % mem["per_hub"][p] for p in sorted(mem["per_hub"])),
                mark(mem["kib_per_session"] < 64)))
    for name, ph in (("initial load", load), ("full resync", resync)):
        n = ph["records"]
        L.append("| CPU s per million records, %s (%s records, %.1f s to the truth) | hubs %.1f, "
                 "federal-api %.1f, PostgreSQL %.1f, node simulator %.1f | — |"
                 % (name, format(n, ","), ph["converged_s"],
                    per_million(ph["cpu"]["hubs"], n), per_million(ph["cpu"]["federal"], n),
                    per_million(ph["cpu"]["postgres"], n), per_million(ph["sim_cpu"], n)))
    L.append("")
    L.append("Federal volume: the resync ended with %s snapshots ((municipality, period) pairs) "
             "holding %s cells, %.0f cells per record; the federal tier received %s snapshot "
             "revisions for them (%.1f per pair: a pair is replaced each time a hub sends it "
             "again while its records still arrive); the province aggregates took %s row "
             "writes for them (%.2f per cell held: the cells of one batch are summed per "
             "province row before they reach it)."
             % (format(resync["snapshots_held"], ","), format(resync["cells_held"], ","),
                resync["cells_held"] / max(1, resync["records"]),
                format(resync["snapshots_received"], ","),
                resync["snapshots_received"] / max(1, resync["snapshots_held"]),
                format(resync["province_writes"], ","),
                resync["province_writes"] / max(1, resync["cells_held"])))
    L.append("")
    L.append("Set-up figures of the same run: `deploy/pki.sh issue` for %d identities in one call "
             "%.1f s; the simulator generated its records in %.1f s; %d simulated sessions "
             "connected (TLS + Hello) in %.1f s; background load during freshness: %d records. "
             "Hub refusals: %d."
             % (len(ch.geo) + 8, ch.pki_s, ch.sim_gen_s, mem["sessions"] - len(ch.nodes),
                mem["connect_s"], fresh["bg_records"] if fresh else 0, resync["refusals"]))
    if resync["records"] < 4000000:
        L.append("")
        L.append("Scale: this run resynced %s records, not the issue's 4,000,000 (`--records "
                 "4000000`); the goal of 120 s is judged only at that size. The CPU figures "
                 "above show where the time goes: PostgreSQL (the federal tier's snapshot "
                 "replacement) is the busiest tier, then the hubs." % format(resync["records"], ","))
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=400000,
                    help="records held by all municipalities together (issue: 4000000)")
    ap.add_argument("--quick", action="store_true",
                    help="40,000 records, 8 freshness samples: an end-to-end check")
    ap.add_argument("--samples", type=int, default=20,
                    help="freshness samples (0: skip the freshness phase)")
    ap.add_argument("--bg-rate", type=int, default=1000,
                    help="background records/s from simulated municipalities during freshness")
    ap.add_argument("--gap", type=float, default=0.5, help="pause between freshness samples")
    ap.add_argument("--real-nodes", type=int, default=3)
    ap.add_argument("--real-rows", type=int, default=300, help="rows imported per real node")
    ap.add_argument("--batch", type=int, default=2000, help="simulated nodes' records per batch")
    ap.add_argument("--window", type=int, default=8, help="simulated nodes' batches in flight")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=int, default=900, help="bound on each convergence wait")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = ap.parse_args()
    if args.quick:
        if "--records" not in sys.argv:
            args.records = 40000
        if "--samples" not in sys.argv:
            args.samples = 8
    cmd = "/usr/bin/python3 bench/national.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    work = tempfile.mkdtemp(prefix="national-", dir="/var/tmp")
    log("work directory %s" % work)
    ch = Chain(args, work)
    try:
        ch.start()
        mem = phase_idle_memory(ch)
        load = phase_load(ch, "initial load", lambda: None, args.timeout)
        fresh = phase_freshness(ch, args) if args.samples > 0 else None
        resync = phase_resync(ch, args)
    finally:
        ch.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = report(args, ch, mem, load, fresh, resync, cmd)
    print(text)
    if not args.no_append:
        with open(os.path.join(ROOT, "docs", "BENCHMARKS.md"), "a", encoding="utf-8") as f:
            f.write("\n" + text)
    log("done in %.0f s" % (time.monotonic() - T0))


if __name__ == "__main__":
    main()
