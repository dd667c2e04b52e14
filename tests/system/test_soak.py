"""Fault soak, bounded in time: real municipal nodes in provinces 1 and 2 keep importing new
and corrected rows while faults strike at random (seeded) moments: kill -9 of a hub and of
the federal API, a PostgreSQL restart, connection resets and stalls from a proxy of our
own between a node and its hub, a node's disk filling up (a real tmpfs), and a node
restored from an older copy of its store. At the end every national total in the federal
API equals the generator's ground truth exactly, and each hub holds exactly one record per
record the generator made for each municipality, with the generator's content (the
expectation comes from the generator alone, so a duplicate or a missing record at the hub
fails), and each node's newest versions.

Every fault kind chosen must run, at least once: one that cannot (no tmpfs without root, for
instance) fails the test instead of being skipped. The disk_full fault is sized to the store:
the node's tmpfs grows with the run, and the fault leaves a known small free space (its
WAL truncated first, so SQLite has no room of its own to reuse), then imports more rows
than fit.

SOAK_SECONDS (default 60) bounds the fault phase; `make soak` runs the same test longer.
SOAK_SEED picks the schedule. The summary goes to stdout and build/soak-report.json.

Restore: records made after the backup and already synced are lost at the node but kept
upstream (DESIGN: the hub keeps the newest version; same incarnation, so no sweep). The
clerk re-enters what the restored node lacks only if it never reached the hub; here the
node is synced before the restore, so the lost records stay upstream with their last
content and the generator stops editing them. (Re-importing them would give them the same
keyed ids and change nothing: test_restore.py shows a full re-import keeping one copy.)"""
import collections
import datetime
import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
import types

import pytest

from faultproxy import FaultProxy
from fedclient import Federal
from gen import TODAY, Caseload
from harness import ROOT, Hub, Node, ini_set, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from spine import KIND_PERSON, KIND_SERVICE, check_hub_matches, node_versions
from test_chain import FreshDatabase

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
SEED = int(os.environ.get("SOAK_SEED", "20837"))
KINDS = ["hub_kill9", "federal_kill9", "postgres_restart", "conn_reset", "conn_stall",
         "disk_full", "restore"]
# Registrations span the last five years (gen.Caseload): every year involved is checked.
YEARS = list(range((TODAY - datetime.timedelta(days=5 * 365)).year, TODAY.year + 1))
REPORT = os.path.join(ROOT, "build", "soak-report.json")
RESTORE_LIVE = os.environ.get("SOAK_RESTORE_LIVE") == "1"
# Every fault kind runs by default; SOAK_FAULTS names a subset: SOAK_FAULTS=hub_kill9,restore
_chosen = os.environ.get("SOAK_FAULTS", "")
FAULTS = ([k for k in _chosen.split(",") if k] if _chosen and _chosen != "all" else list(KINDS))
assert all(k in KINDS for k in FAULTS), "SOAK_FAULTS: unknown kind in %r" % _chosen
# disk_full: what the ballast leaves free on the node's tmpfs, and the room the tmpfs keeps
# free the rest of the time (it is remounted larger as the store grows).
DISK_LEFT_FREE = 64 * 1024
DISK_HEADROOM = 16 << 20


def backup(db, dest):
    """SQLite's online backup: a consistent copy of a live WAL database."""
    src = sqlite3.connect(db, timeout=30)
    dst = sqlite3.connect(dest)
    src.backup(dst)
    dst.close()
    src.close()


def wal_truncate(db, seconds=10):
    """PRAGMA wal_checkpoint(TRUNCATE) on a live store, retried while another connection
    holds it up. Returns whether the WAL was emptied."""
    deadline = time.time() + seconds
    c = sqlite3.connect(db, timeout=seconds)
    try:
        while True:
            busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy or time.time() > deadline:
                break
            time.sleep(0.05)
    finally:
        c.close()
    return not busy and (not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0)


def store_bytes(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return (c.execute("PRAGMA page_count").fetchone()[0] *
                c.execute("PRAGMA page_size").fetchone()[0])
    finally:
        c.close()


def national_by_sex(fed, token, year):
    st, a, _ = fed.get("/v1/indicators/participants_registered?period=%d&by=sex" % year, token)
    if st != 200:
        raise AssertionError("federal answered %d: %r" % (st, a))
    return {r["sex"]: r["value"] for r in a["rows"] if r["value"]}


def truth_by_sex(caseloads, year):
    t = {}
    for cl in caseloads:
        for lid, p in cl.persons.items():
            if ("person", lid) not in cl.deleted and p["_reg"].year == year:
                t[p["sex"]] = t.get(p["sex"], 0) + 1
    return t


# The upstream fields the generator predicts (gen.Caseload.expected_person/_service), by the
# category that decides which a person has; a service also names its person.
PERSON_FIELDS = ("category", "sex", "age_band", "caste_group", "disability", "registered_month",
                 "registered_bs_month", "destination_country", "family_member_abroad", "consent")
RETURNEE_FIELDS = ("return_month", "years_abroad", "remigration_intention")
RETURNEE = 1
SERVICE_FIELDS = ("type", "status", "month", "bs_month", "provider", "programme", "amount_npr")


def person_fields(category):
    return PERSON_FIELDS + (RETURNEE_FIELDS if category == RETURNEE else ())


def truth_keys(cl):
    """What the hub must hold for the caseload, from the generator alone: one content key
    per record it made (persons, services; deleted ones as tombstones), with multiplicity."""
    keys = collections.Counter()
    person_key = {}
    for lid, p in cl.persons.items():
        want = cl.expected_person(p)
        assert set(want) == set(person_fields(want["category"])), sorted(want)
        person_key[lid] = tuple((f, want[f]) for f in person_fields(want["category"]))
    for lid in cl.persons:
        deleted = ("person", lid) in cl.deleted
        keys[("person", "tombstone") if deleted else ("person", person_key[lid])] += 1
    for lid, sv in cl.services.items():
        if ("service", lid) in cl.deleted:
            keys[("service", "tombstone")] += 1
            continue
        want = cl.expected_service(sv)
        assert set(want) == set(SERVICE_FIELDS), sorted(want)
        keys[("service", tuple((f, want[f]) for f in SERVICE_FIELDS),
              person_key[sv["person_local_id"]])] += 1
    return keys


def hub_keys(stored):
    """The same content keys for what a hub stores for one municipality."""
    keys = collections.Counter()
    person_key = {}
    for rid, (_, _, _, deleted, rec) in stored.items():
        if not deleted and rec.WhichOneof("body") == "person":
            b = rec.person
            person_key[rid] = tuple((f, getattr(b, f)) for f in person_fields(b.category))
    for rid, (_, _, _, deleted, rec) in stored.items():
        body = rec.WhichOneof("body")
        if deleted or body == "tombstone":
            name = {KIND_PERSON: "person", KIND_SERVICE: "service"}.get(rec.tombstone.kind,
                                                                       "other")
            keys[(name, "tombstone")] += 1
        elif body == "person":
            keys[("person", person_key[rid])] += 1
        elif body == "service":
            b = rec.service
            keys[("service", tuple((f, getattr(b, f)) for f in SERVICE_FIELDS),
                  person_key.get(bytes(b.person_id)))] += 1
        else:
            keys[(body, rid)] += 1
    return keys


def check_hub_holds_ground_truth(hubs, site):
    """Exactly one record at the node's hub per record the generator made for the
    municipality, with the generator's content, and none at any other hub. Built from the
    generator's ground truth, not from the node's store: a record the hub holds twice (under
    two ids) or lacks fails. Returns the number of records checked."""
    m = site.node.municipality
    want = truth_keys(site.cl)
    got = hub_keys(site.hub.records(m))
    problems = []
    missing, extra = want - got, got - want
    if missing:
        problems.append("%d record(s) of the generator missing at hub %d (or with other "
                        "content), e.g. %r" % (sum(missing.values()), site.hub.province,
                                               next(iter(missing))))
    if extra:
        problems.append("%d record(s) at hub %d the generator did not make once (a duplicate, "
                        "or other content), e.g. %r" % (sum(extra.values()), site.hub.province,
                                                        next(iter(extra))))
    for p, other in hubs.items():
        if other is not site.hub and other.records(m):
            problems.append("hub %d holds %d record(s) of municipality %d"
                            % (p, len(other.records(m)), m))
    assert not problems, "\n".join(problems)
    return sum(want.values())


class Site:
    """One municipal node under test: its generator, its serve process, the rows that a
    restore left upstream only (frozen), and the optional proxy and tmpfs in its path."""

    def __init__(self, workdir, pki, code, seed, hub, proxy=False, tmpfs=False):
        self.workdir = workdir
        self.node = Node(workdir, pki, code, hub)
        self.cl = Caseload(code, seed)
        self.rng = random.Random(seed * 7919)
        self.hub = hub
        self.frozen = {}   # (name, local_id) -> (record id, version) kept upstream only
        self.serve = None
        self.proxy = None
        self.mount = None
        self.backup_path = None
        self.imports = 0
        if proxy:
            self.proxy = FaultProxy(("127.0.0.1", hub.sync_port)).start()
            self._edit_config("hub = 127.0.0.1:%d" % hub.sync_port,
                              "hub = 127.0.0.1:%d" % self.proxy.port)
        if tmpfs:
            mount = os.path.join(workdir, "disk-%d" % code)
            os.makedirs(mount)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mount],
                               capture_output=True, text=True)
            if r.returncode != 0:
                # The disk_full fault cannot run without it: that fails the soak.
                raise AssertionError("cannot mount a tmpfs for node %d's store (the disk_full "
                                     "fault needs root): %s"
                                     % (code, (r.stderr or r.stdout).strip()))
            self.mount = mount
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.node.db + suffix):
                    shutil.move(self.node.db + suffix, self.mount)
            self._edit_config("data_dir = %s\n" % self.node.dir,
                              "data_dir = %s\n" % self.mount)
            self.node.db = os.path.join(self.mount, "node.db")
        self.pcsv = os.path.join(workdir, "p-%d.csv" % code)
        self.scsv = os.path.join(workdir, "s-%d.csv" % code)

    def _edit_config(self, old, new):
        with open(self.node.config) as f:
            text = f.read()
        assert old in text, (old, text)
        with open(self.node.config, "w") as f:
            f.write(text.replace(old, new))

    # The clerk's work -------------------------------------------------------------------

    def live(self, kind):
        src = self.cl.persons if kind == "persons" else self.cl.services
        name = "person" if kind == "persons" else "service"
        return [r for lid, r in src.items() if (name, lid) not in self.frozen]

    def grow(self, persons, services, corrections):
        for _ in range(persons):
            self.cl.new_person()
        people = [r["local_id"] for r in self.live("persons")]
        for _ in range(services):
            self.cl.new_service(self.rng.choice(people))
        for _ in range(corrections):
            self.cl.correct_person(self.rng.choice(people))
        svcs = [r["local_id"] for r in self.live("services")]
        if svcs:
            self.cl.correct_service(self.rng.choice(svcs))

    def write(self):
        self.cl.write_csv(self.pcsv, "persons", rows=self.live("persons"))
        self.cl.write_csv(self.scsv, "services", rows=self.live("services"))

    # The node's tmpfs -------------------------------------------------------------------

    def disk(self):
        """(used, free) bytes of the tmpfs."""
        st = os.statvfs(self.mount)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize

    def grow_disk(self):
        """Keeps DISK_HEADROOM free on the tmpfs (remounted larger as the store grows), so
        that only the disk_full fault ever fills it, however long the soak."""
        used, free = self.disk()
        if free >= DISK_HEADROOM:
            return
        size = used + 2 * DISK_HEADROOM
        r = subprocess.run(["mount", "-o", "remount,size=%d" % size, self.mount],
                           capture_output=True, text=True)
        assert r.returncode == 0, "cannot grow node %d's tmpfs to %d bytes: %s" % (
            self.node.municipality, size, (r.stderr or r.stdout).strip())

    def import_all(self, check=True, grow_disk=True):
        """Persons then services, the way a clerk loads the two spreadsheets. Returns the
        first failed run (or None)."""
        if self.mount and grow_disk:
            self.grow_disk()
        self.write()
        for kind, path in (("persons", self.pcsv), ("services", self.scsv)):
            r = self.node.import_csv(kind, path, check=False)
            self.imports += 1
            if r.returncode != 0:
                if check:
                    raise AssertionError("import %s at %d failed (%d):\n%s%s"
                                         % (kind, self.node.municipality, r.returncode,
                                            r.stdout, r.stderr))
                return r
        return None

    def start(self, procs):
        self.serve = self.node.serve()
        procs.append(self.serve)

    def records(self):
        return len(self.cl.persons) + len(self.cl.services)

    # The end check ------------------------------------------------------------------------

    def check_hub(self):
        """spine.check_hub_matches for what the node holds; records frozen by a restore are
        checked separately (at the hub once, with the content and version they had)."""
        if not self.frozen:
            return check_hub_matches(self.hub, self.node, self.cl)
        frozen_ids = {rid for rid, _ in self.frozen.values()}
        view = types.SimpleNamespace(
            persons={r["local_id"]: r for r in self.live("persons")},
            services={r["local_id"]: r for r in self.live("services")},
            deleted=self.cl.deleted, expected_person=self.cl.expected_person,
            expected_service=self.cl.expected_service)
        hub = self.hub

        class HubView:
            def records(self, municipality=None):
                return {k: v for k, v in hub.records(municipality).items()
                        if k not in frozen_ids}
        n = check_hub_matches(HubView(), self.node, view)
        stored = hub.records(self.node.municipality)
        ids = dict(self.node.ids())
        for (name, lid), (rid, _) in self.frozen.items():
            ids[(KIND_PERSON if name == "person" else KIND_SERVICE, lid)] = rid
        problems = []
        for (name, lid), (rid, ver) in self.frozen.items():
            got = stored.get(rid)
            if got is None:
                problems.append("%s %s (kept upstream after the restore) missing at the hub"
                                % (name, lid))
                continue
            _, _, sver, deleted, rec = got
            if deleted or sver != ver:
                problems.append("%s %s: hub has version %d deleted=%d, expected %d"
                                % (name, lid, sver, deleted, ver))
                continue
            row = (self.cl.persons if name == "person" else self.cl.services)[lid]
            exp = (self.cl.expected_person if name == "person" else self.cl.expected_service)
            body = getattr(rec, name)
            for field, want in exp(row).items():
                if getattr(body, field) != want:
                    problems.append("%s %s: %s is %r, expected %r"
                                    % (name, lid, field, getattr(body, field), want))
            if name == "service" and body.person_id != ids[(KIND_PERSON,
                                                            row["person_local_id"])]:
                problems.append("service %s points to the wrong person" % lid)
        assert not problems, "\n".join(problems[:30])
        return n + len(self.frozen)


class Soak:
    def __init__(self, rng, fed, pg, hubs, sites, procs, kinds):
        self.rng, self.fed, self.pg, self.hubs, self.sites, self.procs = \
            rng, fed, pg, hubs, sites, procs
        self.kinds = kinds
        self.faults = {k: 0 for k in kinds}
        self.notes = []     # what happened, for the report

    def note(self, msg):
        self.notes.append("%.1fs %s" % (time.time() - self.t0, msg))

    # Faults --------------------------------------------------------------------------------

    def hub_kill9(self):
        hub = self.hubs[self.rng.choice(sorted(self.hubs))]
        hub.kill9()
        time.sleep(self.rng.uniform(0.0, 1.5))
        hub.start()
        self.note("kill -9 hub %d" % hub.province)

    def federal_kill9(self):
        self.fed.kill9()
        time.sleep(self.rng.uniform(0.0, 1.5))
        self.fed.start()
        self.note("kill -9 federal-api")

    def postgres_restart(self):
        self.pg.restart()
        self.note("PostgreSQL restarted")

    def _proxied(self):
        return self.rng.choice([s for s in self.sites if s.proxy])

    def conn_reset(self):
        s = self._proxied()
        n = s.proxy.reset()
        self.note("reset %d connection(s) of node %d" % (n, s.node.municipality))

    def conn_stall(self):
        s = self._proxied()
        secs = self.rng.uniform(2.0, 6.0)
        s.proxy.stall(secs)
        self.note("stalled node %d's link for %.1fs" % (s.node.municipality, secs))

    def disk_full(self):
        s = next(s for s in self.sites if s.mount)
        s.grow_disk()
        # SQLite first reuses room it already has: its WAL file (rewritten from the start
        # after a checkpoint) and free pages (written through the WAL too). A WAL truncated
        # to nothing leaves it no room of its own: every page the import writes is appended
        # to the WAL, which must grow into the free space the ballast leaves.
        truncated = wal_truncate(s.node.db)
        used, free = s.disk()
        ballast = os.path.join(s.mount, "ballast")
        # Unbuffered: a buffered file would raise ENOSPC again when closed, on the bytes it
        # still held when the disk filled.
        with open(ballast, "wb", buffering=0) as f:
            left = free - DISK_LEFT_FREE
            try:
                while left > 0:
                    left -= f.write(b"\0" * min(left, 1 << 20))
            except OSError:
                pass
        failed = None
        try:
            _, room = s.disk()
            assert room <= DISK_LEFT_FREE + 16 * 1024, \
                "node %d's tmpfs kept %d bytes free after the ballast" % (s.node.municipality, room)
            # Rows enough that the import writes several times the room left, at the store's
            # own size per record (pages, indexes and local fields included).
            per_record = max(1, store_bytes(s.node.db) // max(1, s.records()))
            persons = max(100, 4 * (room + DISK_LEFT_FREE) // per_record)
            s.grow(persons, persons // 3, 2)
            failed = s.import_all(check=False, grow_disk=False)
        finally:
            os.remove(ballast)
        assert failed is not None, (
            "node %d imported %d new persons with %d bytes free on its tmpfs (WAL truncated: "
            "%s, %d bytes per record)" % (s.node.municipality, persons, room, truncated,
                                          per_record))
        err = failed.stderr.strip()
        assert failed.returncode == 1 and "full" in err, \
            "import on a full disk: exit %d, %r" % (failed.returncode, err)
        self.disk_full_error = err.splitlines()[-1]
        if not s.serve.alive():
            self.note("node %d serve died on the full disk; restarted" % s.node.municipality)
            s.start(self.procs)
        s.import_all()  # space is back: the same spreadsheets go in whole
        self.note("node %d disk full: an import of %d new persons with %d bytes free failed "
                  "(%s); freed, re-imported" % (s.node.municipality, persons, room,
                                                self.disk_full_error))

    def restore(self):
        s = next(s for s in self.sites if s.backup_path)
        # Everything is at the hub before the disk dies: what the copy lacks stays upstream.
        wait_for(lambda: s.node.status()["backlog"] == 0, 30,
                 "node %d to sync before the restore" % s.node.municipality)
        ids_now, vers_now = s.node.ids(), node_versions(s.node)
        c = sqlite3.connect(s.backup_path)
        in_copy = {(k, lid) for k, lid in c.execute("SELECT kind, local_id FROM records")}
        c.close()
        lost = 0
        for (kind, lid), rid in ids_now.items():
            if (kind, lid) not in in_copy:
                name = "person" if kind == KIND_PERSON else "service"
                s.frozen[(name, lid)] = (rid, vers_now[rid])
                lost += 1
        s.serve.stop()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(s.node.db + suffix):
                os.remove(s.node.db + suffix)
        shutil.copy(s.backup_path, s.node.db)
        os.remove(s.backup_path)
        s.backup_path = None
        # The clerk's spreadsheets, less what lives on only upstream. By default they go in
        # before the node serves again (the order test_restore uses); SOAK_RESTORE_LIVE=1
        # imports while serve runs (test_restore.py covers both orders, and a full re-import).
        if RESTORE_LIVE:
            s.start(self.procs)
            s.import_all()
        else:
            s.import_all()
            s.start(self.procs)
        self.note("node %d restored from an older copy (%d records kept upstream only)"
                  % (s.node.municipality, lost))

    # The run ----------------------------------------------------------------------------------

    def backup_site(self):
        return next(s for s in self.sites if not s.proxy and not s.mount)

    def catch_up(self):
        """Strikes every chosen kind that the timed phase did not reach (its schedule can run
        past the end when earlier faults take long): each kind runs at least once per soak."""
        for kind in self.kinds:
            if self.faults[kind]:
                continue
            b = self.backup_site()
            if kind == "restore" and not b.backup_path:
                b.backup_path = os.path.join(b.workdir, "node-copy.db")
                backup(b.node.db, b.backup_path)
                self.note("copy of node %d's store taken" % b.node.municipality)
                # Work after the copy, for the restore to lose upstream.
                b.grow(self.rng.randint(20, 60), self.rng.randint(10, 30), 2)
                b.import_all()
            getattr(self, kind)()
            self.faults[kind] += 1
            self.note("(%s after the timed phase)" % kind)

    def run(self, seconds):
        self.t0 = time.time()
        end = self.t0 + seconds
        # Every kind at least once when there is time for it, then at random.
        kinds = self.kinds
        n = max(len(kinds), int(seconds / 6))
        plan = self.rng.sample(kinds, len(kinds)) + [self.rng.choice(kinds)
                                                     for _ in range(n - len(kinds))]
        plan = plan[:n]
        at = sorted(self.rng.uniform(3.0, max(4.0, seconds - 4.0)) for _ in plan)
        schedule = list(zip(at, plan))
        next_import = 0.0
        backup_site = self.backup_site()
        while time.time() < end:
            now = time.time() - self.t0
            if schedule and now >= schedule[0][0]:
                _, kind = schedule.pop(0)
                if kind == "restore" and not backup_site.backup_path:
                    backup_site.backup_path = os.path.join(backup_site.workdir, "node-copy.db")
                    backup(backup_site.node.db, backup_site.backup_path)
                    schedule.append((now + 4.0, kind))  # work happens after the copy
                    schedule.sort()
                    self.note("copy of node %d's store taken" % backup_site.node.municipality)
                else:
                    getattr(self, kind)()
                    self.faults[kind] += 1
                continue
            if now >= next_import:
                for s in self.sites:
                    s.grow(self.rng.randint(20, 60), self.rng.randint(10, 30),
                           self.rng.randint(0, 4))
                    s.import_all()
                next_import = now + self.rng.uniform(1.5, 3.5)
                if not backup_site.backup_path and self.rng.random() < 0.3:
                    backup_site.backup_path = os.path.join(backup_site.workdir,
                                                           "node-copy.db")
                    backup(backup_site.node.db, backup_site.backup_path)
                    self.note("copy of node %d's store taken"
                              % backup_site.node.municipality)
            time.sleep(0.05)


@pytest.fixture
def soak_world(pki, workdir, procs, postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
    procs.append(fed)
    token = fed.token("ministry", "soak-%d-%d" % (os.getpid(), time.time_ns()))
    hubs = {}
    for p in (1, 2):
        hub = Hub(workdir, pki, p)
        ini_set(hub.config, "[uplink]\nfederal = 127.0.0.1:%d\n" % fed.sync_port)
        hubs[p] = hub.start()
        procs.append(hub)
    sites = []
    try:
        sites.append(Site(workdir, pki, 10703, 71, hubs[1], proxy=True,
                          tmpfs="disk_full" in FAULTS))
        sites.append(Site(workdir, pki, 10401, 72, hubs[1]))
        sites.append(Site(workdir, pki, 21710, 73, hubs[2], proxy=True))
        yield fed, token, hubs, sites
    finally:
        # Daemons first (they hold files on the tmpfs), then the proxies and the mount.
        for p in procs:
            try:
                p.kill9()
            except Exception:
                pass
        for s in sites:
            if s.proxy:
                s.proxy.close()
            if s.mount:
                subprocess.run(["umount", s.mount], capture_output=True)


def test_soak_national_totals_equal_ground_truth(soak_world, postgres, procs):  # noqa: F811
    fed, token, hubs, sites = soak_world
    rng = random.Random(SEED)
    kinds = list(FAULTS)
    for s in sites:
        s.grow(300, 150, 0)
        s.import_all()
        s.start(procs)
    soak = Soak(rng, fed, postgres, hubs, sites, procs, kinds)
    soak.run(SOAK_SECONDS)
    soak.catch_up()
    # Stop injecting; let everything settle.
    t_settle = time.time()
    for s in sites:
        if s.proxy:
            s.proxy.flowing.set()
    for d in list(hubs.values()) + [fed]:
        if not d.alive():
            d.start()
    for s in sites:
        assert s.serve.alive(), "node %d serve died:\n%s" % (s.node.municipality,
                                                            s.serve.log_text()[-2000:])
    mismatches = []
    for s in sites:
        try:
            wait_for(lambda: s.node.status()["backlog"] == 0, 60,
                     "node %d backlog to drain" % s.node.municipality)
        except AssertionError as e:
            mismatches.append("%s (status %r)" % (e, s.node.status()))
    records = 0
    for s in sites:
        try:
            records += check_hub_holds_ground_truth(hubs, s)
        except AssertionError as e:
            mismatches.append("hub %d vs the generator's municipality %d: %s"
                              % (s.hub.province, s.node.municipality, str(e)[:2000]))
        try:
            # The newest version of each record, joined through the node's own ids.
            s.check_hub()
        except AssertionError as e:
            mismatches.append("hub %d vs node %d: %s" % (s.hub.province, s.node.municipality,
                                                         str(e)[:2000]))
    caseloads = [s.cl for s in sites]
    want = {y: truth_by_sex(caseloads, y) for y in YEARS}
    last = {}

    def national_ok():
        try:
            for y in YEARS:
                last[y] = national_by_sex(fed, token, y)
        except (OSError, AssertionError) as e:
            last["error"] = str(e)
            return False
        last.pop("error", None)
        return all(last[y] == want[y] for y in YEARS)
    try:
        wait_for(national_ok, 60, "national totals to equal the ground truth")
    except AssertionError:
        for y in YEARS:
            if last.get(y) != want[y]:
                mismatches.append("national %d by sex: federal %r, truth %r"
                                  % (y, last.get(y), want[y]))
        if "error" in last:
            mismatches.append("federal: " + last["error"])
    settle_s = time.time() - t_settle
    total_truth = sum(sum(v.values()) for v in want.values())
    report = {
        "seconds": SOAK_SECONDS,
        "seed": SEED,
        "restore_live": RESTORE_LIVE,
        "faults": soak.faults,
        "records": sum(s.records() for s in sites),
        "records_at_hubs_checked": records,
        "persons_in_national_totals": total_truth,
        "imports": sum(s.imports for s in sites),
        "proxy": {s.node.municipality: dict(s.proxy.counts) for s in sites if s.proxy},
        "kept_upstream_after_restore": sum(len(s.frozen) for s in sites),
        "settle_seconds": round(settle_s, 1),
        "mismatches": len(mismatches),
        "mismatch_details": mismatches,
        "events": soak.notes,
    }
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    with open(REPORT, "w") as f:
        json.dump(report, f, indent=2)
    line = "soak: faults {%s}, records %d, mismatches %d" % (
        ", ".join("%s: %d" % kv for kv in soak.faults.items()), report["records"],
        len(mismatches))
    print("\n" + line)
    print("soak: %s; settled in %.1fs; report %s" % (
        ", ".join(soak.notes[-3:]) if soak.notes else "no events", settle_s, REPORT))
    assert not mismatches, line + "\n" + "\n".join(mismatches)
    for k, n in soak.faults.items():
        assert n >= 1, "fault %s never struck" % k
