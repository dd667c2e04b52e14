#!/usr/bin/env python3
"""Prints the demo's national table from the federal API (as a ministry analyst would read
it), beside the generator's own ground truth, after waiting until they agree: participants
registered in the current fiscal year by province and sex, and enterprises supported by
sector. Exits 1 if the federal figures do not reach the ground truth in time."""
import datetime
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from caseload import fiscal_year  # noqa: E402

NAMES = {1: "Koshi", 2: "Madhesh", 3: "Bagmati", 4: "Gandaki", 5: "Lumbini", 6: "Karnali",
         7: "Sudurpashchim"}
SEXES = ["FEMALE", "MALE", "OTHER"]


def load_env(demo):
    env = {}
    with open(os.path.join(demo, "env")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def query(env, ctx, code, **params):
    url = "%s/v1/indicators/%s?%s" % (env["FEDERAL_URL"], code, urllib.parse.urlencode(params))
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + env["FEDERAL_TOKEN"]})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        a = json.loads(r.read())
    dims = a.get("dimensions", [])
    return {tuple(row[d] for d in dims): row["value"] for row in a["rows"]}, a


def publish_directive_once(env, ctx, demo):
    """The downward half of the loop: an admin publishes a signed directive (once per demo
    state), the hubs and nodes verify it, and Dhankuta's node lists who is eligible."""
    auth = {"Authorization": "Bearer " + env["FEDERAL_ADMIN_TOKEN"]}
    req = urllib.request.Request(env["FEDERAL_URL"] + "/v1/directives", headers=auth)
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        listed = json.loads(r.read())
    items = listed.get("directives", listed if isinstance(listed, list) else [])
    if not items:
        today = datetime.date.today()
        body = {"title": "Seed funding: returnees and migrant families aged 18-45 first",
                "text": "Municipalities prioritise returnees and families of migrants aged 18 to "
                        "45 for seed funding this fiscal year.",
                "effective_from": (today - datetime.timedelta(days=1)).isoformat(),
                "eligibility": {"categories": ["RETURNEE", "MIGRANT_FAMILY"], "min_age": 18,
                                "max_age": 45}}
        req = urllib.request.Request(env["FEDERAL_URL"] + "/v1/directives", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers=dict(auth, **{"Content-Type": "application/json"}))
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            json.loads(r.read())
    import subprocess
    node = [os.path.join(ROOT, "build", "bin", "municipal-node"), "--config",
            env["NODE_10703_CONFIG"], "directives"]
    out = ""
    for _ in range(60):
        out = subprocess.run(node, capture_output=True, text=True).stdout
        if "eligible" in out and "no directives" not in out:
            break
        time.sleep(0.5)
    lines = [l for l in out.splitlines() if not l.startswith("    eligible:")]
    print("\nA national directive, signed at the federal tier, as Dhankuta's node lists it:\n")
    print("\n".join("  " + l for l in lines))


def hub_call(env, ctx, province, method, path, body=None):
    url = env["HUB_%d_URL" % province] + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": "Bearer " + env["HUB_%d_REVIEWER_TOKEN" % province],
        "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def return_months(env, ctx, demo, municipalities, timeout=60):
    """The provincial reviewers return the months the generator chose (months_to_return in
    each truth file), once each hub sees them closed, with a question for the clerk: the review
    queues and the clerks' Today pages then look as a real month of review would. Returns the
    months returned and those that could not be."""
    todo = []
    for c in municipalities:
        with open(os.path.join(demo, "caseload", "%s.truth.json" % c)) as f:
            todo += [(int(c), p) for p in json.load(f).get("months_to_return", [])]
    done, failed = [], []
    deadline = time.time() + timeout
    while todo and time.time() < deadline:
        left = []
        for c, period in todo:
            province = int(str(c)[0])
            st, a = hub_call(env, ctx, province, "GET", "/v1/reviews?period=" + period)
            row = next((r for r in a.get("rows", []) if r.get("municipality") == c), None) \
                if st == 200 else None
            if row is None or row.get("state") != "closed":
                left.append((c, period))
                continue
            st, a = hub_call(env, ctx, province, "POST", "/v1/reviews/%d/%s" % (c, period), {
                "decision": "return", "seen_version": row["version"],
                "comment": "Demo: the services of this month look low against the referrals; "
                           "please check and close it again."})
            (done if st == 200 else failed).append((c, period, st))
        todo = left
        if todo:
            time.sleep(1)
    return done, failed + [(c, p, "not closed at the hub") for c, p in todo]


def main(demo, municipalities):
    env = load_env(demo)
    ctx = ssl.create_default_context(cafile=env["CA_CERT"])
    fy = fiscal_year(datetime.date.today())
    truth_sex = {p: {s: 0 for s in SEXES} for p in NAMES}
    truth_sector = {}
    for c in municipalities:
        with open(os.path.join(demo, "caseload", "%s.truth.json" % c)) as f:
            t = json.load(f)
        for s, n in t["registered_by_fy_sex"].get(fy, {}).items():
            truth_sex[int(str(c)[0])][s] += n
        for s, n in t["enterprises_by_fy_sector"].get(fy, {}).items():
            truth_sector[s] = truth_sector.get(s, 0) + n
    got_sex, got_sector = {}, {}
    deadline = time.time() + 180
    while True:
        for p in NAMES:
            m, _ = query(env, ctx, "participants_registered", period=fy, province=p, by="sex")
            got_sex[p] = {s: m.get((s,), 0) for s in SEXES}
        m, _ = query(env, ctx, "enterprises_supported", period=fy, by="sector")
        got_sector = {k[0]: v for k, v in m.items() if v}
        if got_sex == truth_sex and got_sector == truth_sector:
            break
        if time.time() > deadline:
            break
        time.sleep(1)
    ok = got_sex == truth_sex and got_sector == truth_sector
    print("\nParticipants registered in %s (fiscal year, BS), by province and sex" % fy)
    print("from the federal API; the generator's ground truth in brackets where it differs\n")
    print("%-14s %8s %8s %8s %8s" % ("province", "female", "male", "other", "total"))
    tot = [0, 0, 0, 0]
    for p, name in NAMES.items():
        g = [got_sex[p][s] for s in SEXES]
        e = [truth_sex[p][s] for s in SEXES]
        g.append(sum(g))
        e.append(sum(e))
        tot = [a + b for a, b in zip(tot, g)]
        print("%-14s %8s %8s %8s %8s" % tuple([name] + ["%d%s" % (x, "" if x == y else
                                                                    " (%d)" % y)
                                                         for x, y in zip(g, e)]))
    print("%-14s %8d %8d %8d %8d" % tuple(["Nepal"] + tot))
    print("\nEnterprises supported in %s, by sector (national)\n" % fy)
    for s in sorted(set(got_sector) | set(truth_sector)):
        g, e = got_sector.get(s, 0), truth_sector.get(s, 0)
        print("  %-16s %5d%s" % (s, g, "" if g == e else " (%d)" % e))
    print("\n%s" % ("The federal figures equal the ground truth." if ok else
                    "MISMATCH: the federal figures did not reach the ground truth in 180 s."))
    if ok:
        publish_directive_once(env, ctx, demo)
        done, failed = return_months(env, ctx, demo, municipalities)
        print("\nMonths returned for review by the provincial reviewers: %s" % (
            ", ".join("%d %s" % (c, p) for c, p, _ in done) or "none"))
        if failed:
            print("NOT returned: %s" % ", ".join("%d %s (%s)" % x for x in failed))
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
