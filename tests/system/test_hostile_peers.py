"""Sync ports against peers that hold a valid key and send what no honest peer would
(issue 18): sequence numbers at 2^64-1 and 2^63-1, a HelloReply acknowledging version
2^64-1, versions a year ahead, a 450,000-record batch, and frames of 4 MiB before Hello. Each
is refused at the hub, the federal tier or the node; the honest peer keeps syncing normally
after it; no counter wraps; memory goes back to where a warm-up left it."""
import datetime
import os
import re
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import threading
import time

from fedclient import Federal, HubUplink, snapshot
from test_federal import municipalities
from test_gaps import Officer
from gen import Caseload
from harness import BIN, Hub, Node, pb, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import FreshDatabase
from wireclient import WireClient, person

YEAR_MS = 365 * 86400 * 1000


def _node_with_records(workdir, pki, hub, n=50, seed=91):
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, seed)
    for _ in range(n):
        cl.new_person()
    path = os.path.join(workdir, "p-%d.csv" % seed)
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    node.sync()
    return node, cl, path


def _incarnation(node):
    c = sqlite3.connect("file:%s?mode=ro" % node.db, uri=True)
    try:
        return bytes(c.execute("SELECT value FROM meta WHERE key='incarnation'").fetchone()[0])
    finally:
        c.close()


def _raw_batch(first, last, records, seqs):
    env = pb.Envelope()
    env.batch.first_seq = first
    env.batch.last_seq = last
    for r, s in zip(records, seqs):
        env.batch.records.append(r)
        env.batch.seqs.append(s)
    return env


def _more(node, cl, path, n=20):
    for _ in range(n):
        cl.new_person()
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    node.sync()
    st = node.status()
    assert st["backlog"] == 0 and st["dead_letters"] == 0, st


def test_hub_refuses_absurd_sequences_and_future_versions(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    inc = _incarnation(node)
    for last in (2 ** 64 - 1, 2 ** 63 - 1):
        # The node's own key and store incarnation, as a thief would have them.
        c = WireClient(hub.sync_port, pki, "municipality-10703")
        reply = c.hello(inc)
        rec = person(10703, 1, (int(time.time() * 1000) << 16))
        c.send(_raw_batch(reply.acked_seq + 1, last, [rec], [reply.acked_seq + 1]))
        err = c.closed_after_error()
        assert err is not None and err.code == pb.ERROR_CODE_PROTOCOL, err
        assert "beyond the last sequence" in err.message
    # A record version a year ahead refuses the whole batch (nothing stored, no dead letter).
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(inc)
    future = person(10703, 7, ((int(time.time() * 1000) + YEAR_MS) << 16))
    ok = person(10703, 8, int(time.time() * 1000) << 16)
    c.send(_raw_batch(reply.acked_seq + 1, reply.acked_seq + 2, [ok, future],
                      [reply.acked_seq + 1, reply.acked_seq + 2]))
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_CLOCK_AHEAD, err
    stored = hub.records(10703)
    assert ok.id not in stored and future.id not in stored
    c = sqlite3.connect("file:%s?mode=ro" % hub.db, uri=True)
    (pos,) = c.execute("SELECT acked_seq FROM nodes WHERE municipality=10703").fetchone()
    c.close()
    assert pos < 2 ** 53
    # The real node syncs on as if nothing happened.
    _more(node, cl, path)
    assert len(hub.records(10703)) == len(cl.persons)


def test_federal_refuses_absurd_sequences_and_future_revisions(pki, workdir, procs,
                                                                postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
    procs.append(fed)
    own = municipalities(1)[0][0]
    cells = {("participants_registered", "", ()): (3, 0, 9, 3)}
    for last in (2 ** 63 - 1, 2 ** 64 - 1):
        c = WireClient(fed.sync_port, pki, "province-1")
        c.hello(os.urandom(16), last_seq=10)
        env = pb.Envelope()
        env.rollup_batch.first_seq = 1
        env.rollup_batch.last_seq = last
        env.rollup_batch.snapshots.append(snapshot(own, "2024-01", 1 << 40, cells))
        env.rollup_batch.seqs.append(1)
        c.send(env)
        err = c.closed_after_error()
        assert err is not None and err.code == pb.ERROR_CODE_PROTOCOL, err
    c = WireClient(fed.sync_port, pki, "province-1")
    c.hello(os.urandom(16), last_seq=10)
    env = pb.Envelope()
    env.rollup_batch.first_seq = 1
    env.rollup_batch.last_seq = 1
    env.rollup_batch.snapshots.append(
        snapshot(own, "2024-01", (int(time.time() * 1000) + YEAR_MS) << 16, cells))
    env.rollup_batch.seqs.append(1)
    c.send(env)
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_CLOCK_AHEAD, err
    # A review change from the future would hold the province's review clock there (the hub
    # then sends none of its decisions): refused whole, nothing stored.
    c = WireClient(fed.sync_port, pki, "province-1")
    before = c.hello(os.urandom(16), last_seq=10).reviews_through
    env = pb.Envelope()
    r = env.reviews.reviews.add()
    r.municipality, r.calendar, r.month = own, pb.CALENDAR_BS, 208305
    r.state, r.version = pb.MONTH_STATE_APPROVED, 1
    r.clock = (int(time.time() * 1000) + YEAR_MS) << 16
    c.send(env)
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_CLOCK_AHEAD, err
    c = WireClient(fed.sync_port, pki, "province-1")
    assert c.hello(os.urandom(16), last_seq=10).reviews_through == before
    c.close()
    # An honest hub's batches go on being stored.
    hub = HubUplink(fed, pki, 1)
    hub.add(snapshot(own, "2024-02", 1 << 40, cells))
    hub.push(deadline=30)
    assert hub.acked == 1 and not hub.refusals


def _federal_and_hub(pki, workdir, procs, postgres):  # noqa: F811
    """A federal tier on a fresh database and the hub of province 1 (not linked)."""
    pki.issue("federal")
    db = FreshDatabase(postgres)
    fed = Federal(workdir, pki, db).start()
    procs.append(fed)
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    return db, fed, hub


def _hello_with_max_frame(port, pki, identity, max_frame, name="python"):
    c = WireClient(port, pki, identity)
    env = pb.Envelope()
    env.hello.protocol_version = 2
    env.hello.identity = name
    env.hello.incarnation = os.urandom(16)
    env.hello.clock = int(time.time() * 1000)
    env.hello.last_seq = 10
    env.hello.max_frame = max_frame
    c.send(env)
    return c


def test_values_no_province_could_sum_and_frames_no_reply_fits_are_refused_with_a_reason(
        pki, workdir, procs, postgres):  # noqa: F811
    """A cell whose numerator (or contributors, denominator, tops) is above 2^53 - 1 is refused
    with the snapshot, naming the cell: until it was, the province's sum left PostgreSQL's
    bigint, the batch failed to store, the connection closed without a word and the hub sent
    it again forever (a helper that attacked the demo found it). A Hello announcing a frame
    limit under 512 bytes, which no HelloReply fits, gets ERROR_CODE_PROTOCOL naming
    max_frame instead of a silent close, at the federal tier and at a hub."""
    db, fed, hub = _federal_and_hub(pki, workdir, procs, postgres)
    for port, identity in ((fed.sync_port, "province-1"), (hub.sync_port, "municipality-10703")):
        for limit in (1, 511):
            c = _hello_with_max_frame(port, pki, identity, limit)
            err = c.closed_after_error()
            assert err is not None and err.code == pb.ERROR_CODE_PROTOCOL, (port, limit, err)
            assert "max_frame" in err.message, err
        c = _hello_with_max_frame(port, pki, identity, 512)
        assert c.recv().WhichOneof("msg") == "hello_reply"
        c.close()
    own = [m for m, _ in municipalities(1)[:3]]
    big = (1 << 53) - 1
    cases = [{("participants_registered", "", ()): (big + 1, 0, 9, 1)},
             {("participants_registered", "", ()): (5, 0, 9, big + 1)},
             {("reporting_completeness", "", ()): (1, big + 1, 0, 1)},
             {("seed_funding_npr", "", ()): ((1 << 63) - 1, 0, 9, 2)}]
    for i, cells in enumerate(cases):
        c = WireClient(fed.sync_port, pki, "province-1")
        c.hello(os.urandom(16), last_seq=10)
        env = pb.Envelope()
        env.rollup_batch.first_seq = env.rollup_batch.last_seq = 1
        env.rollup_batch.snapshots.append(snapshot(own[0], "2024-0%d" % (i + 1), 1 << 40, cells))
        env.rollup_batch.seqs.append(1)
        c.send(env)
        reply = c.recv()
        assert reply.WhichOneof("msg") == "ack", (i, reply)
        ack = reply.ack
        assert ack.acked_seq == 1 and len(ack.refusals) == 1, (i, ack)
        assert ack.refusals[0].field == "snapshots[0].cells[0]", ack
        assert "2^53-1" in ack.refusals[0].reason, ack
        c.close()
    # The largest values allowed, in as many municipalities as the test sends, are stored
    # and summed exactly in the province's row.
    up = HubUplink(fed, pki, 1)
    for m in own:
        up.add(snapshot(m, "2024-06", 1 << 40,
                        {("participants_registered", "", ()): (big, 0, 9, big)}))
    up.push(deadline=30)
    assert up.acked == len(own) and not up.refusals, up.refusals
    assert postgres.psql("SELECT numerator, contributors FROM province_cells WHERE province = 1"
                         " AND period = '2024-06' AND indicator = 'participants_registered'",
                         db=db.name) == [[str(big * len(own))] * 2]
    assert postgres.psql("SELECT count(*) FROM snapshots WHERE period LIKE '2024-0%'",
                         db=db.name) == [[str(len(own))]]
    up.close()


def test_a_crl_too_large_for_the_peers_frames_is_left_out_of_the_hello_reply(workdir, procs):
    """A peer that announced 512-byte frames got no HelloReply once the CA had revoked enough
    certificates for its CRL to outgrow them (the reply could not be framed: an Error came
    instead, and the session ended): the CRL is now left out, and the log says so. A peer with the
    default frames still gets the CRL, byte for byte."""
    from harness import Pki
    own = Pki(os.path.join(workdir, "pki-bigcrl"))
    own.issue("province", "1", "municipality", "10703")
    for m in ("10701", "10702", "10704", "10705", "10706", "10707"):
        own.issue("municipality", m)
        own.revoke("municipality-" + m)
    with open(own.path("crl.pem"), "rb") as f:
        crl = f.read()
    assert len(crl) > 600, len(crl)  # more than the 512-byte frame can carry
    hub = Hub(workdir, own, 1).start()
    procs.append(hub)
    c = _hello_with_max_frame(hub.sync_port, own, "municipality-10703", 512)
    reply = c.recv()
    assert reply.WhichOneof("msg") == "hello_reply", reply
    assert reply.hello_reply.crl == b""
    c.close()
    assert "the CRL (%d bytes) is left out of the HelloReply" % len(crl) in hub.log_text()
    c = _hello_with_max_frame(hub.sync_port, own, "municipality-10703", 0)
    reply = c.recv()
    assert reply.WhichOneof("msg") == "hello_reply", reply
    assert reply.hello_reply.crl == crl
    c.close()


def test_strings_with_a_nul_are_refused_naming_the_field(pki, workdir, procs,
                                                        postgres):  # noqa: F811
    """protobuf-c hands strings on as C strings: a review comment "\\0\\x1b[31m" from a hub
    arrived at the federal tier as "" and was accepted (a helper that attacked the demo found
    it). A string field holding a NUL (or bytes that are not UTF-8) is now refused with
    ERROR_CODE_MALFORMED naming the field, at the federal tier and at a hub, and the peer's
    next session is served."""
    db, fed, hub = _federal_and_hub(pki, workdir, procs, postgres)
    c = WireClient(fed.sync_port, pki, "province-1")
    c.hello(os.urandom(16), last_seq=10)
    env = pb.Envelope()
    m = env.reviews.reviews.add()
    m.municipality, m.calendar, m.month = 10101, pb.CALENDAR_BS, 208304
    m.state, m.version, m.clock = pb.MONTH_STATE_RETURNED, 2, int(time.time() * 1000) << 16
    m.comment = "\0\x1b[31m"
    c.send(env)
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_MALFORMED, err
    assert "MonthReview.comment" in err.message, err
    assert postgres.psql("SELECT count(*) FROM approval_log", db=db.name) == [["0"]]
    for port, identity in ((fed.sync_port, "province-1"), (hub.sync_port, "municipality-10703")):
        c = _hello_with_max_frame(port, pki, identity, 4096, name="py\0thon")
        err = c.closed_after_error()
        assert err is not None and err.code == pb.ERROR_CODE_MALFORMED, (port, err)
        assert "Hello.identity" in err.message, err
        c = _hello_with_max_frame(port, pki, identity, 4096)
        assert c.recv().WhichOneof("msg") == "hello_reply"
        c.close()


def _hub_officer_node_and_client(workdir, pki, procs):
    """A running hub 1 with an officer's token, a node that has synced records to it, and a
    sync client speaking as that node."""
    hub = Hub(workdir, pki, 1)
    token = subprocess.run([os.path.join(BIN, "provincial-hub"), "--config", hub.config,
                            "token", "officer"], capture_output=True, text=True,
                           check=True).stdout.strip()
    hub.start()
    procs.append(hub)
    node, _, _ = _node_with_records(workdir, pki, hub)
    return hub, token, node, WireClient(hub.sync_port, pki, "municipality-10703")


def test_records_with_a_string_not_utf8_or_with_a_nul_are_refused_alone(pki, workdir, procs):
    """protobuf-c cuts a string at a NUL: a record going to "QA\\0Ram Bahadur" was stored as
    going to "QA", and one going to "\\0\\0" as unknown, each acknowledged with no refusal (a
    helper that attacked the demo found it). Each is now refused alone, naming the field, as is
    one whose country is not UTF-8; the good record of the same batch is stored. The Ack is
    protobuf (Python's parser refuses a string that is not UTF-8), and the gap report, which
    shows a municipality's last refusal, still answers."""
    hub, token, node, c = _hub_officer_node_and_client(workdir, pki, procs)
    reply = c.hello(_incarnation(node))
    seq = reply.acked_seq + 1
    version = int(time.time() * 1000) << 16
    recs = [person(10703, 9, version, destination_country="QQQQ"),
            person(10703, 10, version, destination_country="QAxRam Bahadur"),
            person(10703, 11, version, destination_country="KWKW"),
            person(10703, 12, version, destination_country="IN")]
    seqs = list(range(seq, seq + 4))
    data = _raw_batch(seq, seq + 3, recs, seqs).SerializeToString()
    for was, now in ((b"QQQQ", b"\xff\xfe\xff\xfe"), (b"QAxRam", b"QA\0Ram"),
                     (b"KWKW", b"\0\0\0\0")):
        assert data.count(was) == 1
        data = data.replace(was, now)
    c.send_raw(struct.pack(">I", len(data)) + data)
    ack = c.recv().ack
    assert ack.acked_seq == seq + 3, ack
    assert [(r.seq, r.field) for r in ack.refusals] == \
        [(s, "person.destination_country") for s in seqs[:3]], ack
    assert all("NUL" in r.reason for r in ack.refusals), ack
    c.close()
    stored = hub.records(10703)
    assert all(r.id not in stored for r in recs[:3])
    assert stored[recs[3].id][4].person.destination_country == "IN"
    row = Officer(hub, pki, token).rows()[10703]
    assert row["dead_letters"] >= 3 and "NUL" in row["dead_letters_last_reason"], row


def test_a_batch_cut_at_its_refusals_files_the_records_dropped_before_the_cut(pki, workdir,
                                                                               procs):
    """A batch with more refusals than one ack can list is acknowledged up to the cut, and the
    node sends the rest again. A review found that the records the node had dropped (too
    large for a frame) before the cut were then never filed at the hub: the node had filed
    them itself and resumes after the cut, so the dead letters shown upstream were short.
    A Hello announcing 1,024-byte frames leaves room for 3 refusals an ack."""
    hub, token, node, c = _hub_officer_node_and_client(workdir, pki, procs)
    before = Officer(hub, pki, token).rows()[10703]["dead_letters"]
    env = pb.Envelope()
    env.hello.protocol_version = 2
    env.hello.identity = "python"
    env.hello.incarnation = _incarnation(node)
    env.hello.clock = int(time.time() * 1000)
    env.hello.last_seq = 1 << 20
    env.hello.max_frame = 1024
    c.send(env)
    seq = c.recv().hello_reply.acked_seq + 1
    version = int(time.time() * 1000) << 16
    recs = [person(10703, 20 + i, version, destination_country="ZZZZ") for i in range(5)]
    seqs = list(range(seq + 1, seq + 6))
    env = _raw_batch(seq, seq + 5, recs, seqs)
    d = env.batch.dropped.add()
    d.seq, d.size, d.kind, d.reason = seq, 99, pb.RECORD_KIND_PERSON, "too large for one frame"
    c.send(env)
    ack = c.recv().ack
    assert ack.acked_seq == seqs[3] - 1 and len(ack.refusals) == 3, ack
    c.close()
    wait_for(lambda: Officer(hub, pki, token).rows()[10703]["dead_letters"] == before + 4, 10,
             "the three refusals and the dropped record filed")


def test_a_node_reason_keeps_whole_characters_and_is_no_formula_in_the_csv(pki, workdir,
                                                                         procs):
    """A node says why it dropped a record (Dropped.reason); the gap report shows the last
    reason. One of 300 Devanagari letters was cut at 200 bytes inside a letter, which came
    back as "??", and one starting "=HYPERLINK(" reached the report's CSV as a formula for
    the officer's spreadsheet (a helper that attacked the demo found both). The reason is now
    cut between characters, and the CSV puts an apostrophe before it; controls and marks that
    reorder text become "?"."""
    hub, token, node, c = _hub_officer_node_and_client(workdir, pki, procs)
    seq = c.hello(_incarnation(node)).acked_seq + 1
    reason = '=HYPERLINK("http://x","y") ठूलो! ' + "र" * 300  # 200 bytes fall in a letter
    env = pb.Envelope()
    env.batch.first_seq = env.batch.last_seq = seq
    d = env.batch.dropped.add()
    d.seq, d.size, d.kind, d.reason = seq, 99, pb.RECORD_KIND_PERSON, reason
    c.send(env)
    assert c.recv().ack.acked_seq == seq
    c.close()
    officer = Officer(hub, pki, token)
    shown = officer.rows()[10703]["dead_letters_last_reason"]
    assert "?" not in shown and "\ufffd" not in shown, shown
    assert reason.startswith(shown) and len(shown.encode()) > 150, shown
    st, text, _ = officer.get("/v1/gaps", format="csv")
    assert st == 200
    import csv
    rows = list(csv.DictReader(text.splitlines()))
    row = [r for r in rows if r["code"] == "10703"][0]
    assert row["dead_letters_last_reason"] == "'" + shown, row
    assert not [v for r in rows for v in r.values() if v[:1] in ("=", "+", "@")]
    # A C1 control (U+009B, a CSI to some terminals) and a mark that turns the text around
    # (U+202E) become "?", as the C0 controls do (the next attack found them shown as sent).
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    seq = c.hello(_incarnation(node)).acked_seq + 1
    env = pb.Envelope()
    env.batch.first_seq = env.batch.last_seq = seq
    d = env.batch.dropped.add()
    d.seq, d.size, d.kind, d.reason = seq, 99, pb.RECORD_KIND_PERSON, "a\u009b2J \u202ecba"
    c.send(env)
    assert c.recv().ack.acked_seq == seq
    c.close()
    assert officer.rows()[10703]["dead_letters_last_reason"] == "a?2J ?cba"


class ImpossibleHub:
    """A peer posing as the hub (it has the province's key): its HelloReply acknowledges
    sequence 2^53 + 1 or version 2^64-1."""

    def __init__(self, pki, acked_seq, acked_version):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(pki.path("province-1.crt"), pki.path("province-1.key"))
        self.ctx.load_verify_locations(pki.path("ca.crt"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sync_port = self.sock.getsockname()[1]
        self.reply = pb.Envelope()
        self.reply.hello_reply.acked_seq = acked_seq
        self.reply.hello_reply.acked_version = acked_version
        self.reply.hello_reply.clock = int(time.time() * 1000)
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.5)
        while not self.stop:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            try:
                raw.settimeout(5)
                s = self.ctx.wrap_socket(raw, server_side=True)
                s.recv(65536)  # the node's Hello
                self._session(s)
                s.close()
            except (OSError, ssl.SSLError):
                raw.close()

    def _send(self, s, env):
        data = env.SerializeToString()
        s.sendall(struct.pack(">I", len(data)) + data)

    def _session(self, s):
        self._send(s, self.reply)
        time.sleep(0.3)

    def _envelopes(self, s):
        """The envelopes the node sends on s, until it closes or the fake is stopped."""
        s.settimeout(0.5)
        buf = b""
        while not self.stop:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                n = struct.unpack(">I", buf[:4])[0]
                got = pb.Envelope()
                got.ParseFromString(buf[4:4 + n])
                buf = buf[4 + n:]
                yield got


def _point_at(node, hub, fake):
    """Points node's config from hub to fake (a peer posing as the hub)."""
    with open(node.config) as f:
        text = f.read()
    with open(node.config, "w") as f:
        f.write(text.replace("127.0.0.1:%d" % hub.sync_port, "127.0.0.1:%d" % fake.sync_port))


class SilentHub(ImpossibleHub):
    """A peer posing as the hub that answers Hello, then reads what the node sends and never
    answers again (a hub that hung, or a connection a network dropped without a word). With
    chatter set it sends an empty Reviews message every 0.5 s, and still never acks."""

    sessions = 0
    chatter = False

    def _session(self, s):
        self._send(s, self.reply)
        self.sessions += 1
        s.settimeout(0.5)
        while not self.stop:
            if self.chatter:
                env = pb.Envelope()
                env.reviews.SetInParent()
                self._send(s, env)
            try:
                if not s.recv(65536):
                    return
            except (socket.timeout, TimeoutError):
                continue


def test_a_hub_that_takes_the_session_and_never_answers_is_left(pki, workdir, procs):
    """`municipal-node sync --timeout 3` bounded only the wait for a session: against a peer
    that answered Hello and then nothing, it waited for ever with its batch in flight, and
    `serve` would have held such a session for ever. A session that hears nothing while it
    waits for an ack is now dropped and made again (after 180 s; a test hook makes it 2 s),
    and `sync` then ends at its deadline, with an error."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    fake = SilentHub(pki, 0, 0)  # holds nothing: the node sends its 50 records again
    _point_at(node, hub, fake)
    node.hooks = ["--enable-test-hooks", "--test-fault", "sync_heard_wait_short"]
    try:
        r = node.cli("sync", "--timeout", "3", check=False, timeout=60)
        assert r.returncode == 4, r.stderr
        assert "sent nothing for 2" in r.stderr and "1 batch awaited its ack" in r.stderr, r.stderr
        assert fake.sessions in (1, 2), fake.sessions  # a second one if the first ends by 3 s
        procs.append(node.serve())
        wait_for(lambda: node.server.log_text().count("awaited its ack; connecting again") >= 2,
                 30, "serve to leave two sessions that went silent")
        assert fake.sessions >= 3, fake.sessions
    finally:
        fake.stop = True


class SlowReadingHub(ImpossibleHub):
    """A peer posing as the hub that answers Hello, then reads what the node sends at about
    20 KB/s through a small receive buffer (a slow link), and never answers."""

    def __init__(self, pki):
        super().__init__(pki, 0, 0)
        self.read = 0
        self.last_read = None
        self.session_at = None

    def _serve(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited on accept
        super()._serve()

    def _session(self, s):
        self._send(s, self.reply)
        # The first session's start: the node connects again as soon as it leaves it, and a
        # test that read the start after that took the second's (a run measured 0.04 s).
        if self.session_at is None:
            self.session_at = time.monotonic()
        s.settimeout(0.5)
        while not self.stop:
            try:
                chunk = s.recv(2048)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                return
            self.read += len(chunk)
            self.last_read = time.monotonic()
            time.sleep(0.1)


def test_a_slow_link_is_not_taken_for_a_silent_hub(pki, workdir, procs):
    """A review of 5215edb: the wait for the hub started when a batch was queued, so a batch
    that takes longer to cross a slow link than the wait (180 s: 1 MB at 32 kbit/s) was
    dropped, and sent again, for ever. The wait now restarts while what was sent moves
    towards the hub (the bytes the kernel holds unacknowledged, SIOCOUTQ). Here a hub that
    reads about 20 KB/s and never answers is left only once it has taken the whole batch."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub, n=2000)
    fake = SlowReadingHub(pki)
    _point_at(node, hub, fake)
    node.hooks = ["--enable-test-hooks", "--test-fault", "sync_heard_wait_short"]
    try:
        srv = node.serve()
        procs.append(srv)
        wait_for(lambda: "awaited its ack; connecting again" in srv.log_text(), 60,
                 "serve to leave the session once the slow hub has read everything")
        left = time.monotonic()
        assert fake.read > 100000, fake.read  # the 2,000 records' batch, read slowly
        assert left - fake.session_at > 4, (left - fake.session_at, fake.read)
        assert left - fake.last_read < 5, left - fake.last_read
    finally:
        fake.stop = True


class StoppingHub(ImpossibleHub):
    """A peer posing as the hub that, on the node's first batch, stops the node's process
    (SIGSTOP) for 12 s, sends the batch's Ack while it is stopped, and lets it go on: a
    paused machine or a stopped process whose ack is waiting when it wakes."""

    pid = None
    acked = 0

    def _session(self, s):
        self._send(s, self.reply)
        for got in self._envelopes(s):
            if got.WhichOneof("msg") != "batch":
                continue
            if self.acked == 0:
                os.kill(self.pid, signal.SIGSTOP)
                time.sleep(0.2)
            ack = pb.Envelope()
            ack.ack.acked_seq = got.batch.last_seq
            self._send(s, ack)
            if self.acked == 0:
                time.sleep(12)
                os.kill(self.pid, signal.SIGCONT)
            self.acked += 1


def test_a_stalled_node_does_not_take_its_waiting_ack_for_silence(pki, workdir, procs):
    """A review of 5215edb: libuv runs timers before it reads, so after a stall longer than
    the wait (a stopped process, a paused machine) the session would have been left although
    the hub's ack was waiting to be read. A poll more than 10 s after the one before now
    restarts the wait."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub, n=5)
    fake = StoppingHub(pki, 0, 0)  # holds nothing: the node sends its 5 records again
    _point_at(node, hub, fake)
    cmd = [os.path.join(BIN, "municipal-node"), "--enable-test-hooks", "--test-fault",
           "sync_heard_wait_short", "--config", node.config, "sync", "--timeout", "30"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    fake.pid = p.pid
    try:
        _, err = p.communicate(timeout=60)
    finally:
        fake.stop = True
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
    assert fake.acked >= 1, err
    assert "sent nothing" not in err, err
    assert p.returncode == 0, err


def test_a_hub_that_chatters_but_never_acks_is_left_too(pki, workdir, procs):
    """An attack on the demo found that any message restarted the wait: a peer posing as the
    hub that sent an empty Reviews message every 60 s, and never acked, held `sync --timeout
    5` for 12 minutes until it was killed. Only an ack, or review changes, restart it now."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    fake = SilentHub(pki, 0, 0)
    fake.chatter = True
    _point_at(node, hub, fake)
    node.hooks = ["--enable-test-hooks", "--test-fault", "sync_heard_wait_short"]
    try:
        r = node.cli("sync", "--timeout", "3", check=False, timeout=60)
        assert r.returncode == 4 and "1 batch awaited its ack" in r.stderr, r.stderr
    finally:
        fake.stop = True


class PartialAckHub(ImpossibleHub):
    """A peer posing as the hub that, in its first session, acknowledges only the first 10
    records of the node's batch and keeps the session open; later sessions ack each batch
    whole. It keeps the sequences it was sent."""

    def __init__(self, pki):
        super().__init__(pki, 0, 0)
        self.sessions = 0
        self.held = 0  # the position acknowledged so far

    def _session(self, s):
        self.sessions += 1
        first = self.sessions == 1
        self.reply.hello_reply.acked_seq = self.held
        self._send(s, self.reply)
        for got in self._envelopes(s):
            if got.WhichOneof("msg") != "batch":
                continue
            ack = pb.Envelope()
            ack.ack.acked_seq = got.batch.first_seq + 9 if first else got.batch.last_seq
            self.held = ack.ack.acked_seq
            self._send(s, ack)
            first = False


def test_a_batch_acknowledged_in_part_is_not_taken_for_delivered(pki, workdir, procs):
    """An attack on the demo found that a hub acknowledging 11 of 877 records of a batch, and
    keeping the session, had `sync` print "everything through sequence 877 is at the hub" and
    exit 0 with 866 records unsent, and `serve` never sent them in that session. The node now
    ends such a session itself, and sends the rest from the hub's position in the next."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 93)
    for _ in range(60):
        cl.new_person()
    path = os.path.join(workdir, "p-93.csv")
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    fake = PartialAckHub(pki)
    _point_at(node, hub, fake)
    try:
        r = node.cli("sync", "--timeout", "30", check=False, timeout=60)
    finally:
        fake.stop = True
    assert r.returncode == 0, r.stderr
    assert "acknowledged through sequence 10 only" in r.stderr, r.stderr
    assert fake.sessions == 2 and fake.held == 60, (fake.sessions, fake.held)
    assert node.status()["backlog"] == 0


def _tcp_timers(port):
    """(local port, remote port) -> the kernel's timer of each established IPv4 connection to
    or from port, from /proc/net/tcp: 0 none, 1 retransmit, 2 keepalive."""
    timers = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            lport, rport = int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)
            if cols[3] == "01" and port in (lport, rport):
                timers[(lport, rport)] = int(cols[5].split(":")[0], 16)
    return timers


def test_an_idle_session_is_probed_by_tcp_keepalive_at_both_ends(pki, workdir, procs):
    """An idle session over a link that died without a word (a mobile link, a NAT that forgot
    the flow) was never noticed: neither end sends while idle. Both ends of a sync connection
    now arm TCP keepalive (60 s idle, then 4 probes 15 s apart)."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub, n=5)
    procs.append(node.serve())
    wait_for(lambda: node.status()["hub_reachable"], 30, "the node's session with the hub")
    port = hub.sync_port

    def both_probed():
        t = _tcp_timers(port)
        hub_side = [v for (lp, _), v in t.items() if lp == port]
        node_side = [v for (_, rp), v in t.items() if rp == port]
        return hub_side == [2] and node_side == [2]

    wait_for(both_probed, 20, "a keepalive timer on both ends: %r" % (_tcp_timers(port),))


def test_node_adopts_no_impossible_position_from_a_peer_posing_as_the_hub(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    for seq, version in ((2 ** 53 + 1, 0), (0, 2 ** 64 - 1)):
        fake = ImpossibleHub(pki, seq, version)
        with open(node.config) as f:
            text = f.read()
        with open(node.config, "w") as f:
            f.write(text.replace("127.0.0.1:%d" % hub.sync_port, "127.0.0.1:%d" % fake.sync_port))
        r = node.cli("sync", "--timeout", "3", check=False)
        fake.stop = True
        assert r.returncode == 4, r.stderr
        assert "impossible position" in r.stderr, r.stderr
        with open(node.config, "w") as f:
            f.write(text)
    # Neither the sequence counter nor the clock moved: the next records sync normally, with
    # versions of now.
    _more(node, cl, path)
    c = sqlite3.connect("file:%s?mode=ro" % node.db, uri=True)
    (top,) = c.execute("SELECT max(version) FROM records").fetchone()
    (nxt,) = c.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
    c.close()
    assert abs((top >> 16) - time.time() * 1000) < 600000
    assert nxt < 1000


class ReviewingHub(ImpossibleHub):
    """A peer posing as the hub that answers Hello honestly, then sends one review change
    whose comment holds a control character, and keeps the Error the node answers with."""

    error = None
    comment = "see \x07 this"
    wait_s = None  # set: read for that long, then close (when no Error is expected)

    def _session(self, s):
        m = self.reply.hello_reply
        m.acked_seq, m.acked_version, m.reviews_through = 0, 0, 1 << 20
        env = pb.Envelope()
        r = env.reviews.reviews.add()
        r.municipality, r.calendar, r.month = 10703, pb.CALENDAR_BS, 208304
        r.state, r.decision = pb.MONTH_STATE_RETURNED, True
        r.version, r.clock, r.decided_by = 1, int(time.time() * 1000) << 16, "rev"
        r.decided_at, r.comment = int(time.time() * 1000), self.comment
        self._send(s, self.reply)
        self._send(s, env)
        if self.wait_s is not None:
            time.sleep(self.wait_s)
            return
        for got in self._envelopes(s):
            if got.WhichOneof("msg") == "error":
                self.error = got.error
                return


def test_a_review_change_the_node_refuses_is_answered_with_an_error(pki, workdir, procs):
    """The node refused a review change it would not store (a control character in the
    comment) by hanging up, so the hub could not log why (the attack on the demo found it);
    it now sends an Error naming the reason first, and a hub logs an Error a node sends."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    fake = ReviewingHub(pki, 0, 0)
    _point_at(node, hub, fake)
    node.cli("sync", "--timeout", "3", check=False)
    wait_for(lambda: fake.error is not None, 10, "the node's Error")
    fake.stop = True
    assert fake.error.code == pb.ERROR_CODE_PROTOCOL, fake.error
    assert "control character" in fake.error.message, fake.error
    # The real hub logs what a node's Error says.
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(_incarnation(node))
    env = pb.Envelope()
    env.error.code, env.error.message = pb.ERROR_CODE_PROTOCOL, "comment holds \x1b[2J"
    c.send(env)
    c.closed_after_error()
    wait_for(lambda: "refused what was sent: error 3: comment holds ?[2J" in hub.log_text(), 10,
             "the hub's log of the node's Error")


def test_a_comment_stored_before_the_rule_still_arrives_and_is_shown_on_one_line(pki, workdir,
                                                                                procs):
    """d903c69 refuses a reviewer's comment with a mark that reorders text, but a hub may have
    stored one before: refusing it where it arrives would refuse the month's changes at every
    session for good. The node takes it, and `municipal-node months` shows it on one line with
    each such mark, and its line break, as "?"; so does `status`."""
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    fake = ReviewingHub(pki, 0, 0)
    fake.comment, fake.wait_s = "fix\u202e the list\nFAKE 2083-05 approved", 1.0
    _point_at(node, hub, fake)
    node.cli("sync", "--timeout", "3", check=False, timeout=60)
    fake.stop = True
    out = node.cli("months").stdout
    assert "returned  by rev: fix? the list?FAKE 2083-05 approved\n" in out, out
    assert "\u202e" not in out, out
    # `status` too (it printed the comment raw: an attack on the demo).
    out = node.status_text()
    assert "by rev: fix? the list?FAKE 2083-05 approved\n" in out, out
    assert "\u202e" not in out, out


def test_node_with_its_clock_a_year_ahead_is_refused_and_says_so(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    node, cl, path = _node_with_records(workdir, pki, hub)
    clock = os.path.join(workdir, "node-clock")
    with open(clock, "w") as f:
        f.write("%d\n" % (YEAR_MS // 1000))
    node.hooks = ["--enable-test-hooks", "--test-clock", clock]
    for _ in range(5):
        cl.new_person()
    cl.write_csv(path, "persons")
    node.import_csv("persons", path)
    node.hooks = []
    before = len(hub.records(10703))
    r = node.cli("sync", "--timeout", "3", check=False)
    assert r.returncode == 4
    st = node.status(alarms=["serve_not_running", "clock_ahead"])
    assert st["clock_ahead"] is True and st["dead_letters"] == 0 and st["backlog"] == 5, st
    text = node.status_text()
    assert "CLOCK AHEAD" in text, text
    # The refusal gives the hub's time, so that the operator can tell which clock is wrong.
    now = datetime.datetime.now(datetime.timezone.utc)
    assert re.search(r"ahead of the hub's clock, which reads %s \d\d:\d\d UTC"
                     % now.strftime("%Y-%m-%d"), text), text
    assert len(hub.records(10703)) == before
    # The node's own clock a year ahead: the hub refuses its Hello, so no HelloReply gives the
    # skew, which read +0 s exactly then (operator F16). The Error carries the hub's clock.
    node.hooks = ["--enable-test-hooks", "--test-clock", clock]
    r = node.cli("sync", "--timeout", "3", check=False)
    node.hooks = []
    assert r.returncode == 4
    assert re.search(r"clock skew: province:1's clock reads 3153\d{4} s behind this machine's; check "
                     r"both clocks", r.stderr), r.stderr
    st = node.status(alarms=["serve_not_running", "clock_ahead", "clock_skew"])
    assert abs(st["clock_skew_ms"] + YEAR_MS) < 120000, st
    skew = re.search(r"clock skew +([-+]\d+) s  WARNING: over 5 minutes", node.status_text())
    assert skew and abs(int(skew.group(1)) + YEAR_MS // 1000) < 120, skew
    assert len(hub.records(10703)) == before


def test_a_huge_batch_and_frames_before_hello_leave_no_memory_behind(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)

    def tiny_batch(c, acked):
        # 450,000 records of a few bytes (no id: every one is refused), about 3.5 MB.
        env = pb.Envelope()
        env.batch.first_seq = acked + 1
        env.batch.last_seq = acked + 450000
        rec = pb.Record()
        rec.municipality = 10703
        data = rec.SerializeToString()
        env.batch.records.extend([pb.Record.FromString(data)] * 450000)
        env.batch.seqs.extend(range(acked + 1, acked + 450001))
        c.send(env)
        reply = c.recv()
        assert reply.WhichOneof("msg") in ("ack", "error"), reply
        return reply

    def gauges():
        m = hub.metrics()
        return m["process_heap_in_use_bytes"], m["sqlite_memory_used_bytes"]

    inc = os.urandom(16)
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(inc, last_seq=2000000)
    first = tiny_batch(c, reply.acked_seq)  # warm-up: the allocator's arenas are now grown
    assert first.WhichOneof("msg") == "ack" and len(first.ack.refusals) > 0
    c.close()
    time.sleep(1)
    heap0, sql0 = gauges()
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(inc, last_seq=2000000)
    second = tiny_batch(c, reply.acked_seq)
    assert second.WhichOneof("msg") == "ack"
    c.close()
    # Twenty connections announce 4 MiB frames before Hello and send part of them.
    socks = []
    for _ in range(20):
        w = WireClient(hub.sync_port, pki, "municipality-10703")
        try:
            w.send_raw(struct.pack(">I", 4 << 20))
            w.send_raw(b"\0" * 100000)  # the hub may have refused the header already
        except (OSError, ssl.SSLError):
            pass
        socks.append(w)
    for w in socks:
        err = w.closed_after_error()
        assert err is not None and err.code == pb.ERROR_CODE_FRAME_TOO_LARGE, err
    time.sleep(1)
    heap1, sql1 = gauges()
    assert heap1 <= heap0 + 8 * 2 ** 20, (heap0, heap1)
    assert sql1 <= sql0 + 8 * 2 ** 20, (sql0, sql1)
    assert hub.alive()
