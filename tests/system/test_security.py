"""Security of the node -> hub link: identities come from certificates, never messages."""
import datetime
import os
import signal
import ssl
import struct
import time

import pytest

import bs
from harness import Hub, pb, run, ROOT, wait_for
from wireclient import WireClient, person, with_unknown_field


@pytest.fixture
def hub(pki, workdir, procs):
    h = Hub(workdir, pki, 1).start()
    procs.append(h)
    return h


def handshake_refused(port, pki, stem, ca=None):
    """True when the hub refuses the client during or right after the handshake."""
    try:
        c = WireClient(port, pki, stem, ca=ca)
        c.hello(os.urandom(16))
    except (ssl.SSLError, ConnectionError, EOFError, OSError, AssertionError):
        return True
    return False


def test_certificate_from_another_ca_is_refused(pki, hub):
    run([os.path.join(ROOT, "deploy", "pki.sh"), "foreign", pki.dir])
    foreign = os.path.join(pki.dir, "foreign")

    class P:
        def path(self, n):
            return os.path.join(foreign, n)

    # The client trusts the real CA (so it accepts the hub) but presents a foreign cert.
    assert handshake_refused(hub.sync_port, P(), "municipality-10703", ca=pki.path("ca.crt"))
    assert hub.alive()
    assert hub.records() == {}


def test_certificate_revoked_after_start_is_refused_after_crl_reload(pki, workdir, procs):
    # Local levels no other test uses: the PKI is shared by the session, and a revoked
    # certificate would refuse another test's node whatever the order of the files.
    pki.issue("municipality", "10606")
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    c = WireClient(hub.sync_port, pki, "municipality-10606")
    c.hello(os.urandom(16))
    c.close()
    pki.revoke("municipality-10606")
    hub.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "CRL reloaded" in hub.log_text(), 10, "CRL reload")
    assert handshake_refused(hub.sync_port, pki, "municipality-10606")
    # Others are still served.
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    c.close()


def test_crl_replaced_on_disk_is_reloaded_without_a_signal(pki, workdir, procs):
    pki.issue("municipality", "10607")
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    c = WireClient(hub.sync_port, pki, "municipality-10607")
    c.hello(os.urandom(16))
    c.close()
    pki.revoke("municipality-10607")  # pki.sh writes the new CRL by rename
    wait_for(lambda: "CRL reloaded" in hub.log_text(), 10, "CRL reload on change")
    assert handshake_refused(hub.sync_port, pki, "municipality-10607")


def test_batch_with_another_municipalitys_record_is_refused_whole(pki, hub):
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    recs = [person(10703, i, (1 << 40) + i) for i in range(1, 6)]
    recs.append(person(10401, 99, (1 << 40) + 99))  # Arjundhara, same province
    c.batch(1, recs)
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_FORBIDDEN
    assert hub.records() == {}
    assert hub.metrics()["hub_security_events_total"] >= 1
    assert "SECURITY" in hub.log_text()


def test_municipality_outside_the_province_is_refused(pki, hub):
    # 21501 (Agnisaira Krishnasavaran) is in Madhesh (province 2); this hub serves Koshi (1).
    c = WireClient(hub.sync_port, pki, "municipality-21501")
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_FORBIDDEN
    assert "province 2" in err.message
    assert hub.records() == {}


def test_certificate_naming_no_official_municipality_is_refused(pki, hub):
    # 20101 is five digits but no local level has that code.
    c = WireClient(hub.sync_port, pki, "municipality-20101")
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_FORBIDDEN
    assert "known municipality" in err.message


def test_oversized_frame_gets_error_and_close(pki, hub):
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    # Announce 1 GiB; the hub must refuse before allocating it.
    c.send_raw(struct.pack(">I", 1 << 30) + b"x" * 100)
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_FRAME_TOO_LARGE
    assert hub.alive()


def test_garbage_bytes_get_error_and_close(pki, hub):
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    junk = b"\xff\xfe\x07garbage-not-protobuf\x00\x01" * 4
    c.send_raw(struct.pack(">I", len(junk)) + junk)
    err = c.closed_after_error()
    assert err is not None and err.code == pb.ERROR_CODE_MALFORMED
    assert hub.alive()
    # And the hub still serves well-behaved nodes.
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    c.close()


def test_record_with_bad_field_is_refused_alone(pki, hub):
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    recs = [person(10703, i, (1 << 40) + i) for i in range(1, 11)]
    recs[3].person.destination_country = "Qatar"      # not ISO 3166 alpha-2
    later = datetime.date.today() + datetime.timedelta(days=400)
    (recs[7].person.registered_month, recs[7].person.registered_bs_month) = bs.pair(later)
    recs[8].person.registered_bs_month = 208112        # Chaitra 2081: not in 2024-10
    c.batch(1, recs)
    ack = c.recv().ack
    assert ack.acked_seq == 10
    refused = {(r.id, r.field) for r in ack.refusals}
    assert refused == {(recs[3].id, "person.destination_country"),
                       (recs[7].id, "person.registered_month"),
                       (recs[8].id, "person.registered_bs_month")}
    reasons = {r.id: r.reason for r in ack.refusals}
    assert "future" in reasons[recs[7].id] and "overlap" in reasons[recs[8].id], reasons
    stored = hub.records()
    assert set(stored) == {r.id for i, r in enumerate(recs) if i not in (3, 7, 8)}


def test_record_with_an_unknown_field_is_refused_alone_and_its_bytes_never_stored(pki, hub):
    """Under protocol 2 a record carrying a field the hub does not know (a modified node
    could hide personal data there) is refused alone, with a reason in the ack; the rest of
    its batch is stored, and the unknown bytes are nowhere in the hub's store."""
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(os.urandom(16))
    recs = [person(10703, i, (1 << 40) + i) for i in range(1, 7)]
    secret = b"Zorawarini Qatuphelma 9841572093"
    # Field 99 (length-delimited) in a Person; field 7 (v1's registered_day, reserved in v2)
    # in another; field 98 on the Record itself.
    recs[1] = with_unknown_field(recs[1], "person",
                                 b"\x9a\x06" + bytes([len(secret)]) + secret)
    recs[3] = with_unknown_field(recs[3], "person", b"\x38\xb8\x94\x01")
    raw = recs[5].SerializeToString() + b"\x92\x06" + bytes([len(secret)]) + secret
    recs[5] = pb.Record()
    recs[5].ParseFromString(raw)
    c.batch(1, recs)
    ack = c.recv().ack
    assert ack.acked_seq == 6
    got = {r.id: (r.field, r.reason) for r in ack.refusals}
    assert set(got) == {recs[1].id, recs[3].id, recs[5].id}, got
    assert got[recs[1].id][0] == "person" and "field number 99" in got[recs[1].id][1], got
    assert got[recs[3].id][0] == "person" and "field number 7" in got[recs[3].id][1], got
    assert got[recs[5].id][0] == "record" and "field number 98" in got[recs[5].id][1], got
    assert all("never stored" in reason for _, reason in got.values()), got
    stored = hub.records()
    assert set(stored) == {recs[i].id for i in (0, 2, 4)}
    c.close()
    # The hub's dead letters say why, and no byte of the secret is in its files.
    hub.stop()
    for root, _, files in os.walk(hub.dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert secret not in fh.read(), f


def test_record_id_of_another_municipality_cannot_be_overwritten(pki, hub):
    # Records are keyed by (municipality, id): a node that copies another municipality's
    # record id writes a record of its own municipality and cannot touch the other's.
    a = WireClient(hub.sync_port, pki, "municipality-10703")
    a.hello(os.urandom(16))
    rec = person(10703, 1, 1 << 40)
    a.batch(1, [rec])
    assert a.recv().ack.acked_seq == 1
    a.close()
    b = WireClient(hub.sync_port, pki, "municipality-10401")
    b.hello(os.urandom(16))
    forged = person(10401, 1, (1 << 41))
    forged.id = rec.id
    forged.person.sex = pb.SEX_OTHER
    b.batch(1, [forged])
    assert b.recv().ack.acked_seq == 1
    mun, _, ver, _, stored = hub.records(10703)[rec.id]
    assert (mun, ver, stored.person.sex) == (10703, 1 << 40, rec.person.sex)
    mun, _, ver, _, stored = hub.records(10401)[rec.id]
    assert (mun, ver, stored.person.sex) == (10401, 1 << 41, pb.SEX_OTHER)


def test_silent_connection_is_closed_after_the_hello_deadline(pki, hub):
    import socket
    s = socket.create_connection(("127.0.0.1", hub.sync_port), timeout=30)
    t0 = time.time()
    s.settimeout(30)
    try:
        data = s.recv(100)  # says nothing: no ClientHello
    except OSError:
        data = b""
    assert data == b""
    assert time.time() - t0 < 20
    s.close()
    assert hub.alive()
