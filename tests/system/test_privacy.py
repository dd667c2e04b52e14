"""Personal data stays on the node (issue 3, item 2; issue 12: no exact dates upstream).

Two nodes (one in Bikram Sambat, one in the Gregorian calendar) import the same people with
distinctive personal values, plus their services and enterprises, and sync to a hub that
logs at debug level and rolls them up to a federal tier. Each link runs through a wiretap
(tlstap.py) that terminates its mutual TLS with the test PKI's keys, so that every message
that crosses node -> hub and hub -> federal is captured; the stores are read after the hub
stops. Then:

  1. Every upstream message, and every row the hub stores (record bodies, the rollup
     engine's tables and its snapshots' cells, every other table), is decoded with the
     schema (python3-protobuf; SQLite for the rows) and walked field by field. It fails on
       - any unknown field (bytes the schema does not define are never sent or stored);
       - a field or column that holds a day (its name says "day") other than those exempt
         by name: Availability.as_of_day, MonthClose.closed_day and the hub's rows of them
         (neither concerns a person), the directives' days, the node's enrolment day and the
         as-of day of the rollups;
       - any integer, anywhere else, that lies among the days of the people's events
         (registrations, services, enterprises, from a month before the first to a month
         after the last), or equals one of them written YYYYMMDD; the version clock, ids
         (bytes), cell keys and digests (hashes) are exempt by name;
       - any personal value in a string or bytes field.
     The events that did cross carry the month pairs the generator predicts.
  2. As a second check, every personal value (names, phones, citizenship numbers,
     local_ids, addresses, exact dates in both calendars) is searched for, as raw UTF-8
     bytes, in every file under the hub's directory (database, WAL, shm, config, log).
The nodes' own exports must contain them all, or the search would prove nothing."""
import collections
import csv
import datetime
import io
import os
import re
import sqlite3

from google.protobuf import unknown_fields

import bs
import nodegen
from fedclient import Federal
from gen import PERSON_COLS, SERVICE_COLS
from harness import Hub, Node, pb, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import FreshDatabase
from tlstap import TlsTap

# The apostrophe an export puts before text a spreadsheet would run as a formula (common/csv.c,
# csv_formula_guarded: after spaces and characters that show nothing, here the usual ones),
# which a spreadsheet does not show.
GUARDED = r"^'(?='*[ \u00a0\u3000\u200b-\u200d\u2060\ufeff]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20])"

# Distinctive values: none of them can appear in the hub's files by chance.
PEOPLE = [
    # full_name, phone, citizenship_no, ward, address, days before today (registered, returned)
    ("Zorawarini Qatuphelma", "9841572093", "27-01-75-91357", "17", "Kwezaltole Marg 88",
     (412, 530)),
    ("Bhuwanikanta Yxmoradi", "+977 9812 660 417", "05-03-71-40281", "9", "Thrampaligali 41, Jyphnagar",
     (233, 377)),
    ("सीतारामिनी ज्ञवालीश्वर", "9760-335-918", "NP/CZ/88-22-4419", "31", "गोठाटार झ्याउँखोला ६",
     (95, None)),
    ("O'Quilvanna Dumbretsky-Rai", "(061) 4477-1183", "12-02-69-77712", "44", "Plexidhara Chowk, \"Ward\" 44",
     (61, 190)),
]
TODAY = datetime.date.today()


def people_rows(calendar, prefix):
    """Persons, services and enterprises rows in the given calendar, the personal values they
    hold (strings to search for) and the Gregorian dates of their events."""
    persons, services, enterprises, values, events = [], [], [], set(), {}
    for i, (name, phone, cit, ward, addr, (reg_ago, ret_ago)) in enumerate(PEOPLE):
        reg = TODAY - datetime.timedelta(days=reg_ago)
        ret = TODAY - datetime.timedelta(days=ret_ago) if ret_ago else None
        lid = "%s-PRIVLID-%d-QX%04d" % (prefix, i, 7919 * (i + 3))
        persons.append({
            "local_id": lid, "category": "RETURNEE" if ret else "VULNERABLE",
            "sex": ["FEMALE", "MALE", "FEMALE", "OTHER"][i],
            "birth_year": str((bs.ad_to_bs(reg)[0] if calendar == "BS" else reg.year) - 20 - 7 * i),
            "caste_group": "JANAJATI", "disability": "no",
            "registered_on": nodegen.date_str(reg, calendar),
            "destination_country": "QA" if ret else "",
            "years_abroad": "4" if ret else "",
            "return_date": nodegen.date_str(ret, calendar) if ret else "",
            "remigration_intention": "UNDECIDED" if ret else "",
            "family_member_abroad": "yes", "consent": "yes", "full_name": name, "phone": phone,
            "citizenship_no": cit, "ward": ward, "address": addr})
        values |= {lid, name, phone, cit, addr}
        events[("person", lid)] = reg
        for d in (reg, ret):
            if d:
                values |= {bs.bs_str(d), d.isoformat(), d.strftime("%Y%m%d")}
        sday = reg + datetime.timedelta(days=min(20, reg_ago - 30))
        slid = "%s-PRIVSVC-%d-ZK%03d" % (prefix, i, 613 * (i + 1) % 1000)
        services.append({"local_id": slid, "person_local_id": lid, "service": "SEED_FUNDING",
                         "status": "DELIVERED", "date": nodegen.date_str(sday, calendar),
                         "provider": "NGO", "programme": "M4SD", "amount_npr": "45000"})
        values |= {slid, bs.bs_str(sday), sday.isoformat(), sday.strftime("%Y%m%d")}
        events[("service", slid)] = sday
        elid = "%s-PRIVENT-%d-WV%03d" % (prefix, i, 311 * (i + 2) % 1000)
        eday = sday + datetime.timedelta(days=5)
        enterprises.append({"local_id": elid, "owner_local_id": lid, "action": "STARTED",
                            "sector": "HANDICRAFT", "date": nodegen.date_str(eday, calendar),
                            "registered": "yes", "employees": "2", "status": "ACTIVE"})
        values |= {elid, bs.bs_str(eday), eday.isoformat(), eday.strftime("%Y%m%d")}
        events[("enterprise", elid)] = eday
    # A date that is today's would match the log's timestamps, and is not exact data of ours.
    assert not any(TODAY.isoformat() in v or bs.bs_str(TODAY) in v for v in values)
    return persons, services, enterprises, values, events


def hub_files(hub):
    out = []
    for root, _, files in os.walk(hub.dir):
        for f in files:
            out.append(os.path.join(root, f))
    return out


def strings_of(msg):
    """Every string and bytes value in a protobuf message, recursively."""
    for field, value in msg.ListFields():
        items = value if field.label == field.LABEL_REPEATED else [value]
        for v in items:
            if field.type == field.TYPE_MESSAGE:
                yield from strings_of(v)
            elif isinstance(v, str):
                yield v.encode()
            elif isinstance(v, bytes):
                yield v


# Fields that may hold a day or a day-like number, by full name (issue 12): the as-of day of
# an availability row and the close day of a month (neither concerns a person), the
# directives' days, the version clock (ms << 16) and hashes (cell keys).
EXEMPT_FIELDS = {
    "reint.v1.Availability.as_of_day", "reint.v1.MonthClose.closed_day",
    "reint.v1.Directive.effective_from_day", "reint.v1.Directive.expires_at_day",
    "reint.v1.Eligibility.registered_after_day",
    "reint.v1.Record.version", "reint.v1.RollupCell.cell_key",
}
# The same for the hub's columns, by table.column: the rows of availability and month closes,
# the node's enrolment day, the version clock, the rollup engine's hashes and revisions.
EXEMPT_COLUMNS = {
    "rollup_availability.as_of_day", "rollup_close.closed_day", "rollup_enrolled.first_day",
    "records.version", "nodes.acked_version", "rollup_snapshots.digest",
    "rollup_snapshots.revision", "rollup_outbox.revision", "rollup_person.ckey",
    "rollup_service.ckey", "rollup_service.pkey", "rollup_enterprise.ckey",
}


class Days:
    """What counts as a day of the people's events: any integer from a month before the
    first to a month after the last (days since 1970-01-01), or one of them as YYYYMMDD."""

    def __init__(self, dates):
        nums = [bs.day_number(d) for d in dates]
        self.lo, self.hi = min(nums) - 31, max(nums) + 31
        self.compact = {int(d.strftime("%Y%m%d")) for d in dates}

    def hit(self, v):
        return isinstance(v, int) and not isinstance(v, bool) and \
            (self.lo <= v <= self.hi or v in self.compact)


def check_message(msg, where, days, values, found):
    """Walks msg (recursively) and files into found every unknown field, every field named
    for a day that is not exempt, every day-like integer outside the exempt fields and every
    personal value."""
    ufs = list(unknown_fields.UnknownFieldSet(msg))
    if ufs:
        found.append("%s: %s carries unknown field(s) %s" % (
            where, msg.DESCRIPTOR.full_name, sorted({u.field_number for u in ufs})))
    for fd in msg.DESCRIPTOR.fields:
        if "day" in fd.name and fd.full_name not in EXEMPT_FIELDS:
            found.append("%s: the schema has a day field %s" % (where, fd.full_name))
    for fd, value in msg.ListFields():
        items = value if fd.label == fd.LABEL_REPEATED else [value]
        for v in items:
            if fd.type == fd.TYPE_MESSAGE:
                check_message(v, where, days, values, found)
            elif fd.full_name in EXEMPT_FIELDS:
                continue
            elif isinstance(v, (str, bytes)):
                b = v.encode() if isinstance(v, str) else v
                found.extend("%s: %s in %s" % (where, x, fd.full_name) for x in values
                             if x.encode() in b)
            elif days.hit(v):
                found.append("%s: %s = %d is a day of the events" % (where, fd.full_name, v))


# Which message a stored blob holds, by table.column.
BLOBS = {"records.body": pb.Record, "rollup_blobs.cells": pb.RollupSnapshot,
         "directives.body": pb.Directive}


def check_store(path, days, values, found):
    """Every row of every table of the hub's store: blobs decoded with the schema, columns
    named for a day, day-like integers, personal values."""
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        tables = [t for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'"
                                          " AND sql NOT LIKE 'CREATE VIRTUAL%'")]
        assert "records" in tables and "rollup_person" in tables and "rollup_blobs" in tables
        rows = 0
        for t in tables:
            cols = [r[1] for r in c.execute("PRAGMA table_info(%s)" % t)]
            for col in cols:
                if "day" in col and "%s.%s" % (t, col) not in EXEMPT_COLUMNS:
                    found.append("hub.db: column %s.%s holds days" % (t, col))
            for row in c.execute("SELECT * FROM %s" % t):
                rows += 1
                for col, v in zip(cols, row):
                    name = "%s.%s" % (t, col)
                    where = "hub.db %s" % name
                    if name in EXEMPT_COLUMNS:
                        continue
                    if name in BLOBS:
                        m = BLOBS[name]()
                        m.ParseFromString(bytes(v))
                        check_message(m, where, days, values, found)
                    elif isinstance(v, (bytes, str)):
                        b = v.encode() if isinstance(v, str) else bytes(v)
                        found.extend("%s: %s" % (where, x) for x in values if x.encode() in b)
                    elif days.hit(v):
                        found.append("%s = %d is a day of the events" % (where, v))
        assert rows > 0
    finally:
        c.close()


def test_no_personal_value_or_day_crosses_or_is_stored_upstream(pki, workdir, procs,
                                                                 postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
    procs.append(fed)
    uplink = TlsTap(pki, "federal", "province-1", ("127.0.0.1", fed.sync_port)).start()
    hub = Hub(workdir, pki, 1)
    with open(hub.config) as f:
        text = f.read()
    with open(hub.config, "w") as f:
        f.write(text.replace("[hub]\n", "[hub]\nlog_level = debug\n", 1))
    hub.configure("[uplink]\nfederal = 127.0.0.1:%d\n" % uplink.port)
    hub.start()
    procs.append(hub)
    all_values, events, taps = set(), {}, []
    exports = {}
    for code, calendar in ((10703, "BS"), (10401, "AD")):
        tap = TlsTap(pki, "province-1", "municipality-%d" % code,
                     ("127.0.0.1", hub.sync_port)).start()
        taps.append(tap)
        node = Node(workdir, pki, code, tap, calendar=calendar)
        persons, services, enterprises, values, ev = people_rows(calendar, "M%d" % code)
        all_values |= values
        events.update({(code,) + k: d for k, d in ev.items()})
        for kind, cols, rows in (("persons", PERSON_COLS, persons),
                                 ("services", SERVICE_COLS, services),
                                 ("enterprises", nodegen.ENTERPRISE_COLS, enterprises)):
            path = os.path.join(workdir, "%s-%d.csv" % (kind, code))
            nodegen.write_rows(path, cols, rows)
            r = node.import_csv(kind, path)
            assert "%d new" % len(rows) in r.stdout, r.stdout + r.stderr
        node.sync(timeout=60)
        assert node.status()["backlog"] == 0
        exports[calendar] = set()
        for k in ("persons", "services", "enterprises"):
            text = node.cli("export", "--kind", k).stdout.lstrip("\ufeff")
            for row in csv.reader(io.StringIO(text, newline="")):
                # Without the apostrophe before text a spreadsheet would run ("+977 ...").
                exports[calendar] |= {re.sub(GUARDED, "", c) for c in row}
        # The hub holds every record: the search below is over real data.
        assert len(hub.records(code)) == len(persons) + len(services) + len(enterprises)
        ids = {v: k for k, v in node.ids().items()}
        tap.ids = ids

    def uplink_done():
        m = hub.metrics()
        sent = sum(1 for f in uplink.frames("up") if pb.Envelope.FromString(f).HasField(
            "rollup_batch"))
        return (m["hub_uplink_connected"] == 1 and m["hub_rollup_queue"] == 0
                and m["hub_rollup_dirty"] == 0 and m["hub_uplink_backlog"] == 0 and sent > 0)
    try:
        wait_for(uplink_done, 60, "the hub's rollups to reach the federal tier")
    except AssertionError:
        raise AssertionError("hub metrics: %r\nuplink tap: %d sessions, %d frames up" % (
            {k: v for k, v in hub.metrics().items() if "uplink" in k or "rollup" in k},
            uplink.sessions, len(uplink.frames("up"))))

    # Not vacuous: the nodes themselves hold and export every value (the BS node its dates
    # in Bikram Sambat, the AD node in ISO form; compact dates are only a search form).
    for v in all_values:
        if v.isdigit() and len(v) == 8:
            continue
        assert v in exports["BS"] or v in exports["AD"], v

    hub.stop()  # flush and close everything the hub writes
    days = Days(events.values())
    found = []

    # 1. Every upstream message, decoded: node -> hub through each node's tap, hub -> federal
    # through the uplink's.
    seen = {"batch": 0, "rollup_batch": 0}
    pairs = {}
    for tap in taps + [uplink]:
        assert tap.sessions >= 1
        for i, frame in enumerate(tap.frames("up")):
            env = pb.Envelope()
            env.ParseFromString(frame)
            kind = env.WhichOneof("msg")
            seen[kind] = seen.get(kind, 0) + 1
            check_message(env, "upstream %s #%d" % (kind, i), days, all_values, found)
            if kind == "batch":
                for r in env.batch.records:
                    body = r.WhichOneof("body")
                    if body in ("person", "service", "enterprise"):
                        pairs[tap.ids[r.id]] = getattr(r, body)
    assert seen["batch"] >= 2 and seen["rollup_batch"] >= 1, seen

    # 1'. Every stored row of the hub, decoded.
    check_store(hub.db, days, all_values, found)
    # The search sees what the hub does store: the coarse destination country of returnees.
    records = hub.records()
    assert any(b"QA" == s for r in records.values() for s in strings_of(r[4]))

    # 2. Every personal value as raw bytes in every file of the hub.
    files = hub_files(hub)
    assert any(f.endswith("hub.db") for f in files) and any(f.endswith("hub.log") for f in files)
    log = open(os.path.join(hub.dir, "hub.log"), "rb").read()
    # The hub logged the sessions of both nodes (at debug level it logs all it can).
    assert b"10703" in log and b"10401" in log, log.decode(errors="replace")
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        for v in all_values:
            if v.encode() in data:
                found.append("%s in %s" % (v, path))
    for t in taps + [uplink]:
        t.close()
    kinds = collections.Counter(re.sub(r"#\d+|= -?\d+", "", x) for x in found)
    assert not found, "\n".join(found[:20]) + "\n... %d in all, by kind:\n" % len(found) + \
        "\n".join("%5d  %s" % (n, k) for k, n in kinds.most_common())

    # The events that crossed carry the generator's pairs (bs.py), and nothing finer.
    want = {key: bs.pair(d) for key, d in events.items()}
    got = {}
    for (kind, lid), body in pairs.items():
        name = {1: "person", 2: "service", 3: "enterprise"}[kind]
        code = 10703 if lid.startswith("M10703") else 10401
        if name == "person":
            got[(code, name, lid)] = (body.registered_month, body.registered_bs_month)
        else:
            got[(code, name, lid)] = (body.month, body.bs_month)
    assert got == want
