"""Sweeps that a stolen node key cannot abuse (issue 18). With a node's key, an attacker can
say Hello with a new store incarnation and at once ResendComplete, which makes the hub set
aside every record of that municipality. The records stop counting (nothing may be counted
twice) but are kept: the sweep is undone when the real node reconnects, or by a hub admin; an
attacker who waits and sweeps again destroys nothing without an admin's confirmation. Each
sweep and each return of an incarnation is a security event naming the certificate serial,
counted in /metrics and flagged in /v1/gaps."""
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import openapi
from gen import Caseload
from harness import BIN, Hub, Node, pb, run, wait_for
from wireclient import WireClient

MUN = 10703


class Api:
    def __init__(self, hub, pki):
        self.port = hub.https_port
        self.ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))

    def call(self, method, path, token):
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, path),
                                     method=method, data=b"" if method == "POST" else None)
        req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=15) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        # Every answer is JSON, checked against docs/openapi/hub.json.
        return status, openapi.answer("hub", method, path, status, text)

    def row(self, token, code=MUN, period=None):
        st, body = self.call("GET", "/v1/gaps" + ("?period=" + period if period else ""), token)
        assert st == 200, body
        return {r["code"]: r for r in body["rows"]}[code]


@pytest.fixture
def setup(pki, workdir, procs):
    """A hub with an admin's and an officer's token, and a node of 10703 with 60 persons."""
    clock = os.path.join(workdir, "hub-clock")
    with open(clock, "w") as f:
        f.write("0\n")
    hub = Hub(workdir, pki, 1)
    tokens = {}
    for name, role in (("adam", "admin"), ("olga", "officer")):
        tokens[name] = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config,
                            "token", name, "--role", role]).stdout.strip()
    hub.start("--enable-test-hooks", "--test-clock", clock)
    procs.append(hub)
    node = Node(workdir, pki, MUN, hub)
    cl = Caseload(MUN, 17)
    for _ in range(60):
        cl.new_person()
    path = os.path.join(workdir, "persons.csv")
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    node.sync()
    original = hub.records(MUN)
    assert len(original) == 60
    return hub, node, original, tokens, Api(hub, pki), clock


def steal_and_sweep(hub, pki):
    """What a stolen key allows: a new incarnation, then ResendComplete with nothing sent."""
    inc = os.urandom(16)
    c = WireClient(hub.sync_port, pki, "municipality-%d" % MUN)
    reply = c.hello(inc, last_seq=0)
    assert reply.resend_requested
    env = pb.Envelope()
    env.resend_complete.incarnation = inc
    env.resend_complete.last_seq = 0
    c.send(env)
    assert c.recv().WhichOneof("msg") == "ack"
    c.close()
    return inc


def serial_of(pki):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in",
                          pki.path("municipality-%d.crt" % MUN)],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=")[1].upper()


def registered(api, token):
    """Participants registered at the hub's rollups, over every year the generator uses."""
    this = time.gmtime().tm_year
    return sum(api.row(token, period=str(y))["participants_registered"]
               for y in range(this - 6, this + 1))


def test_a_first_enrolment_is_no_sweep(setup):
    """A municipality's first store has nothing of older incarnations to set aside: no sweep is
    listed (one of 0 records, "confirmed" by "nothing was swept", was noise for an admin told
    that sweeps are security matters, a deployment from the documentation found), none is
    counted, and the log says the resend finished without a sweep number."""
    hub, _, original, tokens, api, _ = setup
    st, body = api.call("GET", "/v1/sweeps", tokens["adam"])
    assert st == 200 and body["sweeps"] == [], body
    assert hub.metrics()["hub_sweeps_total"] == 0
    log = hub.log_text()
    assert "municipality:%d finished its full resend" % MUN in log and "sweep #" not in log


def test_stolen_key_sweep_is_undone_when_the_real_node_reconnects(setup, pki):
    hub, node, original, tokens, api, _ = setup
    wait_for(lambda: registered(api, tokens["olga"]) == 60, 30, "the rollups")
    steal_and_sweep(hub, pki)
    # The records no longer count, and are kept.
    assert hub.records(MUN) == {}
    m = hub.metrics()
    assert m["hub_sweeps_pending"] == 1 and m["hub_swept_records_kept"] == 60
    wait_for(lambda: registered(api, tokens["olga"]) == 0, 30, "the swept records to stop counting")
    row = api.row(tokens["olga"])
    assert "sweep_pending" in row["flags"], row
    assert row["sweep_pending"]["records"] == 60
    assert row["sweep_pending"]["certificate_serial"] == serial_of(pki)
    log = hub.log_text()
    assert "SECURITY" in log and "certificate serial %s" % serial_of(pki) in log

    # The real node comes back: the sweep is undone and the node resumes where it was (no
    # full resend of its own).
    resends_before = hub.log_text().count("asking for a full resend")
    node.sync()
    assert hub.records(MUN) == original
    assert hub.log_text().count("asking for a full resend") == resends_before
    m = hub.metrics()
    assert m["hub_sweeps_pending"] == 0 and m["hub_swept_records_kept"] == 0
    assert m["hub_sweeps_undone_total"] == 1 and m["hub_incarnation_returns_total"] >= 1
    wait_for(lambda: registered(api, tokens["olga"]) == 60, 30, "the restored records to count")
    row = api.row(tokens["olga"])
    assert row["sweep_pending"] is None and "incarnations_alternating" in row["flags"], row
    # And it keeps syncing normally.
    assert node.status()["backlog"] == 0


def test_stolen_key_sweep_is_undone_by_a_hub_admin_and_only_by_one(setup, pki):
    hub, node, original, tokens, api, _ = setup
    steal_and_sweep(hub, pki)
    st, body = api.call("GET", "/v1/sweeps", tokens["adam"])
    assert st == 200
    sweep = body["sweeps"][0]
    assert sweep["state"] == "pending" and sweep["records"] == 60
    assert sweep["certificate_serial"] == serial_of(pki)
    # An officer can neither list nor decide sweeps.
    assert api.call("GET", "/v1/sweeps", tokens["olga"])[0] == 403
    assert api.call("POST", "/v1/sweeps/%d/undo" % sweep["id"], tokens["olga"])[0] == 403
    assert hub.records(MUN) == {}
    st, body = api.call("POST", "/v1/sweeps/%d/undo" % sweep["id"], tokens["adam"])
    assert st == 200 and body["state"] == "undone", body
    assert hub.records(MUN) == original
    # Decided once: a second decision is refused, and the decision is in the audit.
    assert api.call("POST", "/v1/sweeps/%d/confirm" % sweep["id"], tokens["adam"])[0] == 409
    assert api.call("POST", "/v1/sweeps/99999/undo", tokens["adam"])[0] == 404
    # One id, one spelling (+N and 0N were taken as N, the review of 0cef7e2 found).
    for spelled in ("+%d" % sweep["id"], "0%d" % sweep["id"]):
        assert api.call("POST", "/v1/sweeps/%s/undo" % spelled, tokens["adam"])[0] == 404
    st, body = api.call("GET", "/v1/audit", tokens["adam"])
    assert any(r["method"] == "POST" and r["target"] == "/v1/sweeps/%d/undo" % sweep["id"] and
               r["who"] == "adam" and r["status"] == 200 for r in body["audit"]), body
    st, body = api.call("GET", "/v1/sweeps", tokens["adam"])
    assert body["sweeps"][0]["state"] == "undone" and body["sweeps"][0]["decided_by"] == "adam"


def test_a_confirmed_sweep_is_final_and_the_real_node_resends_everything(setup, pki):
    hub, node, original, tokens, api, _ = setup
    steal_and_sweep(hub, pki)
    sweep = api.call("GET", "/v1/sweeps", tokens["adam"])[1]["sweeps"][0]
    st, body = api.call("POST", "/v1/sweeps/%d/confirm" % sweep["id"], tokens["adam"])
    assert st == 200 and body["state"] == "confirmed"
    assert hub.metrics()["hub_swept_records_kept"] == 0
    # Nothing to restore now: the real node is asked for everything, and gives it.
    node.sync()
    assert set(hub.records(MUN)) == set(original)


def test_an_attacker_who_waits_and_sweeps_again_destroys_nothing(setup, pki):
    hub, node, original, tokens, api, clock = setup
    steal_and_sweep(hub, pki)
    with open(clock, "w") as f:
        f.write("%d\n" % (40 * 86400))  # the attacker waits forty days
    wait_for(lambda: hub.metrics()["test_clock_offset_seconds"] == 40 * 86400, 10,
             "the hub to read its test clock")
    steal_and_sweep(hub, pki)
    steal_and_sweep(hub, pki)
    assert hub.records(MUN) == {}
    # All 60 are still kept, under the first sweep, the one that displaced the real store.
    assert hub.metrics()["hub_swept_records_kept"] == 60
    node.sync()
    assert hub.records(MUN) == original
    assert hub.metrics()["hub_swept_records_kept"] == 0
    with open(clock, "w") as f:
        f.write("0\n")
