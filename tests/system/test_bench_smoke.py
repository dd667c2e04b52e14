"""Every benchmark driver at a tiny size (issue 17), so that a broken bench fails CI: each must
exit 0, write build/bench/<name>.json (here into a temporary directory, BENCH_OUT) with the
keys bench/report.py needs, and report every work-done check passed. No timing is asserted:
the figures of a tiny run on a shared machine mean nothing."""
import hashlib
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import report  # noqa: E402

# (json name, driver and its tiny arguments, figures it must report)
RUNS = [
    # --federal, as make bench runs it: a second hub run with the federal tier beside it.
    ("hub_ingest", ["bench/hub_ingest.py", "--nodes", "2", "--records", "600", "--batch", "200",
                    "--repeat", "1", "--federal"],
     ["hub_rate", "raw_rate", "rows_per_commit", "hub_rate_fed", "hub_fed_s"]),
    ("import", ["bench/import_bench.py", "--rows", "500", "--repeat", "1"],
     ["node_rate", "sqlite_rate"]),
    # Sparse, with its own batch, window and name (make bench runs the dense one too; the
    # dataset's two shapes are checked without PostgreSQL below).
    ("federal_sparse", ["bench/federal_bench.py", "--months", "2", "--municipalities", "1",
                        "--repeat", "1", "--seconds", "1", "--clients", "1", "--jobs", "1",
                        "--cells-per-snapshot", "30", "--batch", "5", "--window", "3",
                        "--name", "federal_sparse"],
     ["ingest_rate", "copy_rate", "fix_rate", "sql_fix_rate", "query_p99_ms",
      "breakdown_loaded_ms", "breakdown_ms"]),
    ("rollup", ["bench/rollup.py", "--records", "1000", "--municipalities", "2", "--repeat",
                "1"], ["compute_s", "baseline_s", "one_mun_ms", "scattered_ms", "one_mun_note_ms",
                       "one_mun_refresh_ms", "scattered_note_ms", "scattered_refresh_ms"]),
    ("national", ["bench/national.py", "--municipalities", "7", "--records", "1000", "--batch",
                  "40", "--repeat", "1", "--samples", "3", "--query-seconds", "1", "--bg-rate",
                  "60", "--years", "1", "--real-nodes", "2", "--timeout", "60",
                  "--coverage-seconds", "1"],
     ["resync_s", "floor_s", "fresh_p99_s", "query_p99_ms", "query_floor_p99_ms",
      "breakdown_ingest_ms", "idle_kib",
      "idle_rss_kib", "sock_kib"]),
]


@pytest.mark.parametrize("name,cmd,figures", RUNS, ids=[r[0] for r in RUNS])
def test_bench_runs_and_writes_its_json(tmp_path, name, cmd, figures):
    # The machine's speed (build/bench/calibrate, about 1.3 s a measure) is measured in the
    # national run only, which measures it most often: start, before its resync, end.
    calibrated = name == "national"
    if calibrated:
        assert os.access(os.path.join(ROOT, "build", "bench", "calibrate"), os.X_OK), \
            "build/bench/calibrate is missing: make bench-build"
    env = dict(os.environ, BENCH_OUT=str(tmp_path), BENCH_CALIBRATE="1" if calibrated else "0")
    r = subprocess.run([sys.executable] + cmd, cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, "%s exited %d:\n%s" % (cmd[0], r.returncode, r.stderr[-3000:])
    path = tmp_path / ("%s.json" % name)
    assert path.exists(), "%s wrote no %s" % (cmd[0], path)
    data = json.loads(path.read_text())
    assert report.validate(data) == []
    assert data["ok"] is True and data["checks"], data["checks"]
    assert all(c["ok"] for c in data["checks"])
    assert data["command"].startswith("/usr/bin/python3 " + cmd[0])
    assert data["machine"]["nproc"] >= 1 and data["machine"]["ram_bytes"] > 0
    assert len(data["loadavg_start"]) == 3 and isinstance(data["load_flagged"], bool)
    assert len(data["commit"]) >= 40
    for f in figures:
        fig = data["figures"][f]
        assert fig["n"] >= 1 and fig["min"] <= fig["median"] <= fig["max"], (f, fig)
    cal = data.get("calibration", [])
    if calibrated:
        assert [c["at"] for c in cal] == ["start", "before resync 1", "end"], cal
        assert all(c["wall_ms"] > 0 and c["cpu_ms"] > 0 for c in cal), cal
    else:
        assert cal == [], "BENCH_CALIBRATE=0 ignored: %s" % cal
    # The generator turns it into the docs' tables (into a scratch copy of the doc).
    doc = tmp_path / "BENCHMARKS.md"
    with open(os.path.join(ROOT, "docs", "BENCHMARKS.md")) as src:
        doc.write_text(src.read())
    before = doc.read_text()
    old_summary = before.split("<!-- bench:summary:begin -->")[1].split(
        "<!-- bench:summary:end -->")[0].strip("\n")
    g = subprocess.run([sys.executable, "bench/report.py", "--dir", str(tmp_path), "--doc",
                        str(doc), "--archive", "smoke archive"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert g.returncode == 0, g.stderr
    text = doc.read_text()
    # --archive kept the tables of the run before under the archive marker, word for word.
    kept = text.split("<!-- bench:archive -->")[1]
    assert kept.lstrip("\n").startswith("### smoke archive") and old_summary in kept
    summary = text.split("<!-- bench:summary:begin -->")[1].split("<!-- bench:summary:end -->")[0]
    assert "(%s)" % name in summary and data["commit"][:12] in summary
    # The other benches have no JSON here: their summary rows and their sections stay as the
    # doc had them, word for word and in the same order; this bench's were replaced.
    others = [r for r in old_summary.split("\n")[2:]
              if not r.split(" | ")[0].endswith("(%s)" % name)]
    assert others and [r for r in summary.strip("\n").split("\n") if r in others] == others

    def sections(t):
        body = t.split("<!-- bench:results:begin -->")[1].split("<!-- bench:results:end -->")[0]
        return {part.split(" ", 1)[0]: part.strip("\n") for part in body.split("\n### ")[1:]}
    old, new = sections(before), sections(text)
    assert set(old) - {name} and all(new[b] == old[b] for b in old if b != name)
    assert new[name] != old.get(name) and data["date"] in new[name]
    # Every check's detail and the run's recorded values are in its section, for the prose.
    assert all("- check `%s`: passed" % c["name"] in new[name] for c in data["checks"])
    assert all("- `%s`: " % k in new[name] for k in data.get("extra", {}))
    if name == "national":
        # The floor's CPU is read at convergence, before the wait for the coverage.
        for r in data["extra"]["resync"]:
            assert r["coverage_s"] >= r["converged_s"] > 0 and r["sim_cpu_s"] >= 0, r
    if calibrated:
        line = [x for x in new[name].split("\n") if x.startswith("Machine speed")]
        want = ["%.0f ms %s" % (c["wall_ms"], c["at"] if "resync" in c["at"] else
                                "at the " + c["at"]) for c in cal]
        assert len(line) == 1 and all(w in line[0] for w in want), (line, want)


def test_federal_dataset_dense_and_sparse(tmp_path):
    """federal_bench's dataset: dense, every snapshot holds every cell of the catalogue's
    groupings; --cells-per-snapshot N, about N on average and at least one. The frames say
    what the COPY's rows say, snapshot by snapshot, tops and corrections included; what the
    province's aggregates, its tops and the breakdown must hold is summed again here from the
    COPY rows, the corrections applied."""
    import federal_bench as fb
    from harness import pb
    levels = fb.local_levels()
    periods = ["2020-%02d" % m for m in range(1, 13)]
    every = sum(math.prod(len(fb.VALUES[d]) for d in g.split(",")) if g else 1
                for _, _, groupings in fb.CATALOGUE for g in groupings)

    def lines(path):
        with open(path) as f:
            return [x.rstrip("\n").split("\t") for x in f]

    def cells(path):
        # {(municipality, period): [(indicator, grouping, key, nu, de, ck, co)]} of a COPY TSV.
        out = {}
        for _, per, code, ind, grp, key, nu, de, ck, co, _ in lines(path):
            cols = [x[2:-2].split('","') for x in (ind, grp, key)] + \
                [[int(v) for v in x[1:-1].split(",")] for x in (nu, de, ck, co)]
            out[int(code), per] = list(zip(*cols))
        return out

    def tops(path):
        out = {}
        for code, per, _, ind, grp, key, t1, t2 in lines(path):
            out.setdefault((int(code), per), []).append((ind, grp, key, int(t1), int(t2)))
        return out

    def sent(frames, rev):
        # {(municipality, period): [(indicator, grouping, key, nu, de, ck, co, top1, top2)]}
        # of the frames, in order; their sequences and revisions checked.
        out, seq = {}, None
        for last, frame in frames:
            env = pb.Envelope()
            env.ParseFromString(frame[4:])
            b = env.rollup_batch
            assert b.last_seq == last and list(b.seqs) == list(range(b.first_seq, last + 1))
            assert seq is None or b.first_seq == seq + 1
            seq = last
            for x in b.snapshots:
                assert x.revision == rev and (x.municipality, x.period) not in out
                out[x.municipality, x.period] = [
                    (c.indicator, c.grouping, ",".join(c.key), c.numerator, c.denominator,
                     c.cell_key, c.contributors, c.top1, c.top2) for c in x.cells]
        return out

    def joined(rows, tops):
        # COPY rows with the tops of their cells (0, 0 for a cell without).
        t = {x[:3]: x[3:] for x in tops}
        assert len(t) == len(tops) and set(t) <= {r[:3] for r in rows}
        return [r + t.get(r[:3], (0, 0)) for r in rows]

    def shape(per_snap, fix=0.0):
        tsv = str(tmp_path / ("cells-%d.tsv" % per_snap))
        d = fb.build_province((3, levels, periods, 7, 1, tsv, 10, per_snap, fix))
        load, load_tops = cells(tsv), tops(tsv + ".tops")
        fixed, fixed_tops = cells(tsv + ".fix"), tops(tsv + ".fixtops")
        keys = [(int(c), p) for c, p in lines(tsv + ".fixkeys")]
        final = dict(load)
        final_tops = dict(load_tops)
        for k in keys:
            final[k], final_tops[k] = fixed.get(k, []), fixed_tops.get(k, [])
        # What province_cells must hold: rows keyed (period, indicator, grouping, key).
        agg, totals, final_totals, munis = {}, {}, {}, {}
        for (code, per), rows in final.items():
            m = munis.setdefault(code, [0, 0, 0, 0, 0])
            for i, g, k, n, de, c, o in rows:
                a = agg.setdefault((per, i, g, k), [0, 0, 0, 0])
                a[0], a[1], a[2], a[3] = a[0] + n, a[1] + de, a[2] + c, a[3] + o
                m[:] = [m[0] + 1, m[1] + n, m[2] + de, m[3] + c, m[4] + o]
        for src, out in ((load, totals), (final, final_totals)):
            for (code, per), rows in src.items():
                out.update({(code, per): n for i, g, _, n, *_ in rows
                            if i == "participants_registered" and g == ""})
        rows = [k + (a[0], a[1], a[2] % (1 << 32), a[3]) for k, a in agg.items()]
        assert d["sums"] == (len(rows), sum(r[4] for r in rows), sum(r[5] for r in rows),
                             sum(r[6] for r in rows), sum(r[7] for r in rows),
                             fb.agg_digest(rows))
        assert d["totals"] == totals and (per_snap or len(totals) == d["snapshots"])
        assert d["final_totals"] == final_totals
        assert d["munis"] == {k: tuple(v) for k, v in munis.items() if v[0]}
        assert d["final_cells"] == sum(len(x) for x in final.values())
        # cell_tops in the end, as province_sums' twin in stored() asks for them: rows sorted
        # by municipality, then period, indicator, grouping and key byte-wise.
        every_top = sorted(((k[0], k[1], 3) + t for k, ts in final_tops.items() for t in ts),
                           key=lambda r: (r[0],) + tuple(x.encode() for x in r[1:2] + r[3:6]))
        text = "\n".join("\t".join(str(x) for x in r) for r in every_top)
        assert d["tops"] == (len(every_top), sum(t[6] for t in every_top),
                             sum(t[7] for t in every_top),
                             hashlib.md5(text.encode()).hexdigest())
        # Tops on every cell of a sum and on no other, each within the proto's rule: top1 > 0,
        # top2 <= top1, top1 + top2 <= numerator.
        for src, src_tops in ((load, load_tops), (fixed, fixed_tops)):
            for k, rows in src.items():
                ts = src_tops.get(k, [])
                assert {r[:3] for r in rows if r[0] in fb.SUMS} == {t[:3] for t in ts}
                nums = {r[:3]: r[3] for r in rows}
                assert all(0 < t1 and t2 <= t1 and t1 + t2 <= nums[t[:3]]
                           for t in ts for t1, t2 in [t[3:]]), ts
        # The frames carry what the COPY rows hold, cell by cell.
        got = sent(d["frames"], 1)
        assert got == {k: joined(load[k], load_tops.get(k, [])) for k in load}
        assert list(got) == list(load) == [(int(x[0]), x[1]) for x in lines(tsv + ".snap")]
        assert sum(map(len, got.values())) == d["cells"] and len(got) == d["snapshots"] == 120
        fix_got = sent(d["fix_frames"], 2)
        assert list(fix_got) == keys and len(keys) == d["fixed"]
        assert fix_got == {k: joined(fixed.get(k, []), fixed_tops.get(k, [])) for k in keys}
        assert d["emptied"] == sum(1 for x in fix_got.values() if not x) == \
            len(keys) - len(fixed)
        if d["fix_frames"]:
            env = pb.Envelope()
            env.ParseFromString(d["fix_frames"][0][1][4:])
            assert env.rollup_batch.first_seq == d["snapshots"] + 1
        return [len(x) for x in got.values()], d
    dense, _ = shape(0)
    assert set(dense) == {every}
    sparse, _ = shape(11)
    assert min(sparse) >= 1 and 8 <= sum(sparse) / len(sparse) <= 14, sparse
    # One cell a snapshot on average leaves about a third of them empty but for the rule.
    assert min(shape(1)[0]) == 1
    # Corrections: about half of 120 snapshots, some of them emptied, the rest rewritten
    # (dense: every cell again; sparse: at least one).
    _, d = shape(0, 0.5)
    assert 40 <= d["fixed"] <= 80 and 0 < d["emptied"] < d["fixed"], d["fixed"]
    assert d["final_cells"] == (120 - d["emptied"]) * every
    _, d = shape(11, 0.5)
    assert 40 <= d["fixed"] <= 80 and 0 < d["emptied"] < d["fixed"], d["fixed"]
    # One month (as the short make bench loads): a municipality whose only snapshot is emptied
    # holds no cell, so the store's per-municipality sums have no row for it.
    tsv = str(tmp_path / "one-month.tsv")
    d = fb.build_province((3, levels, ["2020-01"], 7, 1, tsv, 40, 0, 0.5))
    emptied = {(int(c), p) for c, p in lines(tsv + ".fixkeys")} - set(cells(tsv + ".fix"))
    assert len(emptied) == d["emptied"] > 0
    assert set(d["munis"]) == {c for c, _ in cells(tsv)} - {c for c, _ in emptied}


def test_summary_leaves_out_a_headline_figure_without_samples():
    """national.py --phases resync --name national_4m declares every headline figure but
    samples only the resync's: the summary shows that one and no empty rows for the others."""
    fig = {"label": "L", "unit": "s", "goal": "< 1 s", "baseline": None, "ratio": None,
           "met": False, "headline": True}
    data = {"commit": "0" * 40, "loadavg_start": [0.1, 0.1, 0.1], "load_flagged": False,
            "figures": {"resync_s": dict(fig, label="resync sampled", median=2.0, min=1.0,
                                         max=3.0, n=5),
                        "fresh_p99_s": dict(fig, label="freshness unsampled", median=None,
                                            min=None, max=None, n=0)}}
    text = report.summary({"national_4m": data})
    assert "resync sampled (national_4m)" in text
    assert "freshness unsampled" not in text


def test_summary_keeps_the_dirty_mark_and_says_when_fewer_than_five_samples():
    """A run on a tree that differed from its commit shows +dirty in the summary (it was cut to
    the first 12 digits), and a figure of fewer than 5 samples says it is not a median of 5."""
    fig = {"label": "L", "unit": "s", "goal": "< 1 s", "baseline": None, "ratio": None,
           "met": True, "headline": True}
    data = {"commit": "a" * 40 + "+dirty", "loadavg_start": [0.1, 0.1, 0.1],
            "load_flagged": False,
            "figures": {"five": dict(fig, label="five samples", median=2.0, min=1.0, max=3.0,
                                     n=5),
                        "one": dict(fig, label="one sample", median=2.0, min=2.0, max=2.0,
                                    n=1)}}
    rows = {line.split(" (x)")[0].lstrip("| "): line
            for line in report.summary({"x": data}).splitlines() if " (x)" in line}
    assert "`%s+dirty`" % ("a" * 12) in rows["five samples"]
    assert "not a median of 5" in rows["one sample"]
    assert "not a median of 5" not in rows["five samples"]


def test_a_missed_goal_says_by_how_much():
    """The issue asks the docs to say by how much a goal is missed: the met column gives the
    judged figure against the goal, as a multiple for a figure that must stay under its goal
    (a time) and as a fraction for one that must reach it (a ratio to the baseline, a rate).
    The expected texts are computed here from the figures, not read from report.py."""
    fig = {"unit": "s", "baseline": None, "ratio": None, "headline": True, "n": 5,
           "min": 1.0, "max": 99.0}
    figs = {
        "time": dict(fig, label="a time", better="lower", goal="< 60 s", goal_value=60.0,
                     median=452.0, met=False),
        "rate": dict(fig, label="a rate", better="higher", goal=">= 200,000",
                     goal_value=200000.0, median=50000.0, met=False),
        # A time judged by its ratio to the baseline (baseline / product): the ratio must
        # reach the goal although the time itself is "lower is better".
        "ratio": dict(fig, label="a ratio", better="lower", goal=">= 0.8 x", goal_value=0.8,
                      goal_on="ratio", median=12.0, met=False,
                      ratio={"median": 0.24, "min": 0.2, "max": 0.33}),
        "kept": dict(fig, label="a kept goal", better="lower", goal="< 10 ms",
                     goal_value=10.0, median=5.0, met=True),
        "open": dict(fig, label="no goal here", better="lower", goal="< 1 s at 4,000,000",
                     goal_value=None, median=5.0, met=None),
    }
    data = {"commit": "c" * 40, "loadavg_start": [0.1, 0.1, 0.1], "load_flagged": False,
            "figures": figs}
    met = {line.split(" (x)")[0].lstrip("| "): line.split(" | ")[5]
           for line in report.summary({"x": data}).splitlines() if " (x)" in line}
    assert met["a time"] == "**no**: %.2fx the goal" % (452.0 / 60.0)
    assert met["a rate"] == "**no**: %.2f of the goal" % (50000.0 / 200000.0)
    assert met["a ratio"] == "**no**: %.2f of the goal" % (0.24 / 0.8)
    assert met["a kept goal"] == "yes"
    assert met["no goal here"] == "-"


def test_a_quick_run_is_marked_and_never_written_over_the_doc(tmp_path):
    """make bench BENCH_QUICK=1 measures short versions: its figures are not the headline ones.
    report.py refuses to write them over docs/BENCHMARKS.md, and where they are written (--out)
    each summary row says BENCH_QUICK."""
    fig = {"label": "quick figure", "unit": "s", "samples": [1.0], "median": 1.0, "min": 1.0,
           "max": 1.0, "n": 1, "goal": "< 2 s", "baseline": None, "ratio": None, "met": True,
           "headline": True}
    data = {"bench": "import", "schema": 1, "date": "2026-12-05T00:00:00Z", "commit": "b" * 40,
            "command": "/usr/bin/python3 bench/import_bench.py --rows 100000", "quick": True,
            "machine": {"nproc": 2, "ram_bytes": 2 ** 30, "cpu": "c", "kernel": "k",
                        "sqlite": "s"},
            "loadavg_start": [0.1, 0.1, 0.1], "load_flagged": False, "order": [],
            "figures": {"node_rate": fig}, "checks": [{"name": "c", "ok": True}], "ok": True,
            "notes": [], "params": {}}
    (tmp_path / "import.json").write_text(json.dumps(data))
    doc = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(doc, "rb") as f:
        before = f.read()
    r = subprocess.run([sys.executable, "bench/report.py", "--dir", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    with open(doc, "rb") as f:
        after = f.read()
    if after != before:
        with open(doc, "wb") as f:  # put the doc back before failing
            f.write(before)
    assert after == before, "a quick run's figures were written over the doc"
    assert r.returncode == 1 and "BENCH_QUICK" in r.stderr, r.stderr
    out = tmp_path / "BENCHMARKS.md"
    r = subprocess.run([sys.executable, "bench/report.py", "--dir", str(tmp_path), "--out",
                        str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(doc, "rb") as f:
        assert f.read() == before
    rows = [line for line in out.read_text().split("<!-- bench:summary:end -->")[0].splitlines()
            if line.startswith("| quick figure (import)")]
    assert len(rows) == 1 and "`%s` (BENCH_QUICK)" % ("b" * 12) in rows[0], rows


def test_a_quick_run_keeps_a_full_runs_json():
    """make bench BENCH_QUICK=1 keeps its JSON and tables in build/bench/quick/: it once began
    with rm -f build/bench/*.json and deleted the JSON of the last full run. A file standing
    for that JSON must survive a quick run (of one tiny driver), whose JSON and tables land in
    build/bench/quick/."""
    full = os.path.join(ROOT, "build", "bench")
    quick = os.path.join(full, "quick")
    os.makedirs(full, exist_ok=True)
    sentinel = os.path.join(full, "zz_full_run_sentinel.json")
    with open(sentinel, "w") as f:
        f.write("{}\n")
    try:
        r = subprocess.run(["make", "-s", "bench", "BENCH_QUICK=1", "BENCH_WAIT=0",
                            # one command, quoted as the Makefile quotes each of its runs
                            'BENCH_RUNS="bench/import_bench.py --rows 500 --repeat 1"'],
                           cwd=ROOT, env=dict(os.environ, BENCH_CALIBRATE="0"),
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert os.path.exists(sentinel), "the quick run deleted build/bench/*.json"
        with open(os.path.join(quick, "import.json")) as f:
            assert json.load(f)["quick"] is True
        with open(os.path.join(quick, "BENCHMARKS.md")) as f:
            assert "(import) |" in f.read()
    finally:
        if os.path.exists(sentinel):
            os.unlink(sentinel)


@pytest.mark.parametrize("mode,batch", [("--profile", "one_mun"),
                                        ("--profile-scattered", "scattered")])
def test_rollup_bench_profile_mode(tmp_path, mode, batch):
    """rollup_bench --profile B (--profile-scattered B), the profiler's runs that
    docs/BENCHMARKS.md cites, load the store and then run B batches of one municipality (of
    corrections scattered over every municipality) and nothing else (no baseline, no
    comparison): B batches' samples (the figure and its parts) and exit 0."""
    exe = os.path.join(ROOT, "build", "bench", "rollup_bench")
    assert os.access(exe, os.X_OK), "build/bench/rollup_bench is missing: make bench-build"
    r = subprocess.run([exe, "--records", "1000", "--municipalities", "2", "--dir",
                        str(tmp_path), mode, "3"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    samples = [line.split() for line in r.stdout.splitlines() if line.startswith("sample ")]
    assert [x[1] for x in samples] == [batch + "_ms", batch + "_note_ms", batch + "_refresh_ms",
                                       batch + "_ingest_ms"] * 3, r.stdout
    # The figure is the noting and the refresh together.
    for i in range(0, len(samples), 4):
        total, note, refresh = (float(samples[i + k][2]) for k in range(3))
        assert abs(total - (note + refresh)) < 1e-3, samples[i:i + 4]
    assert all(float(x[2]) > 0 for x in samples)
    assert "baseline" not in r.stdout and "check " not in r.stdout, r.stdout


@pytest.mark.parametrize("args", [["--help"], ["--records"], ["--records", "1000", "--bogus",
                                                                "1"]])
def test_rollup_bench_refuses_what_it_does_not_know(tmp_path, args):
    """An unknown option, or an option without its value, prints the usage and exits 2
    before anything is loaded (it used to be ignored, and --help ran the full 1,000,000-record
    bench)."""
    exe = os.path.join(ROOT, "build", "bench", "rollup_bench")
    r = subprocess.run([exe, "--dir", str(tmp_path)] + args, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and r.stderr.startswith("usage: rollup_bench"), (r.returncode,
                                                                                r.stderr)
    assert r.stdout == "" and not (tmp_path / "hub.db").exists()
