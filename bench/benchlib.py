"""What every benchmark driver records, in one place (issue 17).

A driver makes one Result, adds samples to its figures as it runs (at least 5 runs for a
figure that is reported; the smoke test runs fewer), records every work-done check, and
writes build/bench/<name>.json at the end. bench/report.py turns those files into the tables
of docs/BENCHMARKS.md: no figure is typed by hand.

The JSON (schema 1):
  bench, schema, date (UTC, ISO 8601), commit (git HEAD, "+dirty" when the tree had
  changes), command (exactly as run), quick (BENCH_QUICK), params (the driver's options),
  machine {nproc, ram_bytes, cpu, kernel, sqlite}, loadavg_start [1, 5, 15 min],
  load_flagged (1-minute load above 1 at the start), order (the run order, "A"/"B"),
  figures {name: {label, unit, better ("higher"/"lower"), samples [...], median, min, max,
              n, goal (text or null), goal_value, baseline (a figure name or null),
              ratio {median, min, max, samples} or null, met (true/false/null),
              headline (true for the summary table), note}},
  checks [{name, ok, detail}], ok (every check passed), notes [...], extra {...},
  calibration [{at, wall_ms, cpu_ms}]: the machine's speed on a fixed piece of work
              (build/bench/calibrate) at the start, at the end, and where a driver asks
              (Result.calibrate); absent when the program is not built or BENCH_CALIBRATE=0.

A driver exits non-zero when a check fails (Result.write then Result.exit_status)."""
import datetime
import http.client
import json
import os
import platform
import shlex
import sqlite3
import ssl
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.environ.get("BENCH_OUT", os.path.join(ROOT, "build", "bench"))
SCHEMA = 1
CALIBRATE = os.path.join(ROOT, "build", "bench", "calibrate")


def breakdown(res, key, port, cafile, token, year, expect=None, requests=5):
    """Geography and time in one query (issue 16): every local level month by month over the
    given year, asked `requests` times on one keep-alive HTTPS connection to federal-api at
    port (a ministry's token: exact values), each a sample of figure key. The check: every
    answer lists 753 x 12 answers, the year's months in order, and holds data: with expect
    (answers with a participant, the sum of their totals), exactly that; without, at least
    one. Records the answer's size and what it held in extra."""
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    path = ("/v1/indicators/participants_registered?by=municipality&series=month&period=%s"
            % year)
    sizes, answers = [], []
    for _ in range(requests):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        body = r.read()
        res.sample(key, (time.perf_counter() - t0) * 1000)
        sizes.append((r.status, len(body)))
        answers.append(json.loads(body)["answers"] if r.status == 200 else [])
    conn.close()
    months = ["%s-%02d" % (year, m) for m in range(1, 13)]
    held = [(sum(1 for x in a if x["total"]["contributors"] > 0),
             sum(x["total"]["value"] for x in a)) for a in answers]
    res.check("%s: the breakdown lists 753 x 12 answers of %s, holding the data" % (key, year),
              all(len(a) == 753 * 12 and [x["period"] for x in a[:12]] == months
                  for a in answers) and
              all(h == tuple(expect) if expect else h[0] > 0 for h in held),
              "answers %s, statuses %s; (answers with data, sum of totals) %s, expected %s"
              % ([len(a) for a in answers], [x for x, _ in sizes], held,
                 tuple(expect) if expect else "at least one with data"))
    res.data["extra"][key.replace("_ms", "_bytes")] = sizes[-1][1]
    res.data["extra"][key.replace("_ms", "_held")] = held[-1]


def alternating(n):
    """The run order of n pairs of (product A, baseline B): A B B A A B B A ..., so that
    neither side always runs first (behind the other's checkpoints, cache or autovacuum)."""
    order = []
    for i in range(n):
        order += ["A", "B"] if i % 2 == 0 else ["B", "A"]
    return order


def git_commit():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        # Untracked files count too: the Makefile builds every C file it finds and the federal
        # benches apply every migration in the directory (ignored build output is not listed).
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
                break
    return {"nproc": os.cpu_count(), "ram_bytes": ram, "cpu": model,
            "kernel": platform.release(), "sqlite": sqlite3.sqlite_version}


def calibrate():
    """The machine's speed now: build/bench/calibrate's fixed work (100,000 random rows into an
    in-memory SQLite table with an index, median of 5 runs, about 1.3 s in all) as
    {wall_ms, cpu_ms}, or None when the program is not built or BENCH_CALIBRATE=0 (the smoke
    test's tiny runs, whose budget it would eat). A run whose calibration failed says so."""
    if os.environ.get("BENCH_CALIBRATE", "1") == "0" or not os.access(CALIBRATE, os.X_OK):
        return None
    r = subprocess.run([CALIBRATE], capture_output=True, text=True)
    words = r.stdout.split()
    if r.returncode != 0 or words[:1] != ["calibrate"] or len(words) != 5:
        return {"error": "exit %d: %s" % (r.returncode, (r.stderr or r.stdout).strip()[-300:])}
    return {"wall_ms": float(words[2]), "cpu_ms": float(words[4])}


def quick():
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


class Result:
    def __init__(self, name, script, argv=None, params=None):
        self.name = name
        argv = sys.argv[1:] if argv is None else argv
        self.data = {
            "bench": name, "schema": SCHEMA,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "commit": git_commit(),
            "command": " ".join(["/usr/bin/python3", script] + [shlex.quote(a) for a in argv]),
            "quick": quick(), "params": params or {}, "machine": machine(),
            "loadavg_start": list(os.getloadavg()), "order": [],
            "figures": {}, "checks": [], "notes": [], "extra": {},
        }
        self.data["load_flagged"] = self.data["loadavg_start"][0] > 1.0
        self._ended = False
        self.calibrate("start")

    def calibrate(self, at):
        """Records the machine's speed now (see calibrate()) under the label `at`: at the start
        and at the end of every run, and where a driver asks (between the resyncs of the
        national bench), so that a figure that moved along a run can be told apart from a
        machine that did."""
        c = calibrate()
        if c is not None:
            c["at"] = at
            self.data.setdefault("calibration", []).append(c)

    def figure(self, key, label, unit, better="higher", goal=None, goal_value=None,
               baseline=None, headline=False, note=None, goal_on="median"):
        """Declares a figure (before or after its samples). goal_value is compared with the
        median, or with goal_on="ratio" with the median of the pairwise ratios to the
        baseline figure (e.g. ">= 0.8 x raw SQLite")."""
        f = self.data["figures"].setdefault(key, {"samples": []})
        f.update({"label": label, "unit": unit, "better": better, "goal": goal,
                  "goal_value": goal_value, "baseline": baseline, "headline": headline,
                  "note": note, "goal_on": goal_on})
        return f

    def sample(self, key, value):
        self.data["figures"].setdefault(key, {"samples": []})["samples"].append(value)

    def samples(self, key, values):
        for v in values:
            self.sample(key, v)

    def check(self, name, ok, detail=""):
        """A work-done check: the bench fails (exit 1) when any is false."""
        self.data["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)})
        if not ok:
            print("CHECK FAILED: %s: %s" % (name, detail), file=sys.stderr)
        return ok

    def note(self, text):
        self.data["notes"].append(text)

    def _finish(self):
        figs = self.data["figures"]
        for f in figs.values():
            xs = f["samples"]
            f["n"] = len(xs)
            f["median"] = statistics.median(xs) if xs else None
            f["min"] = min(xs) if xs else None
            f["max"] = max(xs) if xs else None
        for f in figs.values():
            f.setdefault("label", "?")
            f.setdefault("better", "higher")
            f.setdefault("goal_value", None)
            f.setdefault("baseline", None)
            f.setdefault("headline", False)
            f["ratio"] = None
            b = figs.get(f.get("baseline")) if f.get("baseline") else None
            if b and f["samples"] and b["samples"]:
                # Pairwise ratios (run i of the product against run i of the baseline), so
                # that the spread of the ratio is reported too; "higher is better" figures
                # are product / baseline, "lower is better" ones (times) baseline / product.
                pairs = list(zip(f["samples"], b["samples"]))
                rs = [(a / c if f["better"] == "higher" else c / a) if a and c else 0.0
                      for a, c in pairs]
                f["ratio"] = {"median": statistics.median(rs), "min": min(rs), "max": max(rs),
                              "samples": rs}
            gv, f["met"] = f.get("goal_value"), None
            if gv is not None and f["median"] is not None:
                x = f["ratio"]["median"] if (f["ratio"] and f.get("goal_on") == "ratio") \
                    else f["median"]
                f["met"] = x >= gv if (f["better"] == "higher" or f.get("goal_on") == "ratio") \
                    else x <= gv
        self.data["ok"] = all(c["ok"] for c in self.data["checks"]) and bool(self.data["checks"])

    def write(self):
        if not self._ended:
            self._ended = True
            self.calibrate("end")
        self._finish()
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, self.name + ".json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
        print("wrote %s (%s)" % (os.path.relpath(path, ROOT),
                                 "all checks passed" if self.data["ok"] else "CHECKS FAILED"),
              file=sys.stderr)
        return path

    def exit_status(self):
        return 0 if self.data.get("ok") else 1


def wait_quiet(below=0.5, at_most=300.0):
    """Waits until the 1-minute load average is below `below` (or `at_most` seconds passed);
    returns the seconds waited. make bench calls it before each driver: the load average lags
    by about a minute, so a bench started right after the previous one would otherwise read
    that one's load as its own and be marked loaded."""
    t0 = time.monotonic()
    while os.getloadavg()[0] >= below and time.monotonic() - t0 < at_most:
        time.sleep(5)
    return time.monotonic() - t0


def summary(values, fmt="%.0f"):
    xs = sorted(values)
    return "%s (min %s, max %s, n %d)" % (fmt % statistics.median(xs), fmt % xs[0],
                                          fmt % xs[-1], len(xs))


if __name__ == "__main__":
    # python3 bench/benchlib.py wait-quiet [BELOW [AT_MOST_S]]: make bench, between drivers.
    if sys.argv[1:2] != ["wait-quiet"]:
        sys.exit("usage: benchlib.py wait-quiet [BELOW [AT_MOST_S]]")
    lim = [float(x) for x in sys.argv[2:4]]
    waited = wait_quiet(*lim)
    print("machine quiet after %.0f s (1-minute load %.2f)" % (waited, os.getloadavg()[0]))
