"""Geography and time in one query (issue 16): GET /v1/indicators/<code> with by=<area>[,grouping]
and series=<kind>, over a chain of real nodes, hubs and the federal API.

1. by=province, by=district with province=, by=municipality with district=, alone and with
   sex: every area of the level is listed once, in code order, with its code and name; each
   area's answer equals the answer of that area asked alone (exact for the ministry, perturbed
   for the public: the same value for the same cell on both routes), and the ministry's
   figures equal a count made here from the generator's persons.
2. A Gregorian year's series in months equals its 12 month answers, a fiscal year's series in
   BS months and in trimesters its single BS months and trimesters, a range of years and of
   fiscal years its single years; and each equals the generator's truth.
3. What cannot be answered is refused with 400 naming why."""
import csv
import datetime
import io
import time

import bs
from gen import Caseload
from harness import Node
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import YEAR, chain, load, settle  # noqa: F401  (fixture)

# Three districts of Koshi (1) and one municipality of Madhesh (2).
MUNIS = ((10703, 61, 220), (10401, 62, 160), (10101, 63, 90), (21710, 64, 200))


def geography():
    import os
    from harness import ROOT
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), newline="") as f:
        return list(csv.DictReader(f))


def fiscal_year(d):
    y, m, _ = bs.ad_to_bs(d)
    fy = y if m >= 4 else y - 1
    return "FY%04d/%02d" % (fy, (fy + 1) % 100)


def registrations(caseloads):
    """(municipality, the six periods, sex) of every registration: the test's own truth."""
    out = []
    for cl in caseloads:
        for lid, p in cl.persons.items():
            if ("person", lid) not in cl.deleted:
                out.append((cl.municipality, bs.periods(p["_reg"]), p["sex"]))
    return out


def truth(regs, period, kind, area=lambda m: True, sex=None):
    return sum(1 for m, ps, s in regs if ps[kind] == period and area(m) and
               (sex is None or s == sex))


def strip(a):
    """An answer without what a breakdown does not carry (approval coverage, read per
    request)."""
    a = dict(a)
    a.pop("approval", None)
    return a


def single(fed, token, query):
    st, a, _ = fed.get("/v1/indicators/participants_registered?" + query, token)
    assert st == 200, (query, a)
    return strip(a)


def breakdown(fed, token, query):
    st, a, _ = fed.get("/v1/indicators/participants_registered?" + query, token)
    assert st == 200, (query, a)
    assert a["indicator"] == "participants_registered"
    return a


def one_municipality(chain, pki, workdir):
    """The chain with the first of MUNIS loaded and synced: (fed, token, its code, its
    registrations)."""
    fed, token, hubs = chain
    code, seed, n = MUNIS[0]
    node = Node(workdir, pki, code, hubs[1])
    cl = Caseload(code, seed)
    load(node, cl, workdir, n)
    node.sync()
    settle(fed, token, [cl])
    return fed, token, code, registrations([cl])


def test_areas_and_series_equal_their_single_answers_and_the_truth(chain, pki, workdir, procs):
    fed, token, hubs = chain
    caseloads = []
    for code, seed, n in MUNIS:
        node = Node(workdir, pki, code, hubs[code // 10000])
        cl = Caseload(code, seed)
        load(node, cl, workdir, n)
        node.sync()
        caseloads.append(cl)
    settle(fed, token, caseloads)
    public = fed.token("public", "breakdown-public-%d" % time.time_ns())
    regs = registrations(caseloads)
    geo = geography()
    districts_of_1 = sorted({int(r["district_code"]) for r in geo if r["province_code"] == "1"})
    munis_of_7 = [int(r["local_level_code"]) for r in geo if r["district_code"] == "7"]
    district_of = {int(r["local_level_code"]): int(r["district_code"]) for r in geo}
    name_of = {int(r["local_level_code"]): r["local_level_name"] for r in geo}
    dname = {int(r["district_code"]): r["district_name"] for r in geo}
    pname = {int(r["province_code"]): r["province_name"] for r in geo}
    period = str(YEAR)

    # ---- 1. areas ------------------------------------------------------------------------
    cases = [
        ("by=province", "province", list(range(1, 8)), lambda c: c // 10000, pname),
        ("by=district&province=1", "district", districts_of_1, lambda c: district_of[c], dname),
        ("by=municipality&district=7", "municipality", munis_of_7, lambda c: c, name_of),
    ]
    for query, level, codes, area_of, names in cases:
        for grouping in ("", "sex"):
            q = query.replace("by=%s" % level, "by=%s%s" % (level, "," + grouping if grouping
                                                                 else ""))
            for tok, exact in ((token, True), (public, False)):
                a = breakdown(fed, tok, "period=%s&%s" % (period, q))
                assert a["by"] == level + ("," + grouping if grouping else "")
                assert a["series"] is None
                got = [x["area"]["code"] for x in a["answers"]]
                assert got == codes, (q, got)
                for ans in a["answers"]:
                    code = ans["area"]["code"]
                    assert ans["area"]["level"] == level and ans["area"]["name"] == names[code]
                    alone = single(fed, tok, "period=%s&%s=%d%s" % (
                        period, level, code, "&by=" + grouping if grouping else ""))
                    assert ans == alone, (q, code)
                    if exact:
                        def inside(m, code=code):
                            return area_of(m) == code
                        assert ans["total"]["value"] == truth(regs, period, 0, inside), (q, code)
                        for row in ans["rows"]:
                            assert row["value"] == truth(regs, period, 0, inside, row["sex"])
            if not grouping:
                # CSV: one header, then each answer's rows (here its total).
                st, text, _ = fed.get("/v1/indicators/participants_registered?period=%s&%s"
                                      "&format=csv" % (period, q), token)
                assert st == 200, text
                rows = list(csv.DictReader(io.StringIO(text)))
                assert [r["area"] for r in rows] == ["%s:%d" % (level, c) for c in codes]

    # ---- 2. series -----------------------------------------------------------------------
    fy = fiscal_year(datetime.date(YEAR, 7, 1))
    y0, y1 = YEAR - 1, YEAR + 1
    fy_prev = fiscal_year(datetime.date(YEAR - 1, 7, 1))
    series = [
        ("series=month&period=%d" % YEAR, 2, ["%d-%02d" % (YEAR, m) for m in range(1, 13)]),
        ("series=quarter&period=%d" % YEAR, 1, ["%d-Q%d" % (YEAR, q) for q in range(1, 5)]),
        ("series=bs_month&period=%s" % fy, 3,
         ["BS%s-%02d" % (fy[2:6], m) for m in range(4, 13)] +
         ["BS%04d-%02d" % (int(fy[2:6]) + 1, m) for m in range(1, 4)]),
        ("series=trimester&period=%s" % fy, 4, ["%s-T%d" % (fy, t) for t in (1, 2, 3)]),
        ("series=year&period=%d..%d" % (y0, y1), 0, [str(y) for y in range(y0, y1 + 1)]),
        ("series=year&period=%s..%s" % (fy_prev, fy), 5, [fy_prev, fy]),
    ]
    for query, kind, periods in series:
        for extra in ("", "&province=1", "&district=7"):
            for tok, exact in ((token, True), (public, False)):
                a = breakdown(fed, tok, query + extra)
                assert [x["period"] for x in a["answers"]] == periods, query
                for ans, p in zip(a["answers"], periods):
                    alone = single(fed, tok, "period=%s%s" % (p, extra))
                    assert ans == alone, (query, extra, p)
                    if exact:
                        def inside(m, extra=extra):
                            return (extra == "" or (extra == "&province=1" and m // 10000 == 1)
                                    or (extra == "&district=7" and district_of[m] == 7))
                        assert ans["total"]["value"] == truth(regs, p, kind, inside), (query, p)
    # Areas and a series together: districts of Koshi month by month.
    a = breakdown(fed, token, "by=district,sex&province=1&series=month&period=%d" % YEAR)
    assert len(a["answers"]) == len(districts_of_1) * 12
    for ans in a["answers"][:24]:
        assert ans == single(fed, token, "period=%s&district=%d&by=sex" % (
            ans["period"], ans["area"]["code"]))

    # ---- 3. refused ----------------------------------------------------------------------
    for query, words in (
            ("by=province&district=7&period=%d" % YEAR, "by=province takes no district"),
            ("by=district&municipality=10703&period=%d" % YEAR, "takes no municipality"),
            ("period=%d..%d" % (y0, y1), "needs series"),
            ("series=bs_month&period=%d" % YEAR, "does not divide"),
            ("series=month&period=%s" % fy, "does not divide"),
            ("series=week&period=%d" % YEAR, "is not month"),
            ("by=province&approval=approved&period=%d" % YEAR, "one area and one period"),
            ("period=2026..2024&series=year", "not after"),
            ("by=district,religion&period=%d" % YEAR, "not a declared grouping")):
        st, a, _ = fed.get("/v1/indicators/participants_registered?" + query, token)
        assert st == 400 and words in a["error"], (query, st, a)
    st, a, _ = fed.get("/v1/dataValueSets?period=%d..%d" % (y0, y1), token)
    assert st == 400 and "range" in a["error"], a


def test_all_local_levels_by_month_in_one_answer(chain, pki, workdir, procs):
    """Every one of the 753 local levels, month by month over a year, in one answer: 9,036
    answers in code order, those of the municipalities with data equal to the truth, the
    rest empty (the time it takes is printed, never asserted; bench/ measures it)."""
    fed, token, code, regs = one_municipality(chain, pki, workdir)
    import urllib.request
    req = urllib.request.Request("https://127.0.0.1:%d/v1/indicators/participants_registered?"
                                 "by=municipality&series=month&period=%d" % (fed.https_port, YEAR))
    req.add_header("Authorization", "Bearer " + token)
    t0 = time.monotonic()
    with urllib.request.urlopen(req, context=fed.ctx, timeout=30) as r:
        body = r.read()
    took = time.monotonic() - t0
    print("753 local levels x 12 months: %.3f s, %d bytes" % (took, len(body)))
    a = breakdown(fed, token, "by=municipality&series=month&period=%d" % YEAR)
    codes = [int(r["local_level_code"]) for r in geography()]
    assert len(a["answers"]) == 753 * 12
    assert [x["area"]["code"] for x in a["answers"][::12]] == codes
    for x in a["answers"]:
        m = x["area"]["code"]
        want = truth(regs, x["period"], 2, lambda c, m=m: c == m)
        assert x["total"]["value"] == want, (m, x["period"])


def test_a_snapshot_in_any_order_gives_the_same_answers(chain, pki, workdir, procs, postgres):
    """A breakdown over municipalities finds the cells it needs by their positions in each
    snapshot's arrays (fbreakdown.c) instead of unnesting every snapshot. The hub stores the
    cells in order, but the store does not promise it: with every snapshot's arrays
    interleaved (odd positions reversed, then even ones), the answers are the same, and equal
    the truth."""
    fed, token, code, regs = one_municipality(chain, pki, workdir)
    district = {int(r["local_level_code"]): int(r["district_code"]) for r in geography()}[code]
    queries = ("by=municipality,sex&district=%d&period=%d" % (district, YEAR),
               "by=district&province=1&series=month&period=%d" % YEAR,
               "municipality=%d&series=quarter&period=%d" % (code, YEAR))
    before = [breakdown(fed, token, q) for q in queries]

    def span(where):
        """The widest span of positions of participants_registered in a stored snapshot less
        the number of its cells (0 when every snapshot keeps them together)."""
        return int(postgres.psql(
            "SELECT max(p[cardinality(p)] - p[1] + 1 - cardinality(p)) FROM (SELECT"
            " array_positions(indicator, 'participants_registered') AS p FROM snapshot_cells"
            " WHERE municipality = %d) x" % code, db=fed.pg.name)[0][0])

    assert span(code) == 0
    columns = ("indicator", "grouping", "key", "numerator", "denominator", "cell_key",
               "contributors", "numerator_key")
    postgres.psql(
        "CREATE FUNCTION interleave(anyarray) RETURNS anyarray LANGUAGE sql AS"
        " 'SELECT ARRAY(SELECT $1[i] FROM generate_subscripts($1, 1) AS i"
        " ORDER BY i %% 2, i DESC)';"
        " UPDATE snapshot_cells SET %s" % ", ".join("%s = interleave(%s)" % (c, c)
                                                     for c in columns), db=fed.pg.name)
    assert span(code) > 0
    after = [breakdown(fed, token, q) for q in queries]
    for q, b, a in zip(queries, before, after):
        assert strip(a) == strip(b), q
    monthly = after[1]["answers"]
    assert sum(x["total"]["value"] for x in monthly) > 0
    for x in monthly:
        inside = x["area"]["code"] == district
        assert x["total"]["value"] == (truth(regs, x["period"], 2) if inside else 0), x
