#!/usr/bin/python3
"""Hub rollup benchmark driver (issues 4 and 17): runs build/bench/rollup_bench (the hub's
rollup engine on a synthetic province, beside plain SQL GROUP BY in the same process, in
alternating order) and writes build/bench/rollup.json (bench/benchlib.py).

rollup_bench compares the engine's cells with the baseline's, cell by cell (key names from the
schema's enumerations; all 15 indicators, the ratios by numerator and denominator: every
grouping, six period kinds) before anything is timed and again after the incremental batches,
and after the batches the cells they left with those of a rebuild from the records
(rollup_full: a change the noting lost would leave the baseline, which reads the engine's
decoded rows, behind too); a difference fails the bench (exit 1). The store has the hub's page
cache (256 MiB). Timed: compute alone (every snapshot dirty, rollup_refresh) against the
baseline; a batch of 1,000 changes of one municipality (600 new, 400 corrections) and 1,000
corrections scattered over every municipality, each applied the hub's ingest's way (upserted
with hubstore_put and committed; then each record read back and noted, rollup_note_stored,
committed) and then refreshed. The figure judged against the goal is the engine's whole work
to reflect the batch: the noting transaction plus rollup_refresh (until 2026-12-06 the refresh
alone, after a rollup_note inside the upserts' transaction, a path the hub does not use); both
parts, and the upserts' transaction, are figures of their own.

  /usr/bin/python3 bench/rollup.py [--records 1000000] [--municipalities 100] [--repeat 5]"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import benchlib  # noqa: E402

EXE = os.path.join(ROOT, "build", "bench", "rollup_bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--municipalities", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    if not os.access(EXE, os.X_OK):
        sys.exit("%s is missing: run make bench-build first" % EXE)
    res = benchlib.Result("rollup", "bench/rollup.py", params=vars(a))
    res.data["order"] = benchlib.alternating(a.repeat)
    work = tempfile.mkdtemp(prefix="rollup-bench-", dir="/var/tmp")
    try:
        r = subprocess.run([EXE, "--records", str(a.records), "--municipalities",
                            str(a.municipalities), "--repeat", str(a.repeat), "--dir", work],
                           capture_output=True, text=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.check("rollup_bench exited 0", r.returncode == 0,
              "exit %d: %s" % (r.returncode, r.stderr[-1000:]))
    for line in r.stdout.splitlines():
        kind, name, rest = (line.split(" ", 2) + ["", ""])[:3]
        if kind == "sample":
            res.sample(name, float(rest))
        elif kind == "check":
            ok, _, detail = rest.partition(" ")
            res.check(name, ok == "1", detail)
        elif kind == "info":
            res.data["extra"][name] = int(rest)
    res.check("every figure has its samples", all(
        len(res.data["figures"].get(k, {"samples": []})["samples"]) >= min(a.repeat, 1)
        for k in ("compute_s", "baseline_s", "one_mun_ms", "scattered_ms", "one_mun_note_ms",
                  "one_mun_refresh_ms", "scattered_note_ms", "scattered_refresh_ms")), "")
    scope = "%s records, %d municipalities" % (f"{a.records:,}", a.municipalities)
    res.figure("one_mun_ms", "1,000 changes of one municipality reflected in its snapshots "
               "(noted + rollup_refresh, after their upserts' commit), " + scope, "ms",
               better="lower", goal="< 10 ms", goal_value=10, headline=True)
    res.figure("scattered_ms", "1,000 corrections scattered over every municipality "
               "(noted + rollup_refresh, after their upserts' commit), " + scope, "ms",
               better="lower", goal="< 1,000 ms", goal_value=1000, headline=True)
    for name, what in (("one_mun", "that batch's"), ("scattered", "the scattered batch's")):
        res.figure(name + "_note_ms", what + " noting transaction (each record read back, "
                   "rollup_note_stored, commit)", "ms", better="lower")
        res.figure(name + "_refresh_ms", what + " rollup_refresh", "ms", better="lower")
        res.figure(name + "_ingest_ms", what + " upserts' transaction (hubstore_put, commit; "
                   "not counted in the figure)", "ms", better="lower")
    res.figure("compute_s", "compute alone, every snapshot of 15 indicators, " + scope, "s",
               better="lower", baseline="baseline_s", headline=True,
               goal="reported beside the baseline")
    res.figure("baseline_s", "plain SQL GROUP BY, all 15 indicators (every grouping, six "
               "period kinds)", "s", better="lower")
    res.figure("full_s", "rollup_full (decode every record + every snapshot), one run", "s",
               better="lower")
    res.figure("load_s", "load (records upserted, no engine), one run", "s", better="lower")
    res.note("The baseline computes all 15 of the engine's indicators (the ratios with their "
             "denominators; the loan months, referral windows and reporting months in SQL, the "
             "reporting ones for municipalities that close BS months, as all of this bench's "
             "do) and the two outputs are compared on all of them before anything is timed.")
    res.write()
    return res.exit_status()


if __name__ == "__main__":
    sys.exit(main())
