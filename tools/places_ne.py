#!/usr/bin/python3
"""The Nepali names of Nepal's districts and local levels, and of the world's countries, for
the pages.

Run at build time:
  tools/places_ne.py data/nepal_local_levels.csv data/nepal_local_levels_extended.csv \
      --countries /usr/share/iso-codes/json/iso_3166-1.json \
      --translations /usr/share/locale/ne/LC_MESSAGES/iso_3166-1.mo -o out
The daemons give places their English names (common/geo.c, from nepal_local_levels.csv);
a page in Nepali shows the name this table gives for the same official code. The extended
file must hold the same 753 rows as the first (code, district and English name alike): a
row that differs stops the build with its file and line, so a name never reaches a page
under another place's code. Countries are named as Debian's iso-codes package translates
them (the browser's Intl has no Nepali in Debian's Chromium); a country it leaves untranslated
is left out, and the page names it in English.

Output (JSON, one object):
  district     {"1": "ताप्लेजुंग", ...}  by the national district code, 1..77
  local_level  {"10101": "आठराई त्रिवेणी गाउँपालिका", ...}  by the official code
  country      {"QA": "कतार", ...}  by ISO 3166-1 alpha-2 code
"""
import argparse
import csv
import gettext
import json
import sys


def fail(path, line, msg):
    sys.exit("%s line %d: %s" % (path, line, msg))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", help="nepal_local_levels.csv, the table the daemons compile in")
    ap.add_argument("extended", help="nepal_local_levels_extended.csv, with the Nepali names")
    ap.add_argument("--countries", required=True, help="iso-codes' iso_3166-1.json")
    ap.add_argument("--translations", required=True, help="iso-codes' Nepali iso_3166-1.mo")
    ap.add_argument("-o", dest="out", required=True, help="the JSON file to write")
    a = ap.parse_args()

    with open(a.csv, encoding="utf-8-sig", newline="") as f:
        base = {r["local_level_code"]: r for r in csv.DictReader(f)}
    district, local = {}, {}
    line = 1
    with open(a.extended, encoding="utf-8-sig", newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            code = r["local_level_code"]
            if not code.isdigit():
                fail(a.extended, line, "local_level_code %r is not a number" % code)
            if int(code) in local:
                fail(a.extended, line, "local_level_code %s appears twice" % code)
            b = base.pop(code, None)
            if b is None:
                fail(a.extended, line, "local_level_code %s is not in %s" % (code, a.csv))
            for col in ("province_code", "district_code", "district_name", "local_level_name"):
                if r[col] != b[col]:
                    fail(a.extended, line, "%s %r differs from %s's %r" % (col, r[col], a.csv,
                                                                           b[col]))
            for col in ("district_name_ne", "local_level_name_ne"):
                if not r[col].strip():
                    fail(a.extended, line, "%s is empty" % col)
            d = int(r["district_code"])
            if district.setdefault(d, r["district_name_ne"]) != r["district_name_ne"]:
                fail(a.extended, line, "district %d has two Nepali names" % d)
            local[int(code)] = r["local_level_name_ne"]
    if base:
        fail(a.extended, line, "%d local levels of %s are missing, %s the first" %
             (len(base), a.csv, min(base)))
    for path in (a.countries, a.translations):
        try:
            open(path, "rb").close()
        except OSError as e:
            sys.exit("%s: %s (Debian's iso-codes package has it: make deps installs it; a "
                     "dpkg path-exclude of /usr/share/locale would drop the translations)"
                     % (path, e.strerror))
    with open(a.countries, encoding="utf-8") as f:
        countries = json.load(f)["3166-1"]
    with open(a.translations, "rb") as f:
        tr = gettext.GNUTranslations(f)
    country = {}
    for c in countries:
        # The common name's translation first ("South Korea"), else the ISO name's.
        for en in (c.get("common_name"), c["name"]):
            if en and tr.gettext(en) != en:
                country[c["alpha_2"]] = tr.gettext(en)
                break
    if len(country) < 200:
        sys.exit("%s: only %d countries translated; is it the Nepali catalogue?" %
                 (a.translations, len(country)))
    out = {"district": {str(k): v for k, v in sorted(district.items())},
           "local_level": {str(k): v for k, v in sorted(local.items())},
           "country": dict(sorted(country.items()))}
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
