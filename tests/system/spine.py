"""Shared steps of the spine tests: load a generated caseload into a real node, and compare
what the hub holds with the generator's ground truth."""
import json
import os
import sqlite3
import urllib.error
import urllib.request

import openapi

from harness import pb

KIND_PERSON = 1
KIND_SERVICE = 2


def http(node, method, path, token, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (node.http_port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    # Every JSON answer of the node is checked against docs/openapi/node.json.
    if data and ctype.startswith("application/json"):
        openapi.check("node", method, path, status, json.loads(data))
    return status, data


def node_versions(node):
    c = sqlite3.connect("file:%s?mode=ro" % node.db, uri=True, timeout=10)
    try:
        return {bytes(i): v for i, v in c.execute("SELECT id, version FROM records")}
    finally:
        c.close()


def check_hub_matches(hub, node, caseload):
    """Every record of the caseload is at the hub in its newest content, deletions are
    tombstones, and the hub holds nothing else for this municipality."""
    ids = node.ids()
    stored = hub.records(node.municipality)
    expected_ids = set()
    problems = []
    for kind, src, exp in ((KIND_PERSON, caseload.persons, caseload.expected_person),
                           (KIND_SERVICE, caseload.services, caseload.expected_service)):
        name = "person" if kind == KIND_PERSON else "service"
        for lid, row in src.items():
            rid = ids.get((kind, lid))
            if rid is None:
                problems.append("%s %s has no id at the node" % (name, lid))
                continue
            expected_ids.add(rid)
            got = stored.get(rid)
            if got is None:
                problems.append("%s %s missing at the hub" % (name, lid))
                continue
            mun, k, ver, deleted, rec = got
            if (name, lid) in caseload.deleted:
                if not deleted or rec.WhichOneof("body") != "tombstone":
                    problems.append("%s %s should be deleted" % (name, lid))
                continue
            if deleted:
                problems.append("%s %s deleted at the hub" % (name, lid))
                continue
            body = getattr(rec, name)
            for field, want in exp(row).items():
                if getattr(body, field) != want:
                    problems.append("%s %s: %s is %r, expected %r"
                                    % (name, lid, field, getattr(body, field), want))
            if kind == KIND_SERVICE:
                if body.person_id != ids[(KIND_PERSON, row["person_local_id"])]:
                    problems.append("service %s points to the wrong person" % lid)
    extra = set(stored) - expected_ids
    if extra:
        problems.append("%d records at the hub that the generator never made" % len(extra))
    versions = node_versions(node)
    stale = [rid for rid in expected_ids if rid in stored and stored[rid][2] != versions.get(rid)]
    if stale:
        problems.append("%d records at the hub are not the node's newest version" % len(stale))
    assert not problems, "\n".join(problems[:30]) + ("\n... %d problems" % len(problems))
    return len(expected_ids)
