"""Personal data stays on the node (issue 3, item 2).

Two nodes (one in Bikram Sambat, one in the Gregorian calendar) import the same people with
distinctive personal values, plus their services and enterprises, and sync to a hub that
logs at debug level. Then every personal value (names, phones, citizenship numbers,
local_ids, addresses, exact dates in both calendars) is searched for, as raw UTF-8 bytes, in
every file under the hub's directory (database, WAL, shm, config, log), and in every string
and bytes field of every record body the hub stored, parsed with python3-protobuf. None may
be found. The nodes' own exports must contain them all, or the search would prove nothing."""
import csv
import datetime
import io
import os

import bs
import nodegen
from gen import PERSON_COLS, SERVICE_COLS
from harness import Hub, Node

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
    """Persons, services and enterprises rows in the given calendar, and the personal values
    they hold (strings to search for)."""
    persons, services, enterprises, values = [], [], [], set()
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
        for d in (reg, ret):
            if d:
                values |= {bs.bs_str(d), d.isoformat(), d.strftime("%Y%m%d")}
        sday = reg + datetime.timedelta(days=min(20, reg_ago - 30))
        slid = "%s-PRIVSVC-%d-ZK%03d" % (prefix, i, 613 * (i + 1) % 1000)
        services.append({"local_id": slid, "person_local_id": lid, "service": "SEED_FUNDING",
                         "status": "DELIVERED", "date": nodegen.date_str(sday, calendar),
                         "provider": "NGO", "programme": "M4SD", "amount_npr": "45000"})
        values |= {slid, bs.bs_str(sday), sday.isoformat(), sday.strftime("%Y%m%d")}
        elid = "%s-PRIVENT-%d-WV%03d" % (prefix, i, 311 * (i + 2) % 1000)
        eday = sday + datetime.timedelta(days=5)
        enterprises.append({"local_id": elid, "owner_local_id": lid, "action": "STARTED",
                            "sector": "HANDICRAFT", "date": nodegen.date_str(eday, calendar),
                            "registered": "yes", "employees": "2", "status": "ACTIVE"})
        values |= {elid, bs.bs_str(eday), eday.isoformat(), eday.strftime("%Y%m%d")}
    # A date that is today's would match the log's timestamps, and is not exact data of ours.
    assert not any(TODAY.isoformat() in v or bs.bs_str(TODAY) in v for v in values)
    return persons, services, enterprises, values


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


def test_no_personal_value_reaches_the_hub(pki, workdir, procs):
    hub = Hub(workdir, pki, 1)
    with open(hub.config) as f:
        text = f.read()
    with open(hub.config, "w") as f:
        f.write(text.replace("[hub]\n", "[hub]\nlog_level = debug\n", 1))
    hub.start()
    procs.append(hub)
    all_values = set()
    exports = {}
    for code, calendar in ((10703, "BS"), (10401, "AD")):
        node = Node(workdir, pki, code, hub, calendar=calendar)
        persons, services, enterprises, values = people_rows(calendar, "M%d" % code)
        all_values |= values
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
                exports[calendar] |= set(row)
        # The hub holds every record: the search below is over real data.
        assert len(hub.records(code)) == len(persons) + len(services) + len(enterprises)

    # Not vacuous: the nodes themselves hold and export every value (the BS node its dates
    # in Bikram Sambat, the AD node in ISO form; compact dates are only a search form).
    for v in all_values:
        if v.isdigit() and len(v) == 8:
            continue
        assert v in exports["BS"] or v in exports["AD"], v

    hub.stop()  # flush and close everything the hub writes
    found = []
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
    # The search sees what the hub does store: the coarse destination country of returnees.
    records = hub.records()
    assert any(b"QA" == s for r in records.values() for s in strings_of(r[4]))
    for rid, (mun, kind, ver, deleted, rec) in records.items():
        for s in strings_of(rec):
            for v in all_values:
                if v.encode() in s:
                    found.append("%s in a field of record %s" % (v, rid.hex()))
    assert not found, "\n".join(found)
