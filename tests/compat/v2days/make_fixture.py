#!/usr/bin/python3
"""Makes the hub store of format 2 that test_compat.py migrates to format 3 (issue 12): a
hub.db written by the binaries of commit 690eaee (protocol version 2 before its days left the
schema), whose record bodies and rollup shadow hold the days of registrations, services and
enterprises, from a seeded caseload whose ground truth is kept beside it (truth.json).

It holds corrections and deletions, and is not vacuumed: the migration must leave no day in
the file, free pages included.

How it was made (not part of make test):
    mkdir /tmp/h12base && git archive 690eaee | tar -x -C /tmp/h12base
    make -C /tmp/h12base build/bin/municipal-node build/bin/provincial-hub
    /usr/bin/python3 tests/compat/v2days/make_fixture.py /tmp/h12base/build/bin \
        tests/compat/v2days
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
import nodegen  # noqa: E402
from gen import Caseload  # noqa: E402
from harness import Hub, Node, Pki, wait_for  # noqa: E402
from spine import http  # noqa: E402
from test_gaps import fiscal_year  # noqa: E402

MUNICIPALITY, SEED, PERSONS, SERVICES, ENTERPRISES = 10703, 93, 240, 360, 60


def add(t, key, n=1):
    t[key] = t.get(key, 0) + n


def main(bin_dir, out):
    harness.BIN = os.path.abspath(bin_dir)
    work = tempfile.mkdtemp(prefix="reint-v2days-fixture-")
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
            cl.new_service(lids[(7 * i) % len(lids)])
        for i in range(ENTERPRISES):
            nodegen.new_enterprise(cl, lids[(11 * i) % len(lids)])
        paths = {k: os.path.join(work, k + ".csv") for k in ("persons", "services",
                                                             "enterprises")}

        def load():
            cl.write_csv(paths["persons"], "persons")
            cl.write_csv(paths["services"], "services")
            nodegen.write_rows(paths["enterprises"], nodegen.ENTERPRISE_COLS,
                               list(cl.enterprises.values()))
            for k in ("persons", "services", "enterprises"):
                node.import_csv(k, paths[k])
            node.sync()
            wait_for(rolled, 60, "the rollups")

        def rolled():
            m = hub.metrics()
            return m["hub_rollup_queue"] == 0 and m["hub_rollup_dirty"] == 0
        load()
        # Corrections: the hub rewrites those bodies (old ones become free pages).
        for lid in lids[:20]:
            cl.correct_person(lid)
        for lid in list(cl.services)[:30]:
            cl.correct_service(lid)
        load()
        # Deletions: tombstones replace their bodies (Debian's SQLite is built with
        # SECURE_DELETE: the old bytes are zeroed, not left in free space).
        gone = [("persons", 1, lid) for lid in lids[-6:]] + \
            [("services", 2, lid) for lid in list(cl.services)[-4:]]
        tok = node.cli("token", "fixture").stdout.strip()
        srv = node.serve()
        try:
            for path, kind, lid in gone:
                st, body = http(node, "DELETE", "/v1/%s/%s" % (path, lid), tok)
                assert st == 204, body
                cl.delete("person" if kind == 1 else "service", lid)
            node.sync()
        finally:
            srv.stop()
        wait_for(rolled, 60, "the rollups")
        # The truth, from the generator alone.
        t = {}
        for lid, p in cl.persons.items():
            if ("person", lid) in cl.deleted:
                continue
            reg = p["_reg"]
            add(t, "participants_registered|%d|%s" % (reg.year, p["sex"]))
            add(t, "participants_registered|%s|%s" % (fiscal_year(reg)[0], p["sex"]))
        for lid, s in cl.services.items():
            if s["status"] == "DELIVERED" and ("service", lid) not in cl.deleted:
                add(t, "services_delivered|%d|" % s["_day"].year)
                add(t, "services_delivered|%s|" % fiscal_year(s["_day"])[0])
        for e in cl.enterprises.values():
            add(t, "enterprises_supported|%d|" % e["_day"].year)
            add(t, "enterprises_supported|%s|" % fiscal_year(e["_day"])[0])
            if e["employees"]:
                add(t, "jobs_created|%s|" % fiscal_year(e["_day"])[0], int(e["employees"]))
        with open(os.path.join(out, "truth.json"), "w") as f:
            json.dump({"municipality": MUNICIPALITY,
                       "records": PERSONS + SERVICES + ENTERPRISES, "deleted": len(gone),
                       "national": t}, f, indent=1, sort_keys=True)
    finally:
        hub.stop()
    # One file, as a backup would be: the log checkpointed into it, not vacuumed.
    c = sqlite3.connect(hub.db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("PRAGMA journal_mode=DELETE")
    c.close()
    shutil.copy(hub.db, os.path.join(out, "hub.db"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
