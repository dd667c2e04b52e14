"""The audit cannot be emptied (issue 18): a query is audited whole (a refused one as
received, an accepted one in its one normalised spelling), empty '&' segments and other
malformed queries are refused, the hub audits its officers' reads in a table of its own that
only the admin role reads, its failed tokens are limited like the federal tier's and written
in batches, a token removed from its file is refused on a kept-alive connection, and the
hub's reports run off the ingest loop.

Ground truth is what each test sends; the audit is read back through each tier's own
GET /v1/audit (admin role)."""
import http.client
import os
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest

import openapi
from fedclient import Federal
from harness import BIN, Hub, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)
from test_gaps import FreshDatabase

PATH = "/v1/indicators/participants_registered"


def padded_query(head, tail, size):
    """head + "&" * k + tail of exactly size bytes: the padding that hid a query's area."""
    k = size - len(head) - len(tail)
    assert k > 0
    return head + "&" * k + tail


class Api:
    """GET with a raw (unencoded) path and query on an HTTPS API."""

    def __init__(self, port, ca, api):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.api = api  # "federal" or "hub": the docs/openapi document its answers must match

    def get(self, target, token=None):
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, target))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                status, body, hdrs = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, body, hdrs = e.code, e.read().decode(), e.headers
        return status, openapi.answer(self.api, "GET", target, status, body), hdrs

    def audit(self, token, limit=1000):
        st, body, _ = self.get("/v1/audit?limit=%d" % limit, token)
        assert st == 200, body
        return body["audit"]


# ---- the federal tier ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def fed(pki, postgres, tmp_path_factory):  # noqa: F811
    pki.issue("federal")
    f = Federal(str(tmp_path_factory.mktemp("fedaudit")), pki, FreshDatabase(postgres)).start()
    f.api = Api(f.https_port, pki.path("ca.crt"), "federal")
    f.reader = f.token("ministry", "audit-reader")
    f.admin = f.token("admin", "audit-admin")
    yield f
    f.stop()


def fed_rows(fed, who):
    return [r for r in fed.api.audit(fed.admin) if r["who"] == who]


def test_federal_audits_a_1024_byte_query_whole(fed):
    q = padded_query("period=2026-07&by=sex&", "municipality=10101", 1024)
    st, body, _ = fed.api.get(PATH + "?" + q, fed.reader)
    assert st == 400 and "empty parameter" in body["error"], body
    # Past the parser's maximum it is refused too, and still audited whole.
    q2 = padded_query("period=2026-07&by=sex&", "municipality=10102", 2000)
    st, body, _ = fed.api.get(PATH + "?" + q2, fed.reader)
    assert st == 400 and "longer than 1024" in body["error"], body
    targets = [r["target"] for r in fed_rows(fed, "audit-reader") if r["status"] == 400]
    assert PATH + "?" + q in targets
    assert PATH + "?" + q2 in targets


def test_federal_audits_an_accepted_query_in_its_one_spelling(fed):
    st, body, _ = fed.api.get(PATH + "?%70eriod=2026%2D07&by=sex&municipality=1010%31",
                              fed.reader)
    assert st == 200, body
    rows = fed_rows(fed, "audit-reader")
    assert rows[0]["target"] == PATH + "?period=2026-07&by=sex&municipality=10101", rows[0]
    assert rows[0]["status"] == 200 and rows[0]["attempts"] == 1
    assert rows[0]["token_prefix"] is None


def test_federal_refuses_empty_segments_and_malformed_queries(fed):
    for q in ("period=2026-07&&by=sex", "&period=2026-07", "period=2026-07&", "period=2026-07&by",
              "period=2026-07&=sex", "period=2026-07&by=sex&by=sex", "period=2026+07",
              "period=2026-07&by=sex%3B"):
        st, body, _ = fed.api.get(PATH + "?" + q, fed.reader)
        assert st == 400 and "rows" not in body, (q, body)


# ---- the hub ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hub(pki, tmp_path_factory):
    h = Hub(str(tmp_path_factory.mktemp("hubaudit")), pki, 1)
    tok = {}
    for name, role in (("olga", None), ("rita", "reviewer"), ("adam", "admin")):
        args = [os.path.join(BIN, "provincial-hub"), "--config", h.config, "token", name]
        if role:
            args += ["--role", role]
        tok[name] = run(args).stdout.strip()
    h.tokens = tok
    h.tokens_file = os.path.join(h.dir, "tokens")
    h.start()
    h.api = Api(h.https_port, pki.path("ca.crt"), "hub")
    yield h
    h.stop()


def hub_rows(hub, who=None):
    rows = hub.api.audit(hub.tokens["adam"])
    return [r for r in rows if who is None or r["who"] == who]


def test_each_api_serves_its_openapi_document_as_in_docs(fed, hub):
    """GET /v1/openapi.json is the file compiled in, byte for byte equal as JSON, for every
    role; on the hub (docs/openapi/hub.json) it needs a token like every /v1 route, and the
    read is audited."""
    st, served, _ = fed.api.get("/v1/openapi.json", fed.reader)
    assert st == 200 and served == openapi.document("federal")
    for name in ("olga", "rita", "adam"):
        st, served, _ = hub.api.get("/v1/openapi.json", hub.tokens[name])
        assert st == 200 and served == openapi.document("hub"), name
    st, body, hdrs = hub.api.get("/v1/openapi.json")
    assert st == 401 and hdrs["WWW-Authenticate"] == "Bearer", body
    st, body, _ = hub.api.get("/v1/openapi.json?x=1", hub.tokens["olga"])
    assert st == 400 and "not accepted" in body["error"], body
    assert any(r["target"] == "/v1/openapi.json" and r["status"] == 200
               for r in hub_rows(hub, "olga"))


def test_token_roles_are_named_when_a_token_is_created(hub):
    with open(hub.tokens_file) as f:
        lines = {ln.split()[0]: ln.split() for ln in f if ln.strip()}
    assert len(lines["olga"]) == 2  # an officer's line has no role: older files stay valid
    assert lines["rita"][2] == "reviewer" and lines["adam"][2] == "admin"
    bad = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config, "token", "x",
               "--role", "emperor"], check=False)
    assert bad.returncode == 2 and "officer, reviewer or admin" in bad.stderr
    assert run([os.path.join(BIN, "provincial-hub"), "--config", hub.config, "--role", "admin"],
               check=False).returncode == 2


def test_hub_audits_reads_with_who_role_and_normalised_target(hub):
    a = hub.api
    st, body, _ = a.get("/v1/gaps?%70eriod=FY2082%2F83&sort=-participants_registered",
                        hub.tokens["olga"])
    assert st == 200 and len(body["rows"]) == 137, body
    st, body, _ = a.get(PATH + "?period=2026&by=sex&municipality=10703", hub.tokens["rita"])
    assert st == 200 and body["by"] == "sex", body
    st, _, _ = a.get("/v1/indicators", hub.tokens["olga"])
    assert st == 200
    st, body, _ = a.get(PATH + "?period=2026&by=caste_group,sex", hub.tokens["olga"])
    assert st == 400, body
    rows = hub_rows(hub)
    got = [(r["who"], r["role"], r["method"], r["target"], r["status"]) for r in rows[:4]]
    assert got == [
        ("olga", "officer", "GET", PATH + "?period=2026&by=caste_group,sex", 400),
        ("olga", "officer", "GET", "/v1/indicators", 200),
        ("rita", "reviewer", "GET", PATH + "?period=2026&by=sex&municipality=10703", 200),
        ("olga", "officer", "GET", "/v1/gaps?period=FY2082/83&sort=-participants_registered", 200),
    ], got
    assert all(r["attempts"] == 1 and r["token_prefix"] is None and r["first_at"] is None
               and r["peer"].startswith("127.0.0.1:") and r["at"].endswith("Z")
               for r in rows[:4]), rows[:4]
    # The admin's read of the audit is audited too, once it is answered.
    r = hub_rows(hub)[0]
    assert (r["who"], r["role"], r["target"], r["status"]) == \
        ("adam", "admin", "/v1/audit?limit=1000", 200)


def test_only_the_admin_role_reads_the_hub_audit(hub):
    for name in ("olga", "rita"):
        st, body, _ = hub.api.get("/v1/audit", hub.tokens[name])
        assert st == 403 and "audit" not in body, body
    rows = hub_rows(hub)
    refusals = [(r["who"], r["status"]) for r in rows if r["target"] == "/v1/audit"]
    assert ("olga", 403) in refusals and ("rita", 403) in refusals
    st, body, _ = hub.api.get("/v1/audit")
    assert st == 401


def test_hub_refuses_empty_segments_and_audits_a_1024_byte_query_whole(hub):
    a, tok = hub.api, hub.tokens["olga"]
    for q in ("period=FY2082/83&&sort=code", "&period=FY2082/83", "period=FY2082/83&",
              "period", "period=2026&period=2025", "period=2026&bogus=1", "format=xml"):
        st, body, _ = a.get("/v1/gaps?" + q, tok)
        assert st == 400 and "rows" not in body, (q, body)
    q = padded_query("period=2026&by=sex&", "municipality=10703", 1024)
    st, body, _ = a.get(PATH + "?" + q, tok)
    assert st == 400 and "empty parameter" in body["error"], body
    q2 = padded_query("period=2026&by=sex&", "municipality=10101", 3000)
    st, body, _ = a.get(PATH + "?" + q2, tok)
    assert st == 400
    targets = [r["target"] for r in hub_rows(hub, "olga") if r["status"] == 400]
    assert PATH + "?" + q in targets and PATH + "?" + q2 in targets


def test_hub_limits_failed_tokens_and_never_a_valid_one(hub):
    """Per (address, token prefix), 20 failures a minute: a client holding a wrong copy of
    olga's token (her prefix) is held off with 429 while olga, from the same address, is
    served; the attempts reach the audit as a few rows counting them."""
    good = hub.tokens["olga"]
    bad = good[:8] + ("0" if good[8] != "0" else "1") * (len(good) - 8)
    conn = KeepAlive(hub.https_port, hub.api.ctx)
    try:
        got = [conn.get("/v1/gaps", bad) for _ in range(22)]
        assert [st for st, _ in got] == [401] * 20 + [429] * 2
        assert 1 <= int(got[20][1]["Retry-After"]) <= 60
        assert got[0][1]["WWW-Authenticate"] == "Bearer"
        assert conn.get("/v1/gaps", good)[0] == 200
        # No token at all is another pair.
        assert conn.get("/v1/indicators")[0] == 401
    finally:
        conn.close()

    def counted():
        rows = [r for r in hub_rows(hub, "-") if r["token_prefix"] == good[:8]]
        return {st: sum(r["attempts"] for r in rows if r["status"] == st) for st in (401, 429)}
    wait_for(lambda: counted() == {401: 20, 429: 2}, 30, "the attempts to reach the audit")
    rows = [r for r in hub_rows(hub, "-") if r["token_prefix"] == good[:8]]
    assert len(rows) < 22
    assert all(r["role"] == "none" and r["target"] == "/v1/gaps" and r["peer"] == "127.0.0.1"
               and r["first_at"] <= r["at"] for r in rows), rows


class KeepAlive:
    def __init__(self, port, ctx):
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)

    def get(self, path, token=None):
        self.conn.request("GET", path,
                          headers={"Authorization": "Bearer " + token} if token else {})
        r = self.conn.getresponse()
        r.read()
        return r.status, r.headers

    def local_port(self):
        return self.conn.sock.getsockname()[1]

    def close(self):
        self.conn.close()


def test_a_removed_token_is_refused_on_its_kept_alive_connection(hub):
    leaver = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config, "token",
                  "leaver"]).stdout.strip()
    os.kill(hub.proc.pid, 1)  # SIGHUP: the new token is read
    wait_for(lambda: hub.api.get("/v1/indicators", leaver)[0] == 200, 10, "the new token")
    conn = KeepAlive(hub.https_port, hub.api.ctx)
    try:
        assert conn.get("/v1/gaps", leaver)[0] == 200
        port = conn.local_port()
        with open(hub.tokens_file) as f:
            kept = [ln for ln in f if not ln.startswith("leaver ")]
        with open(hub.tokens_file, "w") as f:
            f.writelines(kept)
        n = hub.log_text().count("tokens reloaded")
        os.kill(hub.proc.pid, 1)
        wait_for(lambda: hub.log_text().count("tokens reloaded") > n, 10, "the reload")
        st, hdrs = conn.get("/v1/gaps", leaver)
        assert st == 401 and hdrs["WWW-Authenticate"] == "Bearer"
        assert conn.local_port() == port, "the same connection, kept alive"
        assert conn.get("/v1/gaps", hub.tokens["olga"])[0] == 200
        assert conn.local_port() == port
    finally:
        conn.close()


def test_the_tokens_file_is_read_again_when_it_changes_without_a_signal(hub):
    """A token made with `provincial-hub token` while the hub ran was refused until someone
    sent SIGHUP, and a line removed from the file stayed valid until then. The hub now
    watches the file: the new token is taken, and the removed one refused, without a signal.
    A change that only adds tokens leaves the officers' sessions alone."""
    n = hub.log_text().count("tokens reloaded")
    newcomer = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config, "token",
                    "newcomer"]).stdout.strip()
    wait_for(lambda: hub.api.get("/v1/indicators", newcomer)[0] == 200, 10, "the new token")
    assert hub.log_text().count("tokens reloaded") > n
    with open(hub.tokens_file) as f:
        kept = [ln for ln in f if not ln.startswith("newcomer ")]
    with open(hub.tokens_file + ".new", "w") as f:
        f.writelines(kept)
    os.rename(hub.tokens_file + ".new", hub.tokens_file)
    wait_for(lambda: hub.api.get("/v1/indicators", newcomer)[0] == 401, 10,
             "the removed token refused")
    assert hub.api.get("/v1/indicators", hub.tokens["olga"])[0] == 200
    # Rewritten in place with a pause: while the file is empty the tokens stay valid.
    with open(hub.tokens_file) as f:
        text = f.read()
    with open(hub.tokens_file, "w") as f:
        f.flush()
        time.sleep(0.6)
        assert hub.api.get("/v1/indicators", hub.tokens["olga"])[0] == 200
        f.write(text)
    time.sleep(0.5)
    assert hub.api.get("/v1/indicators", hub.tokens["olga"])[0] == 200


def _hub_token(hub, *args, check=True):
    return run([os.path.join(BIN, "provincial-hub"), "--config", hub.config, "token"] +
               list(args), check=check)


def test_a_token_counts_from_the_next_request_and_replace_and_revoke_withdraw_it(hub):
    """The operator's F17: a token was refused for about 0.2 s after `token` returned (until
    the file's watch fired), and there was no way to withdraw or rotate one but editing the
    file by hash. The hub now reads the file again when it changed, before the check, and
    `token NAME --replace` or `--revoke` rewrites it (its mode and owner kept)."""
    for i in range(5):
        t = _hub_token(hub, "quick%d" % i).stdout.strip()
        assert hub.api.get("/v1/indicators", t)[0] == 200, i  # at once, no wait
    first = _hub_token(hub, "adm2", "--role", "admin").stdout.strip()
    assert hub.api.get("/v1/audit?limit=1", first)[0] == 200
    os.chmod(hub.tokens_file, 0o640)  # a group that runs the hub: kept by the rewrites
    r = _hub_token(hub, "adm2", "--replace")
    second = r.stdout.strip()
    assert "1 token of adm2 withdrawn; the new one (admin) follows" in r.stderr, r.stderr
    assert hub.api.get("/v1/audit?limit=1", first)[0] == 401
    assert hub.api.get("/v1/audit?limit=1", second)[0] == 200  # the role kept: admin
    r = _hub_token(hub, "adm2", "--revoke")
    assert r.stdout == "" and "1 token of adm2 withdrawn" in r.stderr, (r.stdout, r.stderr)
    assert hub.api.get("/v1/audit?limit=1", second)[0] == 401
    r = _hub_token(hub, "adm2", "--revoke", check=False)
    assert r.returncode == 2 and "holds no token of adm2" in r.stderr, r.stderr
    # A second token for a name is said (the first stays valid); a rotation of tokens of two
    # roles asks which one the new token gets (it took the last line's: an operator's attack).
    _hub_token(hub, "mix2", "--role", "reviewer")
    r = _hub_token(hub, "mix2", "--role", "admin")
    assert "mix2 already had 1 token (reviewer); this adds another" in r.stderr, r.stderr
    r = _hub_token(hub, "mix2", "--replace", check=False)
    assert r.returncode == 2 and "several roles (reviewer, admin)" in r.stderr, r.stderr
    r = _hub_token(hub, "mix2", "--replace", "--role", "reviewer")
    assert "2 tokens of mix2 withdrawn; the new one (reviewer) follows" in r.stderr, r.stderr
    assert hub.api.get("/v1/audit?limit=1", r.stdout.strip())[0] == 403  # a reviewer's
    _hub_token(hub, "mix2", "--revoke")
    assert os.stat(hub.tokens_file).st_mode & 0o777 == 0o640
    assert hub.api.get("/v1/indicators", hub.tokens["olga"])[0] == 200
    # A new file written in steps (rm, then an editor writing it): caught half-written by a
    # request, it is looked at again later, not taken (the second review: every officer was
    # refused and signed out).
    with open(hub.tokens_file) as f:
        text = f.read()
    os.unlink(hub.tokens_file)
    with open(hub.tokens_file, "w") as f:
        f.write(text[:30])  # olga's line cut inside its hash
        f.flush()
        assert hub.api.get("/v1/indicators", hub.tokens["olga"])[0] == 200
        f.seek(0)
        f.truncate()
        f.write(text)
    os.chmod(hub.tokens_file, 0o640)
    assert hub.api.get("/v1/indicators", hub.tokens["olga"])[0] == 200
    with open(hub.tokens_file) as f:
        names = [ln.split()[0] for ln in f if ln.strip()]
    assert "adm2" not in names and names[:3] == ["olga", "rita", "adam"], names


def test_hub_reports_run_off_the_ingest_loop(pki, workdir, procs):
    """A report held for 8 s (test fault report_slow) in the thread pool: meanwhile the loop
    that runs the ingest answers /metrics and another officer's request, and the held report
    then answers what an unheld one does."""
    h = Hub(workdir, pki, 1)
    tok = run([os.path.join(BIN, "provincial-hub"), "--config", h.config, "token",
               "o"]).stdout.strip()
    procs.append(h.start("--enable-test-hooks", "--test-fault", "report_slow"))
    api = Api(h.https_port, pki.path("ca.crt"), "hub")
    done = []
    slow = threading.Thread(target=lambda: done.append(api.get("/v1/gaps?period=2026", tok)))
    slow.start()
    try:
        wait_for(lambda: h.metrics()["test_faults_fired_total"] == 1, 10, "the report to be held")
        assert h.metrics()["hub_connected"] == 0  # the loop answers while the report is held
        st, body, _ = api.get(PATH + "?period=2026&by=sex", tok)
        assert st == 200 and body["by"] == "sex"
        assert not done, "the held report must still be running"
    finally:
        slow.join(timeout=60)
    assert done and done[0][0] == 200, done
    st, again, _ = api.get("/v1/gaps?period=2026", tok)
    assert st == 200 and done[0][1] == again
