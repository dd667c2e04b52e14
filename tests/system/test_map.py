"""The dashboards' map (issue 16): build/gen/map/nepal_map.json, made at build time by
tools/topo2svg.py from data/nepal_local_levels.topo.json, must draw every one of the 753
local levels once under its official code, put them where Nepal is, and give every district
and province an outline. The expectations come from the CSV and from Nepal's known shape,
not from the tool."""
import csv
import json
import os
import re

from harness import ROOT

MAP = os.path.join(ROOT, "build", "gen", "map", "nepal_map.json")
CSV = os.path.join(ROOT, "data", "nepal_local_levels.csv")

NUM = re.compile(r"[MLlz]|-?\d+(?:\.\d+)?")


def rings(d):
    """Absolute points of each ring of a path made of M x y l dx dy ... z."""
    out, cur, mode, pend = [], None, None, []
    for tok in NUM.findall(d):
        if tok in ("M", "l", "L"):
            mode = tok
            continue
        if tok == "z":
            out.append(cur)
            cur = None
            continue
        pend.append(float(tok))
        if len(pend) < 2:
            continue
        x, y = pend
        pend = []
        if mode == "M":
            cur = [(x, y)]
            mode = "l"
        else:
            px, py = cur[-1]
            cur.append((px + x, py + y))
    assert cur is None and not pend, "path not closed or odd coordinates"
    return out


def area_centroid(d):
    a = cx = cy = 0.0
    for r in rings(d):
        for (x0, y0), (x1, y1) in zip(r, r[1:] + r[:1]):
            c = x0 * y1 - x1 * y0
            a += c
            cx += (x0 + x1) * c
            cy += (y0 + y1) * c
    return abs(a) / 2, (cx / (3 * a), cy / (3 * a))


def load():
    with open(MAP, encoding="utf-8") as f:
        return json.load(f)


def geography():
    with open(CSV, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_local_level_is_one_unit_under_its_official_code():
    m = load()
    rows = geography()
    want = sorted(int(r["local_level_code"]) for r in rows)
    got = [u["code"] for u in m["units"]]
    assert len(want) == 753
    assert got == want
    for u in m["units"]:
        area, _ = area_centroid(u["d"])
        assert area > 0.01, u["code"]
    assert len(m["protected"]) == 21 and all(p["name"] and p["d"] for p in m["protected"])
    districts = sorted({"%d" % (int(r["local_level_code"]) // 100) for r in rows})
    assert sorted(m["districts"]) == districts and len(districts) == 77
    assert sorted(m["provinces"]) == [str(p) for p in range(1, 8)]
    assert "YoungInnovations" in m["attribution"]


def test_units_lie_where_nepal_is():
    """Nepal runs from north-west to south-east: Sudurpashchim (7) is west and north of
    Koshi (1); Kathmandu Metropolitan City lies inside Bagmati (3); the map is about
    1.75 times as wide as high (8.1 deg of longitude at 28 deg N against 4.1 deg of
    latitude)."""
    m = load()
    _, _, w, h = (float(v) for v in m["viewBox"].split())
    assert 1.6 < w / h < 1.9
    cent = {}
    for p, d in m["provinces"].items():
        cent[int(p)] = area_centroid(d)[1]
    assert cent[7][0] < cent[6][0] < cent[3][0] < cent[1][0]
    assert cent[7][1] < cent[1][1]
    # Madhesh (2) is the southern plain: below Bagmati (3).
    assert cent[2][1] > cent[3][1]
    units = {u["code"]: u for u in m["units"]}
    rows = {r["local_level_name"]: int(r["local_level_code"]) for r in geography()}
    ktm = units[rows["Kathmandu Metropolitan City"]]
    kx, ky = area_centroid(ktm["d"])[1]
    xs = [x for r in rings(m["provinces"]["3"]) for x, _ in r]
    ys = [y for r in rings(m["provinces"]["3"]) for _, y in r]
    assert min(xs) < kx < max(xs) and min(ys) < ky < max(ys)
    # The units of a district together cover about the district's outline.
    for dist, d in m["districts"].items():
        total = sum(area_centroid(u["d"])[0] for c, u in units.items() if str(c // 100) == dist)
        outline = area_centroid(d)[0]
        assert abs(total - outline) <= 0.02 * outline + 1, dist
