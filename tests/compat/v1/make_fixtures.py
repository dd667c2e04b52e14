#!/usr/bin/python3
"""Makes the stores of protocol version 1 that test_compat.py migrates: a node's node.db and
its hub's hub.db, written by the binaries of commit fb5117e (the last of protocol 1), from a
seeded caseload whose spreadsheets and ground truth are kept beside them.

How they were made (not part of make test):
    git worktree add /tmp/v1tree fb5117e && make -C /tmp/v1tree all
    /usr/bin/python3 tests/compat/v1/make_fixtures.py /tmp/v1tree/build/bin tests/compat/v1
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "system"))

import harness  # noqa: E402
from gen import Caseload  # noqa: E402
from harness import Hub, Node, Pki, wait_for  # noqa: E402

MUNICIPALITY, SEED, PERSONS, SERVICES = 10703, 91, 300, 200


def checkpoint(db, out):
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    shutil.copy(db, out)
    c = sqlite3.connect(out)
    c.execute("PRAGMA journal_mode=DELETE")
    c.execute("VACUUM")
    c.close()


def main(bin_dir, out):
    harness.BIN = os.path.abspath(bin_dir)
    work = tempfile.mkdtemp(prefix="reint-v1-fixtures-")
    pki = Pki(os.path.join(work, "pki"))
    pki.issue("province", "1", "municipality", str(MUNICIPALITY))
    hub = Hub(work, pki, 1).start()
    try:
        node = Node(work, pki, MUNICIPALITY, hub)
        cl = Caseload(MUNICIPALITY, SEED)
        for _ in range(PERSONS):
            cl.new_person()
        lids = list(cl.persons)
        for i in range(SERVICES):
            cl.new_service(lids[i % len(lids)])
        persons, services = os.path.join(out, "persons.csv"), os.path.join(out, "services.csv")
        cl.write_csv(persons, "persons")
        cl.write_csv(services, "services")
        node.import_csv("persons", persons)
        node.import_csv("services", services)
        node.sync()
        wait_for(lambda: hub.metrics()["hub_rollup_dirty"] == 0, 60, "the rollups")
        truth = {}
        for p in cl.persons.values():
            key = "%d/%s" % (p["_reg"].year, p["sex"])
            truth[key] = truth.get(key, 0) + 1
        with open(os.path.join(out, "truth.json"), "w") as f:
            json.dump({"municipality": MUNICIPALITY, "records": PERSONS + SERVICES,
                       "participants_registered_by_year_and_sex": truth}, f, indent=1,
                      sort_keys=True)
    finally:
        hub.stop()
    checkpoint(hub.db, os.path.join(out, "hub.db"))
    checkpoint(node.db, os.path.join(out, "node.db"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
