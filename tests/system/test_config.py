"""Configuration and command-line behaviour a user meets first."""
import os
import shutil
import tempfile

from fedclient import Federal
from harness import BIN, ROOT, Hub, Node, free_port, run, wait_for
from pg import postgres  # noqa: F401  (session fixture)


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


def test_each_daemon_reads_its_own_example(tmp_path):
    """A deployment from the documentation (a helper, as a new operator) found the federal
    tier refusing deploy/examples/federal-api.ini, its own --print-config: a comment of 220
    characters went past libinih's 198, and the rest was read as an indented continuation of
    the key above ("line 7 ... indented line"). Comments are now written in lines of at most
    96 columns, each example is read back by its daemon, and a line too long is said as such."""
    for prog, args in (("provincial-hub", ["--print-config"]),
                       ("municipal-node", ["print-config"]),
                       ("federal-api", ["--print-config"])):
        with open(os.path.join(ROOT, "deploy", "examples", prog + ".ini")) as f:
            text = f.read()
        assert max(len(line) for line in text.splitlines()) <= 96, prog
        cfg = tmp_path / (prog + ".ini")
        # The node's example leaves its municipality to be chosen (0, out of range).
        cfg.write_text(text.replace("\nmunicipality = 0\n", "\nmunicipality = 10703\n"))
        cmd = [os.path.join(BIN, prog), "--config", str(cfg)]
        r = run(cmd + args, check=False)
        assert r.returncode == 0, (prog, r.stderr)
        assert r.stdout.replace("\nmunicipality = 10703\n", "\nmunicipality = 0\n") == text
    long_comment = "; " + "x" * 230 + "\n"
    cfg.write_text("[federal]\n" + long_comment + "https_listen = 127.0.0.1:0\n")
    r = run([os.path.join(BIN, "federal-api"), "--config", str(cfg), "--print-config"],
            check=False)
    assert r.returncode == 2 and "line 2 is 232 characters long" in r.stderr, r.stderr
    # The last line too, with no newline after it, of the reader's buffer exactly (a review).
    cfg.write_text("[federal]\nhttps_listen = 127.0.0.1:0\n; " + "y" * 1021)
    r = run([os.path.join(BIN, "federal-api"), "--config", str(cfg), "--print-config"],
            check=False)
    assert r.returncode == 2 and "line 3 is 1023 characters long" in r.stderr, r.stderr


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


def test_a_key_set_twice_is_refused_naming_both_lines(tmp_path):
    """A key set twice was taken, the last one winning: an operator's line added at the end
    (or a second [hub] section) switched a hub to another province without a word, and an
    indented line, which libinih takes as the key's continuation, replaced its value."""
    cases = [("[hub]\nprovince = 1\nsync_listen = 127.0.0.1:7401\n\n[hub]\nprovince = 6\n",
              "line 6: [hub] province is set a second time (first on line 2)"),
             ("[hub]\nprovince = 1\n  6\n",
              "line 2: [hub] province is followed by an indented line, which is read as a "
              "second value of it")]
    for text, want in cases:
        cfg = tmp_path / "hub.ini"
        cfg.write_text(text)
        r = run([os.path.join(BIN, "provincial-hub"), "--config", str(cfg), "--print-config"],
                check=False)
        assert r.returncode == 2 and want in r.stderr, (text, r.stdout[-300:], r.stderr)
    node = os.path.join(BIN, "municipal-node")
    run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "n")])
    ini = tmp_path / "n" / "node.ini"
    ini.write_text(ini.read_text() + "\n[sync]\nwindow = 9\n")
    r = run([node, "--config", str(ini), "status"], check=False)
    assert r.returncode == 2 and "[sync] window is set a second time" in r.stderr, r.stderr
    fed = tmp_path / "fed.ini"
    fed.write_text("[federal]\npool_size = 2\npool_size = 3\n")
    r = run([os.path.join(BIN, "federal-api"), "--config", str(fed), "--print-config"],
            check=False)
    assert r.returncode == 2 and "line 3: [federal] pool_size is set a second time" in r.stderr


def test_every_binary_prints_help():
    for prog in ("municipal-node", "provincial-hub", "federal-api"):
        r = run([os.path.join(BIN, prog), "--help"])
        assert r.stdout.startswith("usage:"), prog


def test_node_init_refuses_an_unofficial_code(tmp_path):
    r = run([os.path.join(BIN, "municipal-node"), "init", "--municipality", "10799",
             "--dir", str(tmp_path / "n")], check=False)
    assert r.returncode == 2
    assert "10799" in r.stderr and "official" in r.stderr


def test_out_of_range_values_are_refused_naming_file_line_and_range(tmp_path):
    # Every whole number has a range; max_frame = -1 used to switch the frame cap off.
    cases = (("provincial-hub", ["--config"], "[hub]\nprovince = 1\nmax_frame = -1\n", 3,
              "max_frame", "512..67108864"),
             ("provincial-hub", ["--config"], "[hub]\nprovince = 8\n", 2, "province", "1..7"),
             ("provincial-hub", ["--config"], "[hub]\nrollup_queue = 10\n", 2, "rollup_queue",
              "1000..10000000"),
             ("provincial-hub", ["--config"], "[uplink]\ncoverage_seconds = 0\n", 2,
              "coverage_seconds", "1..3600"),
             # Beyond a long: out of range too, not "not a whole number".
             ("provincial-hub", ["--config"],
              "[uplink]\ncoverage_seconds = 99999999999999999999\n", 2, "coverage_seconds",
              "1..3600"),
             ("federal-api", ["--config"], "[federal]\npool_size = 0\n", 2, "pool_size",
              "1..64"),
             ("municipal-node", ["--config"], "[sync]\nwindow = 65\n", 2, "window", "1..64"))
    for prog, opt, text, line, key, rng in cases:
        cfg = tmp_path / (prog + ".ini")
        cfg.write_text(text)
        args = [os.path.join(BIN, prog)] + opt + [str(cfg)]
        if prog == "municipal-node":
            args.append("status")
        r = run(args, check=False)
        assert r.returncode == 2, (prog, text, r.stderr)
        assert str(cfg) in r.stderr and "line %d" % line in r.stderr, r.stderr
        assert key in r.stderr and rng in r.stderr and "outside the range" in r.stderr, r.stderr


def test_test_hooks_are_refused_without_the_switch(tmp_path):
    clock = tmp_path / "clock"
    clock.write_text("86400\n")
    empty = tmp_path / "empty.ini"
    empty.write_text("")
    for prog, tail in (("provincial-hub", []), ("federal-api", ["serve"]),
                       ("municipal-node", ["status"])):
        for hook in (["--test-clock", str(clock)], ["--test-fault", "rollup_scan"]):
            r = run([os.path.join(BIN, prog)] + hook + ["--config", str(empty)] + tail,
                    check=False, timeout=20)
            assert r.returncode == 2, (prog, r.stdout, r.stderr)
            assert "--enable-test-hooks" in r.stderr, r.stderr


def test_node_init_writes_its_config_whole_or_initialises_nothing(tmp_path):
    """`init` wrote node.ini with unchecked writes and no fsync after creating the store: on a
    full disk or a crash it could exit 0 with the file cut short, and a second `init` was
    refused because the store existed. The config is now written whole and durably, or the
    new store is removed and `init` fails saying so (here the test fault fs_write_atomic: a
    full disk); a second `init` then succeeds."""
    d = tmp_path / "n"
    d.mkdir()
    args = [os.path.join(BIN, "municipal-node"), "init", "--municipality", "10703", "--dir",
            str(d)]
    r = run([args[0], "--enable-test-hooks", "--test-fault", "fs_write_atomic"] + args[1:],
            check=False)
    assert r.returncode != 0 and "nothing was initialised" in r.stderr, r.stdout + r.stderr
    assert os.listdir(d) == []
    r = run(args)
    assert "initialised Dhankuta Municipality (10703)" in r.stdout, r.stdout
    text = (d / "node.ini").read_text()
    assert "[node]" in text and "municipality = 10703" in text and "[directives]" in text, text
    # The clerks' tokens file beside the store: `token` works at once.
    assert "\ntokens = %s/tokens\n" % d in text, text
    r = run([os.path.join(BIN, "municipal-node"), "--config", str(d / "node.ini"), "token",
             "clerk1"])
    assert len(r.stdout.strip()) >= 32 and (d / "tokens").exists(), r.stdout
    r = run(args, check=False)
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr


def test_what_an_operator_types_wrong_is_refused_at_once(tmp_path):
    """An attack on the demo, as its operator, found four things taken that should not be:
    `init --hub foo` wrote a config that `serve` then refused; `status --jsn` printed text to
    a script that wanted JSON; `provincial-hub --config FILE --print-config` printed the
    built-in defaults, not what the hub would run with; `provincial-hub serve extra` was
    taken; and `init --pki` naming no directory. Each is now refused (exit 2) or prints the
    file's values."""
    node = os.path.join(BIN, "municipal-node")
    r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "n"), "--hub",
             "foo"], check=False)
    assert r.returncode == 2 and '--hub "foo" is not an IP address and port' in r.stderr, \
        r.stderr
    assert not (tmp_path / "n" / "node.db").exists()
    # A mistyped --pki: refused before anything is written (it was taken, and serve refused).
    r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "n"), "--pki",
             str(tmp_path / "no-such-pki")], check=False)
    assert r.returncode == 2 and "no-such-pki: No such file or directory" in r.stderr, r.stderr
    assert not (tmp_path / "n").exists()
    # Without --pki, a certificate still to come is named, and the node is set up.
    r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "n")])
    assert "/var/pki/municipality-10703.crt yet: serve and sync need it" in r.stderr, r.stderr
    cfg = str(tmp_path / "n" / "node.ini")
    r = run([node, "--config", cfg, "status", "--jsn"], check=False)
    assert r.returncode == 2 and 'unknown argument "--jsn"' in r.stderr, r.stdout + r.stderr
    assert r.stdout == ""
    hub = os.path.join(BIN, "provincial-hub")
    hub_cfg = tmp_path / "hub.ini"
    hub_cfg.write_text("[hub]\nprovince = 4\n")
    r = run([hub, "--config", str(hub_cfg), "--print-config"])
    assert "\nprovince = 4\n" in r.stdout, r.stdout
    assert "\nprovince = 1\n" in run([hub, "--print-config"]).stdout
    r = run([hub, "--config", str(hub_cfg), "serve", "extra"], check=False)
    assert r.returncode == 2 and 'unknown command "extra"' in r.stderr, r.stderr
    fed_cfg = tmp_path / "fed.ini"
    fed_cfg.write_text("[federal]\npool_size = 9\n")
    r = run([os.path.join(BIN, "federal-api"), "--config", str(fed_cfg), "--print-config"])
    assert "\npool_size = 9\n" in r.stdout, r.stdout


def test_a_private_key_every_user_can_read_is_refused_and_a_missing_one_named(pki, workdir):
    """An attack on the demo, as its operator, found a private key of mode 0644 taken without
    a word, and a missing certificate reported as "system lib". The key is refused, as ssh
    refuses one, naming the file and the fix; a missing file is named with the system's
    reason."""
    key = os.path.join(workdir, "open.key")
    shutil.copy(pki.path("province-1.key"), key)
    os.chmod(key, 0o644)
    hub = Hub(workdir, pki, 1).configure("[tls]\nkey = %s\n" % key)
    r = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config], check=False,
            timeout=30)
    assert r.returncode == 2, r.stderr  # a configuration error, as --help says (it was 1)
    assert "%s: this private key can be read by every user of this machine (mode 0644)" % key \
        in r.stderr, r.stderr
    os.chmod(key, 0o640)
    missing = os.path.join(workdir, "no-such.crt")
    hub.configure("[tls]\ncert = %s\n" % missing)
    r = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config], check=False,
            timeout=30)
    assert r.returncode == 2 and "%s: No such file or directory" % missing in r.stderr, r.stderr


def test_a_daemon_whose_certificate_or_store_names_another_place_does_not_start(
        pki, workdir, postgres):  # noqa: F811
    """An attack on the demo, as its operator, started a hub with another province's
    certificate (it took the real hub's federal session ten times a second), a hub with
    another `province` than its certificate (it refused its own nodes), and a node whose
    config named another municipality than its store and certificate (its pages took the
    other's name). Each now refuses to start, naming both."""
    hub = Hub(workdir, pki, 1).configure("[tls]\ncert = %s\nkey = %s\n"
                                         % (pki.path("province-2.crt"),
                                            pki.path("province-2.key")))
    r = run([os.path.join(BIN, "provincial-hub"), "--config", hub.config], check=False,
            timeout=30)
    assert r.returncode == 2, r.stderr
    assert "names province:2, but [hub] province is 1" in r.stderr, r.stderr
    node = Node(workdir, pki, 10703, hub)
    with open(node.config) as f:
        text = f.read()
    other = os.path.join(workdir, "other.ini")
    with open(other, "w") as f:
        f.write(text.replace("municipality = 10703", "municipality = 10401"))
    r = run([os.path.join(BIN, "municipal-node"), "--config", other, "status"], check=False)
    assert r.returncode == 2, r.stdout  # a configuration error, as --help says (it was 1)
    assert "belongs to municipality 10703, but [node] municipality is 10401" in r.stderr, \
        r.stderr
    with open(other, "w") as f:
        f.write(text.replace(pki.path("municipality-10703."), pki.path("municipality-10401.")))
    r = run([os.path.join(BIN, "municipal-node"), "--config", other, "sync", "--timeout", "2"],
            check=False, timeout=30)
    assert r.returncode == 2, r.stdout  # a configuration error (it was 1)
    assert "names municipality:10401, but [node] municipality is 10703" in r.stderr, r.stderr
    # A certificate file that is not there: named, and a configuration error too.
    with open(other, "w") as f:
        f.write(text.replace(pki.path("municipality-10703.crt"),
                             os.path.join(workdir, "no-such-10703.crt")))
    r = run([os.path.join(BIN, "municipal-node"), "--config", other, "sync", "--timeout", "2"],
            check=False, timeout=30)
    assert r.returncode == 2 and "no-such-10703.crt: No such file or directory" in r.stderr, \
        (r.returncode, r.stderr)
    # The federal tier given a province's certificate.
    fed = Federal(workdir, pki, postgres).configure("[tls]\ncert = %s\nkey = %s\n"
                                                    % (pki.path("province-1.crt"),
                                                       pki.path("province-1.key")))
    r = run([os.path.join(BIN, "federal-api"), "--config", fed.config, "serve"], check=False,
            timeout=30)
    assert r.returncode == 2, r.stderr
    assert "names province:1, not federal" in r.stderr, r.stderr
    fed.configure("[tls]\ncert = %s\n" % os.path.join(workdir, "no-such-federal.crt"))
    r = run([os.path.join(BIN, "federal-api"), "--config", fed.config, "serve"], check=False,
            timeout=30)
    assert r.returncode == 2 and "no-such-federal.crt: No such file or directory" in r.stderr, \
        (r.returncode, r.stderr)


def test_a_data_dir_that_holds_no_store_is_a_configuration_error(tmp_path):
    """A mistyped data_dir exited 1 with SQLite's "unable to open database file" (operator
    F11); it is the configuration's to fix: exit 2, naming [node] data_dir or [hub]
    data_dir and the path."""
    node = os.path.join(BIN, "municipal-node")
    run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "n")])
    ini = tmp_path / "n" / "node.ini"
    text = ini.read_text()
    assert "\ndata_dir = %s\n" % (tmp_path / "n") in text
    afile = tmp_path / "a-file"
    afile.write_text("x\n")
    (tmp_path / "empty").mkdir()
    for where, why in ((tmp_path / "typo", "No such file or directory"),
                       (afile, "not a directory"),
                       (tmp_path / "empty", "holds no node store (node.db)")):
        ini.write_text(text.replace("\ndata_dir = %s\n" % (tmp_path / "n"),
                                    "\ndata_dir = %s\n" % where))
        for cmd in (["status"], ["export", "--kind", "persons"], ["sync", "--timeout", "2"]):
            r = run([node, "--config", str(ini)] + cmd, check=False, timeout=30)
            assert r.returncode == 2, (cmd, where, r.returncode, r.stderr)
            assert "[node] data_dir: %s" % where in r.stderr and why in r.stderr, r.stderr
    hub = os.path.join(BIN, "provincial-hub")
    for where, why in ((afile / "hub", "cannot create %s: Not a directory" % (afile / "hub")),
                       (afile, "%s: not a directory" % afile)):
        cfg = tmp_path / "hub.ini"
        cfg.write_text("[hub]\nprovince = 1\ndata_dir = %s\n" % where)
        r = run([hub, "--config", str(cfg)], check=False, timeout=30)
        assert r.returncode == 2, (where, r.returncode, r.stderr)
        assert "[hub] data_dir: " + why in r.stderr, r.stderr
    assert afile.read_text() == "x\n"


def test_a_hub_without_officers_tokens_says_so_at_start(pki, workdir, procs):
    """An attack on the demo, as its operator, started a hub whose tokens file was missing:
    nothing in its log, and every officer's request answered 401. It now says so at start,
    as a node does."""
    hub = Hub(workdir, pki, 1).configure("[hub]\ntokens = %s\n"
                                         % os.path.join(workdir, "no-such-tokens"))
    procs.append(hub.start())
    assert "no officers' tokens in %s yet" % os.path.join(workdir, "no-such-tokens") in \
        hub.log_text(), hub.log_text()


def test_a_hub_logs_the_http_address_it_listens_on(pki, workdir, procs):
    """An attack on the demo, as its operator, read "HTTP on 127.0.0.1" in the start line of a
    hub listening on 0.0.0.0: the HTTPS address had overwritten the HTTP one. (127.0.0.2
    here: the tests stay on loopback.)"""
    hub = Hub(workdir, pki, 1).configure("[hub]\nhttp_listen = 127.0.0.2:0\n"
                                         "https_listen = 127.0.0.1:0\n")
    procs.append(hub.start())
    assert ", HTTP on 127.0.0.2:" in hub.log_text(), hub.log_text()
    # The sync address once, with its port (a deployment from the documentation read "sync
    # on 127.0.0.1:7500 port 7500").
    assert "sync on 127.0.0.1:%d, HTTP" % hub.sync_port in hub.log_text(), hub.log_text()


def test_federal_api_migrates_from_what_it_carries(pki, workdir, postgres):  # noqa: F811
    """A deployment from the documentation (a helper, with the release's binaries only) could
    not start the federal tier: its migrations were read from federal-api/migrations beside
    the build, else /usr/local/share, and neither was there ("no migrations directory found").
    They are compiled in. And a [federal] migrations directory holding none wrote
    schema_migrations, then failed on the geography, a half-made schema: refused first."""
    release = os.path.join(workdir, "release")
    os.makedirs(release)
    exe = os.path.join(release, "federal-api")
    shutil.copy(os.path.join(BIN, "federal-api"), exe)
    for db in ("mig_release", "mig_empty"):
        postgres.psql("CREATE DATABASE %s" % db)
    fed = Federal(workdir, pki, postgres)
    fed.configure("[federal]\npg = %s\n" % postgres.conninfo.replace(
        "dbname=reintegration", "dbname=mig_release"))
    r = run([exe, "--config", fed.config, "migrate"], check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "applied from those compiled in" in r.stdout, r.stdout
    versions = postgres.psql("SELECT count(*), max(version) FROM schema_migrations",
                             db="mig_release")
    on_disk = sorted(f for f in os.listdir(os.path.join(ROOT, "federal-api", "migrations"))
                     if f.endswith(".sql"))
    assert versions == [[str(len(on_disk)), str(int(on_disk[-1][:4]))]], versions
    assert postgres.psql("SELECT count(*) FROM geo", db="mig_release") == [["753"]]
    empty = os.path.join(workdir, "no-migrations")
    os.makedirs(empty)
    fed.configure("[federal]\npg = %s\nmigrations = %s\n" % (postgres.conninfo.replace(
        "dbname=reintegration", "dbname=mig_empty"), empty))
    r = run([exe, "--config", fed.config, "migrate"], check=False, timeout=120)
    assert r.returncode == 1 and "holds no migration" in r.stderr, (r.returncode, r.stderr)
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE tablename = "
                         "'schema_migrations'", db="mig_empty") == [["0"]]


def test_init_writes_absolute_paths(pki, tmp_path):
    """A deployment from the documentation: `init --dir var/node-10703 --pki var/pki`, as the
    README has it, wrote those relative paths into node.ini, so the node worked only from the
    directory init ran in (a systemd unit runs elsewhere: "[node] data_dir: var/node-10703: No
    such file or directory"). init now writes absolute paths."""
    node = os.path.join(BIN, "municipal-node")
    shutil.copytree(pki.dir, tmp_path / "pki-2026")
    # A link stays a link (a review: it was resolved, so a link swapped to next year's
    # certificates was not followed).
    os.symlink("pki-2026", tmp_path / "pki")
    run([node, "init", "--municipality", "10703", "--dir", "n", "--pki", "pki"],
        cwd=str(tmp_path))
    with open(tmp_path / "n" / "node.ini") as f:
        text = f.read()
    for key, want in (("data_dir", tmp_path / "n"), ("tokens", tmp_path / "n" / "tokens"),
                      ("ca", tmp_path / "pki" / "ca.crt"),
                      ("key", tmp_path / "pki" / "municipality-10703.key"),
                      ("crl", tmp_path / "n" / "crl.pem")):
        assert "\n%s = %s\n" % (key, want) in text, (key, text)
    # And the node runs from anywhere.
    r = run([node, "--config", str(tmp_path / "n" / "node.ini"), "status", "--json"],
            check=False, cwd="/")
    assert r.returncode in (0, 5) and '"municipality": 10703' in r.stdout.replace(
        '"municipality":10703', '"municipality": 10703'), (r.returncode, r.stderr)


def test_init_lists_the_directive_keys_beside_the_certificates(pki, tmp_path):
    """A deployment from the documentation: every node was initialised with `[directives]
    keys` empty and refused every national directive until the key was added by hand. init
    now lists the directive-ID.pub files pki.sh made in the --pki directory, sorted, and
    says so when there are none; a file that is no key is refused, nothing initialised."""
    node = os.path.join(BIN, "municipal-node")
    mine = tmp_path / "pki"
    shutil.copytree(pki.dir, mine)
    for name in os.listdir(mine):
        if name.startswith("directive-"):
            os.unlink(mine / name)
    r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "none"),
             "--pki", str(mine)])
    assert "no directive-*.pub in %s" % mine in r.stderr, r.stderr
    with open(tmp_path / "none" / "node.ini") as f:
        assert "\nkeys = \n" in f.read()
    for key_id in ("fed-2084", "fed-2083"):
        run([os.path.join(ROOT, "deploy", "pki.sh"), "directive-key", str(mine), key_id])
    # A deep directory makes a keys line longer than the config's lines are read: not listed,
    # and said, where it wrote a node.ini serve could not read.
    r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "deep"),
             "--pki", str(mine)])
    assert "are not listed: [directives] keys would be a line of" in r.stderr, r.stderr
    with open(tmp_path / "deep" / "node.ini") as f:
        assert "\nkeys = \n" in f.read()
    run([node, "--config", str(tmp_path / "deep" / "node.ini"), "print-config"])
    # From a short path, as /etc/reintegration/pki is.
    short = tempfile.mkdtemp(prefix="k", dir="/tmp")
    try:
        os.symlink(str(mine), os.path.join(short, "p"))
        at = os.path.join(short, "p")
        r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "two"),
                 "--pki", at])
        assert "directive" not in r.stderr, r.stderr
        with open(tmp_path / "two" / "node.ini") as f:
            text = f.read()
        want = "fed-2083=%s/directive-fed-2083.pub,fed-2084=%s/directive-fed-2084.pub" % (at, at)
        assert "\nkeys = %s\n" % want in text, text
        r = run([node, "--config", str(tmp_path / "two" / "node.ini"), "print-config"])
        assert "keys = %s" % want in r.stdout, r.stdout
    finally:
        shutil.rmtree(short)
    with open(mine / "directive-torn.pub", "w") as f:
        f.write("-----BEGIN PUBLIC KEY-----\nnot a key\n")
    os.unlink(mine / "directive-fed-2084.pub")
    r = run([node, "init", "--municipality", "10703", "--dir", str(tmp_path / "torn"),
             "--pki", str(mine)], check=False)
    assert r.returncode == 2 and "directive-torn.pub" in r.stderr, (r.returncode, r.stderr)
    assert not os.path.exists(tmp_path / "torn" / "node.ini")


def test_a_federal_tier_never_reached_is_said_once_not_lost_every_attempt(pki, workdir, procs):
    """A deployment from the documentation: a hub whose federal tier was down logged
    "connection to federal (...) lost: connection refused" at warn at every attempt (35
    lines in 6 minutes), for a connection it never had. It now says "cannot reach" once at
    warn, the attempts after it at info, and again at warn after 10 minutes."""
    port = free_port()
    hub = Hub(workdir, pki, 1).configure("[uplink]\nfederal = 127.0.0.1:%d\n" % port)
    procs.append(hub.start())
    wait_for(lambda: hub.log_text().count("cannot reach federal (127.0.0.1:%d)" % port) >= 3,
             30, "three attempts to reach the federal tier")
    lines = [x for x in hub.log_text().splitlines() if "federal (127.0.0.1:%d)" % port in x]
    assert not any(" lost" in x for x in lines), lines
    warned = [x for x in lines if " warn" in x.split(":")[0] or "warn:" in x]
    assert len(warned) == 1, lines


def test_print_config_is_spelt_either_way(tmp_path):
    """The deployment from the documentation: `municipal-node print-config` but
    `provincial-hub --print-config`, each refused by the other binary. Both spellings work on
    every binary, and print the same."""
    for prog in ("provincial-hub", "municipal-node", "federal-api"):
        exe = os.path.join(BIN, prog)
        a = run([exe, "print-config"], check=False)
        b = run([exe, "--print-config"], check=False)
        assert a.returncode == 0 and b.returncode == 0, (prog, a.stderr, b.stderr)
        assert a.stdout == b.stdout and "; " in a.stdout, prog
