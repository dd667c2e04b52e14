"""Restore and re-initialisation: a node restored from an older copy of its store, then
edited, ends with its edits at the hub; a node restored from an older copy and fed all of its
spreadsheets again, or re-initialised and fed the same data again, leaves the hub with one
copy of each record (record ids are keyed by (kind, local_id) with the store's id key, which
every backup carries), also when the re-import is killed midway."""
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import types

from gen import Caseload
from harness import Hub, Node, run, BIN, wait_for
from spine import KIND_PERSON, check_hub_matches


def backup(db, dest):
    # SQLite's online backup: a consistent copy even of a WAL database.
    src = sqlite3.connect(db)
    dst = sqlite3.connect(dest)
    src.backup(dst)
    dst.close()
    src.close()


def test_restored_node_edits_reach_the_hub(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 7)
    for _ in range(300):
        cl.new_person()
    p = os.path.join(workdir, "p.csv")
    cl.write_csv(p, "persons")
    node.import_csv("persons", p)
    node.sync()
    copy = os.path.join(workdir, "node-backup.db")
    backup(node.db, copy)
    # After the backup: more work, synced (the hub's position moves past the copy's).
    later = [cl.new_person() for _ in range(200)]
    cl.write_csv(p, "persons")
    node.import_csv("persons", p)
    node.sync()
    # The disk dies; the clerk restores last week's copy and keeps working.
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(node.db + suffix):
            os.remove(node.db + suffix)
    shutil.copy(copy, node.db)
    edited = list(cl.persons)[:50]
    for lid in edited:
        cl.correct_person(lid)
    fresh = [cl.new_person() for _ in range(20)]
    rows = [cl.persons[lid] for lid in edited] + fresh
    cl.write_csv(p, "persons", rows=rows)
    node.import_csv("persons", p)
    node.sync()
    stored = hub.records(10703)
    ids = node.ids()
    for lid in edited + [f["local_id"] for f in fresh]:
        rid = ids[(KIND_PERSON, lid)]
        assert rid in stored, lid
        want = cl.expected_person(cl.persons[lid])
        got = stored[rid][4].person
        for k, v in want.items():
            assert getattr(got, k) == v, (lid, k)
    # The records made after the backup (lost at the node) are still at the hub, once.
    assert len(stored) == 520


def test_reinitialised_node_replaces_not_doubles(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 9)
    for _ in range(400):
        cl.new_person()
    lids = list(cl.persons)
    for i in range(300):
        cl.new_service(lids[i])
    p = os.path.join(workdir, "p.csv")
    s = os.path.join(workdir, "s.csv")
    cl.write_csv(p, "persons")
    cl.write_csv(s, "services")
    node.import_csv("persons", p)
    node.import_csv("services", s)
    node.sync()
    assert len(hub.records(10703)) == 700
    # Wipe the node and start again from the same spreadsheets.
    shutil.rmtree(node.dir)
    node = Node(workdir, pki, 10703, hub)
    node.import_csv("persons", p)
    node.import_csv("services", s)
    node.sync()
    assert len(hub.records(10703)) == 700
    check_hub_matches(hub, node, cl)
    m = hub.metrics()
    assert m["hub_swept_records_total"] == 700
    # Set aside, not destroyed: kept until a hub admin confirms the sweep.
    assert m["hub_sweeps_pending"] == 1 and m["hub_swept_records_kept"] == 700


def _restored_node(pki, workdir, procs, serve_first):
    """A node synced, copied, given 50 more persons (synced), then restored from the copy:
    the 50 are at the hub but no longer at the node."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 5)
    for _ in range(100):
        cl.new_person()
    p = os.path.join(workdir, "p.csv")
    cl.write_csv(p, "persons")
    node.import_csv("persons", p)
    node.sync()
    copy = os.path.join(workdir, "copy.db")
    backup(node.db, copy)
    lost = {cl.new_person()["local_id"] for _ in range(50)}
    cl.write_csv(p, "persons")
    node.import_csv("persons", p)
    node.sync()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(node.db + suffix):
            os.remove(node.db + suffix)
    shutil.copy(copy, node.db)
    if serve_first:
        procs.append(node.serve())
    return hub, node, cl, p, lost


def test_restore_then_full_reimport_keeps_one_copy(pki, workdir, procs):
    hub, node, cl, p, lost = _restored_node(pki, workdir, procs, serve_first=False)
    cl.write_csv(p, "persons")  # every row the clerk has, as a clerk would
    node.import_csv("persons", p)
    node.sync()
    check_hub_matches(hub, node, cl)  # the hub holds nothing else: no second copy
    assert len(hub.records(10703)) == 150


def test_restored_node_serving_while_the_clerk_imports_loses_nothing(pki, workdir, procs):
    hub, node, cl, p, lost = _restored_node(pki, workdir, procs, serve_first=True)
    time.sleep(0.5)  # the session is up, positioned after the hub's count
    kept = [lid for lid in cl.persons if lid not in lost]
    for lid in kept[:10]:
        cl.correct_person(lid)
    for _ in range(100):  # enough entries to pass the hub's count within the session
        cl.new_person()
    view = types.SimpleNamespace(
        persons={lid: r for lid, r in cl.persons.items() if lid not in lost}, services={},
        deleted=set(), expected_person=cl.expected_person, expected_service=None)
    cl.write_csv(p, "persons", rows=list(view.persons.values()))
    node.import_csv("persons", p)
    wait_for(lambda: node.status()["backlog"] == 0, 30, "backlog to drain")
    node.server.kill9()  # a restart: the node's session begins again from the hub's position
    procs.append(node.serve())
    wait_for(lambda: node.status()["backlog"] == 0, 30, "backlog to drain")
    stored = hub.records(10703)
    lost_ids = set(stored) - set(node.ids().values())
    assert len(lost_ids) == len(lost)  # the 50 the copy lacks stay upstream, once each

    class HubView:
        def records(self, municipality=None):
            return {k: v for k, v in hub.records(municipality).items() if k not in lost_ids}
    check_hub_matches(HubView(), node, view)


def test_reinitialised_node_killed_during_its_reimport_keeps_one_copy(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 19)
    total = 25000  # more than one import commit (10,000 rows)
    for _ in range(total):
        cl.new_person()
    p = os.path.join(workdir, "p.csv")
    cl.write_csv(p, "persons")
    node.import_csv("persons", p)
    node.sync()
    assert len(hub.records(10703)) == total
    # Wipe the node and start again from the same spreadsheet, serving while it imports.
    # The import holds still after its first commit (a test hook), so that kill -9 lands
    # midway; the serving node is killed too. Then the clerk imports again.
    shutil.rmtree(node.dir)
    node = Node(workdir, pki, 10703, hub)
    procs.append(node.serve())
    imp = subprocess.Popen([os.path.join(BIN, "municipal-node"), "--enable-test-hooks",
                            "--test-fault", "import_stall:1", "--config", node.config,
                            "import", "--kind", "persons", p],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _rows(node.db) >= 10000 or imp.poll() is not None, 60,
             "the import's first commit")
    assert imp.poll() is None, "the import ended before it could be killed midway"
    midway = _rows(node.db)
    imp.send_signal(signal.SIGKILL)
    imp.wait()
    node.server.kill9()
    assert 0 < midway < total
    procs.append(node.serve())
    node.import_csv("persons", p)
    wait_for(lambda: node.status()["backlog"] == 0, 120, "the re-import to reach the hub")
    wait_for(lambda: hub.metrics()["hub_swept_records_total"] == total, 60,
             "the old incarnation's records to be swept")
    check_hub_matches(hub, node, cl)
    assert len(hub.records(10703)) == total


def _rows(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return c.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        c.close()


def test_record_ids_are_the_keyed_hash_of_kind_and_local_id(pki, workdir, procs):
    """The id rule, computed here with Python's own HMAC from the key in node.db: the first
    16 bytes of HMAC-SHA-256(id key, kind byte || local_id), for rows of every kind the
    import writes (the ids of an import are computed on its reader thread)."""
    import hmac
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 23)
    for _ in range(50):
        cl.new_person()
    for lid in list(cl.persons)[:30]:
        cl.new_service(lid)
    p, s = os.path.join(workdir, "p.csv"), os.path.join(workdir, "s.csv")
    cl.write_csv(p, "persons")
    cl.write_csv(s, "services")
    node.import_csv("persons", p)
    node.import_csv("services", s)
    c = sqlite3.connect("file:%s?mode=ro" % node.db, uri=True)
    key = bytes(c.execute("SELECT value FROM meta WHERE key='id_key'").fetchone()[0])
    rows = c.execute("SELECT kind, local_id, id FROM records").fetchall()
    c.close()
    assert len(key) == 32 and len(rows) == 80
    for kind, lid, rid in rows:
        want = hmac.new(key, bytes([kind]) + lid.encode(), "sha256").digest()[:16]
        assert bytes(rid) == want, (kind, lid)
