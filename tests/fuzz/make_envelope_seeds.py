"""Writes the seed corpus of fuzz_envelope: valid framed envelopes, so that the fuzzer
reaches record validation and every message kind, protocol version 2's fields included.
Run: /usr/bin/python3 tests/fuzz/make_envelope_seeds.py (after make, which generates the
Python bindings in build/gen/python). The output is deterministic: running it again rewrites
the same files."""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "build", "gen", "python"))
import reintegration_pb2 as pb  # noqa: E402

out = os.path.join(ROOT, "tests", "fuzz", "seeds", "fuzz_envelope")


def frame(env):
    b = env.SerializeToString()
    return struct.pack(">I", len(b)) + b


def rec(n, kind):
    r = pb.Record(id=bytes([1, 2, 3, 4, 5, 6, 0x70, n, 0x80] + [n] * 7), municipality=10703,
                  version=(1 << 40) + n)
    if kind == "person":
        r.person.category = pb.CATEGORY_RETURNEE
        r.person.sex = pb.SEX_FEMALE
        r.person.age_band = pb.AGE_BAND_25_39
        r.person.registered_month = 202305  # 2023-05-23, BS 2080-02-09
        r.person.registered_bs_month = 208002
        r.person.destination_country = "QA"
        r.person.years_abroad = 4
        r.person.return_month = 202401
    elif kind == "service":
        r.service.person_id = bytes(16)
        r.service.type = pb.SERVICE_TYPE_SEED_FUNDING
        r.service.status = pb.SERVICE_STATUS_DELIVERED
        r.service.month = 202308  # 2023-08-31, BS 2080-05-14
        r.service.bs_month = 208005
        r.service.amount_npr = 50000
    elif kind == "enterprise":
        r.enterprise.owner_id = bytes(16)
        r.enterprise.action = pb.ENTERPRISE_ACTION_STARTED
        r.enterprise.sector = pb.SECTOR_AGRICULTURE
        r.enterprise.month = 202312  # 2023-12-09, BS 2080-08-23
        r.enterprise.bs_month = 208008
        r.enterprise.employees = 3
    elif kind == "availability":
        r.availability.service = pb.SERVICE_TYPE_LOAN
        r.availability.provider = pb.PROVIDER_BANK
        r.availability.available = True
        r.availability.as_of_day = 19800
    elif kind == "month_close":
        r.month_close.year = 2081
        r.month_close.month = 4
        r.month_close.bikram_sambat = True
        r.month_close.closed_day = 19900
    else:
        r.tombstone.kind = pb.RECORD_KIND_PERSON
    return r


seeds = {}
e = pb.Envelope()
e.hello.protocol_version = 1
e.hello.incarnation = bytes(range(16))
e.hello.clock = 1700000000000
seeds["hello"] = frame(e)
kinds = ["person", "service", "enterprise", "availability", "month_close", "tombstone"]
e = pb.Envelope()
e.batch.first_seq = 1
e.batch.last_seq = len(kinds)
for i, k in enumerate(kinds):
    e.batch.records.append(rec(i + 1, k))
    e.batch.seqs.append(i + 1)
seeds["batch_all_kinds"] = frame(e)
e = pb.Envelope()
e.ack.acked_seq = 6
e.ack.refusals.add(id=bytes(16), seq=3, field="person.sex", reason="bad")
seeds["ack"] = frame(e)
e = pb.Envelope()
e.hello_reply.acked_seq = 5
e.hello_reply.resend_requested = True
seeds["hello_reply"] = frame(e)
e = pb.Envelope()
e.resend_complete.incarnation = bytes(16)
e.resend_complete.last_seq = 9
seeds["two_frames"] = seeds["hello"] + frame(e)

# Protocol version 2: the fields it added, so that their re-encoding is exercised too.
e = pb.Envelope()
e.hello.protocol_version = 2
e.hello.identity = "municipality:10703"
e.hello.incarnation = bytes(range(16))
e.hello.clock = 1700000000000
e.hello.last_seq = 42
e.hello.max_frame = 1 << 20
e.hello.calendar = pb.CALENDAR_BS
seeds["hello_v2"] = frame(e)
e = pb.Envelope()
e.batch.first_seq = 7
e.batch.last_seq = 9
e.batch.records.append(rec(7, "person"))
e.batch.seqs.append(7)
e.batch.dropped.add(seq=8, id=bytes(range(16)), kind=pb.RECORD_KIND_SERVICE, size=5000000,
                    reason="larger than the hub's frame limit")
seeds["batch_dropped"] = frame(e)
e = pb.Envelope()
e.rollup_batch.first_seq = 3
e.rollup_batch.last_seq = 3
snap = e.rollup_batch.snapshots.add(municipality=10703, period="FY2083/84-T1",
                                    revision=(1700000000000 << 16) | 5, part=1, parts=3)
snap.cells.add(indicator="participants_registered", grouping="sex,age_band",
               key=["FEMALE", "25_39"], numerator=12, cell_key=0xdeadbeef, contributors=12)
snap.cells.add(indicator="reporting_timeliness", grouping="", numerator=1, denominator=2)
e.rollup_batch.seqs.append(3)
seeds["rollup_part"] = frame(e)
e = pb.Envelope()
e.coverage.municipalities.add(municipality=10703, records=6000, dead_letters=2,
                              last_sync_ms=1700000000000, calendar=pb.CALENDAR_AD)
e.coverage.municipalities.add(municipality=10401)
seeds["coverage"] = frame(e)
e = pb.Envelope()
e.hello_reply.acked_seq = 5
e.hello_reply.acked_version = (1700000000000 << 16) | 1
e.hello_reply.max_frame = 1 << 22
e.hello_reply.directives.add(key_id="federal-2026", body=b"\x08\x01", signature=bytes(64))
seeds["hello_reply_v2"] = frame(e)
# Regressions: inputs that once broke fuzz_envelope's re-encoding property, kept so that the
# short fuzz run of make test starts with them. A HelloReply holding a field whose tag varint
# is padded (0x80 0x00: field number 0, varint 1): protobuf-c keeps it as an unknown field and
# writes it back as 0x00, which it then refuses, so frame_unpack must refuse the input.
seeds["regress_padded_field_number_0"] = struct.pack(">I", 5) + bytes([0x12, 3, 0x80, 0x00, 1])

os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote", len(seeds), "seeds to", out)
