"""DHIS2 and ADX over demo-like data (gen.py's Nepali proportions, three municipalities of two
provinces, through real nodes, hubs and the federal API): the metadata export names every data
element, option combination and organisation unit that any dataValueSets answer uses, with
Nepal's official codes and hierarchy; ADX is well-formed XML carrying the same values as
dataValueSets; the public sees the same perturbed value through the indicator JSON,
dataValueSets and ADX; large answers page the DHIS2 way."""
import csv
import os
import time
import urllib.parse
import xml.etree.ElementTree as ET

import bs
from gen import Caseload
from harness import ROOT, Node, wait_for
from nodegen import ENTERPRISE_COLS, new_enterprise, write_rows
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import YEAR, chain, settle  # noqa: F401  (fixture)

ADX = "{urn:ihe:qrph:adx:2015}"


def load_caseload(node, cl, workdir, persons, services, enterprises):
    for _ in range(persons):
        cl.new_person()
    lids = list(cl.persons)
    for _ in range(services):
        cl.new_service(lids[cl.rng.randrange(len(lids))])
    ents = [new_enterprise(cl, lids[cl.rng.randrange(len(lids))]) for _ in range(enterprises)]
    base = os.path.join(workdir, "dhis2-%d" % node.municipality)
    cl.write_csv(base + "-p.csv", "persons")
    cl.write_csv(base + "-s.csv", "services")
    write_rows(base + "-e.csv", ENTERPRISE_COLS, ents)
    node.import_csv("persons", base + "-p.csv")
    node.import_csv("services", base + "-s.csv")
    node.import_csv("enterprises", base + "-e.csv")


def dvs_all(fed, token, query):
    """Every dataValue of a dataValueSets query, page by page (pageSize 200)."""
    values, page, pages = [], 1, None
    while pages is None or page <= pages:
        st, a, _ = fed.get("/v1/dataValueSets?%s&page=%d&pageSize=200" % (query, page), token)
        assert st == 200, a
        assert a["pager"]["page"] == page and a["pager"]["pageSize"] == 200
        pages = a["pager"]["pageCount"]
        assert len(a["dataValues"]) <= 200
        values += a["dataValues"]
        page += 1
    assert len(values) == a["pager"]["total"]
    return a, values


def adx_values(fed, token, query, md):
    """{(dataElement id, option combination id): value} of an ADX answer, its codes mapped to
    ids through the metadata (so that ADX and dataValueSets are compared in one spelling)."""
    st, body, h = fed.get("/v1/adx?" + query, token, raw=True)
    assert st == 200, body
    assert h["Content-Type"].startswith("application/adx+xml")
    root = ET.fromstring(body)  # well-formed, or this raises
    assert root.tag == ADX + "adx" and root.get("exported")
    groups = root.findall(ADX + "group")
    assert len(groups) == 1
    out = {}
    for dv in groups[0].findall(ADX + "dataValue"):
        attrs = dict(dv.attrib)
        de = md["de_by_code"][attrs.pop("dataElement")]
        value = attrs.pop("value")
        options = frozenset(md["co_by_code"][v] for v in attrs.values())
        combo = md["de_combo"][de]
        coc = md["coc_by_options"][(combo, options)]
        assert (de, coc) not in out
        out[(de, coc)] = value
    return groups[0], out


def index_metadata(md):
    ix = {"de": {o["id"]: o for o in md["dataElements"]},
          "coc": {o["id"]: o for o in md["categoryOptionCombos"]},
          "ou": {o["id"]: o for o in md["organisationUnits"]}}
    ix["de_by_code"] = {o["code"]: o["id"] for o in md["dataElements"]}
    ix["co_by_code"] = {o["code"]: o["id"] for o in md["categoryOptions"]}
    ix["de_combo"] = {o["id"]: o["categoryCombo"]["id"] for o in md["dataElements"]}
    ix["coc_by_options"] = {}
    for o in md["categoryOptionCombos"]:
        key = frozenset(x["id"] for x in o["categoryOptions"])
        if o["code"] == "default":
            key = frozenset()
        ix["coc_by_options"][(o["categoryCombo"]["id"], key)] = o["id"]
    ix["ou_by_code"] = {o["code"]: o for o in md["organisationUnits"]}
    return ix


def test_metadata_dvs_and_adx_agree_over_demo_like_data(chain, pki, workdir, procs):
    fed, token, hubs = chain
    caseloads = []
    for code, seed, n in ((10703, 51, 300), (10401, 52, 150), (21710, 53, 450)):
        node = Node(workdir, pki, code, hubs[int(str(code)[0])])
        cl = Caseload(code, seed, profile="nepal")
        load_caseload(node, cl, workdir, n, n * 3 // 2, n // 5)
        node.sync()
        caseloads.append(cl)
    settle(fed, token, caseloads)
    pub = fed.token("public", "dhis2-public-%d" % time.time_ns())

    st, md, _ = fed.get("/v1/metadata", pub)
    assert st == 200
    ix = index_metadata(md)
    # Organisation units: Nepal, 7 provinces, 77 districts, the 753 local levels of the CSV
    # with their official codes, names and parents.
    levels = {}
    for o in md["organisationUnits"]:
        levels[o["level"]] = levels.get(o["level"], 0) + 1
    assert levels == {1: 1, 2: 7, 3: 77, 4: 753}
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), newline="") as f:
        for row in csv.DictReader(f):
            ou = ix["ou_by_code"][row["local_level_code"]]
            assert ou["name"] == row["local_level_name"] and ou["level"] == 4
            district = ix["ou"][ou["parent"]["id"]]
            assert district["code"] == "D%02d" % int(row["district_code"])
            assert district["name"] == row["district_name"]
            province = ix["ou"][district["parent"]["id"]]
            assert province["code"] == "P" + row["province_code"]
            assert ou["path"] == "/%s/%s/%s/%s" % (ix["ou_by_code"]["NP"]["id"], province["id"],
                                                   district["id"], ou["id"])

    # A stable store: the exact national answer no longer changes (services and enterprises
    # arrive after the persons that settle() waited for).
    last = [None]

    def stable():
        cur = fed.get("/v1/dataValueSets?period=%d" % YEAR, token)[1]["dataValues"]
        same, last[0] = cur == last[0], cur
        time.sleep(1)
        return same
    wait_for(stable, 60, "the federal store to settle")

    day = next(iter(caseloads[0].persons.values()))["_reg"]
    periods = [str(YEAR), "%d-07" % YEAR] + [p for p in bs.periods(day) if "-T" not in p][1:]
    areas = ["", "province=1", "district=7", "municipality=21710"]
    used = 0
    for period in periods:
        for area in areas:
            q = "period=" + urllib.parse.quote(period, safe="") + ("&" + area if area else "")
            for tok in (token, pub):
                head, values = dvs_all(fed, tok, q)
                for v in values:
                    assert v["dataElement"] in ix["de"], v
                    assert v["categoryOptionCombo"] in ix["coc"], v
                    assert v["orgUnit"] in ix["ou"] and v["orgUnit"] == head["orgUnit"], v
                    # The option combination belongs to the data element's combination.
                    assert (ix["coc"][v["categoryOptionCombo"]]["categoryCombo"]["id"]
                            == ix["de_combo"][v["dataElement"]])
                    assert v["value"] not in ("0", "")
                used += len(values)
                group, adx = adx_values(fed, tok, q, ix)
                assert ix["ou_by_code"][group.get("orgUnit")]["id"] == head["orgUnit"]
                assert adx == {(v["dataElement"], v["categoryOptionCombo"]): v["value"]
                               for v in values}, (period, area)
    assert used > 1000  # the data is not trivially empty
    # The public role: the indicator JSON shows the same perturbed value as dataValueSets and
    # ADX for every shown, non-zero row of a grouping.
    _, values = dvs_all(fed, pub, "period=%d&idScheme=CODE" % YEAR)
    for ind, by in (("participants_registered", "sex"), ("participants_registered", "category"),
                    ("participants_registered", "caste_group"),
                    ("returnees_registered", "destination_country")):
        st, a, _ = fed.get("/v1/indicators/%s?period=%d&by=%s" % (ind, YEAR, by), pub)
        assert st == 200, a
        codes = {(v["dataElement"], v["categoryOptionCombo"]): v["value"] for v in values}
        short = {"category": "cat", "caste_group": "caste",
                 "destination_country": "country"}.get(by, by)
        checked = 0
        for r in a["rows"]:
            key = ("%s.%s" % (ind, by), "%s/%s" % (short, r[by]))
            if r["value"] in (None, 0):
                assert key not in codes
            else:
                assert codes[key] == str(r["value"]), key
                checked += 1
        assert checked > 0
    # The DHIS2 period of each kind; a trimester has none and is refused.
    st, a, _ = fed.get("/v1/dataValueSets?period=%d-07" % YEAR, pub)
    assert a["period"] == "%d07" % YEAR
    fy = [p for p in bs.periods(day) if p.startswith("FY") and "-T" not in p][0]
    st, a, _ = fed.get("/v1/dataValueSets?period=" + urllib.parse.quote(fy, safe=""), pub)
    assert a["period"] == fy[2:6] + "April"
    tri = [p for p in bs.periods(day) if "-T" in p][0]
    for route in ("dataValueSets", "adx"):
        st, a, _ = fed.get("/v1/%s?period=%s" % (route, urllib.parse.quote(tri, safe="")), pub)
        assert st == 400 and "four-month" in a["error"]
    # The API's description is served as compiled in from docs/openapi/federal.json.
    import openapi
    st, served, _ = fed.get("/v1/openapi.json", pub)
    assert st == 200 and served == openapi.document("federal")
