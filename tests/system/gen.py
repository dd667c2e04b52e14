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

# Proportions of a plausible Nepali caseload (docs/DEMO_DATA.md gives the sources and says
# which are assumptions), drawn in the "nepal" profile: the demo's (tools/caseload.py) and
# the tests' that want what a province would see (test_dhis2.py). Each table is {value:
# weight}; weights need not sum to 1. The "uniform" profile, the default of Caseload, draws
# every value alike, as the generator always did: the older tests take small samples that
# must hold every category (a directive for vulnerable persons over 40 among 40 persons).
CATEGORY_W = {"RETURNEE": 55, "MIGRANT_FAMILY": 20, "PROSPECTIVE_MIGRANT": 15,
              "VULNERABLE": 6, "COMMUNITY": 4}
# Sex by category: labour migrants are overwhelmingly men (about 9 in 10 labour permits go
# to men, Nepal Labour Migration Report 2022); the families left behind are mostly women.
SEX_W = {"RETURNEE": {"MALE": 90, "FEMALE": 9.5, "OTHER": 0.5},
         "PROSPECTIVE_MIGRANT": {"MALE": 85, "FEMALE": 14.5, "OTHER": 0.5},
         "MIGRANT_FAMILY": {"FEMALE": 80, "MALE": 19.5, "OTHER": 0.5},
         "VULNERABLE": {"FEMALE": 60, "MALE": 39, "OTHER": 1},
         "COMMUNITY": {"FEMALE": 52, "MALE": 47.5, "OTHER": 0.5}}
# Caste and ethnic groups, roughly the National Population and Housing Census 2021 shares
# folded into our seven groups (the folding is our assumption).
CASTE_W = {"BRAHMIN_CHHETRI": 29, "JANAJATI": 33, "DALIT": 13, "MADHESI": 14, "MUSLIM": 5,
           "OTHER": 3, "UNDISCLOSED": 3}
# Destinations of labour permits (Nepal Labour Migration Report 2022: Malaysia, Qatar, the
# UAE and Saudi Arabia take most; India needs no permit, its share is an assumption).
COUNTRY_W = {"MY": 22, "QA": 20, "AE": 18, "SA": 16, "KW": 6, "IN": 8, "JP": 3, "KR": 3,
             "BH": 2, "OM": 2}
DISABILITY_W = {"no": 92, "yes": 3, "": 5}  # census 2021: about 2.2% with a disability
INTENTION_W = {"NONE": 35, "UNDECIDED": 40, "PLANNING": 25}
# Services: counselling and orientation are common, money is rarer (assumption, after the
# shape of reintegration programmes' reports); a referral is as often made as delivered.
SERVICE_W = {"PRE_DEPARTURE_ORIENTATION": 12, "RETURN_COUNSELLING": 20,
             "PSYCHOSOCIAL_SUPPORT": 10, "ENTREPRENEURSHIP_TRAINING": 9,
             "FINANCIAL_LITERACY": 12, "SKILLS_TRAINING": 11, "SEED_FUNDING": 4, "LOAN": 3,
             "BANK_ACCOUNT": 7, "JOB_PLACEMENT": 5, "LEGAL_AID": 3, "HEALTH_REFERRAL": 4}
STATUS_W = {"DELIVERED": 70, "REFERRED": 30}
PROVIDER_W = {"MRC": 30, "MUNICIPALITY": 25, "NGO": 18, "BANK": 7, "COOPERATIVE": 7,
              "TRAINING_INSTITUTE": 7, "HEALTH_FACILITY": 4, "OTHER": 2}
PROGRAMME_W = {"M4SD": 25, "RERP": 20, "MUNICIPAL": 30, "PROVINCIAL": 12, "FEDERAL": 8,
               "OTHER": 5}

TODAY = datetime.date.today()
NEPAL = datetime.timedelta(hours=5, minutes=45)


def nepal_today(now=None):
    """The day in Nepal (UTC+05:45) at UTC time now (default: now): the day on which the hub
    decides what is due."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return (now + NEPAL).date()


def utc_evening_clock(path):
    """Writes a --test-clock file (the offset in seconds) that puts a daemon at 20:00 UTC
    tomorrow, 01:45 of the day after in Nepal: the hours in which the UTC day and Nepal's
    differ. Returns (the UTC date, Nepal's date) at that moment."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    at = datetime.datetime.combine(now.date(), datetime.time(20)) + datetime.timedelta(days=1)
    with open(path, "w") as f:
        f.write("%d\n" % int((at - now).total_seconds()))
    assert nepal_today(at) == at.date() + datetime.timedelta(days=1)
    return at.date(), nepal_today(at)


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

    def __init__(self, municipality, seed, profile="uniform", last_day=None):
        """profile: "nepal" (the weights above) or "uniform"; last_day: the last day with
        any activity (default today; earlier for a municipality that fell silent)."""
        if profile not in ("nepal", "uniform"):
            raise ValueError("profile %r is not nepal or uniform" % profile)
        self.municipality = municipality
        self.profile = profile
        self.last_day = last_day or TODAY
        self.rng = random.Random(seed)
        self.persons = {}   # local_id -> dict of CSV fields
        self.services = {}  # local_id -> dict
        self.deleted = set()  # ("person"|"service", local_id)
        self.serial = 0

    def _date(self, lo_days, hi_days):
        return self.last_day - datetime.timedelta(days=self.rng.randint(lo_days, hi_days))

    def pick(self, weights, values=None):
        """A value of weights ({value: weight}), by weight, or in the uniform profile
        uniformly from values (default: weights' keys), a list in the order the generator
        always drew from, so that the uniform profile's data is what it always was."""
        if self.profile == "uniform":
            return self.rng.choice(values or list(weights))
        values = list(weights)
        return self.rng.choices(values, weights=[weights[v] for v in values])[0]

    def _age(self, cat):
        """Age at registration: migrants and returnees are mostly 20..45 (assumption)."""
        r = self.rng
        if cat in ("RETURNEE", "PROSPECTIVE_MIGRANT"):
            return max(18, min(70, int(r.triangular(18, 60, 29))))
        return r.randint(16, 70)

    def day_after(self, start):
        """A day from start to the last day of activity."""
        span = max(0, (self.last_day - start).days)
        return min(start + datetime.timedelta(days=self.rng.randint(0, span)), self.last_day)

    def new_person(self):
        self.serial += 1
        lid = "P%d-%06d" % (self.municipality, self.serial)
        r = self.rng
        reg = self._date(1, 5 * 365)
        reg_bs = bs.ad_to_bs(reg)
        if self.profile == "uniform":
            age = r.randint(16, 70)
            cat = r.choice(CATEGORIES)
        else:
            cat = self.pick(CATEGORY_W)
            age = self._age(cat)
        p = {
            "local_id": lid,
            "category": cat,
            "sex": self.pick(SEX_W[cat], SEXES),
            "birth_year": str(reg_bs[0] - age),
            "caste_group": self.pick(CASTE_W, CASTES),
            "disability": self.pick(DISABILITY_W, ["yes", "no", ""]),
            "registered_on": bs.bs_str(reg),
            "destination_country": self.pick(COUNTRY_W, COUNTRIES) if cat != "COMMUNITY" else "",
            "years_abroad": str(r.randint(1, 15)) if cat == "RETURNEE" else "",
            "return_date": bs.bs_str(reg - datetime.timedelta(days=r.randint(0, 300)))
            if cat == "RETURNEE" else "",
            "remigration_intention": self.pick(INTENTION_W, INTENTIONS) if cat == "RETURNEE"
            else "",
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
        day = self.day_after(p["_reg"])
        stype = self.pick(SERVICE_W, SERVICES)
        s = {
            "local_id": lid,
            "person_local_id": person_lid,
            "service": stype,
            "status": self.pick(STATUS_W, ["REFERRED", "DELIVERED"]),
            "date": bs.bs_str(day),
            "provider": self.pick(PROVIDER_W, PROVIDERS),
            "programme": self.pick(PROGRAMME_W, PROGRAMMES),
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

    def services_of(self, plid):
        """The local ids of person plid's services not deleted: a node deletes a person only
        once these are gone."""
        return [lid for lid, s in self.services.items()
                if s["person_local_id"] == plid and ("service", lid) not in self.deleted]

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
