"""Interoperability: a client written with python3-protobuf, from the same .proto files,
talks to the real hub over mutual TLS and its records are stored."""
import os

from harness import Hub, pb
from wireclient import WireClient, person


def test_python_protobuf_client_records_are_stored(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(os.urandom(16))
    assert reply.acked_seq == 0 and reply.resend_requested
    recs = [person(10703, i, (1 << 40) + i, sex=pb.SEX_MALE if i % 2 else pb.SEX_FEMALE)
            for i in range(1, 51)]
    c.batch(1, recs)
    ack = c.recv()
    assert ack.WhichOneof("msg") == "ack", ack
    assert ack.ack.acked_seq == 50 and len(ack.ack.refusals) == 0
    c.close()
    stored = hub.records(10703)
    assert len(stored) == 50
    for r in recs:
        mun, kind, ver, deleted, rec = stored[r.id]
        assert (mun, kind, ver, deleted) == (10703, pb.RECORD_KIND_PERSON, r.version, 0)
        assert rec == r


def test_hello_reply_resumes_after_reconnect(pki, workdir, procs):
    hub = Hub(workdir, pki, 1).start()
    procs.append(hub)
    inc = os.urandom(16)
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    c.hello(inc)
    c.batch(1, [person(10703, i, (1 << 40) + i) for i in range(1, 11)])
    assert c.recv().ack.acked_seq == 10
    c.close()
    # Until ResendComplete, the hub keeps asking this new incarnation for everything.
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(inc, last_seq=10)
    assert reply.acked_seq == 10 and reply.resend_requested
    env = pb.Envelope()
    env.resend_complete.incarnation = inc
    env.resend_complete.last_seq = 10
    c.send(env)
    assert c.recv().WhichOneof("msg") == "ack"
    c.close()
    c = WireClient(hub.sync_port, pki, "municipality-10703")
    reply = c.hello(inc, last_seq=10)
    assert reply.acked_seq == 10 and not reply.resend_requested
    assert reply.acked_version == (1 << 40) + 10
    c.close()
