#!/usr/bin/python3
"""Turn Nepal's local-level TopoJSON into SVG path data for the dashboards' maps.

Run at build time (the Makefile makes build/gen/map/nepal_map.json from
../shared/data/nepal_local_levels.topo.json); the daemons compile the result in, and the
pages colour the paths themselves, so no mapping library, no tiles and no projection code
run in a browser.

Projection: equirectangular with the x axis scaled by cos(28.3 deg), the latitude of
Nepal's centre, so that shapes keep their proportions within about 3 % over the country's
26.3-30.5 deg N span (Nepal is small enough that a conic projection would differ from this
by less than a pixel at dashboard sizes). y grows downwards as SVG wants.

Output (JSON, one object):
  viewBox      "0 0 W H"
  attribution  the line BOUNDARIES_SOURCE.md asks to show with a map
  units        [{"code": 10101, "d": "M..."}]  the 753 local levels, sorted by code
  protected    [{"name": "...", "d": "M..."}]  national parks etc., drawn inert
  districts    {"101": "M..."} unions of their local levels, keyed by their 3-digit prefix
  provinces    {"1": "M..."}
  district_borders, province_borders, outline  path data of the shared borders only (a
               border is drawn once, between two units of different districts/provinces),
               for thin lines over the coloured units.
Each unit's path is built from the TopoJSON arcs, so neighbours share exact vertices and
never overlap or leave slivers.
"""
import argparse
import json
import math
import sys

WIDTH = 1000.0
LAT0 = 28.3
ATTRIBUTION = "Boundaries: YoungInnovations / MoFAGA, MIT"


def decode_arcs(topo):
    """Absolute lon/lat points of every arc (TopoJSON quantized, delta encoded)."""
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    out = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        out.append(pts)
    return out


def ring_points(ring, arcs):
    """Points of a ring given as arc indexes (~i means arc i reversed)."""
    pts = []
    for i in ring:
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        # Consecutive arcs share their joining point: keep it once.
        pts.extend(a if not pts else a[1:])
    return pts


def geometry_rings(geom):
    if geom["type"] == "Polygon":
        return [r for r in geom["arcs"]]
    if geom["type"] == "MultiPolygon":
        return [r for poly in geom["arcs"] for r in poly]
    raise ValueError("unexpected geometry type %r" % geom["type"])


class Projector:
    def __init__(self, arcs):
        k = math.cos(math.radians(LAT0))
        xs = [p[0] * k for a in arcs for p in a]
        ys = [p[1] for a in arcs for p in a]
        self.k = k
        self.x0, self.y1 = min(xs), max(ys)
        self.s = WIDTH / (max(xs) - self.x0)
        self.height = math.ceil((self.y1 - min(ys)) * self.s)

    def __call__(self, p):
        return ((p[0] * self.k - self.x0) * self.s, (self.y1 - p[1]) * self.s)


def path_data(rings_pts, proj):
    """Compact SVG path data: absolute move, relative lines at 0.1 unit precision."""
    parts = []
    for pts in rings_pts:
        q = [proj(p) for p in pts]
        ix = [(round(x * 10), round(y * 10)) for x, y in q]
        # Drop repeated points that rounding made equal.
        dedup = [ix[0]]
        for p in ix[1:]:
            if p != dedup[-1]:
                dedup.append(p)
        if len(dedup) < 3:
            continue
        s = ["M%s %s" % (fmt(dedup[0][0]), fmt(dedup[0][1])), "l"]
        prev = dedup[0]
        coords = []
        for p in dedup[1:]:
            coords.append("%s %s" % (fmt(p[0] - prev[0]), fmt(p[1] - prev[1])))
            prev = p
        s.append(" ".join(coords))
        s.append("z")
        parts.append("".join(s))
    return "".join(parts)


def fmt(tenths):
    """A coordinate in tenths as the shortest decimal string."""
    neg = tenths < 0
    t = abs(tenths)
    s = str(t // 10) if t % 10 == 0 else "%d.%d" % (t // 10, t % 10)
    return "-" + s if neg else s


def borders(geoms, arcs, key, proj):
    """Arcs that separate two geometries whose key differs (or lie on the outline)."""
    users = {}
    for g, k in geoms:
        for ring in geometry_rings(g):
            for i in ring:
                users.setdefault(i if i >= 0 else ~i, []).append(k)
    inner, outer = [], []
    for i, ks in sorted(users.items()):
        if len(ks) == 1:
            outer.append(arcs[i])
        elif key is not None and ks[0] != ks[1]:
            inner.append(arcs[i])
    return open_paths(inner, proj), open_paths(outer, proj)


def open_paths(lines, proj):
    parts = []
    for pts in lines:
        q = [proj(p) for p in pts]
        ix = [(round(x * 10), round(y * 10)) for x, y in q]
        s = "M%s %s" % (fmt(ix[0][0]), fmt(ix[0][1]))
        rel = []
        prev = ix[0]
        for p in ix[1:]:
            if p != prev:
                rel.append("%s %s" % (fmt(p[0] - prev[0]), fmt(p[1] - prev[1])))
                prev = p
        if rel:
            parts.append(s + "l" + " ".join(rel))
    return "".join(parts)


def merged_rings(geoms, arcs):
    """Outer boundary rings of the union of geometries: arcs used by exactly one of them,
    chained end to end."""
    count = {}
    directed = {}
    for g in geoms:
        for ring in geometry_rings(g):
            for i in ring:
                j = i if i >= 0 else ~i
                count[j] = count.get(j, 0) + 1
                directed[j] = i
    edges = [directed[j] for j, c in count.items() if c == 1]
    # Chain arcs: each starts where the previous ends.
    def ends(i):
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        return a[0], a[-1]

    by_start = {}
    for i in edges:
        by_start.setdefault(ends(i)[0], []).append(i)
    used = set()
    rings = []
    for i in edges:
        if i in used:
            continue
        ring = [i]
        used.add(i)
        start, end = ends(i)
        while end != start:
            nxt = [c for c in by_start.get(end, []) if c not in used]
            if not nxt:
                break
            ring.append(nxt[0])
            used.add(nxt[0])
            end = ends(nxt[0])[1]
        rings.append(ring_points(ring, arcs))
    return rings


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("topojson")
    ap.add_argument("csv", help="nepal_local_levels.csv, to check that every code is drawn")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    with open(a.topojson, encoding="utf-8") as f:
        topo = json.load(f)
    codes = set()
    with open(a.csv, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        col = header.index("local_level_code")
        for line in f:
            if line.strip():
                codes.add(int(line.split(",")[col]))

    arcs = decode_arcs(topo)
    proj = Projector(arcs)
    geoms = topo["objects"]["local_levels"]["geometries"]
    units, protected = [], []
    by_district, by_province = {}, {}
    keyed = []
    for g in geoms:
        code = g["properties"].get("code")
        rings = [ring_points(r, arcs) for r in geometry_rings(g)]
        d = path_data(rings, proj)
        if code is None:
            protected.append({"name": g["properties"]["protected_area"], "d": d})
            keyed.append((g, ("protected", g["properties"]["protected_area"])))
            continue
        units.append({"code": code, "d": d})
        by_district.setdefault(str(code // 100), []).append(g)
        by_province.setdefault(str(code // 10000), []).append(g)
        keyed.append((g, code))

    drawn = [u["code"] for u in units]
    missing = codes - set(drawn)
    extra = set(drawn) - codes
    if missing or extra or len(drawn) != len(set(drawn)):
        sys.exit("topo2svg: codes do not match the CSV (missing %s, extra %s, %d duplicates)"
                 % (sorted(missing)[:5], sorted(extra)[:5], len(drawn) - len(set(drawn))))
    units.sort(key=lambda u: u["code"])

    # Borders between districts and between provinces. A protected area belongs to no
    # district: its border with a unit is drawn as a district border only when the units
    # on both sides differ, so it is keyed by the unit codes around it. Simple rule: key
    # protected areas as themselves, which draws their outline too (they are inert, a
    # thin line shows where they are).
    def dkey(k):
        return k if isinstance(k, tuple) else k // 100

    def pkey(k):
        return k if isinstance(k, tuple) else k // 10000

    dgeoms = [(g, dkey(k)) for g, k in keyed]
    pgeoms = [(g, pkey(k)) for g, k in keyed]
    district_borders, outline = borders(dgeoms, arcs, True, proj)
    province_borders, _ = borders(pgeoms, arcs, True, proj)

    out = {
        "viewBox": "0 0 %d %d" % (WIDTH, proj.height),
        "attribution": ATTRIBUTION,
        "units": units,
        "protected": protected,
        "districts": {k: path_data(merged_rings(v, arcs), proj) for k, v in sorted(by_district.items())},
        "provinces": {k: path_data(merged_rings(v, arcs), proj) for k, v in sorted(by_province.items())},
        "district_borders": district_borders,
        "province_borders": province_borders,
        "outline": outline,
    }
    with open(a.output, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
