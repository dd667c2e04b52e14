#!/usr/bin/env python3
"""Writes a plausible, deterministic caseload for one municipality as the CSV files a clerk
would import (dates in Bikram Sambat), and prints the generator's own ground truth as JSON
on stdout: counts computed here, never read back from the product.

usage: tools/caseload.py --municipality 10703 --persons 400 --services 600 --enterprises 80
                         --seed 1 --out DIR
       tools/caseload.py --municipality 10703 --size auto --seed 1 --out DIR

--size auto sizes the caseload by the local level's type (a metropolitan city registers more
than a rural municipality) and lets some municipalities fall silent months ago; the
proportions of every field are gen.py's (docs/DEMO_DATA.md says where each comes from).
"""
import argparse
import csv
import datetime
import json
import os
import random
import sys
import zlib

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


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Persons registered over five years by the local level's type (assumption: a metropolitan
# city's migrant resource centre sees several times a rural municipality's caseload).
PERSONS_BY_TYPE = {"Metropolitan City": 700, "Sub-Metropolitan City": 500,
                   "Municipality": 300, "Rural Municipality": 150}
SILENT_DAYS = 130  # a silent municipality's last activity: over four months ago


def local_level_type(code):
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv"), newline="") as f:
        for row in csv.DictReader(f):
            if int(row["local_level_code"]) == code:
                return row["local_level_type"]
    raise SystemExit("caseload: %d is not a local level code of data/nepal_local_levels.csv"
                     % code)


def silent(code):
    """Whether a municipality fell silent: about one in six, chosen by its code alone so that
    a demo always shows the same ones (in the demo: Pokhara and Butwal)."""
    return zlib.crc32(str(code).encode()) % 6 == 5


def auto_size(code, seed):
    """(persons, services, enterprises) for a municipality of code's type, within 20%."""
    rng = random.Random(seed * 7919 + code)
    persons = int(PERSONS_BY_TYPE[local_level_type(code)] * rng.uniform(0.8, 1.2))
    return persons, int(persons * 1.5), int(persons * 0.2)


def months_to_close(last_day=None):
    """The BS months the demo's clerk has closed: the last six that have ended (before
    last_day for a silent municipality, which stopped closing too)."""
    y, m, _ = bs.ad_to_bs(last_day or datetime.date.today())
    idx = y * 12 + (m - 1)
    return ["BS%04d-%02d" % ((idx - k) // 12, (idx - k) % 12 + 1) for k in range(6, 0, -1)]


def months_to_return(code, seed, always=False):
    """The BS months a provincial reviewer returns in the demo (deploy/demo_report.py): one
    month in about a quarter of municipalities (always: in this one), among the last six
    closed ones."""
    rng = random.Random(seed * 104729 + code)
    if rng.random() >= 0.25 and not always:
        return []
    y, m, _ = bs.ad_to_bs(datetime.date.today())
    back = rng.randint(1, 6)
    idx = y * 12 + (m - 1) - back
    return ["BS%04d-%02d" % (idx // 12, idx % 12 + 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--municipality", type=int, required=True)
    ap.add_argument("--persons", type=int, default=400)
    ap.add_argument("--services", type=int, default=600)
    ap.add_argument("--enterprises", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", choices=["given", "auto"], default="given",
                    help="auto: size by local level type, some municipalities silent")
    ap.add_argument("--profile", choices=["nepal", "uniform"], default="nepal")
    ap.add_argument("--return-a-month", action="store_true",
                    help="with --size auto: a reviewer returns one of the closed months")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    last_day = None
    if a.size == "auto":
        a.persons, a.services, a.enterprises = auto_size(a.municipality, a.seed)
        if silent(a.municipality):
            last_day = datetime.date.today() - datetime.timedelta(days=SILENT_DAYS)
    cl = Caseload(a.municipality, a.seed, profile=a.profile, last_day=last_day)
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
             "registered_by_fy_sex": {}, "enterprises_by_fy_sector": {},
             "last_activity": cl.last_day.isoformat(),
             "months_to_close": months_to_close(last_day) if a.size == "auto" else [],
             "months_to_return": months_to_return(a.municipality, a.seed, a.return_a_month)
             if a.size == "auto" and last_day is None else []}
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
