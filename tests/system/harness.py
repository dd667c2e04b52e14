"""Real processes for system tests: PKI from deploy/pki.sh, provincial hubs and municipal
nodes from build/bin, each on its own free loopback port, torn down by the fixtures."""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "build", "bin")
sys.path.insert(0, os.path.join(ROOT, "build", "gen", "python"))
import reintegration_pb2 as pb  # noqa: E402


_PORTS = random.SystemRandom()
_HANDED = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A loopback port for a daemon to listen on, below the kernel's ephemeral range. A port
    the kernel picked for bind(0) is an ephemeral one: between this check and the daemon's own
    bind, an outgoing connection could be given it, and the daemon then failed with "address
    already in use" (seen now and then in the suite). Never the same port twice in a
    process, since a daemon may not have bound the last one yet."""
    low = _ephemeral_low()
    for _ in range(500):
        port = _PORTS.randrange(10000, max(10001, low))
        if port in _HANDED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def ini_set(path, text):
    """Sets each key of INI text in the file at path: a key already there (in any copy of its
    section) has its line replaced, a new one is added at the end under its section. The
    daemons refuse a key set twice, so a test's settings cannot simply be appended."""
    with open(path) as f:
        lines = f.read().splitlines()
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("["):
            section = line[1:line.index("]")]
            continue
        key = line.split("=", 1)[0].strip()
        cur, done = None, False
        for i, old in enumerate(lines):
            o = old.strip()
            if o.startswith("["):
                cur = o[1:o.index("]")]
            elif cur == section and o.split("=", 1)[0].strip() == key and "=" in o:
                lines[i] = line
                done = True
                break
        if not done:
            lines += ["[%s]" % section, line]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Pki:
    def __init__(self, d):
        self.dir = d
        run([os.path.join(ROOT, "deploy", "pki.sh"), "init", d])

    def issue(self, *ident):
        # --any-code: some tests give a node a code outside the official list on purpose (a
        # municipality no hub knows); test_pki checks the list itself.
        run([os.path.join(ROOT, "deploy", "pki.sh"), "issue", "--any-code", self.dir]
            + list(ident))

    def revoke(self, stem):
        run([os.path.join(ROOT, "deploy", "pki.sh"), "revoke", self.dir, stem])

    def crl(self):
        """A fresh CRL (DIR/crl.pem, replaced by rename)."""
        run([os.path.join(ROOT, "deploy", "pki.sh"), "crl", self.dir])

    def path(self, name):
        return os.path.join(self.dir, name)


class Daemon:
    """A process whose stdout's first line is "ready key=value ..."."""

    proc = None

    def _start(self, args, log):
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.logf)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            self.proc.wait(timeout=10)
            raise AssertionError("%s did not start: %r\n%s" % (args[0], line, self.log_text()))
        return dict(kv.split("=") for kv in line.split()[1:])

    def log_text(self):
        with open(self.logf.name, "rb") as f:
            return f.read().decode(errors="replace")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("did not stop on SIGTERM")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Hub(Daemon):
    def __init__(self, workdir, pki, province, crl=True):
        self.dir = os.path.join(workdir, "hub-%d" % province)
        os.makedirs(self.dir, exist_ok=True)
        self.province = province
        self.sync_port = free_port()
        self.http_port = free_port()
        self.https_port = free_port()
        self.config = os.path.join(self.dir, "hub.ini")
        with open(self.config, "w") as f:
            f.write("[hub]\nprovince = %d\ndata_dir = %s\nsync_listen = 127.0.0.1:%d\n"
                    "http_listen = 127.0.0.1:%d\nhttps_listen = 127.0.0.1:%d\ntokens = %s\n"
                    "[tls]\nca = %s\ncert = %s\nkey = %s\ncrl = %s\n"
                    % (province, os.path.join(self.dir, "data"), self.sync_port,
                       self.http_port, self.https_port, os.path.join(self.dir, "tokens"),
                       pki.path("ca.crt"),
                       pki.path("province-%d.crt" % province),
                       pki.path("province-%d.key" % province),
                       pki.path("crl.pem") if crl else ""))
        self.db = os.path.join(self.dir, "data", "hub.db")

    def start(self, *hooks):
        """hooks: test-only options, e.g. "--enable-test-hooks", "--test-clock", FILE."""
        self._start([os.path.join(BIN, "provincial-hub")] + list(hooks) +
                    ["--config", self.config], os.path.join(self.dir, "hub.log"))
        return self

    def configure(self, text):
        """Sets the INI text's keys before the next start (ini_set)."""
        ini_set(self.config, text)
        return self

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http_port,
                                    timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    k, v = line.split()
                    out[k] = float(v)
            return out

    def records(self, municipality=None):
        """id -> (municipality, kind, version, deleted, Record) as the hub stored them."""
        c = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            q = "SELECT id, municipality, kind, version, deleted, body FROM records"
            args = ()
            if municipality:
                q += " WHERE municipality=?"
                args = (municipality,)
            out = {}
            for rid, mun, kind, ver, deleted, body in c.execute(q, args):
                rec = pb.Record()
                rec.ParseFromString(body)
                out[bytes(rid)] = (mun, kind, ver, deleted, rec)
            return out
        finally:
            c.close()


class Node:
    def __init__(self, workdir, pki, municipality, hub, calendar="BS"):
        self.municipality = municipality
        self.dir = os.path.join(workdir, "node-%d" % municipality)
        self.hub = hub
        self.http_port = free_port()
        run([os.path.join(BIN, "municipal-node"), "init", "--municipality", str(municipality),
             "--dir", self.dir, "--hub", "127.0.0.1:%d" % hub.sync_port, "--pki", pki.dir,
             "--calendar", calendar, "--http-listen", "127.0.0.1:%d" % self.http_port])
        self.config = os.path.join(self.dir, "node.ini")
        # Tests want fast reconnects.
        with open(self.config) as f:
            text = f.read()
        text = text.replace("backoff_cap_ms = 30000", "backoff_cap_ms = 1000")
        text = text.replace('tokens = \n', "tokens = %s\n" % os.path.join(self.dir, "tokens"))
        with open(self.config, "w") as f:
            f.write(text)
        self.db = os.path.join(self.dir, "node.db")
        self.server = None
        # Test hooks for the next commands: e.g. ["--enable-test-hooks", "--test-fault", X].
        self.hooks = []

    def cli(self, *args, check=True, timeout=300):
        return run([os.path.join(BIN, "municipal-node")] + self.hooks +
                   ["--config", self.config] + list(args), check=check, timeout=timeout)

    def import_csv(self, kind, path, check=True):
        return self.cli("import", "--kind", kind, path, check=check)

    def sync(self, timeout=120):
        return self.cli("sync", "--timeout", str(timeout), timeout=timeout + 30)

    def serve(self):
        self.server = Daemon()
        self.server._start([os.path.join(BIN, "municipal-node")] + self.hooks +
                           ["--config", self.config, "serve"],
                           os.path.join(self.dir, "serve.log"))
        return self.server

    def ids(self):
        """(kind, local_id) -> record id, the node's own map: used only as a join key."""
        c = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            return {(k, lid): bytes(i) for k, lid, i in c.execute("SELECT kind, local_id, id FROM records")}
        finally:
            c.close()

    def status(self, alarms=None):
        """`status --json`; its exit code is 5 exactly when it names an alarm."""
        r = self.cli("status", "--json", check=False)
        st = json.loads(r.stdout)
        assert r.returncode == (5 if st["alarms"] else 0), (r.returncode, st, r.stderr)
        if alarms is not None:
            assert st["alarms"] == alarms, st
        return st

    def status_text(self):
        r = self.cli("status", check=False)
        assert r.returncode in (0, 5), (r.returncode, r.stderr)
        assert ("alarms          " in r.stdout) == (r.returncode == 5), r.stdout
        return r.stdout


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def scrape(port):
    """Prometheus text from a /metrics endpoint, as {name: value}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.split()
                out[k] = float(v)
        return out
