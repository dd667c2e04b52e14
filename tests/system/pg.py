"""A private PostgreSQL 15 for system tests and benchmarks. PostgreSQL refuses to run as
root, so initdb and pg_ctl run as Debian's `postgres` user (runuser) on a data directory
under a fresh mktemp -d in /tmp that it owns, with a short private socket directory, a free
port and trust authentication for local connections only."""
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import free_port

PGBIN = "/usr/lib/postgresql/15/bin"


def _as_postgres(args, **kw):
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, capture_output=True, text=True, **kw)


class Postgres:
    def __init__(self, extra_conf=""):
        self.base = tempfile.mkdtemp(prefix="reint-pg-", dir="/tmp")
        self.data = os.path.join(self.base, "data")
        self.sock = tempfile.mkdtemp(prefix="pgs", dir="/tmp")
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        r = _as_postgres([os.path.join(PGBIN, "initdb"), "-D", self.data, "-U", "postgres",
                          "-A", "trust", "-E", "UTF8", "--no-sync"], timeout=120)
        if r.returncode != 0:
            raise AssertionError("initdb failed:\n" + r.stdout + r.stderr)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n"
                    "max_connections = 100\nshared_buffers = 128MB\n%s\n"
                    % (self.sock, self.port, extra_conf))
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n")
        self.log = os.path.join(self.base, "postgres.log")
        self.start()
        self.psql("CREATE DATABASE reintegration")

    @property
    def conninfo(self):
        return "host=%s port=%d dbname=reintegration user=postgres" % (self.sock, self.port)

    def _ctl(self, *args):
        r = _as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-l", self.log,
                          "-w", "-t", "60"] + list(args), timeout=90)
        if r.returncode != 0:
            raise AssertionError("pg_ctl %s failed:\n%s%s" % (args, r.stdout, r.stderr))

    def start(self):
        self._ctl("start")

    def restart(self):
        self._ctl("restart", "-m", "fast")

    def stop(self):
        self._ctl("stop", "-m", "fast")

    def psql(self, sql, db=None, args=()):
        """Runs sql with psql (tab-separated, unaligned) and returns its rows as lists."""
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t",
               "-h", self.sock, "-p", str(self.port), "-U", "postgres",
               "-d", db or ("postgres" if "CREATE DATABASE" in sql else "reintegration"),
               "-c", sql] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("psql failed: %s\n%s" % (sql[:200], r.stderr))
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def destroy(self):
        try:
            self.stop()
        except Exception:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.sock, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    pg = Postgres()
    yield pg
    pg.destroy()
