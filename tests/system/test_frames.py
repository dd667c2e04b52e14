"""Frame limits on real processes (protocol version 2): every batch stays below the
receiver's frame limit, which it announces in its HelloReply. A snapshot larger than the
federal tier's frames travels in parts and arrives whole, with the national figures exact; a
record larger than the hub's frames is filed as a dead letter at the node, shown by the hub
(/metrics, dead letters) and the federal coverage, while the rest flows and nothing is sent
again and again."""
import os
import time

from fedclient import Federal
from gen import Caseload
from harness import BIN, Hub, Node, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from test_chain import FreshDatabase, load, settle
from test_gaps import Officer


def _chain_loaded(pki, workdir, procs, fed, seed, persons):
    """fed (configured, not started) started, the hub of province 1 sending to it, and node
    10703 loaded with a caseload of about `persons` people and synced: (hub, caseload)."""
    pki.issue("federal")
    procs.append(fed.start())
    hub = Hub(workdir, pki, 1).configure("[uplink]\nfederal = 127.0.0.1:%d\n" % fed.sync_port)
    procs.append(hub.start())
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, seed)
    load(node, cl, workdir, persons)
    node.sync()
    return hub, cl


def test_snapshot_above_the_federal_frame_limit_arrives_in_parts(pki, workdir, procs,
                                                                 postgres):  # noqa: F811
    fed = Federal(workdir, pki, FreshDatabase(postgres))
    fed.configure("[federal]\nmax_frame = 4096\n")
    hub, cl = _chain_loaded(pki, workdir, procs, fed, 51, 900)
    settle(fed, fed.token("ministry", "frames-%d" % time.time_ns()), [cl])

    def idle():
        m = hub.metrics()
        return m["hub_uplink_backlog"] == 0 and m["hub_rollup_dirty"] == 0 and \
            m["hub_rollup_queue"] == 0
    wait_for(idle, 60, "the rollups and the uplink to finish")
    parts = hub.metrics()["hub_uplink_parts_sent_total"]
    assert parts >= 2, "no snapshot was large enough to need parts; make the caseload larger"
    # Nothing is resent once everything is acknowledged.
    time.sleep(2)
    assert hub.metrics()["hub_uplink_parts_sent_total"] == parts
    assert fed.metrics()["federal_ingest_protocol_errors_total"] == 0
    assert hub.metrics()["hub_uplink_refusals_total"] == 0


def test_a_snapshot_the_federal_tier_refuses_is_counted_at_the_hub(pki, workdir, procs,
                                                                    postgres):  # noqa: F811
    """A review found that a snapshot the federal tier refused (a catalogue it does not know,
    too many cells) was only logged at the hub, which moved past it while the federal tier
    kept the previous figures: an operator could not see it but in the log. /metrics now
    counts it (a test hook makes the federal tier refuse one snapshot)."""
    fed = Federal(workdir, pki, FreshDatabase(postgres))
    fed.hooks = ["--enable-test-hooks", "--test-fault", "ingest_refuse_snapshot:1"]
    hub, _ = _chain_loaded(pki, workdir, procs, fed, 53, 30)
    wait_for(lambda: "federal tier refused snapshot at sequence" in hub.log_text(), 60,
             "the federal tier's refusal")
    assert hub.metrics()["hub_uplink_refusals_total"] == 1


def test_record_above_the_hub_frame_limit_is_a_dead_letter_shown_upstream(pki, workdir, procs,
                                                                          postgres):  # noqa: F811
    pki.issue("federal")
    fed = Federal(workdir, pki, FreshDatabase(postgres)).start()
    procs.append(fed)
    token = fed.token("ministry", "frames-%d" % time.time_ns())
    hub = Hub(workdir, pki, 1).configure("[hub]\nmax_frame = 4096\n[uplink]\nfederal = "
                                         "127.0.0.1:%d\n" % fed.sync_port)
    officer = Officer(hub, pki, run([os.path.join(BIN, "provincial-hub"), "--config",
                                     hub.config, "token", "officer"]).stdout.strip())
    procs.append(hub.start())
    node = Node(workdir, pki, 10703, hub)
    cl = Caseload(10703, 52)
    for _ in range(300):
        cl.new_person()
    path = os.path.join(workdir, "p.csv")
    cl.write_csv(path, "persons")
    # The 7th record the import writes is padded past any frame (a test-only hook).
    node.hooks = ["--enable-test-hooks", "--test-fault", "outbox_oversize_record:7"]
    node.import_csv("persons", path)
    node.hooks = []
    node.sync()
    st = node.status()
    assert st["backlog"] == 0 and st["dead_letters"] == 1, st
    stored = hub.records(10703)
    assert len(stored) == 299  # the rest flowed
    m = hub.metrics()
    assert m["hub_records_dropped_total"] == 1
    # Nothing loops: a second sync sends nothing, the hub counts no new batch.
    batches = m["hub_batches_total"]
    node.sync()
    assert hub.metrics()["hub_batches_total"] == batches
    assert node.status()["dead_letters"] == 1
    # The officers' gap report shows it for the municipality, with its reason.
    row = officer.rows()[10703]
    assert row["dead_letters"] == 1, row
    assert "frame limit" in row["dead_letters_last_reason"], row
    # The federal coverage names the municipality's dead letter.

    def covered():
        st, body, _ = fed.get("/v1/coverage?province=1", token)
        assert st == 200, body
        rows = {r["municipality"]: r for r in body["municipalities"]}
        return 10703 in rows and rows[10703]["dead_letters"] == 1 and \
            rows[10703]["records"] == 299
    wait_for(covered, 30, "the federal coverage to show the dead letter")
