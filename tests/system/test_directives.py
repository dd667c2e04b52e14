"""National directives at the federal tier on a real PostgreSQL: an admin publishes with
POST /v1/directives (other roles are refused, bad bodies get 422 naming the field), every
role lists them with GET, and a python3-protobuf client acting as hub 1 receives each one
in its HelloReply until it acknowledges it, gets later ones pushed on its open session, and
checks the Ed25519 signature itself over the exact body bytes."""
import datetime
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from fedclient import Federal
from gen import utc_evening_clock
from harness import ROOT, Hub, ini_set, pb, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from wireclient import WireClient, reply_size

KEY_ID = "fed-test-1"
DAY = datetime.timedelta(days=1)


class DirectiveFederal(Federal):
    """federal-api with a [directives] section (or none when key_id is None)."""

    def __init__(self, workdir, pki, pg, key_id=KEY_ID, name="federal-dir"):
        super().__init__(workdir, pki, pg, name=name)
        if key_id:
            ini_set(self.config, "[directives]\nkey_id = %s\nprivate_key = %s\n"
                    % (key_id, pki.path("directive-%s.key" % key_id)))


@pytest.fixture(scope="module")
def fed(pki, postgres, tmp_path_factory):  # noqa: F811
    pki.issue("federal")
    run([os.path.join(ROOT, "deploy", "pki.sh"), "directive-key", pki.dir, KEY_ID])
    f = DirectiveFederal(str(tmp_path_factory.mktemp("fdir")), pki, postgres).start()
    f.tokens = {role: f.token(role, "dir-%s-test" % role)
                for role in ("ministry", "public", "admin")}
    yield f
    f.stop()


def hub_with_key(fed, pki, workdir):
    """A running hub 2 linked to fed, with the directive key to verify what it signs."""
    hub = Hub(workdir, pki, 2)
    ini_set(hub.config, "[uplink]\nfederal = 127.0.0.1:%d\n[directives]\nkeys = %s=%s\n"
            % (fed.sync_port, KEY_ID, pki.path("directive-%s.pub" % KEY_ID)))
    return hub.start()


def directive_body(title="Returnee women first", **over):
    d = {
        "title": title,
        "text": "Municipalities prioritise returnee women for seed funding this fiscal year.",
        "effective_from": "2026-07-17",
        "expires_at": "2027-07-16",
        "eligibility": {"categories": ["returnee", "MIGRANT_FAMILY"], "min_age": 18,
                        "max_age": 45, "registered_after": "2026-01-01",
                        "priority_rules": ["women first", "disability first"]},
        "targets": [
            {"indicator": "participants_registered", "grouping": "age_band,sex",
             "key": ["25_39", "female"], "scope": "province", "scope_code": 1,
             "period": "FY2083/84", "value": 1200},
            {"indicator": "enterprises_active", "scope": "national", "period": "FY2083/84",
             "share": 0.6},
            {"indicator": "seed_funding_npr", "grouping": "sex", "key": ["FEMALE"],
             "scope": "municipality", "scope_code": 10101, "period": "2026-Q4",
             "value": 5000000},
        ],
    }
    d.update(over)
    return d


def verify_signature(pub, body, sig):
    """Ed25519 over the exact body bytes, checked by the openssl CLI and, when installed, by
    python3-cryptography too; True only when every available check passes."""
    with tempfile.TemporaryDirectory() as d:
        bp, sp = os.path.join(d, "body"), os.path.join(d, "sig")
        with open(bp, "wb") as f:
            f.write(body)
        with open(sp, "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                            "-in", bp, "-sigfile", sp], capture_output=True, text=True)
        ok = r.returncode == 0
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        return ok
    with open(pub, "rb") as f:
        key = load_pem_public_key(f.read())
    try:
        key.verify(sig, body)
        return ok
    except InvalidSignature:
        return False


def hub_session(fed, pki, incarnation):
    c = WireClient(fed.sync_port, pki, "province-1")
    return c, c.hello(incarnation)


def ack(client, serial):
    env = pb.Envelope()
    env.directive_ack.serial = serial
    client.send(env)


def test_publishing_is_for_admins_only(fed):
    for role in ("ministry", "public"):
        st, a = fed.post("/v1/directives", fed.tokens[role], directive_body())
        assert st == 403, a
        assert "admin" in a["error"]
    st, a = fed.post("/v1/directives", None, directive_body())
    assert st == 401
    st, a, _ = fed.get("/v1/directives", None)
    assert st == 401


@pytest.mark.parametrize("change, field", [
    ({"title": None}, "title"),
    ({"title": ""}, "title"),
    # shown raw by `municipal-node directives`: a mark that turns the line around, a C1
    # control, and titles of spaces and invisible characters (an attack found them accepted)
    ({"title": "Turned \u202e around"}, "title"),
    ({"text": "a \u009b2J b"}, "text"),
    ({"title": "\u3000\u200b"}, "title"),
    ({"text": " \u00a0\n"}, "text"),
    ({"text": 5}, "text"),
    ({"effective_from": "2026-13-01"}, "effective_from"),
    ({"effective_from": "16/07/2026"}, "effective_from"),
    ({"expires_at": "2026-01-01"}, "expires_at"),
    ({"colour": "red"}, "colour"),
    ({"eligibility": {"categories": ["ALIEN"]}}, "eligibility.categories[0]"),
    ({"eligibility": {"min_age": 50, "max_age": 20}}, "eligibility.max_age"),
    ({"eligibility": {"min_age": "18"}}, "eligibility.min_age"),
    ({"eligibility": {"registered_after": "yesterday"}}, "eligibility.registered_after"),
    ({"targets": [{"indicator": "happiness", "period": "2026", "value": 1}]},
     "targets[0].indicator"),
    ({"targets": [{"indicator": "participants_registered", "grouping": "sex,sector",
                   "key": ["FEMALE", "RETAIL"], "period": "2026", "value": 1}]},
     "targets[0].grouping"),
    ({"targets": [{"indicator": "participants_registered", "grouping": "sex", "key": [],
                   "period": "2026", "value": 1}]}, "targets[0].key"),
    ({"targets": [{"indicator": "participants_registered", "grouping": "sex",
                   "key": ["FEMAIL"], "period": "2026", "value": 1}]}, "targets[0].key[0]"),
    ({"targets": [{"indicator": "participants_registered", "grouping": "age_band,sex",
                   "key": ["FEMALE", "25_39"], "period": "2026", "value": 1}]},
     "targets[0].key[0]"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026-Q5", "value": 1}]},
     "targets[0].period"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026",
                   "scope": "province", "scope_code": 8, "value": 1}]},
     "targets[0].scope_code"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026",
                   "scope": "municipality", "scope_code": 10199, "value": 1}]},
     "targets[0].scope_code"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026",
                   "scope": "ward", "value": 1}]}, "targets[0].scope"),
    ({"targets": [{"indicator": "enterprises_active", "period": "2026", "value": 3}]},
     "targets[0].value"),
    ({"targets": [{"indicator": "enterprises_active", "period": "2026", "share": 1.5}]},
     "targets[0].share"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026", "value": -1}]},
     "targets[0].value"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026", "value": 1},
                  {"indicator": "participants_registered", "period": "2026", "value": 2}]},
     "targets[1]"),
    ({"targets": [{"indicator": "participants_registered", "period": "2026", "value": 1,
                   "note": "x"}]}, "targets[0].note"),
])
def test_bad_bodies_are_refused_naming_the_field(fed, change, field):
    body = directive_body()
    for k, v in change.items():
        if v is None:
            body.pop(k)
        else:
            body[k] = v
    st, a = fed.post("/v1/directives", fed.tokens["admin"], body)
    assert st == 422, a
    assert field in [e["field"] for e in a["errors"]], a


def test_text_limits_count_characters(fed, pki, postgres, workdir):  # noqa: F811
    """The OpenAPI document's maxLength counts characters, but the title's limit of 200 was
    counted in bytes: a title of 150 Devanagari letters was refused as "must be 1..200 bytes"
    (a helper that attacked the demo found it). A title in Devanagari now gets its 200 letters,
    as do the text and a priority rule, and a real hub verifies and stores what is signed."""
    import sqlite3
    body = directive_body(title="र" * 200, text="ठ" * 8000, targets=[])
    body["eligibility"]["priority_rules"] = ["क" * 500]
    st, a = fed.post("/v1/directives", fed.tokens["admin"], body)
    assert st == 201, a
    serial = a["serial"]
    for field, over in (("title", {"title": "र" * 201}), ("text", {"text": "ठ" * 8001}),
                        ("eligibility.priority_rules[0]",
                         {"eligibility": {"priority_rules": ["क" * 501]}})):
        st, a = fed.post("/v1/directives", fed.tokens["admin"], directive_body(**over))
        assert st == 422, a
        e = [e for e in a["errors"] if e["field"] == field]
        assert e and "characters" in e[0]["reason"], a
    hub = hub_with_key(fed, pki, workdir)
    try:
        def stored():
            with sqlite3.connect(hub.db) as db:
                return serial in [r[0] for r in db.execute("SELECT serial FROM directives")]
        wait_for(stored, 20, "hub 2 verifying and storing the directive")
    finally:
        hub.stop()


def test_the_longest_directive_fits_the_body_limit_and_other_bodies_keep_theirs(fed):
    """The federal API took bodies of at most 64 KiB, below the longest valid directive: a
    text of 8000 emoji, each sent as a JSON \\u-escaped surrogate pair (12 bytes), is 96 KB
    (an attack on the demo found it). POST /v1/directives now takes 256 KiB, room for every
    field at its limit so sent; every other route keeps 64 KiB."""
    body = directive_body(title="\U0001F600" * 200, text="\U0001F600" * 8000, targets=[])
    body["eligibility"]["priority_rules"] = ["\U0001F600" * 500] * 16
    raw = json.dumps(body).encode()  # ASCII: every emoji as \\ud83d\\ude00
    assert len(raw) > 194000, len(raw)
    st, a = fed.post("/v1/directives", fed.tokens["admin"], raw)
    assert st == 201, a
    token = "Authorization: Bearer %s\r\n" % fed.tokens["admin"]
    assert _status_of_head(fed, "/v1/directives", 256 * 1024, token) != 413
    assert _status_of_head(fed, "/v1/directives", 256 * 1024 + 1, token) == 413
    assert _status_of_head(fed, "/v1/directives", 64 * 1024 + 1, "") == 413  # no credential
    for fake in ("Authorization: x\r\n", "Authorization: Bearer fed_%s\r\n" % ("0" * 63),
                 "Cookie: other=1\r\n"):  # not a credential's shape
        assert _status_of_head(fed, "/v1/directives", 64 * 1024 + 1, fake) == 413, fake
    assert _status_of_head(fed, "/v1/session", 64 * 1024 + 1, "") == 413


def _status_of_head(fed, path, length, headers):
    """The status the federal API answers to the head of a POST of length bytes, before the
    body is sent: 413 at once when it is over the route's limit; otherwise the server waits
    for the body, and the connection is closed unanswered (None)."""
    s = fed.ctx.wrap_socket(socket.create_connection(("127.0.0.1", fed.https_port), timeout=10),
                            server_hostname="127.0.0.1")
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "%sContent-Length: %d\r\n\r\n" % (path, headers, length)).encode())
        s.settimeout(2)
        try:
            got = s.recv(4096)
        except (socket.timeout, TimeoutError):
            return None
        return int(got.split(b" ")[1]) if got.startswith(b"HTTP/1.1 ") else got
    finally:
        s.close()


def test_malformed_json_is_a_bad_request(fed):
    for raw in (b"{\"title\": ", b"[1, 2]", b"", b"{\"title\":\"a\",\"title\":\"b\"}"):
        st, a = fed.post("/v1/directives", fed.tokens["admin"], raw)
        assert st == 400, (raw, a)
        assert a["error"]


def test_publish_list_deliver_acknowledge_and_push(fed, pki, postgres):  # noqa: F811
    pub = pki.path("directive-%s.pub" % KEY_ID)
    st, a = fed.post("/v1/directives", fed.tokens["admin"], directive_body())
    assert st == 201, a
    assert a["key_id"] == KEY_ID
    first = a["serial"]

    # Every role lists it, decoded from the signed body.
    for role in ("ministry", "public", "admin"):
        st, lst, _ = fed.get("/v1/directives", fed.tokens[role])
        assert st == 200, lst
        d = next(x for x in lst["directives"] if x["serial"] == first)
        assert d["title"] == "Returnee women first" and d["key_id"] == KEY_ID
        assert (d["effective_from"], d["expires_at"]) == ("2026-07-17", "2027-07-16")
        assert d["eligibility"]["categories"] == ["RETURNEE", "MIGRANT_FAMILY"]
        assert (d["eligibility"]["min_age"], d["eligibility"]["max_age"]) == (18, 45)
        assert d["eligibility"]["registered_after"] == "2026-01-01"
        t0, t1, t2 = d["targets"]
        # The grouping is normalised and its key values follow it, canonical upper case.
        assert (t0["grouping"], t0["key"]) == ("sex,age_band", ["FEMALE", "25_39"])
        assert (t0["scope"], t0["scope_code"], t0["value"]) == ("province", 1, 1200)
        assert (t1["indicator"], t1["share"]) == ("enterprises_active", 0.6)
        assert (t2["scope"], t2["scope_code"], t2["period"]) == ("municipality", 10101,
                                                                  "2026-Q4")
        assert ("published_by" in d) == (role == "admin")

    # A hub store that has acknowledged nothing receives it in its HelloReply, signed.
    inc = os.urandom(16)
    c, reply = hub_session(fed, pki, inc)
    got = {}
    for sd in reply.directives:
        body = pb.Directive()
        body.ParseFromString(sd.body)
        got[body.serial] = (sd, body)
    assert first in got, list(got)
    assert [s for s in got] == sorted(got)
    sd, body = got[first]
    assert sd.key_id == KEY_ID and body.key_id == KEY_ID
    assert body.title == "Returnee women first"
    assert body.targets[0].value == 1200 and body.targets[1].share == pytest.approx(0.6)
    assert verify_signature(pub, sd.body, sd.signature)
    tampered = bytearray(sd.body)
    tampered[len(tampered) // 2] ^= 1
    assert not verify_signature(pub, bytes(tampered), sd.signature)

    # Acknowledged, it is not sent again to that store.
    for serial in got:
        ack(c, serial)
    hexinc = inc.hex()
    wait_for(lambda: postgres.psql(
        "SELECT acked_serial FROM directive_delivery WHERE province = 1 AND incarnation = "
        "'\\x%s'::bytea" % hexinc) == [[str(max(got))]], 10, "the acknowledgement recorded")
    c.close()
    c, reply = hub_session(fed, pki, inc)
    assert [sd for sd in reply.directives] == []

    # A directive published while the hub is connected is pushed to it at once.
    st, a = fed.post("/v1/directives", fed.tokens["admin"],
                     directive_body(title="Second directive", targets=[]))
    assert st == 201, a
    second = a["serial"]
    assert second == max(got) + 1
    env = c.recv()
    assert env.WhichOneof("msg") == "directive", env
    body = pb.Directive()
    body.ParseFromString(env.directive.body)
    assert (body.serial, body.title) == (second, "Second directive")
    assert verify_signature(pub, env.directive.body, env.directive.signature)
    ack(c, second)
    c.close()

    # Another store of the same province (a rebuilt hub) still receives both.
    c, reply = hub_session(fed, pki, os.urandom(16))
    serials = []
    for sd in reply.directives:
        b = pb.Directive()
        b.ParseFromString(sd.body)
        serials.append(b.serial)
    assert first in serials and second in serials
    c.close()

    # The publications are audited.
    st, au, _ = fed.get("/v1/audit?limit=200", fed.tokens["admin"])
    posts = [r for r in au["audit"] if r["method"] == "POST" and r["status"] == 201]
    assert len(posts) >= 2 and posts[0]["target"] == "/v1/directives"
    m = fed.metrics()
    assert m["federal_directives_published_total"] >= 2
    assert m["federal_ingest_directive_acks_total"] >= 2


def test_concurrent_publications_get_distinct_consecutive_serials(fed):
    out = []

    def one(i):
        out.append(fed.post("/v1/directives", fed.tokens["admin"],
                            directive_body(title="Concurrent %d" % i, targets=[])))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [st for st, _ in out] == [201] * 8, out
    serials = sorted(a["serial"] for _, a in out)
    assert serials == list(range(serials[0], serials[0] + 8))


def test_in_force_is_judged_on_nepals_day(fed, pki, postgres, tmp_path):  # noqa: F811
    """GET /v1/directives said whether each directive was in force on the UTC day: from 18:15
    to 24:00 UTC, one effective from Nepal's today was "not in force", and one that had
    expired the day before in Nepal still "in force", where hubs and nodes take Nepal's day.
    This federal-api's clock is 20:00 UTC, 01:45 of the next day in Nepal (fed: the signing
    key)."""
    f = DirectiveFederal(str(tmp_path), pki, postgres, name="federal-nepal-day")
    clock = os.path.join(str(tmp_path), "federal-clock")
    utc, nepal = utc_evening_clock(clock)
    f.hooks = ["--enable-test-hooks", "--test-clock", clock]
    f.start()
    try:
        admin = f.token("admin", "dir-admin-nepal-day")
        serials = {}
        for title, frm, to in (("Starts today in Nepal", nepal, nepal + DAY * 365),
                               ("Ended yesterday in Nepal", utc - DAY * 30, utc)):
            st, a = f.post("/v1/directives", admin,
                           directive_body(title=title, effective_from=frm.isoformat(),
                                          expires_at=to.isoformat(), targets=[]))
            assert st == 201, a
            serials[a["serial"]] = title
        st, lst, _ = f.get("/v1/directives", admin)
        assert st == 200, lst
        got = {serials[d["serial"]]: d["in_force"] for d in lst["directives"]
               if d["serial"] in serials}
        assert got == {"Starts today in Nepal": True, "Ended yesterday in Nepal": False}, got
    finally:
        f.stop()


def test_without_a_signing_key_publishing_answers_503(pki, postgres, tmp_path):  # noqa: F811
    f = DirectiveFederal(str(tmp_path), pki, postgres, key_id=None, name="federal-nokey").start()
    try:
        admin = f.token("admin", "dir-admin-nokey")
        st, a = f.post("/v1/directives", admin, directive_body())
        assert st == 503, a
        assert "private_key" in a["error"]
        st, lst, _ = f.get("/v1/directives", admin)
        assert st == 200
    finally:
        f.stop()


def test_a_key_that_cannot_sign_stops_the_start(pki, postgres, tmp_path):  # noqa: F811
    f = DirectiveFederal(str(tmp_path), pki, postgres, key_id=None, name="federal-badkey")
    ini_set(f.config, "[directives]\nkey_id = k\nprivate_key = %s\n" % pki.path("ca.crt"))
    r = subprocess.run([os.path.join(ROOT, "build", "bin", "federal-api"), "--config", f.config,
                        "serve"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "private_key" in r.stderr


def test_a_real_hub_verifies_stores_and_acknowledges_them(fed, pki, postgres, workdir):  # noqa: F811
    import sqlite3
    st, a = fed.post("/v1/directives", fed.tokens["admin"],
                     directive_body(title="For the real hub", targets=[]))
    assert st == 201, a
    latest = a["serial"]
    hub = hub_with_key(fed, pki, workdir)
    try:
        def acked():
            rows = postgres.psql("SELECT max(acked_serial) FROM directive_delivery"
                                 " WHERE province = 2")
            return rows and rows[0][0] and int(rows[0][0]) >= latest
        wait_for(acked, 20, "hub 2 acknowledging every directive")
        with sqlite3.connect(hub.db) as db:
            held = [r[0] for r in db.execute("SELECT serial FROM directives ORDER BY serial")]
        assert latest in held and held == sorted(set(held))
        # One published while it is connected is pushed, verified, stored and acknowledged.
        st, a = fed.post("/v1/directives", fed.tokens["admin"],
                         directive_body(title="Pushed to the real hub", targets=[]))
        assert st == 201, a
        latest = a["serial"]
        wait_for(acked, 20, "hub 2 acknowledging the pushed directive")
    finally:
        hub.stop()


def test_a_publication_the_store_fails_says_where_to_look_before_publishing_again(
        fed, postgres):  # noqa: F811
    """A review found that a store failure while publishing was answered "the directive was
    not published; try again": when the connection is lost after the COMMIT was sent, the
    row may be stored, and the retry then publishes the same text twice under two serials,
    to every node. The answer now names the serial to look for first. A trigger stands for
    the failure (here the row is surely not stored)."""
    postgres.psql("CREATE FUNCTION refuse_directive() RETURNS trigger LANGUAGE plpgsql AS"
                  " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$")
    postgres.psql("CREATE TRIGGER refuse_directive BEFORE INSERT ON directives"
                  " FOR EACH ROW EXECUTE FUNCTION refuse_directive()")
    try:
        st, a = fed.post("/v1/directives", fed.tokens["admin"], directive_body("Refused"))
    finally:
        postgres.psql("DROP TRIGGER refuse_directive ON directives")
        postgres.psql("DROP FUNCTION refuse_directive()")
    assert st == 503, a
    m = re.search(r"look for directive (\d+) in GET /v1/directives before publishing it again",
                  a["error"])
    assert m, a
    st, lst, _ = fed.get("/v1/directives", fed.tokens["admin"])
    assert int(m.group(1)) not in [d["serial"] for d in lst["directives"]], lst


def test_a_peer_with_small_frames_gets_the_crl_and_then_every_directive(pki, postgres, workdir,
                                                                        procs):  # noqa: F811
    """A province's peer whose frames held the CRL but not the CRL and the directives of a
    HelloReply got an Error at every session: since 93f7729 the CRL is left out only when it
    does not fit alone, and the federal tier, unlike a hub, did not offer fewer directives
    when its reply was too large (a review found it). It now halves them as a hub does, and
    sends the rest after the reply. (The hub's uplink announces the default 4 MiB; a peer of
    the protocol may announce less.)"""
    from test_chain import FreshDatabase
    pki.issue("federal")
    run([os.path.join(ROOT, "deploy", "pki.sh"), "directive-key", pki.dir, KEY_ID])
    f = DirectiveFederal(workdir, pki, FreshDatabase(postgres), name="federal-small").start()
    procs.append(f)
    admin = f.token("admin", "dir-small-%d" % time.time_ns())
    serials = []
    for i in range(4):
        st, a = f.post("/v1/directives", admin,
                       directive_body(title="Long directive %d" % i, text="x" * 3000,
                                      targets=[]))
        assert st == 201, a
        serials.append(a["serial"])

    c = WireClient(f.sync_port, pki, "province-2")
    try:
        full = c.hello(os.urandom(16), last_seq=0)
    finally:
        c.close()
    assert len(full.directives) == 4 and full.crl, full
    limit = reply_size(full, True, 2) + 16  # the CRL and two directives, room for the clock
    assert reply_size(full, True, 4) > limit, (reply_size(full, True, 4), limit)
    c = WireClient(f.sync_port, pki, "province-2")
    try:
        reply = c.hello(os.urandom(16), last_seq=0, max_frame=limit)
        assert reply.crl == full.crl
        got = [pb.Directive.FromString(sd.body).serial for sd in reply.directives]
        assert got == serials[:2], got
        # The rest follow, one message each.
        for want in serials[2:]:
            env = c.recv()
            assert env.WhichOneof("msg") == "directive", env
            assert pb.Directive.FromString(env.directive.body).serial == want
    finally:
        c.close()
    assert "does not fit the hub's frame limit" not in f.log_text()
