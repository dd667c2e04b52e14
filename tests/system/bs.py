"""Bikram Sambat <-> Gregorian, written independently of the C code from
data/bikram_sambat.csv, so that tests compare the product against the table itself."""
import csv
import datetime
import os

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_YEARS = {}
with open(os.path.join(_ROOT, "data", "bikram_sambat.csv"), newline="") as f:
    for row in csv.DictReader(f):
        _YEARS[int(row["bs_year"])] = (
            [int(row["m%d" % i]) for i in range(1, 13)],
            datetime.date.fromisoformat(row["ad_start"]),
        )

EPOCH = datetime.date(1970, 1, 1)


def ad_to_bs(d):
    """datetime.date -> (y, m, d) in BS."""
    for y in sorted(_YEARS, reverse=True):
        months, start = _YEARS[y]
        if d >= start:
            off = (d - start).days
            for m, n in enumerate(months, 1):
                if off < n:
                    return y, m, off + 1
                off -= n
    raise ValueError("date outside the BS table: %s" % d)


def bs_to_ad(y, m, d):
    months, start = _YEARS[y]
    return start + datetime.timedelta(days=sum(months[: m - 1]) + d - 1)


def bs_str(d):
    y, m, dd = ad_to_bs(d)
    return "%04d-%02d-%02d" % (y, m, dd)


def day_number(d):
    """Gregorian days since 1970-01-01, as on the wire."""
    return (d - EPOCH).days


def pair(d):
    """The month pair an event of Gregorian date d travels upstream as (protocol version 2):
    (Gregorian YYYYMM, BS YYYYMM)."""
    y, m, _ = ad_to_bs(d)
    return d.year * 100 + d.month, y * 100 + m


def bs_month_first(y, m):
    """Gregorian first day of BS month (y, m); m may run past 12 or below 1."""
    while m > 12:
        m -= 12
        y += 1
    while m < 1:
        m += 12
        y -= 1
    return bs_to_ad(y, m, 1)


def periods(d):
    """The six periods holding Gregorian date d (year, quarter, month; BS month, fiscal
    trimester, fiscal year), as the product writes them."""
    y, m, _ = ad_to_bs(d)
    fy = y if m >= 4 else y - 1
    tri = 1 if 4 <= m <= 7 else 2 if 8 <= m <= 11 else 3
    return ["%04d" % d.year, "%04d-Q%d" % (d.year, (d.month - 1) // 3 + 1),
            "%04d-%02d" % (d.year, d.month), "BS%04d-%02d" % (y, m),
            "FY%04d/%02d-T%d" % (fy, (fy + 1) % 100, tri), "FY%04d/%02d" % (fy, (fy + 1) % 100)]
