"""The national simulation's caseload, in one place (issue 17): which record kinds, in which
proportions, with which distributions, and the ground truth of their national figures.

Proportions and distributions come from the demo's generator, read here rather than copied,
so that a change to it reaches the benchmark:
  - persons : services : enterprises per municipality are the defaults of tools/caseload.py
    (what deploy/demo.sh imports at every node), parsed from its argument parser;
  - every attribute (category, sex, age, dates, service types and statuses, enterprise
    sectors...) is drawn by tests/system/gen.py (Caseload) and tests/system/nodegen.py
    (new_enterprise, availability_rows), and the upstream fields by their expected_* functions,
    which the system tests hold to be what a real node sends.
The demo's generator makes no availability rows and no month closes. Here every municipality
also has AVAILABILITY_ROWS availability rows (nodegen.availability_rows) and closes every BS
month of the span that has ended, except the last 0..CLOSE_LAG_MAX months (a clerk closes a
month after it ends, and some are late).
The one deviation: registrations span `years` (default 10, so that the federal tier holds 753 x
120 months for the query figure) instead of gen.py's 5; gen.py's draws are stretched."""
import datetime
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
import bs  # noqa: E402
import gen  # noqa: E402
import nodegen  # noqa: E402

AVAILABILITY_ROWS = 12
CLOSE_LAG_MAX = 3
GEN_YEARS = 5  # the span of gen.Caseload's registrations (new_person: _date(1, 5 * 365))


def demo_proportions():
    """{"persons": n, "services": n, "enterprises": n}: the defaults of tools/caseload.py."""
    with open(os.path.join(ROOT, "tools", "caseload.py"), encoding="utf-8") as f:
        src = f.read()
    out = {}
    for kind in ("persons", "services", "enterprises"):
        m = re.search(r'"--%s",\s*type=int,\s*default=(\d+)' % kind, src)
        if not m:
            raise SystemExit("tools/caseload.py has no default for --%s any more: update "
                             "bench/mix.py" % kind)
        out[kind] = int(m.group(1))
    return out


PROPORTIONS = demo_proportions()


class SpanCaseload(gen.Caseload):
    """gen.Caseload whose registrations span `years` years instead of 5."""

    def __init__(self, municipality, seed, years):
        super().__init__(municipality, seed)
        self.stretch = years / GEN_YEARS

    def _date(self, lo_days, hi_days):
        return super()._date(lo_days, int(hi_days * self.stretch))


def split(n, fixed):
    """n records of one municipality as (persons, services, enterprises) after the `fixed`
    availability rows and closes, in the demo's proportions (at least one person)."""
    rest = max(1, n - fixed)
    tot = sum(PROPORTIONS.values())
    ns = rest * PROPORTIONS["services"] // tot
    ne = rest * PROPORTIONS["enterprises"] // tot
    return max(1, rest - ns - ne), ns, ne


def caseload(cl, n, workdir, tag):
    """Fills caseload cl (gen.Caseload) with n records in the demo's proportions (split: the
    persons, then services and enterprises of random persons among them) and writes them as
    the CSVs `municipal-node import` reads, workdir/<tag>-<kind>.csv. Returns the
    [(kind, path)] to import in order, and the enterprises (the caseload keeps the rest)."""
    n_p, n_s, n_e = split(n, 0)
    for _ in range(n_p):
        cl.new_person()
    lids = list(cl.persons)
    for _ in range(n_s):
        cl.new_service(lids[cl.rng.randrange(len(lids))])
    ents = [nodegen.new_enterprise(cl, lids[cl.rng.randrange(len(lids))]) for _ in range(n_e)]
    csvs = []
    for kind in ("persons", "services", "enterprises"):
        path = os.path.join(workdir, "%s-%s.csv" % (tag, kind))
        if kind == "enterprises":
            nodegen.write_rows(path, nodegen.ENTERPRISE_COLS, ents)
        else:
            cl.write_csv(path, kind)
        csvs.append((kind, path))
    return csvs, ents


def closed_range(rng, today, years):
    """(first, last) BS month index (year * 12 + month - 1) that a municipality has closed."""
    first = gen.bs_month_index(today - datetime.timedelta(days=int(years * 365.25)))
    last = gen.bs_month_index(today) - 1 - rng.randint(0, CLOSE_LAG_MAX)
    return first, last


def month_closes(lo, hi, rng, today):
    """The MonthClose fields of BS months lo..hi: (year, month, closed Gregorian date), each
    closed 0..20 days after its month ended but never after today (the day in Nepal): a hub
    refuses a close day later than its own tomorrow, and the last closed month may have ended
    only days ago (issue: the quick national run had month closes dated up to 20 days ahead
    refused as "in the future", so its figures never met the truth)."""
    out = []
    for i in range(lo, hi + 1):
        y, m = divmod(i, 12)
        after = gen.bs.bs_month_first(y, m + 2)  # the first day of the next month
        if after > today:
            raise ValueError("BS month %d-%02d has not ended on %s" % (y, m + 1, today))
        out.append((y, m + 1, min(today, after + datetime.timedelta(days=rng.randint(0, 20)))))
    return out


class Truth:
    """National figures per Gregorian year, computed from what the generators decided:
      reg|Y|        participants_registered, total        (persons)
      reg|Y|SEX     participants_registered by sex
      regm|Y|CODE   participants_registered of municipality CODE
      del|Y         services_delivered                    (DELIVERED services)
      pend|Y        referrals_pending                     (REFERRED services, today)
      ent|Y         enterprises_supported                 (enterprises)
      unav|Y        services_unavailable                  (referred types no row offers)
      close|Y       reporting_completeness numerator      (month closes)
    Municipalities are added whole (add_municipality) or in parts (add_more: new persons with
    their own services and enterprises, as a background clerk's import)."""

    def __init__(self, today=None):
        self.n = {}
        self.today = today or gen.nepal_today()
        self.offered = {}   # municipality -> set of service types some latest row offers
        self.referred = {}  # municipality -> {year: set of referred service types}
        self.records = 0

    def _inc(self, k, v=1):
        self.n[k] = self.n.get(k, 0) + v

    def add_more(self, code, persons, services, enterprises):
        for p in persons:
            y = p["_reg"].year
            self._inc("reg|%d|" % y)
            self._inc("reg|%d|%s" % (y, p["sex"]))
            self._inc("regm|%d|%d" % (y, code))
        by_key = {}
        for s in services:
            if s["status"] == "DELIVERED":
                self._inc("del|%d" % s["_day"].year)
                by_key.setdefault((s["person_local_id"], s["service"]), []).append(s["_day"])
        ref = self.referred.setdefault(code, {})
        for s in services:
            if s["status"] == "REFERRED":
                ref.setdefault(s["_day"].year, set()).add(s["service"])
                done = by_key.get((s["person_local_id"], s["service"]), [])
                if gen.referral_pending(s["_day"], done, self.today):
                    self._inc("pend|%d" % s["_day"].year)
        for e in enterprises:
            self._inc("ent|%d" % e["_day"].year)
        self.records += len(persons) + len(services) + len(enterprises)

    def add_availability(self, code, rows):
        """rows of distinct (service, provider): each is its pair's latest row."""
        off = self.offered.setdefault(code, set())
        for a in rows:
            if a["available"] in ("true", "yes", "1"):
                off.add(a["service"])
        self.referred.setdefault(code, {})
        self.records += len(rows)

    def add_closes(self, lo, hi):
        """A municipality that closed BS months lo..hi (indexes): a Gregorian month is complete
        when every BS month overlapping it is closed."""
        if hi < lo:
            return
        y, m = divmod(lo, 12)
        d = gen.bs.bs_month_first(y, m + 1)
        d = datetime.date(d.year, d.month, 1)
        while True:
            nxt = datetime.date(d.year + d.month // 12, d.month % 12 + 1, 1)
            last = nxt - datetime.timedelta(days=1)
            a, b = gen.bs_month_index(d), gen.bs_month_index(last)
            if a > hi:
                break
            if a >= lo and b <= hi:
                self._inc("close|%d" % d.year)
            d = nxt
        self.records += hi - lo + 1

    def figures(self):
        """The national figures, services_unavailable included."""
        out = dict(self.n)
        for code, years in self.referred.items():
            off = self.offered.get(code, set())
            for y, types in years.items():
                k = "unav|%d" % y
                out[k] = out.get(k, 0) + len(types - off)
        return out

    @staticmethod
    def merge(*figs):
        out = {}
        for f in figs:
            for k, v in f.items():
                out[k] = out.get(k, 0) + v
        return out


def years(figs):
    return sorted({int(k.split("|")[1]) for k in figs})
