"""Calendar-correct reporting completeness and timeliness on real processes: a node that
closes its months in Bikram Sambat (10703) and one that closes them in the Gregorian calendar
(10401), in one province. Each is due in its own calendar, announced in its Hello. A month of
the other calendar counts as complete when every own-calendar month overlapping it is closed;
longer periods count their unit months.

Every process runs on one test clock (--enable-test-hooks --test-clock FILE), so that the
closes happen on chosen days and "today" is fixed: the expectations below are worked out by
hand from the BS table (BS 2082-12 Chaitra is 2026-03-15..04-13, 2083-01 Baisakh
2026-04-14..05-14, 2083-02 Jestha 2026-05-15..06-14), never read from the product."""
import calendar
import datetime
import os
import time

from harness import BIN, Hub, Node, run, wait_for
from test_gaps import Officer

BS_NODE, AD_NODE = 10703, 10401


def _set(clock, day):
    """Moves every process's clock to noon UTC of day."""
    target = calendar.timegm(datetime.datetime(day.year, day.month, day.day, 12).timetuple())
    with open(clock, "w") as f:
        f.write("%d\n" % (target - int(time.time())))
    time.sleep(0.2)  # each process re-reads the file within 50 ms


def _close(node, month):
    out = node.cli("close-month", month).stdout
    assert "closed" in out, out
    node.sync()


def test_ad_and_bs_nodes_are_due_in_their_own_calendars(pki, workdir, procs):
    clock = os.path.join(workdir, "clock")
    D = datetime.date
    _set(clock, D(2026, 1, 5))
    hub = Hub(workdir, pki, 1)
    officer = Officer(hub, pki, run([os.path.join(BIN, "provincial-hub"), "--config",
                                     hub.config, "token", "officer"]).stdout.strip())
    procs.append(hub.start("--enable-test-hooks", "--test-clock", clock))
    hooks = ["--enable-test-hooks", "--test-clock", clock]
    bsn = Node(workdir, pki, BS_NODE, hub, calendar="BS")
    adn = Node(workdir, pki, AD_NODE, hub, calendar="AD")
    for n in (bsn, adn):
        n.hooks = hooks
        n.sync()  # first seen on 2026-01-05
    _set(clock, D(2026, 4, 3))
    _close(adn, "2026-03")          # 3 days after its end: on time
    _set(clock, D(2026, 4, 16))
    _close(bsn, "2082-12")          # Chaitra ended 04-13: on time
    _set(clock, D(2026, 5, 3))
    _close(adn, "2026-04")          # on time
    _set(clock, D(2026, 5, 17))
    _close(bsn, "2083-01")          # Baisakh ended 05-14: on time
    _set(clock, D(2026, 6, 20))
    _close(adn, "2026-05")          # 20 days after its end: late
    _set(clock, D(2026, 6, 25))     # today
    for n in (bsn, adn):
        n.sync()

    rows = officer.rows(period="FY2082/83")
    assert rows[BS_NODE]["calendar"] == "BS" and rows[AD_NODE]["calendar"] == "AD"

    # (completeness, timeliness) as (numerator, denominator); None: not due, no cell.
    want = {
        (BS_NODE, "BS2082-12"): ((1, 1), (1, 1)),
        (BS_NODE, "BS2083-01"): ((1, 1), (1, 1)),
        (BS_NODE, "BS2083-02"): ((0, 1), (0, 1)),   # due, not closed
        (BS_NODE, "2026-04"): ((1, 1), (1, 1)),     # Chaitra and Baisakh, both on time
        (BS_NODE, "2026-05"): ((0, 1), (0, 1)),     # Jestha is not closed
        (BS_NODE, "2026-06"): None,                 # Asar has not ended
        (BS_NODE, "FY2082/83-T3"): ((2, 3), (2, 3)),  # Chaitra..Jestha due; Asar not
        (BS_NODE, "2026-Q2"): ((1, 2), (1, 2)),     # April yes, May no; June not due
        (AD_NODE, "2026-03"): ((1, 1), (1, 1)),
        (AD_NODE, "2026-04"): ((1, 1), (1, 1)),
        (AD_NODE, "2026-05"): ((1, 1), (0, 1)),     # closed late
        (AD_NODE, "BS2082-12"): ((1, 1), (1, 1)),   # March and April, on time
        (AD_NODE, "BS2083-01"): ((1, 1), (0, 1)),   # April on time, May late
        (AD_NODE, "BS2083-02"): None,               # June has not ended
        (AD_NODE, "FY2082/83-T3"): ((2, 2), (1, 2)),  # Chaitra, Baisakh; Jestha not due
        (AD_NODE, "2026-Q2"): ((2, 2), (1, 2)),     # April on time, May late; June not due
    }

    def cell(code, period, mun):
        cells = officer.indicator(code, period=period, municipality=str(mun))["cells"]
        assert len(cells) <= 1, cells
        return (cells[0]["value"], cells[0]["denominator"]) if cells else None

    def got():
        out = {}
        for (mun, period) in want:
            c = cell("reporting_completeness", period, mun)
            t = cell("reporting_timeliness", period, mun)
            out[(mun, period)] = None if c is None and t is None else (c, t)
        return out

    last = {}

    def settled():
        nonlocal last
        last = got()
        return last == want
    try:
        wait_for(settled, 60, "the hub's completeness to follow each node's calendar")
    except AssertionError:
        diff = {k: (last.get(k), v) for k, v in want.items() if last.get(k) != v}
        raise AssertionError("got, want: %r" % diff)
