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
import csv
import datetime
import http.client
import io
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.support.ui import Select

import bs
from harness import BIN, ROOT, Hub, free_port, run, wait_for  # noqa: F401
from harness import pb
from wireclient import WireClient, record_id

FLAG_WORDS = {"enrolled_silent": "Silent", "enrolled_offline": "Offline",
              "not_enrolled": "Not enrolled", "referrals_overdue": "Referrals overdue",
              "services_unavailable": "Services unavailable",
              "month_not_closed": "Month not closed", "month_closed_late": "Closed late"}

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
    # Versions as a node's clock makes them (milliseconds << 16, plus one within the same
    # millisecond): above 2^53, where a page's JavaScript numbers lose the last digits.
    version = (int(time.time() * 1000) << 16) + 7
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
    # A code as the geography writes it: 010703 and +10703 are no codes (one code, one
    # spelling in the answers and the audit).
    for spelled in ("010703", "+10703", "01"):
        st, e = dash.api.call("GET", "/v1/indicators/participants_registered?period=%s&%s=%s"
                              % (FY, "district" if spelled == "01" else "municipality",
                                 urllib.parse.quote(spelled)), tok)
        assert st == 400, (spelled, st, e)


# ---- the dashboard in a browser ------------------------------------------------------------

def test_a_sign_in_from_another_site_is_refused(dash):
    """Another site's form could sign an officer's browser in to the dashboard with the
    attacker's token, so that the officer's decisions would carry the attacker's name, and
    sign the officer out without the session's CSRF token. Both are now refused."""
    def call(method, headers, body=None):
        c = http.client.HTTPSConnection("127.0.0.1", dash.hub.https_port, timeout=15,
                                        context=dash.api.ctx)
        try:
            c.request(method, "/v1/session", body=body,
                      headers=dict({"Content-Type": "application/json"}, **headers))
            r = c.getresponse()
            return r.status, r.headers, r.read().decode()
        finally:
            c.close()

    def sign_in(headers):
        return call("POST", headers, json.dumps({"token": dash.tokens["reviewer"]}))
    for headers in ({"Origin": "http://evil.example"},
                    {"Origin": "http://evil.example", "Content-Type": "text/plain"},
                    {"Sec-Fetch-Site": "cross-site"}):
        status, hdrs, body = sign_in(headers)
        assert status == 403 and "Set-Cookie" not in hdrs, (headers, status, body)
    own = "https://127.0.0.1:%d" % dash.hub.https_port
    for headers in ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, {}):
        status, hdrs, body = sign_in(headers)
        assert status == 200 and "Set-Cookie" in hdrs, (headers, status, body)
    cookie, csrf = hdrs["Set-Cookie"].split(";")[0], json.loads(body)["csrf"]
    for headers in ({"Cookie": cookie},
                    {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "http://evil.example"},
                    {"Cookie": cookie, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}):
        assert call("DELETE", headers)[0] == 403, headers
        assert call("GET", {"Cookie": cookie})[0] == 200, headers
    assert call("DELETE", {"Cookie": cookie, "X-CSRF-Token": csrf})[0] == 204
    assert call("GET", {"Cookie": cookie})[0] == 401
    assert call("DELETE", {"Cookie": cookie})[0] == 204  # a dead session is only forgotten


def page_fetch(d, url):
    """The text a fetch of url from the page gets (the session's cookie goes with it)."""
    return d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done)"
        ".catch(e => done('ERR ' + e));", url)


def sign_in(d, base, token):
    import browser
    d.get(base + "/signin")
    browser.wait(d, lambda: d.find_elements("id", "token"), what="the sign-in form")
    d.find_element("id", "token").send_keys(token)
    d.find_element("id", "signin").click()
    browser.wait_h1(d, "Gaps by local level")


def check_axe(d, where):
    import browser
    bad = browser.axe(d)
    assert not bad, where + ":\n" + browser.describe(bad)


def test_dashboard_in_a_browser(dash):
    import browser
    base = "https://127.0.0.1:%d" % dash.hub.https_port
    tok = dash.tokens["officer"]
    d = browser.chromium(ca={"leaf": dash.pki.path("province-1.crt")}, width=1400, height=900)
    try:
        d.get(base + "/")
        d.execute_script("localStorage.setItem('lang', 'en')")
        sign_in(d, base, tok)
        # A mistyped address: a page saying so, with the way on (it was the bare JSON
        # {"error":"not found"}, an attack on the demo found); JSON for an API client.
        d.get(base + "/gap")
        browser.wait_h1(d, "Page not found")
        assert d.find_element("css selector", "main a[href='/gaps']").text == \
            "Go to the gaps by local level"
        for accept, kind in (("text/html", "text/html"), ("application/json", "application/json")):
            c = http.client.HTTPSConnection("127.0.0.1", dash.hub.https_port, timeout=15,
                                            context=dash.api.ctx)
            try:
                c.request("GET", "/gap", headers={"Accept": accept})
                r = c.getresponse()
                r.read()
                # Without a token an API client is refused (401) before any lookup.
                assert r.status in ((404,) if kind == "text/html" else (401,)), r.status
                assert r.headers["Content-Type"].startswith(kind), r.headers
            finally:
                c.close()
        d.get(base + "/gaps")
        # The gap table: every local level of Koshi, sorted and filtered here.
        browser.wait(d, lambda: len(d.find_elements("css selector", "#gaps-table tbody tr")) == 137,
                     what="137 rows")
        d.find_element("css selector", "button[data-sort=participants_registered]").click()
        d.find_element("css selector", "button[data-sort=participants_registered]").click()
        first = d.find_element("css selector", "#gaps-table tbody tr").get_attribute("data-code")
        gaps = dash.api.get("/v1/gaps", tok, period=FY)
        top = max(gaps["rows"], key=lambda r: (r["participants_registered"], -r["code"]))
        assert int(first) == top["code"]
        th = d.find_element("css selector", "#gaps-table th[aria-sort]")
        assert th.get_attribute("aria-sort") == "descending"
        check_axe(d, "gaps")
        browser.screenshot(d, "hub-gaps-en")
        d.find_element("id", "gaps-filter").send_keys("Dhankuta")
        codes = [e.get_attribute("data-code")
                 for e in d.find_elements("css selector", "#gaps-table tbody tr")]
        assert "10703" in codes and len(codes) < 20
        assert all(("Dhankuta" in r["name"] or r["district"] == "Dhankuta")
                   for r in gaps["rows"] if str(r["code"]) in codes)
        # The sort and the filter are in the address: a reload (or Back, or a link sent on)
        # shows the same table (they were lost, an attack on the demo found).
        assert "sort=-participants_registered" in d.current_url and "q=Dhankuta" in d.current_url
        d.refresh()
        browser.wait(d, lambda: d.find_elements("css selector", "#gaps-table tbody tr"),
                     what="the gap table after a reload")
        assert d.find_element("id", "gaps-filter").get_attribute("value") == "Dhankuta"
        assert [e.get_attribute("data-code") for e in
                d.find_elements("css selector", "#gaps-table tbody tr")] == codes
        assert d.find_element(
            "css selector", "#gaps-table th[aria-sort='descending'] button").get_attribute(
            "data-sort") == "participants_registered"
        # The last month's column names the month it speaks of (it said "Late" alone).
        names = ["Baishakh", "Jestha", "Asar", "Shrawan", "Bhadra", "Asoj", "Kartik", "Mangsir",
                 "Poush", "Magh", "Falgun", "Chaitra"]
        due = {r["code"]: r for r in gaps["rows"]}[10703]["month"]  # "BS2083-07"
        cell = d.find_element("css selector", "#gaps-table tbody tr[data-code='10703']").text
        assert "%s %s:" % (names[int(due[7:9]) - 1], due[2:6]) in cell, (due, cell)
        # A sync of the last day says so, not "0 days ago" (an attack on the demo); the age is
        # counted in whole days since the sync, not in calendar days.
        age = {r["code"]: r for r in gaps["rows"]}[10703]["last_sync_age_days"]
        assert age == 0 and "within the last day" in cell and "0 days ago" not in cell, \
            (age, cell)
        # A code typed in Devanagari digits, as a Nepali keyboard gives it, finds its row.
        d.find_element("id", "gaps-filter").clear()
        d.find_element("id", "gaps-filter").send_keys("\u0967\u0966\u096d\u0966\u0969")
        assert [e.get_attribute("data-code") for e in
                d.find_elements("css selector", "#gaps-table tbody tr")] == ["10703"]
        # A name typed in Nepali on the English page (a filter kept in the address across a
        # language switch) finds its rows too: the local level, and its district's.
        d.find_element("id", "gaps-filter").clear()
        d.find_element("id", "gaps-filter").send_keys("धनकुटा नगरपालिका")
        assert [e.get_attribute("data-code") for e in
                d.find_elements("css selector", "#gaps-table tbody tr")] == ["10703"]
        d.find_element("id", "gaps-filter").clear()
        # The CSV the link downloads is the API's, in the order shown.
        href = d.find_element("id", "gaps-csv").get_attribute("href")
        assert "format=csv" in href and "sort=-participants_registered" in href
        st, want = dash.api.call("GET", href[len(base):], tok, raw=True)
        assert st == 200 and page_fetch(d, href) == want
        assert want.splitlines()[1].split(",")[0] == str(top["code"])
        # The table as shown, for a spreadsheet (the API's file holds every local level, with
        # English keys and JSON in its cells; the pages' attack): the filtered rows in the
        # order shown, the page's words, figures as plain numbers, a BOM for Excel.
        d.find_element("id", "gaps-filter").send_keys("Dhankuta")
        shown = [e.get_attribute("data-code") for e in
                 d.find_elements("css selector", "#gaps-table tbody tr")]
        assert shown == codes
        browser.capture_downloads(d)
        d.find_element("id", "gaps-csv-shown").click()
        browser.wait(d, lambda: browser.last_download(d), what="the table's CSV")
        kind, text = browser.last_download(d)
        assert kind.startswith("text/csv")
        assert browser.last_download(d, binary=True)[1][:3] == [0xEF, 0xBB, 0xBF]
        table = list(csv.reader(io.StringIO(text)))
        assert table[0][:4] == ["Local level", "Code", "District", "Enrolled"], table[0]
        assert [r[1] for r in table[1:]] == shown
        by_code = {str(r["code"]): r for r in gaps["rows"]}
        col = table[0].index("Registered")
        for r in table[1:]:
            g = by_code[r[1]]
            assert int(r[col]) == g["participants_registered"], (r, g)
            assert r[-1] == "; ".join(FLAG_WORDS[f] for f in g["flags"]), (r, g["flags"])
        d.find_element("id", "gaps-filter").clear()
        # A text a spreadsheet would run as a formula gets a ' before it, as the node's
        # exports do; numbers stay numbers (a review: the pages' CSV did not).
        made = d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import('/common/csv.js').then(m => done(m.csvText(['a'], [['=1+1'], [-3], ['-3'],"
            " [' @x'], ['\uff1dA1'], ['Tole 3, Banepa']])))")
        assert made == "a\r\n'=1+1\r\n-3\r\n'-3\r\n' @x\r\n'\uff1dA1\r\n\"Tole 3, Banepa\"\r\n", made

        # An indicator by local level: map, chart and table against the API.
        d.get(base + "/indicators?indicator=participants_registered&by=municipality&period="
              + urllib.parse.quote(FY))
        browser.wait(d, lambda: len(d.find_elements("css selector", "#map path.unit")) == 137,
                     what="the map's 137 local levels")
        # The periods offered stop at the current month (months to come were offered).
        session = json.loads(page_fetch(d, "/v1/session"))
        offered = [o.get_attribute("value")
                   for o in d.find_elements("css selector", "#ind-period option")]
        months = [p for p in offered if p.startswith("BS")]
        assert session["bs_month"] in months and max(months) == session["bs_month"], offered
        # Without a choice, the trends shown are those of the first local level with data in
        # the map (the first in the list, shown before, had none). Pending referrals: the
        # first local level has none in this data.
        d.get(base + "/indicators?indicator=referrals_pending&by=municipality&period="
              + urllib.parse.quote(FY))
        a = dash.api.get("/v1/indicators/referrals_pending", tok, period=FY, by="municipality")
        has = {x["area"]["code"] for x in a["answers"]
               if x["cells"] and sum(c["value"] for c in x["cells"])}
        assert has and session["local_levels"][0]["code"] not in has, has
        first = [lv["code"] for lv in session["local_levels"] if lv["code"] in has][0]
        browser.wait(d, lambda: d.find_elements("css selector", "#trend-table tbody tr"),
                     what="the default trend table")
        assert d.find_element("id", "trend-municipality").get_attribute("value") == str(first)
        d.get(base + "/indicators?indicator=participants_registered&by=municipality&period="
              + urllib.parse.quote(FY))
        browser.wait(d, lambda: len(d.find_elements("css selector", "#map path.unit")) == 137,
                     what="the map's 137 local levels")
        for level in ("municipality", "district"):
            if level == "district":
                d.find_element("id", "level-district").click()
                browser.wait(d, lambda: len(d.find_elements("css selector", "#map path.unit")) == 14,
                             what="the map's 14 districts")
            a = dash.api.get("/v1/indicators/participants_registered", tok, period=FY, by=level)
            want = {x["area"]["code"]: (sum(c["value"] for c in x["cells"]) if x["cells"] else None)
                    for x in a["answers"]}
            units = d.execute_script(
                "return [...document.querySelectorAll('#map path.unit')].map(p => "
                "[Number(p.dataset.code), p.dataset.value, p.getAttribute('aria-label'), "
                "p.getAttribute('fill'), p.querySelector('title').textContent])")
            assert sorted(u[0] for u in units) == sorted(want)
            for code, value, label, fill, title in units:
                assert label == title
                if want[code] is None:
                    assert value == "" and fill == "url(#nodata)" and "no data" in label
                else:
                    assert int(value) == want[code] and fill.startswith("#")
                    assert label.endswith(": " + format(want[code], ","))
            rows = d.execute_script(
                "return [...document.querySelectorAll('#ind-table tbody tr')].map(r => "
                "[Number(r.dataset.code), r.querySelector('td').dataset.value])")
            assert {c: (int(v) if v else None) for c, v in rows} == want
            chart = d.execute_script("return Chart.getChart('ind-chart').data.datasets[0].data")
            assert chart == [want[c] for c, _ in rows]
            if level == "municipality":
                assert "Boundaries: YoungInnovations / MoFAGA, MIT" in browser.body_text(d)
                d.find_element("css selector", "#map path.unit[data-code='10703']").send_keys("")
                d.execute_script("document.querySelector(\"#map path.unit[data-code='10703']\").focus()")
                browser.wait(d, lambda: "Dhankuta" in d.find_element("id", "map-readout").text,
                             what="the focused unit's name and value")
                check_axe(d, "indicators")
                browser.screenshot(d, "hub-indicators-en")
        # The trends of a local level equal the API's series.
        d.get(base + "/indicators?indicator=participants_registered&by=municipality&period="
              + urllib.parse.quote(FY) + "&municipality=10703")
        browser.wait(d, lambda: d.find_elements("css selector", "#trend-table tbody tr"),
                     what="the trend table")
        got = d.execute_script("return Chart.getChart('trend-chart').data.datasets.map(s => s.data)")
        for i, ind in enumerate(("participants_registered", "services_delivered",
                                 "referrals_pending")):
            s = dash.api.get("/v1/indicators/" + ind, tok, period=FY, series="bs_month",
                             municipality=10703)
            assert got[i] == [sum(c["value"] for c in x["cells"]) if x["cells"] else None
                              for x in s["answers"]], ind
        d.execute_script("localStorage.setItem('lang', 'ne')")
        d.get(base + "/indicators?indicator=participants_registered&by=district&period="
              + urllib.parse.quote(FY))
        browser.wait(d, lambda: len(d.find_elements("css selector", "#map path.unit")) == 14,
                     what="the districts in Nepali")
        # The indicator by its Nepali title (the API gives the catalogue's English one).
        assert "अवधिमा दर्ता भएका व्यक्ति" in d.find_element("css selector", "p.lead").text
        # The province by its Nepali name in the header (the session gives it in English).
        header = d.find_element("css selector", "header").text
        assert "कोशी प्रदेश" in header and "Koshi" not in header, header
        # The map is one stop of Tab, and the arrow keys move between its areas (137 local
        # levels were 137 stops: the attack on the officers' pages).
        browser.check_one_tab_stop(d, "#map path.unit")
        # On a phone the indicator's select stays on the screen (it widened the page to 467
        # px of 390).
        d.set_window_size(390, 844)
        try:
            browser.wait(d, lambda: d.execute_script("return window.innerWidth") <= 400,
                         what="the phone-sized window")
            assert d.execute_script("return document.documentElement.scrollWidth <= "
                                    "document.documentElement.clientWidth"), d.execute_script(
                "return [document.documentElement.scrollWidth, "
                "document.documentElement.clientWidth]")
            browser.screenshot(d, "hub-indicators-ne-phone")
        finally:
            d.set_window_size(1400, 900)
        # The charts' value axes in Devanagari digits, the counts' in whole steps.
        for chart in ("ind-chart", "trend-chart"):
            ticks = d.execute_script("return Chart.getChart('%s').scales.y.ticks"
                                     ".map(t => t.label)" % chart)
            assert ticks and not any(ch in "0123456789." for x in ticks for ch in x), \
                (chart, ticks)
        # The districts and local levels by their Nepali names (the APIs give the English
        # ones): the table's rows, the map's units, the trend's choices.
        heads = [e.text for e in d.find_elements("css selector", "#ind-table tbody th")]
        assert len(heads) == 14 and any(x.startswith("धनकुटा") for x in heads), heads
        assert not any(c.isascii() and c.isalpha() for x in heads for c in x), heads
        # Their codes in Devanagari digits, as the names beside them.
        assert not any(c.isascii() and c.isdigit() for x in heads for c in x), heads
        assert any("धनकुटा:" in e.get_attribute("aria-label")
                   for e in d.find_elements("css selector", "#map path.unit"))
        options = [e.text for e in d.find_elements("css selector", "#trend-municipality option")]
        assert "धनकुटा नगरपालिका (धनकुटा)" in options, options[:5]
        browser.screenshot(d, "hub-indicators-district-ne")
        check_axe(d, "indicators (ne)")
        # The gaps and the review queue in Nepali, for a person to look at.
        d.get(base + "/gaps")
        browser.wait(d, lambda: len(d.find_elements("css selector", "#gaps-table tbody tr")) > 100,
                     what="the gaps table in Nepali")
        row = d.find_element("css selector", "#gaps-table tbody tr[data-code='10703']").text
        assert "धनकुटा नगरपालिका" in row and "Dhankuta" not in row, row
        assert "(१०७०३)" in row and "10703" not in row, row
        # Found by its name typed in either language.
        for typed in ("धनकुटा", "Dhankuta"):
            d.find_element("id", "gaps-filter").clear()
            d.find_element("id", "gaps-filter").send_keys(typed)
            browser.wait(d, lambda: 0 < len(d.find_elements(
                "css selector", "#gaps-table tbody tr")) < 20, what="the filter " + typed)
            assert d.find_elements("css selector", "#gaps-table tbody tr[data-code='10703']")
        d.find_element("id", "gaps-filter").clear()
        browser.screenshot(d, "hub-gaps-ne")
        # A filter that hides every row says so (a table of headers alone stood there), and the
        # CSV's note says that the file holds them all (the pages' attack).
        Select(d.find_element("id", "gaps-flag")).select_by_value("enrolled_offline")
        browser.wait(d, lambda: "कुनै स्थानीय तह मिलेन" in d.find_element("id", "gaps-count").text,
                     what="the empty filter's words")
        assert not d.find_element("id", "gaps-table").is_displayed()
        assert "सबै" in d.find_element("id", "gaps-csv-note").text
        # The local levels with a node alone (among 135 not enrolled: the attack on the
        # officers' pages), kept in the address.
        Select(d.find_element("id", "gaps-flag")).select_by_value("enrolled")
        enrolled = sorted(r["code"] for r in dash.api.get("/v1/gaps", tok, period=FY)["rows"]
                          if r["enrolled"])
        browser.wait(d, lambda: sorted(int(e.get_attribute("data-code")) for e in
                                       d.find_elements("css selector", "#gaps-table tbody tr"))
                     == enrolled, what="the enrolled local levels alone")
        assert 0 < len(enrolled) < 100 and "flag=enrolled" in d.current_url, enrolled
        d.get(base + "/reviews?period=" + LAST_P)
        browser.wait(d, lambda: d.find_elements("id", "reviews-heading"),
                     what="the review queue in Nepali")
        assert "समीक्षा पर्खिरहेका" in d.find_element("id", "reviews-heading").text
        # An officer is told that deciding takes a reviewer (the lead told her to decide).
        assert "निर्णय गर्न समीक्षकको टोकन चाहिन्छ" in d.find_element("css selector", "p.lead").text
        main = d.find_element("css selector", "main").text
        assert "धनकुटा नगरपालिका" in main and "Dhankuta" not in main, main
        # The codes in Devanagari digits, as on the gaps page (the attack on the officers'
        # pages: "(10703, धनकुटा)").
        assert "(१०७०३, धनकुटा)" in main and "10703" not in main, main
        browser.screenshot(d, "hub-reviews-ne")
        d.execute_script("localStorage.setItem('lang', 'en')")
        d.find_element("id", "signout").click()
        browser.wait_h1(d, "साइन इन")
        # The session ended at the hub too (the page sent its CSRF token with the DELETE).
        assert "not signed in" in page_fetch(d, "/v1/session")
        assert dash.api.call("GET", "/v1/reviews?period=" + LAST_P, tok)[0] == 200

        # A reviewer approves one month and returns another.
        sign_in(d, base, dash.tokens["reviewer"])
        d.get(base + "/reviews?period=" + LAST_P)
        browser.wait(d, lambda: d.find_elements("css selector", "#reviews-queue button[data-approve]"),
                     what="the review queue")
        queued = {int(e.get_attribute("data-approve")) for e in
                  d.find_elements("css selector", "#reviews-queue button[data-approve]")}
        assert queued == set(MUNS)
        check_axe(d, "reviews")
        browser.screenshot(d, "hub-reviews-en")

        def shown():
            return d.execute_script(
                "const s = document.getElementById('reviews-period'),"
                " h = document.getElementById('reviews-heading');"
                "return s && h ? [[s.value, s.options[s.selectedIndex].text], h.textContent]"
                " : [[null, null], null]")
        # The selector names the month whose rows are shown, with how many wait in it; a link
        # to a month older than the list (an attack on the demo found the rows of Baishakh
        # under a selector reading Kartik, and no way to reach Baishakh) is added to it.
        (value, text), heading = shown()
        assert value == LAST_P and text.endswith("(%d waiting)" % len(MUNS)), text
        assert heading == "%s: waiting for review (%d)" % (text.split(" (")[0], len(MUNS)), heading
        older = "BS%04d-%02d" % (LAST[0] - 2, LAST[1])
        d.get(base + "/reviews?period=" + older)
        browser.wait(d, lambda: shown()[0][0] == older, what="the older month selected")
        (value, text), heading = shown()
        assert heading.startswith(text.split(" (")[0] + ":"), (text, heading)
        d.get(base + "/reviews?period=" + LAST_P)
        browser.wait(d, lambda: d.find_elements("css selector", "#reviews-queue button[data-approve]"),
                     what="the review queue again")
        # On a phone, Approve and Return are on the screen (an attack on the demo found them
        # at 576 px of a 390 px screen, beyond a table scrolled sideways).
        d.set_window_size(390, 844)
        try:
            browser.wait(d, lambda: d.execute_script("return window.innerWidth") <= 400,
                         what="the phone-sized window")
            right = d.execute_script(
                "return Math.max(...[...document.querySelectorAll('#reviews-queue button')]"
                ".map(b => b.getBoundingClientRect().right))")
            width = d.execute_script("return document.documentElement.clientWidth")
            assert 0 < right <= width, (right, width)
            browser.screenshot(d, "hub-reviews-phone")
        finally:
            d.set_window_size(1400, 900)
        day_before = (datetime.datetime.now(datetime.timezone.utc) +
                      datetime.timedelta(hours=5, minutes=45)).date()  # in Nepal
        d.find_element("css selector", "button[data-approve='10703']").click()
        browser.wait(d, lambda: "approved" in browser.body_text(d), what="the approval notice")
        day_after = (datetime.datetime.now(datetime.timezone.utc) +
                     datetime.timedelta(hours=5, minutes=45)).date()
        # A comment past the protocol's 1,000 bytes (400 Devanagari letters) is stopped at the
        # page, in the page's words, and nothing is sent (an attack on the demo got the API's
        # English, counting bytes).
        # Its room is said before the refusal: the limit at first, then, near it, about how
        # many letters are left or over (the pages' attack: it was said by the refusal only).
        hint = d.find_element("id", "comment-10401-hint")
        assert "At most about 330 letters in Nepali" in hint.text, hint.text
        assert d.find_element("id", "comment-10401").get_attribute("aria-describedby") == \
            "comment-10401-hint"
        d.find_element("id", "comment-10401").send_keys("क" * 300)
        assert hint.text == "About 33 letters left.", hint.text  # 1,000 bytes: 333 letters
        d.find_element("id", "comment-10401").send_keys("क" * 100)
        assert hint.text == "Too long by about 67 letters.", hint.text
        d.find_element("css selector", "button[data-return='10401']").click()
        browser.wait(d, lambda: "The comment is too long" in browser.body_text(d),
                     what="the comment refused at the page")
        field = d.find_element("id", "comment-10401")
        assert field.get_attribute("aria-invalid") == "true"
        assert field.get_attribute("aria-describedby") == "comment-10401-hint comment-10401-error"
        assert {r["municipality"]: r for r in dash.api.get(
            "/v1/reviews", tok, period=LAST_P)["rows"]}[10401]["state"] != "returned"
        d.find_element("id", "comment-10401").clear()
        # With a mark that reorders text, pasted unseen, and a second line: the hub refuses
        # such marks, and the page said so in English with a byte offset (the attack on the
        # officers' pages); it now takes them out, and the line break is kept on the page.
        typed = "Two registrations\u202e are counted twice\nSee May's list"
        d.find_element("id", "comment-10401").send_keys(typed)
        # The session ends while the comment is being written (the cookie gone, as after the
        # idle limit): the page asked to sign in again, then went to the gaps page with the
        # comment lost. It now says why, comes back to this month, and keeps the comment.
        d.delete_all_cookies()
        d.find_element("css selector", "button[data-return='10401']").click()
        browser.wait(d, lambda: d.find_elements("id", "token"), what="the sign-in form")
        assert "Your session has ended" in browser.body_text(d)
        # The notice takes the focus, so that it is heard (the pages' attack: it stayed on the
        # page's body).
        assert d.execute_script("return document.activeElement.id") == "signin-notice"
        browser.screenshot(d, "hub-signin-expired")
        d.find_element("id", "token").send_keys(dash.tokens["reviewer"])
        d.find_element("id", "signin").click()
        browser.wait(d, lambda: d.find_elements("id", "comment-10401"),
                     what="the review queue after signing in again")
        assert d.current_url == base + "/reviews?period=" + LAST_P, d.current_url
        # Kept as it was sent: without the mark (the box shows what is sent).
        assert d.find_element("id", "comment-10401").get_attribute("value") == \
            "Two registrations are counted twice\nSee May's list"
        d.find_element("css selector", "button[data-return='10401']").click()
        browser.wait(d, lambda: "returned to the clerk" in browser.body_text(d),
                     what="the return notice")
        # The month decided, its draft is gone (another month's row starts empty).
        assert d.execute_script("return sessionStorage.length") == 0
        # A month that changes behind the page: its approval is refused (409), and the page,
        # which left the row as it was (every try refused, in English, with raw versions:
        # an attack on the demo), draws the queue again with a notice in its language.
        before = {r["municipality"]: r for r in
                  dash.api.get("/v1/reviews", tok, period=LAST_P)["rows"]}[10101]
        day = bs.bs_month_first(*LAST) + datetime.timedelta(days=3)
        late = pb.Record(id=record_id(10101 * 10000 + 8888), municipality=10101,
                         version=(int(time.time() * 1000) << 16) + 3)
        late.person.category = pb.CATEGORY_RETURNEE
        late.person.sex = pb.SEX_FEMALE
        late.person.registered_month, late.person.registered_bs_month = bs.pair(day)
        send(dash.hub, dash.pki, 10101, [late])
        wait_for(lambda: {r["municipality"]: r for r in dash.api.get(
            "/v1/reviews", tok, period=LAST_P)["rows"]}[10101]["version"] != before["version"],
            30, "the late record in the month's version")
        d.find_element("css selector", "button[data-approve='10101']").click()
        browser.wait(d, lambda: d.find_elements("css selector", "main .warning"),
                     what="the notice of a month changed since")
        assert "changed or was decided since this page was drawn" in \
            d.find_element("css selector", "main .warning").text
        row = d.find_element("css selector", "#reviews-queue tr[data-code='10101']")
        assert str(before["records"] + 1) in row.text, row.text
        browser.screenshot(d, "hub-reviews-changed-since")
        d.find_element("css selector", "button[data-approve='10101']").click()
        browser.wait(d, lambda: "approved" in browser.body_text(d) and not d.find_elements(
            "css selector", "main .warning"), what="the approval of the month as it is now")
        # The notice takes the focus (it fell to <body>, the button pressed being gone).
        assert d.execute_script("return document.activeElement.id") == "reviews-notice"
        rv = {r["municipality"]: r for r in
              dash.api.get("/v1/reviews", tok, period=LAST_P)["rows"]}
        assert rv[10703]["state"] == "approved" and rv[10703]["decided_by"] == "ravi"
        assert rv[10401]["state"] == "returned"
        assert rv[10401]["comment"] == "Two registrations are counted twice\nSee May's list"
        said = d.find_element("css selector", "#reviews-others tr[data-code='10401'] .review-said")
        assert said.value_of_css_property("white-space") == "pre-line"
        assert "counted twice\nSee May's list" in said.text, said.text
        # The column's rule is said: the clerk's page counts every open referral.
        assert "three after it" in d.find_element("id", "reviews-pending-rule").text
        assert rv[10101]["state"] == "approved"
        # A decided month says who decided and on which day (in Nepal, BS), which the page
        # left out for an approval; and a month approved by mistake is returned from the page
        # (it took the API, with the approval's clock).
        # (The day of the approval in Nepal: before or after the click, if midnight fell.)
        day = day_before if rv[10703]["decided_on"] == day_before.isoformat() else day_after
        assert rv[10703]["decided_on"] == day.isoformat(), rv[10703]
        assert rv[10703]["decided_on_bs"] == bs.bs_str(day)
        row = d.find_element("css selector", "#reviews-others tr[data-code='10703']")
        assert "Approved by ravi, %s" % bs.bs_str(day) in row.text, row.text
        assert not row.find_elements("css selector", "button[data-approve]")
        row.find_element("id", "comment-10703").send_keys("Approved by mistake: two missing")
        row.find_element("css selector", "button[data-return='10703']").click()
        browser.wait(d, lambda: "returned to the clerk" in browser.body_text(d),
                     what="the return of an approved month")
        back = {r["municipality"]: r for r in
                dash.api.get("/v1/reviews", tok, period=LAST_P)["rows"]}[10703]
        assert back["state"] == "returned" and back["comment"] == \
            "Approved by mistake: two missing", back
        row = d.find_element("css selector", "#reviews-others tr[data-code='10703']")
        assert "Returned by ravi" in row.text, row.text
        browser.screenshot(d, "hub-reviews-returned-after-approval")
        # An officer's session cannot decide (the API refuses, whatever the page shows).
        console = [c for c in browser.console(d) if "SEVERE" in c and "/v1/session" not in c
                   and not ("/v1/reviews/10101/" in c and "409" in c)
                   and not ("/v1/reviews/10401/" in c and "401" in c)
                   and not (c.split()[1].endswith("/gap") and "404" in c)]
        assert not console, console
        # A comment being written is the reviewer's own: signing out removes it, so that the
        # next reviewer at this machine does not find it filled in (a review found it kept).
        d.get(base + "/reviews?period=" + LAST_P)
        browser.wait(d, lambda: d.find_elements("id", "comment-10102"), what="the queue")
        d.find_element("id", "comment-10102").send_keys("Left half written")
        assert d.execute_script("return sessionStorage.length") == 1
        d.find_element("id", "signout").click()
        browser.wait(d, lambda: d.find_elements("id", "token"), what="the sign-in form")
        assert d.execute_script("return sessionStorage.length") == 0
        # A ?next= that a browser reads as another site ("/\\host") is not followed: the
        # sign-in goes to the gaps (it threw, and the page stayed on the sign-in form).
        d.get(base + "/signin?next=" + urllib.parse.quote("/\\evil.example/x"))
        browser.wait(d, lambda: d.find_elements("id", "token"), what="the sign-in form")
        d.find_element("id", "token").send_keys(dash.tokens["reviewer"])
        d.find_element("id", "signin").click()
        browser.wait_h1(d, "Gaps by local level")
        assert d.current_url.startswith(base + "/gaps"), d.current_url
        # A comment kept for a reviewer whose session ended is hers: someone else signing in
        # at this tab does not find it in storage (the pages' attack found it kept).
        d.get(base + "/reviews?period=" + LAST_P)
        browser.wait(d, lambda: d.find_elements("id", "comment-10102"), what="the queue")
        d.find_element("id", "comment-10102").send_keys("Kept for ravi alone")
        d.delete_all_cookies()
        d.find_element("css selector", "button[data-return='10102']").click()
        browser.wait(d, lambda: d.find_elements("id", "token"), what="the sign-in form")
        assert d.execute_script("return sessionStorage.length") == 1
        d.find_element("id", "token").send_keys(dash.tokens["officer"])
        d.find_element("id", "signin").click()
        browser.wait(d, lambda: d.find_elements("id", "reviews-heading"), what="the queue")
        assert d.execute_script("return sessionStorage.length") == 0
    finally:
        d.quit()
