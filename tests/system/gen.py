"""Deterministic caseload generator with its own ground truth.

The generator decides every record's content; the expected upstream values (coarse
attributes, month pairs of events) are computed here, never read back from the product."""
import datetime
import random

import bs

PERSON_COLS = ["local_id", "category", "sex", "birth_year", "caste_group", "disability",
               "registered_on", "destination_country", "years_abroad", "return_date",
               "remigration_intention", "family_member_abroad", "consent", "full_name",
               "phone", "citizenship_no", "ward", "address"]
SERVICE_COLS = ["local_id", "person_local_id", "service", "status", "date", "provider",
                "programme", "amount_npr"]

CATEGORIES = ["RETURNEE", "MIGRANT_FAMILY", "PROSPECTIVE_MIGRANT", "VULNERABLE", "COMMUNITY"]
SEXES = ["FEMALE", "MALE", "OTHER"]
CASTES = ["DALIT", "JANAJATI", "MADHESI", "MUSLIM", "BRAHMIN_CHHETRI", "OTHER", "UNDISCLOSED"]
COUNTRIES = ["QA", "AE", "SA", "MY", "KW", "IN", "JP", "KR", "BH", "OM"]
INTENTIONS = ["NONE", "UNDECIDED", "PLANNING"]
SERVICES = ["PRE_DEPARTURE_ORIENTATION", "RETURN_COUNSELLING", "PSYCHOSOCIAL_SUPPORT",
            "ENTREPRENEURSHIP_TRAINING", "FINANCIAL_LITERACY", "SKILLS_TRAINING",
            "SEED_FUNDING", "LOAN", "BANK_ACCOUNT", "JOB_PLACEMENT", "LEGAL_AID",
            "HEALTH_REFERRAL"]
PROVIDERS = ["MRC", "MUNICIPALITY", "NGO", "BANK", "COOPERATIVE", "TRAINING_INSTITUTE",
             "HEALTH_FACILITY", "OTHER"]
PROGRAMMES = ["M4SD", "RERP", "MUNICIPAL", "PROVINCIAL", "FEDERAL", "OTHER"]
GIVEN = ["Sita", "Ram", "Gita", "Hari", "Maya", "Bishnu", "Kamala", "Krishna", "Laxmi",
         "Suman", "Anita", "Bikash", "Sarita", "Dipak", "Puja", "Rajesh"]
FAMILY = ["Shrestha", "Gurung", "Tamang", "Rai", "Limbu", "Magar", "Thapa", "Karki",
          "Adhikari", "Yadav", "Sharma", "Bishwakarma", "Ansari", "Chaudhary"]

TODAY = datetime.date.today()
NEPAL = datetime.timedelta(hours=5, minutes=45)


def nepal_today(now=None):
    """The day in Nepal (UTC+05:45) at UTC time now (default: now): the day on which the hub
    decides what is due."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return (now + NEPAL).date()


def bs_month_index(d):
    """The BS month holding Gregorian date d, as year * 12 + month - 1."""
    y, m, _ = bs.ad_to_bs(d)
    return y * 12 + m - 1


# Referrals, month-level (issue 12), written here on their own: a referral of BS month B
# waits through B and the three full BS months after it; at midnight Nepal time after the
# last of them (once the day in Nepal is in B + 4 or later) it is pending, unless a DELIVERED
# service of the same type for the same person has its BS month in B .. B + 3.
WINDOW_MONTHS = 3


def referral_pending(referred_on, delivered_on, today):
    """referred_on: the referral's date; delivered_on: the dates of the deliveries of its type
    to its person; today: a day in Nepal."""
    b = bs_month_index(referred_on)
    if bs_month_index(today) <= b + WINDOW_MONTHS:
        return False
    return not any(b <= bs_month_index(d) <= b + WINDOW_MONTHS for d in delivered_on)


def pending_by_type(services, today, keep=lambda s: True):
    """{service type: pending referrals} over service dicts (person_local_id, service, status,
    _day) for which keep(s) holds (e.g. those in a period)."""
    out = {}
    for s in services:
        if s["status"] != "REFERRED" or not keep(s):
            continue
        done = [d["_day"] for d in services if d["status"] == "DELIVERED"
                and d["service"] == s["service"]
                and d["person_local_id"] == s["person_local_id"]]
        if referral_pending(s["_day"], done, today):
            out[s["service"]] = out.get(s["service"], 0) + 1
    return out


def age_band(age):
    if age < 15:
        return 1
    if age < 25:
        return 2
    if age < 40:
        return 3
    if age < 60:
        return 4
    return 5


class Caseload:
    """Persons and services of one municipality, with corrections and deletions applied
    in the generator's own state."""

    def __init__(self, municipality, seed):
        self.municipality = municipality
        self.rng = random.Random(seed)
        self.persons = {}   # local_id -> dict of CSV fields
        self.services = {}  # local_id -> dict
        self.deleted = set()  # ("person"|"service", local_id)
        self.serial = 0

    def _date(self, lo_days, hi_days):
        return TODAY - datetime.timedelta(days=self.rng.randint(lo_days, hi_days))

    def new_person(self):
        self.serial += 1
        lid = "P%d-%06d" % (self.municipality, self.serial)
        r = self.rng
        reg = self._date(1, 5 * 365)
        reg_bs = bs.ad_to_bs(reg)
        age = r.randint(16, 70)
        cat = r.choice(CATEGORIES)
        p = {
            "local_id": lid,
            "category": cat,
            "sex": r.choice(SEXES),
            "birth_year": str(reg_bs[0] - age),
            "caste_group": r.choice(CASTES),
            "disability": r.choice(["yes", "no", ""]),
            "registered_on": bs.bs_str(reg),
            "destination_country": r.choice(COUNTRIES) if cat != "COMMUNITY" else "",
            "years_abroad": str(r.randint(1, 15)) if cat == "RETURNEE" else "",
            "return_date": bs.bs_str(reg - datetime.timedelta(days=r.randint(0, 300)))
            if cat == "RETURNEE" else "",
            "remigration_intention": r.choice(INTENTIONS) if cat == "RETURNEE" else "",
            "family_member_abroad": r.choice(["true", "false"]),
            "consent": "yes",
            "full_name": "%s %s %d" % (r.choice(GIVEN), r.choice(FAMILY), self.serial),
            "phone": "98%08d" % r.randint(0, 99999999),
            "citizenship_no": "%02d-%02d-%02d-%05d" % (r.randint(1, 77), r.randint(1, 99),
                                                         r.randint(70, 80),
                                                         r.randint(0, 99999)),
            "ward": str(r.randint(1, 12)),
            "address": "Tole %d, ward %d" % (r.randint(1, 40), r.randint(1, 12)),
            "_reg": reg,
            "_age": age,
        }
        self.persons[lid] = p
        return p

    def new_service(self, person_lid):
        self.serial += 1
        lid = "S%d-%06d" % (self.municipality, self.serial)
        r = self.rng
        p = self.persons[person_lid]
        day = p["_reg"] + datetime.timedelta(days=r.randint(0, max(0, (TODAY - p["_reg"]).days)))
        if day > TODAY:
            day = TODAY
        stype = r.choice(SERVICES)
        s = {
            "local_id": lid,
            "person_local_id": person_lid,
            "service": stype,
            "status": r.choice(["REFERRED", "DELIVERED"]),
            "date": bs.bs_str(day),
            "provider": r.choice(PROVIDERS),
            "programme": r.choice(PROGRAMMES),
            "amount_npr": str(r.randint(5000, 200000)) if stype in ("SEED_FUNDING", "LOAN") else "",
            "_day": day,
        }
        self.services[lid] = s
        return s

    def correct_person(self, lid):
        p = self.persons[lid]
        p["sex"] = self.rng.choice([s for s in SEXES if s != p["sex"]])
        p["phone"] = "97%08d" % self.rng.randint(0, 99999999)
        return p

    def correct_service(self, lid):
        s = self.services[lid]
        s["status"] = "DELIVERED" if s["status"] == "REFERRED" else "REFERRED"
        return s

    def delete(self, kind, lid):
        self.deleted.add((kind, lid))

    # Ground truth of the upstream record -----------------------------------------------

    def expected_person(self, p):
        reg = p["_reg"]
        e = {
            "category": CATEGORIES.index(p["category"]) + 1,
            "sex": SEXES.index(p["sex"]) + 1,
            "age_band": age_band(p["_age"]),
            "caste_group": CASTES.index(p["caste_group"]) + 1,
            "disability": {"yes": 1, "no": 2, "": 0}[p["disability"]],
            "registered_month": bs.pair(reg)[0],
            "registered_bs_month": bs.pair(reg)[1],
            "destination_country": p["destination_country"],
            "family_member_abroad": 1 if p["family_member_abroad"] == "true" else 2,
            "consent": 1,
        }
        if p["category"] == "RETURNEE":
            y, m, d = (int(x) for x in p["return_date"].split("-"))
            ad = bs.bs_to_ad(y, m, d)
            e["return_month"] = ad.year * 100 + ad.month
            e["years_abroad"] = int(p["years_abroad"])
            e["remigration_intention"] = INTENTIONS.index(p["remigration_intention"]) + 1
        return e

    def expected_service(self, s):
        return {
            "type": SERVICES.index(s["service"]) + 1,
            "status": 1 if s["status"] == "REFERRED" else 2,
            "month": bs.pair(s["_day"])[0],
            "bs_month": bs.pair(s["_day"])[1],
            "provider": PROVIDERS.index(s["provider"]) + 1,
            "programme": PROGRAMMES.index(s["programme"]) + 1,
            "amount_npr": int(s["amount_npr"]) if s["amount_npr"] else -1,
        }

    def write_csv(self, path, kind, rows=None):
        import csv as _csv
        cols = PERSON_COLS if kind == "persons" else SERVICE_COLS
        src = self.persons if kind == "persons" else self.services
        rows = list(src.values()) if rows is None else rows
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = _csv.writer(f)
            w.writerow(cols)
            for r in rows:
                w.writerow([r[c] for c in cols])
