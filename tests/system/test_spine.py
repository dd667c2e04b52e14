"""The spine end to end: two real municipal nodes -> a real hub over mutual TLS, with
corrections and deletions; the hub ends holding exactly the generator's newest records."""
import json
import os

from gen import Caseload
from harness import Hub, Node, scrape, wait_for
from spine import check_hub_matches, http


def load(node, caseload, workdir, n_persons, n_services):
    for _ in range(n_persons):
        caseload.new_person()
    lids = list(caseload.persons)
    for i in range(n_services):
        caseload.new_service(lids[i % len(lids)])
    p = os.path.join(workdir, "persons-%d.csv" % node.municipality)
    s = os.path.join(workdir, "services-%d.csv" % node.municipality)
    caseload.write_csv(p, "persons")
    caseload.write_csv(s, "services")
    node.import_csv("persons", p)
    node.import_csv("services", s)
    return p, s


def test_two_nodes_10000_records_with_corrections_and_tombstones(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    nodes, loads = [], []
    for code, seed in ((10703, 1), (10401, 2)):
        node = Node(workdir, pki, code, hub)
        cl = Caseload(code, seed)
        load(node, cl, workdir, 2500, 2500)
        token = node.cli("token", "tester").stdout.strip()
        nodes.append((node, cl, token))
    # Both nodes serve (intake + continuous sync) while corrections and deletions arrive.
    for node, cl, token in nodes:
        procs.append(node.serve())
    for node, cl, token in nodes:
        plids = list(cl.persons)
        slids = list(cl.services)
        for lid in plids[::10]:
            cl.correct_person(lid)
        for lid in slids[::10]:
            cl.correct_service(lid)
        p = os.path.join(workdir, "persons-fixed-%d.csv" % node.municipality)
        s = os.path.join(workdir, "services-fixed-%d.csv" % node.municipality)
        cl.write_csv(p, "persons")
        cl.write_csv(s, "services")
        node.import_csv("persons", p)
        node.import_csv("services", s)
        for lid in plids[5::20]:
            # A person is deleted once their services are (409 before).
            held = cl.services_of(lid)
            if held:
                status, body = http(node, "DELETE", "/v1/persons/" + lid, token)
                assert status == 409 and held[0] in json.loads(body)["error"], body
            for slid in held:
                status, body = http(node, "DELETE", "/v1/services/" + slid, token)
                assert status == 204, body
                cl.delete("service", slid)
            status, body = http(node, "DELETE", "/v1/persons/" + lid, token)
            assert status == 204, body
            cl.delete("person", lid)
        for lid in slids[7::20]:
            if ("service", lid) in cl.deleted:
                continue
            status, body = http(node, "DELETE", "/v1/services/" + lid, token)
            assert status == 204, body
            cl.delete("service", lid)
    for node, cl, token in nodes:
        wait_for(lambda: node.status()["backlog"] == 0, 120, "node %d backlog to drain"
                 % node.municipality)
    total = 0
    for node, cl, token in nodes:
        total += check_hub_matches(hub, node, cl)
    assert total == 10000
    # kill -9 cannot reveal a missing fsync: assert every store's durability settings, as
    # the running processes report them from their own connections.
    m = hub.metrics()
    assert m["store_synchronous"] == 2 and m["store_journal_wal"] == 1
    # The store's checkpoints run on their own thread (walckpt.h): none failed, and none was
    # left to a commit of the event loop.
    assert m["hub_store_checkpoint_failures_total"] == 0, m
    assert m["hub_store_checkpoints_inline_total"] == 0, m
    for node, cl, token in nodes:
        m = scrape(node.http_port)
        assert m["store_synchronous"] == 2 and m["store_journal_wal"] == 1
        assert m["node_store_checkpoint_failures_total"] == 0, m
        assert m["node_store_checkpoints_inline_total"] == 0, m
    # SIGTERM stops every daemon cleanly (exit status 0).
    for node, cl, token in nodes:
        node.server.stop()
        assert node.server.proc.returncode == 0
    hub.stop()
    assert hub.proc.returncode == 0
