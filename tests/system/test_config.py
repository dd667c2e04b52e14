"""Configuration and command-line behaviour a user meets first."""
import os

from harness import BIN, ROOT, run


def test_example_configs_document_every_key_with_its_default():
    # The shipped examples are exactly what the binaries print, so they never drift.
    for prog, args in (("provincial-hub", ["--print-config"]),
                       ("municipal-node", ["print-config"]),
                       ("federal-api", ["--print-config"])):
        out = run([os.path.join(BIN, prog)] + args).stdout
        with open(os.path.join(ROOT, "deploy", "examples", prog + ".ini")) as f:
            assert f.read() == out, prog
        # Every key has a comment line above it.
        lines = out.splitlines()
        for i, line in enumerate(lines):
            if "=" in line and not line.startswith(";"):
                assert lines[i - 1].startswith(";"), line


def test_unknown_key_is_refused_naming_file_and_line(tmp_path):
    cfg = tmp_path / "hub.ini"
    cfg.write_text("[hub]\nprovince = 1\n\n[tls]\ncrl_file = x\n")
    r = run([os.path.join(BIN, "provincial-hub"), "--config", str(cfg)], check=False)
    assert r.returncode == 2
    assert "line 5" in r.stderr and "crl_file" in r.stderr


def test_bad_value_is_refused_naming_the_key(tmp_path):
    cfg = tmp_path / "hub.ini"
    cfg.write_text("[hub]\nprovince = seven\n")
    r = run([os.path.join(BIN, "provincial-hub"), "--config", str(cfg)], check=False)
    assert r.returncode == 2
    assert "line 2" in r.stderr and "province" in r.stderr and "whole number" in r.stderr


def test_every_binary_prints_help():
    for prog in ("municipal-node", "provincial-hub", "federal-api"):
        r = run([os.path.join(BIN, prog), "--help"])
        assert r.stdout.startswith("usage:"), prog


def test_node_init_refuses_an_unofficial_code(tmp_path):
    r = run([os.path.join(BIN, "municipal-node"), "init", "--municipality", "10799",
             "--dir", str(tmp_path / "n")], check=False)
    assert r.returncode == 2
    assert "10799" in r.stderr and "official" in r.stderr
