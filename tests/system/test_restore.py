"""Restore and re-initialisation: a node restored from an older copy of its store, then
edited, ends with its edits at the hub; a node re-initialised and fed the same data again
leaves the hub with one copy of each record."""
import os
import shutil
import sqlite3

from gen import Caseload
from harness import Hub, Node, run, BIN
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
    assert hub.metrics()["hub_swept_records_total"] == 700
