import os
import shutil
import tempfile

import pytest

from harness import Pki


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="reint-pki-")
    p = Pki(d)
    p.issue("province", "1", "province", "2", "municipality", "10703", "municipality", "10401",
            "municipality", "10101", "municipality", "21501", "municipality", "21710", "municipality", "20101", "municipality", "10102")
    yield p
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="reint-sys-")
    yield d
    if os.environ.get("KEEP_TEST_DIRS"):
        print("kept", d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def procs():
    """Collects daemons so that every test stops what it started, even when it fails."""
    started = []
    yield started
    for p in started:
        try:
            p.kill9()
        except Exception:
            pass
