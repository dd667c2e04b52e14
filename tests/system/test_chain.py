"""The whole chain on real processes and a real PostgreSQL: municipal nodes -> provincial
hubs (rollups) -> federal API. National figures equal the generator's ground truth; a
correction and a deletion at a node move the national figure exactly; restarts of a hub,
of the federal API and of PostgreSQL during ingest lose nothing."""
import datetime
import os
import time

import pytest

import bs
from fedclient import Federal
from gen import SEXES, Caseload
from harness import BIN, Hub, Node, ini_set, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from spine import http

YEAR = datetime.date.today().year - 1  # a whole Gregorian year of registrations


def truth_by_sex(caseloads, year=YEAR, deleted=()):
    t = {}
    for cl in caseloads:
        for lid, p in cl.persons.items():
            if ("person", lid) in cl.deleted or p["_reg"].year != year:
                continue
            t[p["sex"]] = t.get(p["sex"], 0) + 1
    return t


def national_by_sex(fed, token, year=YEAR):
    st, a, _ = fed.get("/v1/indicators/participants_registered?period=%d&by=sex" % year, token)
    assert st == 200, a
    return {r["sex"]: r["value"] for r in a["rows"] if r["value"]}


def settle(fed, token, caseloads, timeout=90):
    want = truth_by_sex(caseloads)
    last = {}

    def ok():
        nonlocal last
        last = national_by_sex(fed, token)
        return last == want
    try:
        wait_for(ok, timeout, "national figures to equal the ground truth")
    except AssertionError:
        raise AssertionError("national %r, expected %r" % (last, want))


class FreshDatabase:
    """A database of its own on the session's PostgreSQL, so tests do not see each other."""

    def __init__(self, pg):
        self.name = "chain_%d" % time.time_ns()
        pg.psql("CREATE DATABASE %s" % self.name, db="postgres")
        self.conninfo = pg.conninfo.replace("dbname=reintegration", "dbname=" + self.name)


@pytest.fixture
def chain(pki, workdir, procs, postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
    procs.append(fed)
    token = fed.token("ministry", "chain-ministry-%d" % os.getpid() + str(time.time_ns()))
    hubs = {}
    for p in (1, 2):
        hub = Hub(workdir, pki, p)
        ini_set(hub.config, "[uplink]\nfederal = 127.0.0.1:%d\n" % fed.sync_port)
        hubs[p] = hub.start()
        procs.append(hub)
    return fed, token, hubs


def load(node, cl, workdir, n):
    for _ in range(n):
        cl.new_person()
    path = os.path.join(workdir, "p-%d.csv" % node.municipality)
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    return path


def test_national_totals_follow_the_nodes_exactly(chain, pki, workdir, procs):
    fed, token, hubs = chain
    nodes = []
    for code, seed in ((10703, 31), (10401, 32), (21710, 33)):
        node = Node(workdir, pki, code, hubs[int(str(code)[0])])
        cl = Caseload(code, seed)
        path = load(node, cl, workdir, 600)
        node.sync()
        nodes.append((node, cl, path))
    caseloads = [cl for _, cl, _ in nodes]
    settle(fed, token, caseloads)
    # Every period kind, Gregorian and BS, places each registration by its month pair: the
    # national totals equal the generator's, for periods of each kind around the sample's.
    want = {}
    for cl in caseloads:
        for p in cl.persons.values():
            for period in bs.periods(p["_reg"]):
                want[period] = want.get(period, 0) + 1
    sample = set()
    for cl in caseloads:
        for p in list(cl.persons.values())[:4]:
            sample.update(bs.periods(p["_reg"]))
    got = {}
    for period in sorted(sample):
        st, a, _ = fed.get("/v1/indicators/participants_registered?period=%s" % period, token)
        assert st == 200, a
        got[period] = a["total"]["value"]
    assert got == {period: want[period] for period in sample}
    # A correction (sex changed) and a deletion at a node move the national figure exactly.
    node, cl, path = nodes[0]
    in_year = [lid for lid, p in cl.persons.items() if p["_reg"].year == YEAR]
    before = national_by_sex(fed, token)
    fixed = cl.correct_person(in_year[0])
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    tok = node.cli("token", "chain").stdout.strip()
    srv = node.serve()
    procs.append(srv)
    for lid in cl.services_of(in_year[1]):
        status, body = http(node, "DELETE", "/v1/services/" + lid, tok)
        assert status == 204, body
        cl.delete("service", lid)
    status, body = http(node, "DELETE", "/v1/persons/" + in_year[1], tok)
    assert status == 204, body
    cl.delete("person", in_year[1])
    settle(fed, token, caseloads)
    after = national_by_sex(fed, token)
    assert sum(after.values()) == sum(before.values()) - 1
    assert after != before
    assert truth_by_sex(caseloads) == after
    assert fixed["sex"] in SEXES


def test_restarts_of_hub_federal_and_postgres_lose_nothing(chain, pki, workdir, procs,
                                                           postgres):  # noqa: F811
    fed, token, hubs = chain
    node = Node(workdir, pki, 10703, hubs[1])
    cl = Caseload(10703, 41)
    path = load(node, cl, workdir, 500)
    srv = node.serve()
    procs.append(srv)
    caseloads = [cl]
    for fault in ("hub", "federal", "postgres"):
        for _ in range(300):
            cl.new_person()
        cl.write_csv(path, "persons")
        node.import_csv("persons", path)
        time.sleep(0.5)  # mid-flight: the rollups and the uplink are at work
        if fault == "hub":
            hubs[1].kill9()
            hubs[1].start()
        elif fault == "federal":
            fed.kill9()
            fed.start()
        else:
            postgres.restart()
    settle(fed, token, caseloads, timeout=120)


def test_federal_closes_a_peer_that_sends_no_hello(chain):
    import socket
    fed, token, hubs = chain
    s = socket.create_connection(("127.0.0.1", fed.sync_port), timeout=40)
    t0 = time.time()
    try:
        data = s.recv(100)  # no ClientHello: the federal tier must not hold the socket forever
    except OSError:
        data = b""
    assert data == b""
    assert time.time() - t0 < 30
    s.close()
    assert fed.alive()
