"""Bounded queues apply backpressure and drop nothing: the hub's queue of committed records
waiting for the rollups has a bound ([hub] rollup_queue); at it, the hub stops reading from
its nodes until the engine has caught up with half of it. A node sending far more than the
bound loses nothing: every record is stored and counted by the rollups."""
import datetime
import os

from gen import Caseload
from harness import BIN, Hub, Node, run, wait_for
from test_gaps import Officer


def test_full_rollup_queue_holds_the_nodes_and_drops_nothing(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).configure("[hub]\nrollup_queue = 1000\n")
    officer = Officer(hub, pki, run([os.path.join(BIN, "provincial-hub"), "--config",
                                     hub.config, "token", "officer"]).stdout.strip())
    procs.append(hub.start())
    node = Node(workdir, pki, 10703, hub)
    # One batch of 500 in flight at a time: the queue can pass its bound by one batch only
    # if the hub really stops reading at the bound.
    with open(node.config) as f:
        text = f.read()
    with open(node.config, "w") as f:
        f.write(text.replace("window = 8", "window = 1")
                .replace("batch_records = 2000", "batch_records = 500"))
    cl = Caseload(10703, 81)
    n = 12000
    for _ in range(n):
        cl.new_person()
    path = os.path.join(workdir, "p.csv")
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    node.sync()
    assert len(hub.records(10703)) == n
    m = hub.metrics()
    assert m["hub_rollup_queue_max"] == 1000
    assert m["hub_rollup_queue_holds_total"] >= 1, m
    assert m["hub_rollup_queue_peak"] <= 1000 + 500, m
    years = sorted({p["_reg"].year for p in cl.persons.values()})
    want = {y: sum(1 for p in cl.persons.values() if p["_reg"].year == y) for y in years}

    def counted():
        got = {}
        for y in years:
            cells = officer.indicator("participants_registered", period=str(y),
                                      municipality="10703")["cells"]
            got[y] = sum(c["value"] for c in cells)
        return got == want
    wait_for(counted, 120, "the rollups to count every record")
    assert hub.metrics()["hub_rollup_queue"] == 0
