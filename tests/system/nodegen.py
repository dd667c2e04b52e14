"""Rows of the two kinds gen.Caseload does not make (enterprises, service availability), and
CSV writing for any kind, with ground truth computed here: dates are chosen as Gregorian
dates, written in the node's calendar by bs.py, and expected upstream as month pairs (the
days of enterprises) or Gregorian days (availability's as-of day, not a person's)."""
import csv
import datetime

import bs
from gen import PROVIDERS, SERVICES, TODAY

ENTERPRISE_COLS = ["local_id", "owner_local_id", "action", "sector", "date", "registered",
                   "employees", "status"]
AVAILABILITY_COLS = ["service", "provider", "available", "as_of"]
ACTIONS = ["STARTED", "EXPANDED"]
SECTORS = ["AGRICULTURE", "LIVESTOCK", "FOOD_PROCESSING", "RETAIL", "HOSPITALITY",
           "MANUFACTURING", "HANDICRAFT", "SERVICES", "OTHER"]
ENT_STATUSES = ["ACTIVE", "CLOSED"]
# Returnees' enterprises are mostly farms, livestock and shops (Nepal Labour Migration Report
# 2022 on returnees' investments; the exact shares are our assumption, docs/DEMO_DATA.md).
SECTOR_W = {"AGRICULTURE": 24, "LIVESTOCK": 20, "FOOD_PROCESSING": 6, "RETAIL": 18,
            "HOSPITALITY": 8, "MANUFACTURING": 4, "HANDICRAFT": 4, "SERVICES": 12, "OTHER": 4}
ACTION_W = {"STARTED": 75, "EXPANDED": 25}
ENT_STATUS_W = {"ACTIVE": 85, "CLOSED": 15}


def date_str(d, calendar):
    """A Gregorian date written in the node's calendar."""
    return bs.bs_str(d) if calendar == "BS" else d.isoformat()


def new_enterprise(caseload, owner_lid, calendar="BS"):
    """An enterprise of an existing person of caseload (gen.Caseload), kept in
    caseload.enterprises (created on first use)."""
    if not hasattr(caseload, "enterprises"):
        caseload.enterprises = {}
    caseload.serial += 1
    r = caseload.rng
    lid = "E%d-%06d" % (caseload.municipality, caseload.serial)
    owner = caseload.persons[owner_lid]
    day = caseload.day_after(owner["_reg"])
    small = caseload.profile != "uniform"
    e = {
        "local_id": lid,
        "owner_local_id": owner_lid,
        "action": caseload.pick(ACTION_W, ACTIONS),
        "sector": caseload.pick(SECTOR_W, SECTORS),
        "date": date_str(day, calendar),
        "registered": caseload.pick({"yes": 55, "no": 40, "": 5}, ["yes", "no", ""]),
        # Most enterprises are the owner's own or employ a few (assumption).
        "employees": (str(min(25, int(r.expovariate(0.4)))) if small else str(r.randint(0, 25)))
        if r.random() < 0.9 else "",
        "status": caseload.pick(ENT_STATUS_W, ENT_STATUSES),
        "_day": day,
    }
    caseload.enterprises[lid] = e
    return e


def expected_enterprise(e):
    return {
        "action": ACTIONS.index(e["action"]) + 1,
        "sector": SECTORS.index(e["sector"]) + 1,
        "month": bs.pair(e["_day"])[0],
        "bs_month": bs.pair(e["_day"])[1],
        "registered": {"yes": 1, "no": 2, "": 0}[e["registered"]],
        "employees": int(e["employees"]) if e["employees"] else -1,
        "status": ENT_STATUSES.index(e["status"]) + 1,
    }


def availability_rows(rng, n, calendar="BS"):
    """n distinct (service, provider) rows, as of dates in the last two years."""
    pairs = [(s, p) for s in SERVICES for p in PROVIDERS]
    rng.shuffle(pairs)
    rows = []
    for s, p in pairs[:n]:
        day = TODAY - datetime.timedelta(days=rng.randint(1, 700))
        rows.append({"service": s, "provider": p, "available": rng.choice(["true", "no", "1"]),
                     "as_of": date_str(day, calendar), "_day": day})
    return rows


def expected_availability(a):
    return {
        "service": SERVICES.index(a["service"]) + 1,
        "provider": PROVIDERS.index(a["provider"]) + 1,
        "available": a["available"] in ("true", "yes", "1"),
        "as_of_day": bs.day_number(a["_day"]),
    }


def write_rows(path, cols, rows):
    """Rows are dicts (a column missing from a row is written empty) or lists of raw
    fields written as they are."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(r if isinstance(r, list) else [r.get(c, "") for c in cols])
