"""The provincial officers' gap report (issue 4, must-show item 3) on real processes:
municipal nodes 10703 (Dhankuta) and 10401 (Arjundhara) -> the hub of province 1 (Koshi) ->
a real federal-api on PostgreSQL. GET /v1/gaps lists every local level of the province and
flags an enrolled silent municipality, a referral still pending three full BS months after its
own (month-level, issue 12), a needed but unavailable service and a month closed late.

Ground truth comes from the test: the province's local levels from
data/nepal_local_levels.csv, dates chosen as Gregorian dates and written in the nodes' BS
calendar by bs.py, periods computed here. Nothing expected is read back from the product.

The hub runs with the test clock (--enable-test-hooks --test-clock FILE):
  - A "silent" node: the hub stamps nodes.last_sync_ms with its clock when it commits a
    batch. 10101 connects once with an empty outbox, so it has a nodes row and no sync of a
    record (last_sync_ms = 0): flagged enrolled_silent honestly. To reach the 30-day
    threshold itself, test_sync_older_than_30_days_is_silent moves the running hub's clock
    45 days on (and back).
  - A late close: close-month stamps closed_day = today, so a close of the report's month
    (the last completed BS month) is late only when today is more than 15 days after that
    month's end; before that a late close of it cannot exist yet. The late close is
    therefore checked on an older month through /v1/indicators/reporting_timeliness (and at
    the federal tier), and on the report's row whichever way today falls.
"""
import csv
import datetime
import io
import json
import os
import shutil
import sqlite3
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import bs
import nodegen
import openapi
from fedclient import Federal
from gen import (NEPAL, PERSON_COLS, SERVICE_COLS, Caseload, nepal_today, pending_by_type,
                 referral_pending)
from harness import BIN, Hub, Node, ini_set, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROVINCE = 1
DHANKUTA, ARJUNDHARA, SILENT, AGED = 10703, 10401, 10101, 10102
TODAY = datetime.date.today()
# The report decides what is due on the day in Nepal, which runs 5 h 45 min ahead of UTC.
NEPAL_TODAY = nepal_today()
_TY, _TM, _ = bs.ad_to_bs(TODAY)
# A referral's window is its BS month and the three full months after it (gen.py).
REFERRAL = bs.bs_month_first(_TY, _TM - 5) + datetime.timedelta(days=9)  # window ended: due
RECENT = bs.bs_month_first(_TY, _TM - 1) + datetime.timedelta(days=9)    # window still open
WINDOW_LAST = bs.bs_month_first(_TY, _TM - 2)   # first day of REFERRAL's window's last month
AFTER_WINDOW = bs.bs_month_first(_TY, _TM - 1)  # first day after REFERRAL's window
REFERRAL_MONTH = bs.bs_month_first(_TY, _TM - 5)  # first day of REFERRAL's own month


def province_levels(province=PROVINCE):
    """code -> (name, district) of the province, from the geography CSV itself."""
    out = {}
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), newline="") as f:
        for r in csv.DictReader(f):
            if int(r["province_code"]) == province:
                out[int(r["local_level_code"])] = (r["local_level_name"], r["district_name"])
    return out


def fiscal_year(d):
    """The BS fiscal year (from Shrawan 1, month 4) holding Gregorian date d."""
    y, m, _ = bs.ad_to_bs(d)
    fy = y if m >= 4 else y - 1
    return "FY%04d/%02d" % (fy, (fy + 1) % 100), bs.bs_to_ad(fy, 4, 1), bs.bs_to_ad(fy + 1, 4, 1)


def bs_month_back(d, k):
    """(year, month) of the BS month k months before the one holding d."""
    y, m, _ = bs.ad_to_bs(d)
    m -= k
    while m < 1:
        m += 12
        y -= 1
    return y, m


def bs_month_end(y, m):
    """Gregorian last day of BS month (y, m)."""
    ny, nm = (y, m + 1) if m < 12 else (y + 1, 1)
    return bs.bs_to_ad(ny, nm, 1) - datetime.timedelta(days=1)


FY, FY_START, FY_NEXT = fiscal_year(REFERRAL)
LAST = bs_month_back(NEPAL_TODAY, 1)  # the report's month: the last completed BS month
OLD = bs_month_back(NEPAL_TODAY, 3)   # ended long ago: closing it today is late
LAST_ON_TIME = NEPAL_TODAY <= bs_month_end(*LAST) + datetime.timedelta(days=15)


def in_period(d):
    return FY_START <= d < FY_NEXT


# ---- data ---------------------------------------------------------------------------------

def person(cl, day):
    p = cl.new_person()
    p["_reg"] = day
    p["registered_on"] = bs.bs_str(day)
    p["birth_year"] = str(bs.ad_to_bs(day)[0] - p["_age"])
    if p["return_date"]:
        p["return_date"] = bs.bs_str(day - datetime.timedelta(days=30))
    return p


def service(lid, plid, stype, status, day, provider="NGO"):
    return {"local_id": lid, "person_local_id": plid, "service": stype, "status": status,
            "date": bs.bs_str(day), "provider": provider, "programme": "MUNICIPAL",
            "amount_npr": "", "_day": day}


def import_rows(node, workdir, kind, cols, rows):
    path = os.path.join(workdir, "%s-%d.csv" % (kind, node.municipality))
    nodegen.write_rows(path, cols, rows)
    node.import_csv(kind, path)


def in_fy_days(n):
    """n registration days inside the period, none after the first day of the referral's
    month (a delivery is dated from then on)."""
    span = max(0, (min(REFERRAL_MONTH, TODAY) - FY_START).days)
    return [FY_START + datetime.timedelta(days=(i * 7) % (span + 1)) for i in range(n)]


# ---- clients ------------------------------------------------------------------------------

class Officer:
    """The hub's HTTPS officers' API."""

    def __init__(self, hub, pki, token):
        self.port = hub.https_port
        self.token = token
        self.ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))

    def get(self, path, token=True, **params):
        q = urllib.parse.urlencode(params, safe="")
        req = urllib.request.Request("https://127.0.0.1:%d%s%s" % (self.port, path,
                                                                  "?" + q if q else ""))
        if token is True:
            token = self.token
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=15) as r:
                status, body, hdrs = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, body, hdrs = e.code, e.read().decode(), e.headers
        if hdrs.get("Content-Type", "").startswith("text/csv"):
            return status, body, hdrs
        # Every JSON answer is checked against docs/openapi/hub.json.
        return status, openapi.answer("hub", "GET", req.selector, status, body), hdrs

    def gaps(self, **params):
        st, body, _ = self.get("/v1/gaps", **params)
        assert st == 200, body
        return body

    def rows(self, **params):
        return {r["code"]: r for r in self.gaps(**params)["rows"]}

    def indicator(self, code, **params):
        st, body, _ = self.get("/v1/indicators/" + code, **params)
        assert st == 200, body
        return body


class FreshDatabase:
    def __init__(self, pg):
        self.name = "gaps_%d" % time.time_ns()
        pg.psql("CREATE DATABASE %s" % self.name, db="postgres")
        self.conninfo = pg.conninfo.replace("dbname=reintegration", "dbname=" + self.name)


# ---- the chain, built once for the module --------------------------------------------------

class Chain:
    pass


@pytest.fixture(scope="module")
def chain(pki, postgres):  # noqa: F811
    workdir = tempfile.mkdtemp(prefix="reint-gaps-")
    started = []
    c = Chain()
    c.workdir, c.pki = workdir, pki
    try:
        pki.issue("federal")
        c.fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
        started.append(c.fed)
        c.fed_token = c.fed.token("ministry", "gaps-ministry-%d" % time.time_ns())
        c.hub = Hub(workdir, pki, PROVINCE)
        ini_set(c.hub.config, "[uplink]\nfederal = 127.0.0.1:%d\n" % c.fed.sync_port)
        token = run([os.path.join(BIN, "provincial-hub"), "--config", c.hub.config, "token",
                     "officer"]).stdout.strip()
        c.clock = os.path.join(workdir, "hub-clock")
        with open(c.clock, "w") as f:
            f.write("0\n")
        c.hub.start("--enable-test-hooks", "--test-clock", c.clock)
        started.append(c.hub)
        c.officer = Officer(c.hub, pki, token)
        c.registered = {}

        # 10703: an overdue referral, a service needed but unavailable, and controls.
        dk = Node(workdir, pki, DHANKUTA, c.hub)
        cl = Caseload(DHANKUTA, 71)
        days = in_fy_days(2)
        a, b = person(cl, days[0]), person(cl, days[1])
        import_rows(dk, workdir, "persons", PERSON_COLS, [a, b])
        c.registered[DHANKUTA] = 2
        svc = [
            # referred five BS months ago, never delivered: pending
            service("S-LEGAL", a["local_id"], "LEGAL_AID", "REFERRED", REFERRAL),
            # referred in the period and delivered, but no provider offers it (available=no)
            service("S-SKILL-R", a["local_id"], "SKILLS_TRAINING", "REFERRED", REFERRAL,
                    "TRAINING_INSTITUTE"),
            service("S-SKILL-D", a["local_id"], "SKILLS_TRAINING", "DELIVERED",
                    REFERRAL + datetime.timedelta(days=10), "TRAINING_INSTITUTE"),
            # referred in the period and delivered; no availability row at all
            service("S-HEALTH-R", b["local_id"], "HEALTH_REFERRAL", "REFERRED", REFERRAL,
                    "HEALTH_FACILITY"),
            service("S-HEALTH-D", b["local_id"], "HEALTH_REFERRAL", "DELIVERED",
                    REFERRAL + datetime.timedelta(days=5), "HEALTH_FACILITY"),
            # referred last BS month: its window is still open; offered locally
            service("S-PSY", b["local_id"], "PSYCHOSOCIAL_SUPPORT", "REFERRED", RECENT, "MRC"),
            # delivered in the last month of its window: not pending; offered locally
            service("S-FIN-R", b["local_id"], "FINANCIAL_LITERACY", "REFERRED", REFERRAL),
            service("S-FIN-D", b["local_id"], "FINANCIAL_LITERACY", "DELIVERED", WINDOW_LAST),
            # delivered the first day after its window: too late, still pending; offered
            service("S-JOB-R", a["local_id"], "JOB_PLACEMENT", "REFERRED", REFERRAL),
            service("S-JOB-D", a["local_id"], "JOB_PLACEMENT", "DELIVERED", AFTER_WINDOW),
            # delivered earlier in the referral's own BS month: months count, not days
            service("S-BANK-D", b["local_id"], "BANK_ACCOUNT", "DELIVERED", REFERRAL_MONTH,
                    "BANK"),
            service("S-BANK-R", b["local_id"], "BANK_ACCOUNT", "REFERRED", REFERRAL, "BANK"),
        ]
        c.services = svc
        import_rows(dk, workdir, "services", SERVICE_COLS, svc)
        as_of = bs.bs_str(TODAY - datetime.timedelta(days=3))
        import_rows(dk, workdir, "availability", nodegen.AVAILABILITY_COLS, [
            {"service": "LEGAL_AID", "provider": "NGO", "available": "true", "as_of": as_of},
            {"service": "PSYCHOSOCIAL_SUPPORT", "provider": "MRC", "available": "yes",
             "as_of": as_of},
            {"service": "FINANCIAL_LITERACY", "provider": "NGO", "available": "1",
             "as_of": as_of},
            {"service": "SKILLS_TRAINING", "provider": "TRAINING_INSTITUTE", "available": "no",
             "as_of": as_of},
            {"service": "JOB_PLACEMENT", "provider": "NGO", "available": "yes", "as_of": as_of},
            {"service": "BANK_ACCOUNT", "provider": "BANK", "available": "yes", "as_of": as_of},
        ])
        dk.sync(timeout=60)
        c.nodes = {DHANKUTA: dk}

        # 10401: more registrations (for the sort), an old month and the last month closed
        # today.
        ar = Node(workdir, pki, ARJUNDHARA, c.hub)
        cl2 = Caseload(ARJUNDHARA, 72)
        import_rows(ar, workdir, "persons", PERSON_COLS,
                    [person(cl2, d) for d in in_fy_days(5)])
        c.registered[ARJUNDHARA] = 5
        for y, m in (OLD, LAST):
            assert "closed" in ar.cli("close-month", "%04d-%02d" % (y, m)).stdout
        ar.sync(timeout=60)

        # 10101: connects once with nothing to send; 10102: syncs one registration.
        c.silent = Node(workdir, pki, SILENT, c.hub)
        c.silent.sync(timeout=60)
        ag = Node(workdir, pki, AGED, c.hub)
        import_rows(ag, workdir, "persons", PERSON_COLS,
                    [person(Caseload(AGED, 73), in_fy_days(1)[0])])
        c.registered[AGED] = 1
        ag.sync(timeout=60)

        # The test's own rule (gen.py), on the hub's day (in Nepal); the data are meant to
        # give exactly these two.
        c.expect_pending = pending_by_type(svc, nepal_today(), lambda s: in_period(s["_day"]))
        assert c.expect_pending == {"LEGAL_AID": 1, "JOB_PLACEMENT": 1}, c.expect_pending
        c.expect_unavailable = {"SKILLS_TRAINING", "HEALTH_REFERRAL"}

        def settled():
            rows = c.officer.rows(period=FY)
            r, a = rows[DHANKUTA], rows[ARJUNDHARA]
            return (r["referrals_pending"] == c.expect_pending
                    and set(r["services_unavailable"]) == c.expect_unavailable
                    and a["month_closed"]
                    and all(rows[m]["participants_registered"] == n
                            for m, n in c.registered.items()))
        wait_for(settled, 30, "the hub's rollups to show the nodes' records")
        yield c
    finally:
        for p in started:
            try:
                p.kill9()
            except Exception:
                pass
        if os.environ.get("KEEP_TEST_DIRS"):
            print("kept", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# ---- tests --------------------------------------------------------------------------------

def test_every_local_level_of_the_province_once_and_never_seen_ones_not_enrolled(chain):
    levels = province_levels()
    assert len(levels) == 137
    report = chain.officer.gaps(period=FY)
    assert report["province"] == PROVINCE and report["period"] == FY
    codes = [r["code"] for r in report["rows"]]
    assert sorted(codes) == codes, "default order is by code"
    assert len(codes) == len(set(codes)) == len(levels)
    assert set(codes) == set(levels)
    enrolled = {DHANKUTA, ARJUNDHARA, SILENT, AGED}
    for r in report["rows"]:
        assert (r["name"], r["district"]) == levels[r["code"]], r
        assert r["month"] == "BS%04d-%02d" % LAST, r
        if r["code"] in enrolled:
            assert r["enrolled"] is True and "not_enrolled" not in r["flags"], r
        else:
            assert r["enrolled"] is False, r
            assert r["flags"] == ["not_enrolled"], r
            assert r["last_sync"] is None and r["participants_registered"] == 0, r
    # The default period is today's fiscal year.
    assert chain.officer.gaps()["period"] == fiscal_year(NEPAL_TODAY)[0]


def test_enrolled_node_that_never_synced_a_record_is_silent(chain):
    rows = chain.officer.rows(period=FY)
    s = rows[SILENT]
    assert s["enrolled"] is True and s["last_sync"] is None, s
    assert "enrolled_silent" in s["flags"], s
    # It said Hello today: in contact, with nothing entered (not offline).
    assert s["last_contact"].startswith(TODAY.isoformat()) and s["last_contact_age_days"] == 0
    assert "enrolled_offline" not in s["flags"], s
    for code in (DHANKUTA, ARJUNDHARA):
        r = rows[code]
        assert r["last_sync"] is not None and r["last_sync_age_days"] == 0, r
        assert "enrolled_silent" not in r["flags"], r


def test_referral_pending_over_90_days_and_unavailable_service_are_flagged(chain):
    r = chain.officer.rows(period=FY)[DHANKUTA]
    assert r["referrals_pending"] == chain.expect_pending, r
    assert r["referrals_pending_total"] == 2, r
    assert set(r["services_unavailable"]) == {"SKILLS_TRAINING", "HEALTH_REFERRAL"}, r
    assert r["services_unavailable_total"] == 2, r
    assert "referrals_overdue" in r["flags"] and "services_unavailable" in r["flags"], r
    # Nothing of 10703 was due to close (first seen today), so no month flag.
    assert not {"month_not_closed", "month_closed_late"} & set(r["flags"]), r
    assert r["participants_registered"] == 2, r
    # Persons with a delivery placed in the period.
    served = {s["person_local_id"] for s in chain.services
              if s["status"] == "DELIVERED" and in_period(s["_day"])}
    assert r["persons_served"] == len(served), r
    # Both persons registered in the period have a delivered service (at whatever date).
    assert r["participants_served"] == 2 and r["share_served"] == 1.0, r
    # 10401 referred nothing: no such flags.
    a = chain.officer.rows(period=FY)[ARJUNDHARA]
    assert a["referrals_pending"] == {} and a["services_unavailable"] == {}, a
    assert not {"referrals_overdue", "services_unavailable"} & set(a["flags"]), a
    # The indicator endpoint agrees, by service type.
    ind = chain.officer.indicator("referrals_pending", period=FY, by="service_type",
                                  municipality=DHANKUTA)
    assert {c["service_type"]: c["value"] for c in ind["cells"] if c["value"]} == \
        chain.expect_pending, ind
    # Another period (the fiscal year after the referral's) holds none of it.
    nxt = chain.officer.rows(period=fiscal_year(FY_NEXT)[0])[DHANKUTA]
    assert nxt["referrals_pending"] == {} and "referrals_overdue" not in nxt["flags"], nxt


def test_month_closed_late(chain):
    old = "BS%04d-%02d" % OLD
    for code, num in (("reporting_completeness", 1), ("reporting_timeliness", 0)):
        ind = chain.officer.indicator(code, period=old, municipality=ARJUNDHARA)
        assert [(c["value"], c["denominator"]) for c in ind["cells"]] == [(num, 1)], ind
    # The report's month was closed today: late only if today is past its end + 15 days.
    a = chain.officer.rows(period=FY)[ARJUNDHARA]
    assert a["month"] == "BS%04d-%02d" % LAST and a["month_closed"] is True, a
    assert a["month_on_time"] is LAST_ON_TIME, a
    assert ("month_closed_late" in a["flags"]) is (not LAST_ON_TIME), a
    assert "month_not_closed" not in a["flags"], a
    last = "BS%04d-%02d" % LAST
    ind = chain.officer.indicator("reporting_timeliness", period=last, municipality=ARJUNDHARA)
    assert [(c["value"], c["denominator"]) for c in ind["cells"]] == \
        [(1 if LAST_ON_TIME else 0, 1)], ind


def test_federal_receiver_holds_the_same_gaps(chain):
    fed, tok = chain.fed, chain.fed_token

    def q(code, **params):
        params["exact"] = "true"
        st, a, _ = fed.get("/v1/indicators/%s?%s" % (code, urllib.parse.urlencode(params)), tok)
        assert st == 200, a
        return a

    old = "BS%04d-%02d" % OLD
    got = {}

    def arrived():
        got["pending"] = {r["service_type"]: r["value"] for r in
                          q("referrals_pending", period=FY, municipality=DHANKUTA,
                            by="service_type")["rows"] if r["value"]}
        got["unavailable"] = {r["service_type"] for r in
                              q("services_unavailable", period=FY, municipality=DHANKUTA,
                                by="service_type")["rows"] if r["value"]}
        got["timely"] = q("reporting_timeliness", period=old, municipality=ARJUNDHARA)
        got["complete"] = q("reporting_completeness", period=old, municipality=ARJUNDHARA)
        return (got["pending"] == chain.expect_pending
                and got["unavailable"] == {"SKILLS_TRAINING", "HEALTH_REFERRAL"}
                and got["complete"]["total"]["value"] == 1)
    try:
        wait_for(arrived, 30, "the federal tier to hold the province's snapshots")
    except AssertionError:
        raise AssertionError("federal answered %r" % got)
    assert got["timely"]["total"]["value"] == 0, got["timely"]


def test_officers_api_refuses_without_a_valid_token(chain):
    for tok in (None, "not-a-token", chain.officer.token[:-1] +
                ("0" if chain.officer.token[-1] != "0" else "1")):
        st, body, hdrs = chain.officer.get("/v1/gaps", token=tok, period=FY)
        assert st == 401, body
        assert hdrs.get("WWW-Authenticate") == "Bearer"
        assert "rows" not in body
        st, body, _ = chain.officer.get("/v1/indicators/referrals_pending", token=tok,
                                        period=FY)
        assert st == 401, body


def test_csv_has_a_header_and_one_line_per_municipality(chain):
    st, text, hdrs = chain.officer.get("/v1/gaps", period=FY, format="csv")
    assert st == 200 and hdrs["Content-Type"].startswith("text/csv"), text
    lines = text.split("\r\n")
    assert lines[-1] == ""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(lines) - 2 == len(rows) == 137
    header = next(csv.reader(io.StringIO(text)))
    for col in ("code", "name", "district", "enrolled", "month", "month_closed",
                "participants_registered", "referrals_pending", "services_unavailable",
                "flags"):
        assert col in header, header
    assert [int(r["code"]) for r in rows] == sorted(province_levels())
    d = {int(r["code"]): r for r in rows}
    assert json.loads(d[DHANKUTA]["referrals_pending"]) == chain.expect_pending
    assert "referrals_overdue" in json.loads(d[DHANKUTA]["flags"])
    assert json.loads(d[SILENT]["flags"]) == ["enrolled_silent"]
    assert d[10102]["enrolled"] == "true" and d[10103]["enrolled"] == "false"
    assert d[ARJUNDHARA]["participants_registered"] == "5"


def test_sort_orders_rows(chain):
    rows = chain.officer.gaps(period=FY, sort="-participants_registered")["rows"]
    vals = [r["participants_registered"] for r in rows]
    assert vals == sorted(vals, reverse=True)
    assert [r["code"] for r in rows[:3]] == [ARJUNDHARA, DHANKUTA, AGED]
    # ties keep the code order
    zeros = [r["code"] for r in rows if r["participants_registered"] == 0]
    assert zeros == sorted(zeros) and len(zeros) == 134
    names = [r["name"] for r in chain.officer.gaps(period=FY, sort="name")["rows"]]
    assert names == sorted(names)
    st, body, _ = chain.officer.get("/v1/gaps", period=FY, sort="flags")
    assert st == 400 and "participants_registered" in body["error"], body


def test_bad_period_gives_400_naming_the_shapes(chain):
    for bad in ("FY2083", "2026-13", "BS2083-13", "yesterday", "FY2083/85"):
        st, body, _ = chain.officer.get("/v1/gaps", period=bad)
        assert st == 400, (bad, body)
        for shape in ("2026", "2026-Q3", "2026-07", "BS2083-04", "FY2083/84-T1", "FY2083/84"):
            assert shape in body["error"], (bad, body)


def test_sync_older_than_30_days_is_silent(chain):
    """The running hub's clock moves 45 days on: 10102 has not synced since, and is silent;
    10703 syncs again after the move, and is not."""
    before = chain.officer.rows(period=FY)[AGED]
    assert before["last_sync_age_days"] == 0 and "enrolled_silent" not in before["flags"]
    synced = before["last_sync"]
    assert synced.startswith(TODAY.isoformat()), before
    with open(chain.clock, "w") as f:
        f.write("%d\n" % (45 * 86400))
    try:
        wait_for(lambda: chain.hub.metrics()["test_clock_offset_seconds"] == 45 * 86400, 10,
                 "the hub to read its test clock")
        dk = chain.nodes[DHANKUTA]  # syncs once more, after the move
        import_rows(dk, chain.workdir, "persons", PERSON_COLS,
                    [person(Caseload(DHANKUTA, 74), in_fy_days(1)[0])])
        dk.sync(timeout=60)
        chain.registered[DHANKUTA] += 1
        r = chain.officer.rows(period=FY)[AGED]
        assert r["last_sync_age_days"] == 45, r
        assert r["last_sync"] == synced, r  # the sync itself did not move
        assert "enrolled_silent" in r["flags"] and r["enrolled"] is True, r
        assert "enrolled_silent" not in chain.officer.rows(period=FY)[DHANKUTA]["flags"]
        # Not heard of either: offline (F21: "last sync" was the last record only, so a node
        # in contact with nothing new looked the same as one gone).
        assert r["last_contact_age_days"] == 45 and "enrolled_offline" in r["flags"], r
        chain.silent.sync(timeout=60)  # says Hello, sends nothing
        rows = chain.officer.rows(period=FY)
        s = rows[SILENT]
        assert s["last_sync"] is None and s["last_contact_age_days"] == 0, s
        assert "enrolled_silent" in s["flags"] and "enrolled_offline" not in s["flags"], s
        dk = rows[DHANKUTA]
        assert dk["last_contact_age_days"] == 0 and "enrolled_offline" not in dk["flags"], dk
        # /metrics counts the same nodes as the report flags.
        m = chain.hub.metrics()
        assert m["hub_nodes_silent"] == sum("enrolled_silent" in x["flags"]
                                            for x in rows.values()) >= 2, m
        assert m["hub_nodes_offline"] == sum("enrolled_offline" in x["flags"]
                                             for x in rows.values()) >= 1, m
        ages = [x["last_contact_age_days"] for x in
                chain.officer.gaps(period=FY, sort="-last_contact_age_days")["rows"]
                if x["last_contact_age_days"] is not None]
        assert ages == sorted(ages, reverse=True) and ages[0] == 45 and ages[-1] == 0, ages
    finally:
        with open(chain.clock, "w") as f:
            f.write("0\n")
        wait_for(lambda: chain.hub.metrics()["test_clock_offset_seconds"] == 0, 10,
                 "the hub's test clock to return")

def _set_hub_time(chain, when):
    """Moves the hub's clock so that its wall clock reads about `when` (UTC, naive)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    offset = int((when - now).total_seconds())
    with open(chain.clock, "w") as f:
        f.write("%d\n" % offset)
    wait_for(lambda: chain.hub.metrics()["test_clock_offset_seconds"] == offset, 10,
             "the hub to read its test clock")


def test_referral_turns_pending_at_midnight_nepal_time_after_its_window(chain):
    """The hub recomputes referrals every day, on Nepal's day: the referral of last BS month
    (S-PSY, never delivered) becomes pending at 00:00 in Nepal (18:15 UTC the evening before)
    of the first day after the third full BS month after its own, and not a minute before."""
    b_y, b_m, _ = bs.ad_to_bs(RECENT)
    opens = bs.bs_month_first(b_y, b_m + 4)  # the first day after the window
    midnight_utc = datetime.datetime.combine(opens, datetime.time()) - NEPAL
    before, after = midnight_utc - datetime.timedelta(minutes=20), \
        midnight_utc + datetime.timedelta(minutes=20)
    # The test's own rule says so, on the day in Nepal at each of the two times.
    assert not referral_pending(RECENT, [], nepal_today(before))
    assert referral_pending(RECENT, [], nepal_today(after))
    period = "BS%04d-%02d" % (b_y, b_m)

    def psy():
        cells = chain.officer.indicator("referrals_pending", period=period, by="service_type",
                                        municipality=DHANKUTA)["cells"]
        return {c["service_type"]: c["value"] for c in cells if c["value"]}.get(
            "PSYCHOSOCIAL_SUPPORT", 0)
    try:
        _set_hub_time(chain, before)
        time.sleep(2)  # the hub recomputes every half second: give it several rounds
        assert psy() == 0
        _set_hub_time(chain, after)
        wait_for(lambda: psy() == 1, 30, "the referral to turn pending after midnight in Nepal")
    finally:
        with open(chain.clock, "w") as f:
            f.write("0\n")
        wait_for(lambda: chain.hub.metrics()["test_clock_offset_seconds"] == 0, 10,
                 "the hub's clock back")
    wait_for(lambda: psy() == 0, 30, "the referral to wait again once the clock is back")


def test_gap_report_turns_the_month_on_nepals_day(chain):
    """The gap report's "last month" and its "as of" date are Nepal's: at 20:00 UTC on the
    evening before a BS month starts, it is already 01:45 on the 1st in Nepal, so the month
    that just ended is due, while a report on the UTC date would still call the month before
    it the last one for the next 3 h 45 min."""
    opens = bs.bs_month_first(_TY, _TM + 1)  # the next BS month: always in the future
    when = datetime.datetime.combine(opens, datetime.time()) - NEPAL + datetime.timedelta(hours=2)
    assert when.date() == opens - datetime.timedelta(days=1)  # still yesterday in UTC
    ended = bs.ad_to_bs(opens - datetime.timedelta(days=1))
    try:
        _set_hub_time(chain, when)
        report = chain.officer.gaps(period=FY)
        assert report["as_of_bs"] == "%04d-%02d-%02d" % bs.ad_to_bs(opens), report["as_of_bs"]
        months = {r["month"] for r in report["rows"]}
        assert months == {"BS%04d-%02d" % ended[:2]}, months
    finally:
        with open(chain.clock, "w") as f:
            f.write("0\n")
        wait_for(lambda: chain.hub.metrics()["test_clock_offset_seconds"] == 0, 10,
                 "the hub's clock back")
