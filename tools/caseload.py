#!/usr/bin/env python3
"""Writes a plausible, deterministic caseload for one municipality as the CSV files a clerk
would import (dates in Bikram Sambat), and prints the generator's own ground truth as JSON
on stdout: counts computed here, never read back from the product.

usage: tools/caseload.py --municipality 10703 --persons 400 --services 600 --enterprises 80
                         --seed 1 --out DIR
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "system"))
import bs  # noqa: E402
from gen import Caseload  # noqa: E402
from nodegen import ENTERPRISE_COLS, new_enterprise, write_rows  # noqa: E402


def fiscal_year(d):
    """The BS fiscal year (from Shrawan 1) of a Gregorian date, as "FY2083/84"."""
    y, m, _ = bs.ad_to_bs(d)
    start = y if m >= 4 else y - 1
    return "FY%d/%02d" % (start, (start + 1) % 100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--municipality", type=int, required=True)
    ap.add_argument("--persons", type=int, default=400)
    ap.add_argument("--services", type=int, default=600)
    ap.add_argument("--enterprises", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cl = Caseload(a.municipality, a.seed)
    for _ in range(a.persons):
        cl.new_person()
    lids = list(cl.persons)
    for i in range(a.services):
        cl.new_service(lids[cl.rng.randrange(len(lids))])
    ents = [new_enterprise(cl, lids[cl.rng.randrange(len(lids))]) for _ in range(a.enterprises)]
    os.makedirs(a.out, exist_ok=True)
    cl.write_csv(os.path.join(a.out, "persons.csv"), "persons")
    cl.write_csv(os.path.join(a.out, "services.csv"), "services")
    write_rows(os.path.join(a.out, "enterprises.csv"), ENTERPRISE_COLS, ents)
    truth = {"municipality": a.municipality, "persons": len(cl.persons),
             "services": len(cl.services), "enterprises": len(ents),
             "persons_by_sex": {}, "services_delivered": 0,
             "registered_by_fy_sex": {}, "enterprises_by_fy_sector": {}}
    for p in cl.persons.values():
        truth["persons_by_sex"][p["sex"]] = truth["persons_by_sex"].get(p["sex"], 0) + 1
        fy = truth["registered_by_fy_sex"].setdefault(fiscal_year(p["_reg"]), {})
        fy[p["sex"]] = fy.get(p["sex"], 0) + 1
    for e in ents:
        fy = truth["enterprises_by_fy_sector"].setdefault(fiscal_year(e["_day"]), {})
        fy[e["sector"]] = fy.get(e["sector"], 0) + 1
    truth["services_delivered"] = sum(1 for s in cl.services.values()
                                      if s["status"] == "DELIVERED")
    json.dump(truth, sys.stdout)
    print()


if __name__ == "__main__":
    main()
