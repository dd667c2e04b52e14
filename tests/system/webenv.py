"""A provincial hub and a municipal node serving the clerks' workspace, for the browser and
security tests of the pages (test_web.py, test_web_security.py): plain HTTP on loopback, or
HTTPS with a web certificate from deploy/pki.sh's web CA (as test_node_https.py makes one)."""
import datetime
import http.client
import json
import os
import re
import shutil
import ssl
import tempfile
import types

import bs
import openapi
from gen import nepal_today
from harness import ROOT, Hub, Node, free_port, run, wait_for

PKI_SH = os.path.join(ROOT, "deploy", "pki.sh")
WEB_DOMAIN = "mrc.reintegration.internal"
NODE_ADDR = "127.0.0.2"
PASSWORD = "correct horse battery staple"
KIND = {"person": 1, "service": 2, "enterprise": 3, "availability": 4, "month_close": 5}


def web_pki(d):
    run([PKI_SH, "web-init", d, WEB_DOMAIN])
    run([PKI_SH, "web-issue", d, "10703", "dhankuta." + WEB_DOMAIN, NODE_ADDR])
    return types.SimpleNamespace(ca=os.path.join(d, "web", "web-ca.crt"),
                                 cert=os.path.join(d, "web", "node-10703.crt"),
                                 key=os.path.join(d, "web", "node-10703.key"))


class Web:
    """hub, node (serving), token, base URL; stop() ends both and removes the directory."""

    def __init__(self, pki, https=False, hooks=()):
        self.dir = tempfile.mkdtemp(prefix="reint-web-")
        self.pki = pki
        self.hub = Hub(self.dir, pki, 1)
        # The province's reviewer, who returns and approves the node's closed months (the
        # hub reads its tokens when it starts).
        self.reviewer = run([os.path.join(ROOT, "build", "bin", "provincial-hub"), "--config",
                             self.hub.config, "token", "reviewer-koshi", "--role",
                             "reviewer"]).stdout.strip()
        self.hub.start()
        self.node = Node(self.dir, pki, 10703, self.hub)
        self.https = https
        if https:
            self.webpki = web_pki(os.path.join(self.dir, "webpki"))
            port = free_port()
            with open(self.node.config) as f:
                text = f.read()
            for k, v in (("http_listen", "%s:%d" % (NODE_ADDR, port)),
                         ("https_cert", self.webpki.cert), ("https_key", self.webpki.key)):
                text, n = re.subn(r"(?m)^%s = .*$" % k, "%s = %s" % (k, v), text)
                assert n == 1, k
            with open(self.node.config, "w") as f:
                f.write(text)
            self.node.http_port = port
            self.host = NODE_ADDR
        else:
            self.host = "127.0.0.1"
        self.token = self.node.cli("token", "asha").stdout.strip()
        r = run([os.path.join(ROOT, "build", "bin", "municipal-node"), "--config",
                 self.node.config, "password", "asha"], input=PASSWORD + "\n")
        assert "can sign in" in r.stdout, r.stdout
        self.node.hooks = list(hooks)
        self.node.serve()
        self.base = "%s://%s:%d" % ("https" if https else "http", self.host, self.node.http_port)

    def stop(self):
        for p in (self.node.server, self.hub):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - tear-down goes on
                if p:
                    p.kill9()
        if os.environ.get("KEEP_TEST_DIRS"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP without a browser ----

    def request(self, method, path, body=None, headers=None):
        """(status, headers, parsed JSON or text) of one request; body: dict (JSON) or
        bytes."""
        if self.https:
            ctx = ssl.create_default_context(cafile=self.webpki.ca)
            c = http.client.HTTPSConnection(self.host, self.node.http_port, context=ctx,
                                            timeout=15)
        else:
            c = http.client.HTTPConnection(self.host, self.node.http_port, timeout=15)
        h = dict(headers or {})
        data = body
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
            hdrs = r.headers
            status = r.status
        finally:
            c.close()
        if hdrs.get("Content-Type", "").startswith("application/json") and text:
            parsed = json.loads(text)
            # Every JSON answer of the node's API is checked against docs/openapi/node.json
            # (the pages' own files, such as the catalogues, are not the API).
            if path.startswith("/v1/") or path.split("?")[0] == "/bscal.json":
                openapi.check("node", method, path, status, parsed)
            return status, hdrs, parsed
        return status, hdrs, text

    def sign_in(self):
        """(cookie header value, csrf token) of a new session."""
        status, hdrs, body = self.request("POST", "/v1/session", {"token": self.token})
        assert status == 200, body
        cookie = hdrs["Set-Cookie"].split(";")[0]
        return cookie, body["csrf"]

    # ---- what reached the hub ----

    def hub_call(self, method, path, body=None):
        """(status, parsed JSON) of the reviewer's request to the hub's HTTPS API."""
        ctx = ssl.create_default_context(cafile=self.pki.path("ca.crt"))
        c = http.client.HTTPSConnection("127.0.0.1", self.hub.https_port, context=ctx,
                                        timeout=15)
        h = {"Authorization": "Bearer " + self.reviewer}
        if body is not None:
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=json.dumps(body).encode() if body is not None
                      else None, headers=h)
            r = c.getresponse()
            status, text = r.status, r.read().decode()
        finally:
            c.close()
        return status, json.loads(text) if text.startswith("{") else text

    def hub_review(self, period, pred, what, timeout=60):
        """The hub's review row of the node's month once pred holds of it."""
        got = {}

        def ok():
            status, body = self.hub_call("GET", "/v1/reviews?period=" + period)
            assert status == 200, body
            got["r"] = {r["municipality"]: r for r in body["rows"]}.get(10703)
            return got["r"] is not None and pred(got["r"])
        try:
            wait_for(ok, timeout, what)
        except AssertionError:
            raise AssertionError("%s; the hub's row: %r" % (what, got.get("r")))
        return got["r"]

    def node_month(self, period):
        """The node's month (a row of GET /v1/months), or None."""
        status, _, body = self.request("GET", "/v1/months",
                                       headers={"Authorization": "Bearer " + self.token})
        assert status == 200, body
        return next((m for m in body["months"] if m["period"] == period), None)

    def hub_record(self, kind, local_id):
        """The hub's (municipality, kind, version, deleted, Record) of the node's record, or
        None."""
        rid = self.node.ids().get((KIND[kind], local_id))
        if rid is None:
            return None
        return self.hub.records(10703).get(rid)

    def wait_hub(self, kind, local_id, pred=lambda r: True, timeout=60):
        got = {}

        def ok():
            r = self.hub_record(kind, local_id)
            if r is not None and pred(r):
                got["r"] = r
                return True
            return False
        wait_for(ok, timeout, "%s %s at the hub" % (kind, local_id))
        return got["r"]


def today_bs():
    """The node's today, in BS: Nepal's day, whatever this machine's time zone."""
    return bs.ad_to_bs(nepal_today())


def bs_month(y, m):
    return y * 100 + m


def previous_bs_month():
    y, m, _ = today_bs()
    return (y, m - 1) if m > 1 else (y - 1, 12)


def fiscal_year_of(y, m):
    """The BS year a fiscal year starts in (1 Shrawan, month 4)."""
    return y if m >= 4 else y - 1
