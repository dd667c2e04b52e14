"""The monthly review on real processes (issues show 14, must-show items 1 to 5): municipal
nodes -> provincial hub 1 (reviewers decide) -> federal API on a real PostgreSQL.

1. close -> return with a comment -> the node shows the comment and the month open -> a
   correction -> close -> approve -> approval=approved answers include the month with exactly
   the corrected figures; before the approval they did not.
2. A change after approval: the month becomes "changed since approval"; the approved-only
   answer drops it until it is approved again; the provisional answer shows the change at once.
3. Refusals (403, 403, 409, 409, 422, 422) leave the month as it was.
4. kill -9 of the hub and of the node while decisions are in flight: every decision reaches
   both sides exactly once, checked against the decisions the test made.
5. Approval coverage and directive progress equal the test's own computation for the nation,
   province 1 and municipality 10703.

Ground truth is the test's: which persons it registered in which month, which months it closed,
what the reviewer decided (the hub's answers give each decision's clock)."""
import csv
import datetime
import json
import os
import shutil
import sqlite3
import ssl
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import bs
import openapi
from fedclient import Federal
from harness import BIN, ROOT, Hub, Node, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)

PROVINCE = 1
DHANKUTA, ARJUNDHARA, AD_NODE = 10703, 10401, 10101
OTHER_PROVINCE = 21501
KEY_ID = "approval-dir-1"
TODAY = datetime.date.today()


def bs_month(k):
    """(y, m) of the BS month k months before this one (k >= 1: it has ended)."""
    y, m, _ = bs.ad_to_bs(TODAY)
    m -= k
    while m < 1:
        m += 12
        y -= 1
    return y, m


def bs_period(ym):
    return "BS%04d-%02d" % ym


def days_of_bs_month(ym):
    first = bs.bs_month_first(*ym)
    nxt = bs.bs_month_first(ym[0], ym[1] + 1)
    return [first + datetime.timedelta(days=i) for i in range((nxt - first).days)]


MONTH = bs_month(2)      # the month reviewed in items 1 and 2
BEFORE = bs_month(3)     # the month before it (gap figures)
MONTHS_4 = [bs_month(k) for k in (2, 3, 4, 5)]  # 10401's months in item 4


# ---- clients ------------------------------------------------------------------------------

class HubApi:
    """The hub's HTTPS officers' API."""

    def __init__(self, hub, pki):
        self.hub = hub
        self.ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))

    def token(self, name, role):
        return run([os.path.join(BIN, "provincial-hub"), "--config", self.hub.config, "token",
                    name, "--role", role]).stdout.strip()

    def call(self, method, path, token, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.hub.https_port, path),
                                     data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        # Every JSON answer, and every body the hub accepted, is checked against
        # docs/openapi/hub.json.
        parsed = openapi.answer("hub", method, path, status, text)
        if body is not None:
            openapi.check_request("hub", method, path, status, body)
        return status, parsed

    def reviews(self, token, period):
        st, body = self.call("GET", "/v1/reviews?period=" + period, token)
        assert st == 200, body
        return {r["municipality"]: r for r in body["rows"]}

    def decide(self, token, mun, period, decision, seen, comment="", clock=None):
        body = {"decision": decision, "comment": comment, "seen_version": seen}
        if clock is not None:
            body["seen_clock"] = clock
        return self.call("POST", "/v1/reviews/%d/%s" % (mun, period), token, body)


def node_post(node, token, kind, row):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/%s" % (node.http_port, kind),
                                 data=json.dumps(row).encode(), method="POST")
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201
        body = json.loads(r.read().decode())
    openapi.check("node", "POST", "/v1/" + kind, 201, body)
    return body


def node_get(node, token, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (node.http_port, path))
    req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        status, body = r.status, json.loads(r.read().decode())
    # Every JSON answer of the node is checked against docs/openapi/node.json.
    openapi.check("node", "GET", path, status, body)
    return body


class FreshDatabase:
    def __init__(self, pg):
        self.pg = pg
        self.name = "approval_%d" % time.time_ns()
        pg.psql("CREATE DATABASE %s" % self.name, db="postgres")
        self.conninfo = pg.conninfo.replace("dbname=reintegration", "dbname=" + self.name)

    def psql(self, sql):
        return self.pg.psql(sql, db=self.name)


# ---- the chain, built once for the module --------------------------------------------------

class Chain:
    """The processes and the test's ground truth: persons registered per (municipality,
    calendar, YYYYMM) by the day's month pair."""

    def __init__(self):
        self.registered = {}
        self.seq = 0
        self.state = {}   # (municipality, calendar, (y, m)) -> the month's state at the hub
        self.closed = set()  # (municipality, calendar, (y, m)) the clerks closed

    def person(self, node, token, day):
        self.seq += 1
        lid = "P%d-%d" % (node.municipality, self.seq)
        node_post(node, token, "persons", {
            "local_id": lid, "category": "RETURNEE", "sex": "FEMALE" if self.seq % 2 else "MALE",
            "birth_year": str((bs.ad_to_bs(day)[0] if node.calendar == "BS" else day.year) - 30),
            "consent": "yes",
            "registered_on": bs.bs_str(day) if node.calendar == "BS" else day.isoformat()})
        ad, bsm = bs.pair(day)
        for key in ((node.municipality, "AD", ad), (node.municipality, "BS", bsm)):
            self.registered[key] = self.registered.get(key, 0) + 1
        return lid

    def restart_node(self, node):
        node.server = node.serve()
        self.started.append(node.server)


@pytest.fixture(scope="module")
def chain(pki, postgres):  # noqa: F811
    workdir = tempfile.mkdtemp(prefix="reint-approval-")
    c = Chain()
    c.started = []
    c.workdir = workdir
    try:
        pki.issue("federal")
        run([os.path.join(ROOT, "deploy", "pki.sh"), "directive-key", pki.dir, KEY_ID])
        c.db = FreshDatabase(postgres)
        c.fed = Federal(workdir, pki, c.db)
        c.fed.configure("[directives]\nkey_id = %s\nprivate_key = %s\n"
                        % (KEY_ID, pki.path("directive-%s.key" % KEY_ID)))
        c.fed.start()
        c.started.append(c.fed)
        c.ministry = c.fed.token("ministry", "appr-ministry-%d" % time.time_ns())
        c.public = c.fed.token("public", "appr-public-%d" % time.time_ns())
        c.fed_admin = c.fed.token("admin", "appr-admin-%d" % time.time_ns())
        c.hub = Hub(workdir, pki, PROVINCE)
        c.hub.configure("[uplink]\nfederal = 127.0.0.1:%d\n[directives]\nkeys = %s=%s\n"
                        % (c.fed.sync_port, KEY_ID, pki.path("directive-%s.pub" % KEY_ID)))
        c.api = HubApi(c.hub, pki)
        c.reviewer = c.api.token("reviewer-koshi", "reviewer")
        c.officer = c.api.token("officer-koshi", "officer")
        c.admin = c.api.token("admin-koshi", "admin")
        c.hub.start()
        c.started.append(c.hub)
        c.nodes, c.tokens = {}, {}
        for mun, cal in ((DHANKUTA, "BS"), (ARJUNDHARA, "BS"), (AD_NODE, "AD")):
            node = Node(workdir, pki, mun, c.hub, calendar=cal)
            node.calendar = cal
            c.tokens[mun] = node.cli("token", "clerk-%d" % mun).stdout.strip()
            c.restart_node(node)
            c.nodes[mun] = node
        yield c
    finally:
        for p in c.started:
            try:
                p.kill9()
            except Exception:
                pass
        if os.environ.get("KEEP_TEST_DIRS"):
            print("kept", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def month_row(c, mun, period, pred, what, timeout=60):
    got = {}

    def ok():
        got["row"] = c.api.reviews(c.officer, period)[mun]
        return pred(got["row"])
    try:
        wait_for(ok, timeout, what)
    except AssertionError:
        raise AssertionError("%s; last row %r" % (what, got.get("row")))
    return got["row"]


def node_month(node, period):
    for m in json.loads(node.cli("months", "--json").stdout)["months"]:
        if m["period"] == period:
            return m
    return None


def federal_value(c, period, token=None, approved=False, **area):
    q = "period=%s%s" % (period, "&approval=approved" if approved else "")
    for k, v in area.items():
        q += "&%s=%s" % (k, v)
    st, a, _ = c.fed.get("/v1/indicators/participants_registered?" + q, token or c.ministry)
    assert st == 200, a
    return a["total"]["value"], a["approval"]


def wait_federal(c, period, want, approved=False, what="", cov_approved=None, **area):
    """Waits for the figure (and, given cov_approved, the answer's count of approved
    municipalities). The answer reads its coverage and its cells in two statements, so for a
    moment after a decision arrives one may be newer than the other: see the closing note."""
    got = {}

    def ok():
        got["v"] = federal_value(c, period, approved=approved, **area)
        return got["v"][0] == want and (cov_approved is None or
                                        got["v"][1]["approved"] == cov_approved)
    try:
        wait_for(ok, 60, what or "the federal figure %r" % want)
    except AssertionError:
        raise AssertionError("%s: federal answered %r" % (what, got.get("v")))
    return got["v"]


# ---- 1. close, return, correct, close, approve ------------------------------------------------

def test_return_correct_close_approve_reaches_the_official_figure(chain):
    c = chain
    node, tok = c.nodes[DHANKUTA], c.tokens[DHANKUTA]
    period = bs_period(MONTH)
    days = days_of_bs_month(MONTH)
    for d in days[:3]:
        c.person(node, tok, d)
    c.person(node, tok, days_of_bs_month(BEFORE)[0])
    assert "closed;" in node.cli("close-month", "%04d-%02d" % MONTH).stdout
    row = month_row(c, DHANKUTA, period, lambda r: r["state"] == "closed", "the hub to see the close")
    assert row["records"] == 3 and row["records_month_before"] == 1
    seen = row["version"]
    # Returned with a question.
    st, body = c.api.decide(c.reviewer, DHANKUTA, period, "return", seen,
                            "Only 3 registrations in a month of 40 referrals: complete them")
    assert st == 200, body
    assert body["review"]["state"] == "returned"
    wait_for(lambda: (node_month(node, period) or {}).get("state") == "returned", 30,
             "the node to show the month returned")
    m = node_month(node, period)
    assert m["comment"].startswith("Only 3 registrations") and m["decided_by"] == "reviewer-koshi"
    # The same over the node's HTTP API, returned months first.
    months = node_get(node, tok, "/v1/months")["months"]
    assert months[0]["period"] == period and months[0]["state"] == "returned"
    assert months[0]["comment"] == m["comment"]
    status = node.status()
    assert [r["period"] for r in status["returned_months"]] == [period]
    # The hub's review as CSV, for a spreadsheet.
    st, text = c.api.call("GET", "/v1/reviews?format=csv&period=" + period, c.officer)
    assert st == 200, text
    rows = {int(r["municipality"]): r for r in csv.DictReader(text.splitlines())}
    assert rows[DHANKUTA]["state"] == "returned" and rows[DHANKUTA]["records"] == "3"
    assert rows[DHANKUTA]["comment"].startswith("Only 3 registrations")
    text = node.status_text()
    assert text.startswith("RETURNED") and period[2:] in text.splitlines()[0]
    # Before any approval, the approved-only answer does not hold the month.
    wait_federal(c, period, 4 - 1, municipality=DHANKUTA, what="the provisional figure")
    assert federal_value(c, period, approved=True, municipality=DHANKUTA)[0] == 0
    # The clerk corrects (two more registrations) and closes again.
    for d in days[3:5]:
        c.person(node, tok, d)
    assert "closed;" in node.cli("close-month", "%04d-%02d" % MONTH).stdout
    row = month_row(c, DHANKUTA, period,
                    lambda r: r["state"] == "closed" and r["records"] == 5,
                    "the hub to see the correction and the new close")
    assert row["version"] > seen
    wait_federal(c, period, 5, municipality=DHANKUTA, what="the corrected provisional figure")
    assert federal_value(c, period, approved=True, municipality=DHANKUTA)[0] == 0
    st, body = c.api.decide(c.reviewer, DHANKUTA, period, "approve", row["version"], "")
    assert st == 200, body
    assert body["review"]["state"] == "approved"
    c.closed.add((DHANKUTA, "BS", MONTH))
    c.state[(DHANKUTA, "BS", MONTH)] = "approved"
    value, cov = wait_federal(c, period, 5, approved=True, municipality=DHANKUTA,
                              what="the approved-only figure", cov_approved=1)
    assert cov["filter"] == "approved" and cov["approved"] == 1
    assert c.registered[(DHANKUTA, "BS", MONTH[0] * 100 + MONTH[1])] == 5
    wait_for(lambda: (node_month(node, period) or {}).get("state") == "approved", 30,
             "the node to show the month approved")


# ---- 2. a change after approval --------------------------------------------------------------

def test_a_change_after_approval_drops_the_month_until_approved_again(chain):
    c = chain
    node, tok = c.nodes[DHANKUTA], c.tokens[DHANKUTA]
    period = bs_period(MONTH)
    row = month_row(c, DHANKUTA, period, lambda r: r["state"] == "approved", "the approval")
    wait_federal(c, period, 5, approved=True, municipality=DHANKUTA, what="approved: 5")
    # A registration arrives for the approved month: accepted, nothing refused.
    c.person(node, tok, days_of_bs_month(MONTH)[6])
    changed = month_row(c, DHANKUTA, period, lambda r: r["state"] == "changed",
                        "the month to be changed since approval")
    assert changed["version"] > row["version"] and changed["decided_by"] == "reviewer-koshi"
    # The provisional answer shows the change; the approved-only one no longer holds the month
    # (no old figure is frozen).
    wait_federal(c, period, 6, municipality=DHANKUTA, what="the provisional figure with the change")
    wait_federal(c, period, 0, approved=True, municipality=DHANKUTA,
                 what="the approved-only figure without the changed month")
    wait_for(lambda: (node_month(node, period) or {}).get("state") == "changed", 30,
             "the node to show the month changed since approval")
    row = month_row(c, DHANKUTA, period, lambda r: r["records"] == 6, "the hub's figures")
    st, body = c.api.decide(c.reviewer, DHANKUTA, period, "approve", row["version"])
    assert st == 200, body
    wait_federal(c, period, 6, approved=True, municipality=DHANKUTA, what="approved again: 6")
    c.state[(DHANKUTA, "BS", MONTH)] = "approved"


# ---- 3. refusals --------------------------------------------------------------------------

def test_refused_decisions_leave_the_month_as_it_was(chain):
    c = chain
    period = bs_period(MONTH)
    before = c.api.reviews(c.officer, period)
    seen = before[DHANKUTA]["version"]
    assert before[DHANKUTA]["state"] == "approved" and before[ARJUNDHARA]["state"] == "open"
    cases = [
        # a municipality of another province
        (403, c.reviewer, OTHER_PROVINCE, "approve", seen, "", None),
        # an officer, not a reviewer
        (403, c.officer, DHANKUTA, "return", seen, "why?", None),
        # a month its clerk has not closed
        (409, c.reviewer, ARJUNDHARA, "approve", before[ARJUNDHARA]["version"], "", None),
        # a stale version
        (409, c.reviewer, DHANKUTA, "return", seen - 1, "stale", None),
        # a comment over 1000 bytes
        (422, c.reviewer, DHANKUTA, "return", seen, "x" * 1001, None),
        # a comment that is not UTF-8
        (422, c.reviewer, DHANKUTA, "return", seen, None,
         b'{"decision":"return","seen_version":' + str(seen).encode() +
         b',"comment":"bad \xff\xfe byte"}'),
        # a return whose comment is blank (the page trims; the API did not), a field given
        # twice, a NUL: each named (a helper that attacked the demo found all three accepted
        # or answered "the body is not JSON")
        (422, c.reviewer, DHANKUTA, "return", seen, " \n\t ", None),
        (422, c.reviewer, DHANKUTA, "return", seen, None,
         b'{"decision":"return","decision":"approve","seen_version":' + str(seen).encode() +
         b',"comment":"twice"}'),
        (422, c.reviewer, DHANKUTA, "return", seen, None,
         b'{"decision":"return","seen_version":' + str(seen).encode() +
         b',"comment":"a\\u0000b"}'),
        # a blank of other spaces and marks; a C1 control and a mark that reorders text, which
        # the node's clerk would see in `months` (the next attack found both accepted)
        (422, c.reviewer, DHANKUTA, "return", seen, "\u00a0\u3000\u200b\ufeff", None),
        (422, c.reviewer, DHANKUTA, "return", seen, "fix \u009b2J the \u202eseed list", None),
        # a version above 2^64 - 1 as a decimal string, which was taken as 2^64 - 1 and
        # answered 409 "the month changed since you saw it" (the attack on the demo found it)
        (422, c.reviewer, DHANKUTA, "return", "99999999999999999999", "x", None),
        # a return at the version a colleague approved: the second of two reviewers who both
        # saw the month closed undid the first's approval unseen (the attack on the demo
        # found it); returning an approved month takes the clock of the approval seen
        (409, c.reviewer, DHANKUTA, "return", seen, "I saw it closed", None),
        (409, c.reviewer, DHANKUTA, "approve", seen, "", None),
        (409, c.reviewer, DHANKUTA, "return", seen, "an older clock", None,
         before[DHANKUTA]["clock"] - 1),
        (422, c.reviewer, DHANKUTA, "return", seen, "no clock", None, "soon"),
    ]
    says = {6: "with a comment saying what to correct", 7: "gives a field twice",
            8: "NUL character", 9: "with a comment saying what to correct",
            10: "a mark that reorders text", 11: "seen_version must be the version",
            12: "give the seen_clock of the approval", 13: "already approved at this version",
            14: "decided since you saw it", 15: "seen_clock must be the clock"}
    for i, (status, token, mun, decision, version, comment, raw, *clock) in enumerate(cases):
        if raw is not None:
            st, body = c.api.call("POST", "/v1/reviews/%d/%s" % (mun, period), token, raw=raw)
        else:
            st, body = c.api.decide(token, mun, period, decision, version, comment, *clock)
        assert st == status, (status, st, body)
        assert says.get(i, "") in body.get("error", ""), (i, body)
        if st == 409:
            assert body["review"]["municipality"] == mun and body["review"]["state"]
    after = c.api.reviews(c.officer, period)
    for mun in (DHANKUTA, ARJUNDHARA):
        for k in ("state", "version", "clock", "decided_by", "comment", "decided_at"):
            assert after[mun][k] == before[mun][k], (mun, k)
    # Each refusal was audited with its status.
    st, audit = c.api.call("GET", "/v1/audit?limit=20", c.admin)
    assert st == 200, audit
    posts = [r["status"] for r in audit["audit"] if r["method"] == "POST"][:len(cases)]
    assert sorted(posts) == sorted(s for s, *_ in cases)
    # A code spelled otherwise is no code: +10703 and 010703 were taken as 10703 (sscanf's
    # %lu), so one month had several addresses.
    for spelled in ("+%d" % DHANKUTA, "0%d" % DHANKUTA, "-%d" % DHANKUTA):
        st, body = c.api.call("POST", "/v1/reviews/%s/%s" % (spelled, period), c.reviewer,
                              {"decision": "return", "comment": "x", "seen_version": seen})
        assert st == 404 and "not found" in body["error"], (spelled, st, body)
    assert c.api.reviews(c.officer, period)[DHANKUTA]["state"] == "approved"


# ---- 4. kill -9 while decisions are in flight --------------------------------------------------

def node_decisions(node):
    db = sqlite3.connect("file:%s?mode=ro" % node.db, uri=True, timeout=10)
    try:
        return [tuple(r) for r in db.execute(
            "SELECT clock, ym, state FROM month_review_log WHERE decision=1 ORDER BY clock")]
    finally:
        db.close()


def federal_decisions(c, mun):
    return [(int(a), int(b), int(s)) for a, b, s in c.db.psql(
        "SELECT clock, ym, state FROM approval_log WHERE province = 1 AND decision"
        " AND municipality = %d ORDER BY clock" % mun)]


def test_decisions_reach_node_and_federal_exactly_once_across_kill9(chain):
    c = chain
    node = c.nodes[ARJUNDHARA]
    states = {"approve": 3, "return": 4}
    for ym in MONTHS_4:
        assert "closed;" in node.cli("close-month", "%04d-%02d" % ym).stdout
        c.closed.add((ARJUNDHARA, "BS", ym))
    for ym in MONTHS_4:
        month_row(c, ARJUNDHARA, bs_period(ym), lambda r: r["state"] == "closed",
                  "the hub to see %s closed" % bs_period(ym))
    truth = []  # (clock, ym, state) of every decision the hub accepted

    def decide(ym, decision, comment=""):
        period = bs_period(ym)
        row = month_row(c, ARJUNDHARA, period, lambda r: r["state"] in ("closed", "changed"),
                        "%s to wait for a decision" % period)
        st, body = c.api.decide(c.reviewer, ARJUNDHARA, period, decision, row["version"], comment)
        assert st == 200, body
        truth.append((body["review"]["clock"], ym[0] * 100 + ym[1], states[decision]))
        c.state[(ARJUNDHARA, "BS", ym)] = "approved" if decision == "approve" else "returned"

    def kill(what):
        if what in ("hub", "both"):
            c.hub.kill9()
        if what in ("node", "both"):
            node.server.kill9()
        if what in ("hub", "both"):
            c.hub.start()
        if what in ("node", "both"):
            c.restart_node(node)

    decide(MONTHS_4[0], "return", "the first month: no services recorded at all")
    kill("hub")
    # The node dies (a test fault) after storing the next change and before acknowledging it.
    node.server.kill9()
    node.hooks = ["--enable-test-hooks", "--test-fault", "review_ack_lost"]
    c.restart_node(node)
    node.hooks = []
    decide(MONTHS_4[1], "approve")
    wait_for(lambda: not node.server.alive(), 30, "the node's fault to strike")
    c.restart_node(node)
    decide(MONTHS_4[2], "approve")
    kill("both")
    # The hub dies (a test fault) right after committing a decision: nothing was sent, not even
    # the answer; the decision is in its log, and travels from there.
    c.hub.kill9()
    c.hub.start("--enable-test-hooks", "--test-fault", "review_decided_kill")
    period = bs_period(MONTHS_4[3])
    row = month_row(c, ARJUNDHARA, period, lambda r: r["state"] == "closed", period)
    try:
        st, body = c.api.decide(c.reviewer, ARJUNDHARA, period, "return", row["version"],
                                "seed funding amounts missing")
    except Exception:
        st = None
    assert st is None, "the hub answered %r" % st
    wait_for(lambda: not c.hub.alive(), 30, "the hub's fault to strike")
    c.hub.start()
    row = c.api.reviews(c.officer, period)[ARJUNDHARA]
    assert row["state"] == "returned" and row["comment"] == "seed funding amounts missing"
    truth.append((row["clock"], MONTHS_4[3][0] * 100 + MONTHS_4[3][1], states["return"]))
    c.state[(ARJUNDHARA, "BS", MONTHS_4[3])] = "returned"
    # The clerk closes the returned months again once the node shows them returned (the node
    # down meanwhile), and both are approved, a kill after each.
    for ym in (MONTHS_4[0], MONTHS_4[3]):
        wait_for(lambda: (node_month(node, bs_period(ym)) or {}).get("state") == "returned", 30,
                 "the node to show %s returned" % bs_period(ym))
    # The node lists its returned months first (newest first), then the others.
    months = node_get(node, c.tokens[ARJUNDHARA], "/v1/months")["months"]
    assert [m["period"] for m in months][:4] == [bs_period(MONTHS_4[i]) for i in (0, 3, 1, 2)]
    assert [m["state"] for m in months][:2] == ["returned", "returned"]
    node.server.kill9()
    for ym in (MONTHS_4[0], MONTHS_4[3]):
        assert "closed;" in node.cli("close-month", "%04d-%02d" % ym).stdout
    c.restart_node(node)
    decide(MONTHS_4[0], "approve")
    kill("both")
    decide(MONTHS_4[3], "approve")
    kill("node")
    want = sorted(truth)
    c.decisions_4 = want
    got = {}

    def arrived():
        got["node"], got["federal"] = node_decisions(node), federal_decisions(c, ARJUNDHARA)
        return got["node"] == want and got["federal"] == want
    try:
        wait_for(arrived, 60, "every decision at the node and the federal tier, once")
    except AssertionError:
        raise AssertionError("want %r\nnode %r\nfederal %r" % (want, got.get("node"),
                                                               got.get("federal")))
    # The node's months end approved, as the hub's do.
    for ym in MONTHS_4:
        assert node_month(node, bs_period(ym))["state"] == "approved"
        assert c.api.reviews(c.officer, bs_period(ym))[ARJUNDHARA]["state"] == "approved"


# ---- 5. approval coverage and directive progress ----------------------------------------------

def geography():
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), newline="") as f:
        return {int(r["local_level_code"]): int(r["province_code"]) for r in csv.DictReader(f)}


def period_days(period):
    """The Gregorian days of period: a BS month, a fiscal trimester or year, a Gregorian month,
    quarter or year (common/period.h)."""
    if period.startswith("FY"):
        y = int(period[2:6])
        first_m, last_m = (4, 15) if "-T" not in period else (4 * int(period[-1]),
                                                               4 * int(period[-1]) + 3)
        first, nxt = bs.bs_month_first(y, first_m), bs.bs_month_first(y, last_m + 1)
    elif period.startswith("BS"):
        y, m = int(period[2:6]), int(period[7:9])
        first, nxt = bs.bs_month_first(y, m), bs.bs_month_first(y, m + 1)
    else:
        y = int(period[:4])
        if len(period) == 4:
            m0, n = 1, 12
        elif "-Q" in period:
            m0, n = 3 * int(period[6]) - 2, 3
        else:
            m0, n = int(period[5:7]), 1
        first = datetime.date(y, m0, 1)
        nxt = datetime.date(y + (m0 + n - 1) // 12, (m0 + n - 1) % 12 + 1, 1)
    return [first + datetime.timedelta(days=i) for i in range((nxt - first).days)]


def period_calendar(period):
    return "BS" if period.startswith(("BS", "FY")) else "AD"


def own_months(cal, period):
    """The months of calendar cal ("BS" or "AD") overlapping period, each as (y, m)."""
    out = []
    for d in period_days(period):
        ym = bs.ad_to_bs(d)[:2] if cal == "BS" else (d.year, d.month)
        if ym not in out:
            out.append(ym)
    return out


def expected_coverage(c, period, province=None, municipality=None):
    calendars = {mun: node.calendar for mun, node in c.nodes.items()}
    t = dict(municipality_months=0, contributing=0, closed=0, approved=0, municipalities=0,
             municipalities_approved=0)
    approved_muns = set()
    for mun, prov in geography().items():
        if (province and prov != province) or (municipality and mun != municipality):
            continue
        cal = calendars.get(mun, "BS")
        months = own_months(cal, period)
        all_ok = True
        for ym in months:
            key = (mun, cal, ym)
            state = c.state.get(key, "closed" if key in c.closed else "open")
            data = c.registered.get((mun, cal, ym[0] * 100 + ym[1]), 0) > 0 or key in c.closed
            t["municipality_months"] += 1
            t["contributing"] += data
            t["closed"] += state in ("closed", "approved", "changed")
            t["approved"] += state == "approved"
            all_ok &= state == "approved"
        t["municipalities"] += 1
        t["municipalities_approved"] += all_ok
        if all_ok:
            approved_muns.add(mun)
    return t, approved_muns


def registered_in(c, period, muns):
    """Persons the test registered in period in municipalities muns: the sum over the months
    of the period's own calendar."""
    cal = period_calendar(period)
    months = {y * 100 + m for y, m in own_months(cal, period)}
    return sum(n for (mun, k, ym), n in c.registered.items()
               if k == cal and ym in months and mun in muns)


def publish(c, body):
    st, answer = c.fed.post("/v1/directives", c.fed_admin, body)
    assert st == 201, answer
    return answer["serial"]


def test_coverage_and_directive_progress_equal_the_tests_own_count(chain):
    c = chain
    ad, tok = c.nodes[AD_NODE], c.tokens[AD_NODE]
    p_bs = bs_period(BEFORE)
    days = days_of_bs_month(BEFORE)
    g1, g2 = (days[0].year, days[0].month), (days[-1].year, days[-1].month)
    p_ad = "%04d-%02d" % g1
    # The Gregorian node registers on the first and last day of the BS month and closes the two
    # Gregorian months that overlap it; the first is approved, the second waits. For the BS
    # month the node is then not approved (one of its months is not), for the first Gregorian
    # month it is.
    for d in (days[0], days[-1], days[-1]):
        c.person(ad, tok, d)
    for g in (g1, g2):
        assert "closed;" in ad.cli("close-month", "%04d-%02d" % g).stdout
        c.closed.add((AD_NODE, "AD", g))
    for g in (g1, g2):
        period = "%04d-%02d" % g
        row = month_row(c, AD_NODE, period, lambda r: r["state"] == "closed", "AD %s" % period)
        if g == g2:
            continue
        st, body = c.api.decide(c.reviewer, AD_NODE, period, "approve", row["version"])
        assert st == 200, body
        c.state[(AD_NODE, "AD", g)] = "approved"
    assert g1 != g2
    # A decision on a BS period for the Gregorian node is refused (its months are AD ones).
    st, body = c.api.decide(c.reviewer, AD_NODE, p_bs, "approve", 1)
    assert st == 400, body
    # A BS month outside the calendar table is told as such, not as "no month"; a year is
    # no month. The month's report says the same.
    for period, says in (("BS1970-01", "outside the calendar table"), ("2026", "one month")):
        st, body = c.api.decide(c.reviewer, AD_NODE, period, "approve", 1)
        assert st == 400 and says in body["error"], (period, st, body)
    st, body = c.api.call("GET", "/v1/reviews?period=BS2100-01", c.reviewer)
    assert st == 400 and "outside the BS calendar table" in body["error"], body
    # Every figure in place at the federal tier first.
    everyone = set(c.nodes)
    wait_federal(c, p_bs, registered_in(c, p_bs, everyone), what="the BS month's figure")
    wait_federal(c, p_ad, registered_in(c, p_ad, everyone), what="the Gregorian month's figure")
    # Longer periods too: a municipality counts as approved for them only when every month of
    # its own calendar that overlaps them is approved.
    longer = [bs.periods(days[0])[1], bs.periods(days[0])[4]]  # quarter, fiscal trimester
    for period in longer:
        wait_federal(c, period, registered_in(c, period, everyone), what="%s's figure" % period)
    for period in [p_bs, p_ad] + longer:
        for area in ({}, {"province": PROVINCE}, {"municipality": DHANKUTA},
                     {"municipality": AD_NODE}):
            want, approved = expected_coverage(c, period, **area)
            got = {}

            def same():
                value, cov = federal_value(c, period, approved=True, **area)
                got["cov"], got["value"] = cov, value
                return {k: cov[k] for k in want} == want

            try:
                wait_for(same, 30, "the coverage of %s %r" % (period, area))
            except AssertionError:
                raise AssertionError("%s %r: coverage %r, expected %r"
                                     % (period, area, got.get("cov"), want))
            assert got["value"] == registered_in(c, period, approved), (period, area)
    # The public role sees the coverage too, but no decision, and not which municipality-months
    # hold any record: that is exact, and told an attack on the demo that a cell published as
    # 0 was not empty (F1). The ministry sees both.
    st, a, _ = c.fed.get("/v1/indicators/participants_registered?period=%s" % p_bs, c.public)
    assert st == 200 and a["approval"]["municipality_months"] > 0
    assert "contributing" not in a["approval"], a["approval"]
    st, _, hdrs = c.fed.get("/v1/indicators/participants_registered?period=%s&format=csv"
                            % p_bs, c.public, raw=True)
    assert st == 200 and "closed=" in hdrs["X-Approval-Coverage"], hdrs
    assert "contributing" not in hdrs["X-Approval-Coverage"], hdrs["X-Approval-Coverage"]
    st, a, _ = c.fed.get("/v1/approvals?period=%s&by=municipality&province=1" % p_bs, c.public)
    assert st == 200 and a["decisions_shown"] is False
    assert all("comment" not in m and "has_data" not in m for r in a["rows"] for m in r["months"])
    assert all("contributing" not in r for r in a["rows"] + [a["total"]]), a["total"]
    st, a, _ = c.fed.get("/v1/indicators/participants_registered?period=%s" % p_bs, c.ministry)
    assert st == 200 and a["approval"]["contributing"] > 0, a["approval"]
    st, a, _ = c.fed.get("/v1/approvals?period=%s&by=municipality&province=1" % p_bs, c.ministry)
    assert st == 200 and a["decisions_shown"] is True
    assert all("has_data" in m for r in a["rows"] for m in r["months"])
    rows = {r["municipality"]: r for r in a["rows"]}
    assert rows[ARJUNDHARA]["months"][0]["state"] == "approved"
    assert rows[ARJUNDHARA]["months"][0]["decided_by"] == "reviewer-koshi"
    # National progress by province equals the coverage of each province.
    st, a, _ = c.fed.get("/v1/approvals?period=%s&by=province" % p_bs, c.ministry)
    assert st == 200, a
    for r in a["rows"]:
        want, _ = expected_coverage(c, p_bs, province=r["province"])
        assert {k: r[k] for k in want} == want, r
    # Directive targets against actuals, provisional and approved-only.
    serial = publish(c, {
        "title": "Registrations of the month", "text": "Targets for the review test.",
        "effective_from": (TODAY - datetime.timedelta(days=1)).isoformat(),
        "targets": [
            {"indicator": "participants_registered", "scope": "national", "period": p_bs,
             "value": 10},
            {"indicator": "participants_registered", "scope": "province", "scope_code": 1,
             "period": p_bs, "value": 4},
            {"indicator": "participants_registered", "scope": "municipality",
             "scope_code": DHANKUTA, "period": p_bs, "value": 2},
            {"indicator": "participants_registered", "scope": "municipality",
             "scope_code": AD_NODE, "period": p_ad, "value": 3},
        ]})
    scopes = [(geography().keys(), p_bs), ([m for m, p in geography().items() if p == 1], p_bs),
              ([DHANKUTA], p_bs), ([AD_NODE], p_ad)]
    targets = [10, 4, 2, 3]
    for approved in (False, True):
        q = "/v1/directives/%d/progress?by=province%s" % (serial,
                                                          "&approval=approved" if approved else "")
        st, a, _ = c.fed.get(q, c.ministry)
        assert st == 200, a
        assert len(a["targets"]) == 4
        for t, (muns, period), target in zip(a["targets"], scopes, targets):
            muns = set(muns)
            if approved:
                muns &= expected_coverage(c, period)[1]
            actual = registered_in(c, period, muns)
            assert t["actual"] == actual, (approved, t)
            assert t["target"] == target
            assert abs(t["reached"] - actual / target) < 1e-6, t
            assert sum(p["actual"] for p in t["by_province"]) == actual
    # Filters: a province's targets, a municipality's.
    st, a, _ = c.fed.get("/v1/directives/%d/progress?province=1" % serial, c.ministry)
    assert st == 200 and len(a["targets"]) == 3, a
    st, a, _ = c.fed.get("/v1/directives/%d/progress?municipality=%d" % (serial, DHANKUTA),
                         c.ministry)
    assert st == 200 and [t["scope_code"] for t in a["targets"]] == [DHANKUTA], a
    st, a, _ = c.fed.get("/v1/directives/%d/progress" % serial, c.public)
    assert st == 403


# ---- a hub rebuilt from nothing recovers its decisions from the federal tier -----------------

def test_a_rebuilt_hub_recovers_its_decisions_from_the_federal_tier(chain):
    c = chain
    node = c.nodes[ARJUNDHARA]
    c.hub.kill9()
    shutil.rmtree(os.path.join(c.hub.dir, "data"))
    c.hub.start()
    # The nodes send everything again (a store the hub never saw), and the uplink takes the
    # province's review changes back from the federal tier: every month is as it was.
    for ym in MONTHS_4:
        row = month_row(c, ARJUNDHARA, bs_period(ym),
                        lambda r: r["state"] == "approved" and r["decided_by"] == "reviewer-koshi",
                        "the rebuilt hub to hold %s approved" % bs_period(ym))
        assert row["decision"] == "approved"
    # (A recovered approval stands before the node's records are back: they come with the
    # versions the reviewer saw, and leave it approved.)
    row = month_row(c, DHANKUTA, bs_period(MONTH),
                    lambda r: r["state"] == "approved" and r["records"] == 6,
                    "the rebuilt hub to hold 10703's month approved, with its records")
    # No decision reached the node or the federal tier twice.
    assert node_decisions(node) == c.decisions_4
    assert federal_decisions(c, ARJUNDHARA) == c.decisions_4
    # A new decision sorts after every old one, and reaches the node (returning an approved
    # month takes the clock of the approval seen).
    st, body = c.api.decide(c.reviewer, DHANKUTA, bs_period(MONTH), "return", row["version"],
                            "after the rebuild: check the last registration",
                            clock=row["clock_text"])
    assert row["clock_text"] == str(row["clock"]) and row["version_text"] == str(row["version"])
    assert st == 200, body
    assert body["review"]["clock"] > max(cl for cl, _, _ in c.decisions_4)
    wait_for(lambda: (node_month(c.nodes[DHANKUTA], bs_period(MONTH)) or {}).get("state") ==
             "returned", 30, "the node to get the new decision")
