"""The approval coverage of indicator answers kept in federal-api's memory (federal-api/
fcovcache.h), with two federal-api processes on one PostgreSQL, as stateless processes behind a
load balancer are: process A takes a hub's snapshots, reviews and coverage; process B answers.

B keeps an answer's coverage until a commit touches one of its months, which every writing
statement announces with pg_notify. So B's answer must move, within seconds and without any
request to A, with each commit that changes it: a municipality-month getting data (a snapshot
through A) or losing it (a snapshot without cells), its review state (Reviews through A), the
municipality's calendar (Coverage through A); and repeated answers with no such commit are
served from B's memory (its hits counter), also after a snapshot that only replaces the
month's cells (the ingest announces only months whose data appears or goes).
The expected coverage is the test's own count, as a difference from B's first answer (the
database is shared with the other federal tests)."""
import os
import time
import urllib.parse

import pytest

from fedclient import Federal, snapshot
from harness import ROOT, pb
from pg import postgres  # noqa: F401  (session fixture)
from wireclient import WireClient

PROVINCE = 2
# BS 2072-05 (Bhadra) runs from 2015-08-18 to 2015-09-16: two Gregorian months.
PERIOD, BS_YM = "BS2072-05", 207205
INDICATOR = "participants_registered"


def a_municipality(province):
    """The last local level of the province in the official list (no other test uses it)."""
    with open(os.path.join(ROOT, "data", "nepal_local_levels.csv")) as f:
        next(f)
        codes = [int(line.split(",")[4]) for line in f if int(line.split(",")[0]) == province]
    return codes[-1]


MUN = a_municipality(PROVINCE)


@pytest.fixture(scope="module")
def feds(pki, postgres, tmp_path_factory):  # noqa: F811
    pki.issue("federal")
    work = str(tmp_path_factory.mktemp("covcache"))
    a = Federal(work, pki, postgres, name="federal-a").start()
    b = Federal(work, pki, postgres, name="federal-b").start()
    token = a.token("ministry", "covcache-ministry")
    yield a, b, token
    b.stop()
    a.stop()


class Hub:
    """Province PROVINCE's uplink to A, protocol 2."""

    def __init__(self, fed, pki):
        self.c = WireClient(fed.sync_port, pki, "province-%d" % PROVINCE)
        self.c.hello(os.urandom(16), last_seq=100)
        self.seq = 0

    def expect(self, kind):
        for _ in range(50):
            env = self.c.recv()
            got = env.WhichOneof("msg")
            if got == kind:
                return env
            assert got != "error", env
        raise AssertionError("no %s" % kind)

    def snapshot(self, snap):
        self.seq += 1
        env = pb.Envelope()
        env.rollup_batch.first_seq = env.rollup_batch.last_seq = self.seq
        env.rollup_batch.snapshots.append(snap)
        env.rollup_batch.seqs.append(self.seq)
        self.c.send(env)
        assert self.expect("ack").ack.acked_seq == self.seq

    def review(self, state, clock):
        env = pb.Envelope()
        r = env.reviews.reviews.add()
        r.municipality, r.calendar, r.month = MUN, pb.CALENDAR_BS, BS_YM
        r.state, r.clock, r.version = state, clock, 1
        self.c.send(env)
        assert self.expect("review_ack").review_ack.through == clock

    def calendar(self, calendar):
        env = pb.Envelope()
        m = env.coverage.municipalities.add()
        m.municipality, m.records, m.calendar = MUN, 1, calendar
        m.last_sync_ms = int(time.time() * 1000)
        self.c.send(env)


def coverage(fed, token):
    status, body, _ = fed.get("/v1/indicators/%s?%s" % (
        INDICATOR, urllib.parse.urlencode({"period": PERIOD})), token)
    assert status == 200, body
    return body["approval"]


def hits(fed):
    return fed.metrics()["federal_coverage_cache_hits_total"]


def moves_to(fed, token, want, what):
    """B's coverage becomes want (a notification takes milliseconds; 10 s is generous): with
    no notification it never would, as nothing else outdates a kept coverage."""
    end = time.time() + 10
    got = None
    while time.time() < end:
        got = coverage(fed, token)
        if all(got[k] == v for k, v in want.items()):
            return got
        time.sleep(0.05)
    raise AssertionError("%s: B answers %s, want %s" % (what, got, want))


def test_kept_coverage_follows_every_commit_made_through_another_process(feds, pki):
    a, b, token = feds
    cov0 = coverage(b, token)
    # Served from memory while nothing changes: each repeat is a hit.
    h = hits(b)
    for _ in range(3):
        assert coverage(b, token) == cov0
    assert hits(b) == h + 3

    hub = Hub(a, pki)
    # 1. The municipality's month gets data (a snapshot stored by A).
    cells = {(INDICATOR, "", ()): (1, 0, 7, 1)}
    m = b.metrics()
    n0, listening = m["federal_coverage_notifications_total"], m["federal_coverage_listening"]
    assert listening >= 1
    hub.snapshot(snapshot(MUN, PERIOD, 1, cells))
    want = dict(cov0, contributing=cov0["contributing"] + 1)
    moves_to(b, token, want, "after a snapshot of a new municipality-month through A")
    # Each of B's listening connections hears the commit: an answer kept before the last of
    # them is heard is outdated by it, rightly (it could not know). Once all are heard, the
    # answer kept next is served from memory.
    end = time.time() + 10
    while b.metrics()["federal_coverage_notifications_total"] < n0 + listening:
        assert time.time() < end, "B's connections did not all hear the snapshot's commit"
        time.sleep(0.05)
    coverage(b, token)
    h = hits(b)
    assert coverage(b, token) == want and hits(b) == h + 1

    # 1b. A newer snapshot of that month that still has cells changes no coverage, and the
    # ingest announces nothing (migration 13): B keeps serving it from memory. A notification
    # reaches B within milliseconds of the commit; a second is generous.
    n0 = b.metrics()["federal_coverage_notifications_total"]
    hub.snapshot(snapshot(MUN, PERIOD, 2, {(INDICATOR, "", ()): (2, 0, 9, 2)}))
    time.sleep(1.0)
    h = hits(b)
    assert coverage(b, token) == want and hits(b) == h + 1, "a replacement outdated B's coverage"
    assert b.metrics()["federal_coverage_notifications_total"] == n0

    # 1c. A snapshot without cells: the month's data goes, and so does its contribution.
    hub.snapshot(snapshot(MUN, PERIOD, 3, {}))
    moves_to(b, token, cov0, "after the month's data went (a snapshot without cells)")
    # 1d. And comes back.
    hub.snapshot(snapshot(MUN, PERIOD, 4, cells))
    moves_to(b, token, want, "after the month's data came back")

    # 2. Its clerk closes it (a review change stored by A).
    hub.review(pb.MONTH_STATE_CLOSED, (int(time.time() * 1000) << 16) | 1)
    want = dict(want, closed=cov0["closed"] + 1)
    moves_to(b, token, want, "after a review change through A")

    # 3. The municipality now closes months in the Gregorian calendar (Coverage through A):
    # its months of the period are 2015-08 and 2015-09, which hold no data and no review.
    hub.calendar(pb.CALENDAR_AD)
    want = dict(cov0, municipality_months=cov0["municipality_months"] + 1)
    moves_to(b, token, want, "after a calendar change through A")
    hub.c.close()


def histogram(m, name):
    """(cumulative bucket counts in bound order, count) of Prometheus histogram name."""
    pre = name + '_bucket{le="'
    buckets = sorted((float(k[len(pre):-2]), v) for k, v in m.items() if k.startswith(pre))
    return [v for _, v in buckets], m[name + "_count"]


def test_metrics_time_each_answer_and_the_loop_turns(feds):
    """/metrics shows how long B took over each HTTPS answer and how long its loop's turns
    ran callbacks, as Prometheus histograms (bench/national.py reads them to tell server
    time from the client's): each answer counted once, buckets cumulative up to +Inf."""
    _, b, token = feds
    m0 = b.metrics()
    for _ in range(5):
        coverage(b, token)
    m1 = b.metrics()
    for name in ("federal_https_server_answer_seconds", "federal_loop_busy_seconds",
                 "federal_loop_cpu_seconds"):
        buckets, count = histogram(m1, name)
        assert len(buckets) == 17 and buckets == sorted(buckets) and buckets[-1] == count, name
    assert (m1["federal_https_server_answer_seconds_count"]
            - m0["federal_https_server_answer_seconds_count"]) == 5
    # Each within a second (a start time lost would put them above every bound).
    le1 = 'federal_https_server_answer_seconds_bucket{le="1"}'
    assert m1[le1] - m0[le1] == 5
    assert m1["federal_https_server_answer_seconds_sum"] > \
        m0["federal_https_server_answer_seconds_sum"]
    # Each answer took at least one turn of the loop.
    assert m1["federal_loop_busy_seconds_count"] - m0["federal_loop_busy_seconds_count"] >= 5
    # The plain HTTP server's /metrics answers are counted in its own histogram, not here.
    assert m1["federal_plain_http_server_answer_seconds_count"] >= 1
