#!/usr/bin/python3
"""Regenerates the generated tables of docs/BENCHMARKS.md from build/bench/*.json (written by
the drivers through bench/benchlib.py): no figure in those tables is typed by hand.

Between <!-- bench:summary:begin --> and <!-- bench:summary:end -->: one table with every
headline figure (goal, baseline, ratio, median/min/max, commit, load flag). Between
<!-- bench:results:begin --> and <!-- bench:results:end -->: one section per bench with every
figure, its samples, the checks, the command, the machine. Text outside the markers (the
explanations, the earlier results under their dates) is left as it is.

  /usr/bin/python3 bench/report.py [--dir build/bench] [--doc docs/BENCHMARKS.md] [--check]

--check exits 1 when a JSON file lacks a key, or a bench's checks failed."""
import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ["hub_ingest", "import", "federal", "rollup", "national"]
REQUIRED = ["bench", "schema", "date", "commit", "command", "machine", "loadavg_start",
            "load_flagged", "order", "figures", "checks", "ok"]
FIGURE_KEYS = ["label", "unit", "samples", "median", "min", "max", "n", "goal", "baseline",
               "ratio", "met", "headline"]


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) < 100:
        s = "%.2f" % x if abs(x) < 10 else "%.1f" % x
    else:
        s = "{:,.0f}".format(x)
    return s


def load(d):
    out = {}
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        out[data.get("bench", os.path.basename(path)[:-5])] = data
    return out


def validate(data):
    errs = ["missing key %s" % k for k in REQUIRED if k not in data]
    for name, f in data.get("figures", {}).items():
        errs += ["figure %s: missing %s" % (name, k) for k in FIGURE_KEYS if k not in f]
    return errs


def ordered(results):
    return sorted(results.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER
                                                   else len(ORDER), kv[0]))


def summary(results):
    rows = ["| figure | goal | baseline (median) | ratio median (min-max) | median (min-max), n "
            "| met | commit | load at start |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, data in ordered(results):
        figs = data["figures"]
        for key, f in figs.items():
            if not f.get("headline"):
                continue
            b = figs.get(f["baseline"]) if f.get("baseline") else None
            r = f.get("ratio")
            rows.append("| %s (%s) | %s | %s | %s | %s (%s-%s) %s, n %d | %s | `%s` | %.2f%s |" % (
                f["label"], name, f.get("goal") or "-",
                "%s: %s %s" % (b["label"], fmt(b["median"]), b["unit"]) if b else "-",
                "%.2f (%.2f-%.2f)" % (r["median"], r["min"], r["max"]) if r else "-",
                fmt(f["median"]), fmt(f["min"]), fmt(f["max"]), f["unit"], f["n"],
                {True: "yes", False: "**no**", None: "-"}[f.get("met")],
                data["commit"][:12], data["loadavg_start"][0],
                " **(loaded)**" if data["load_flagged"] else ""))
    return "\n".join(rows) + "\n"


def section(name, data):
    m = data["machine"]
    out = ["### %s (%s)" % (name, data["date"]), "",
           "```", data["command"], "```", "",
           "Commit `%s`%s; %d cores, %.1f GiB RAM, %s, Linux %s, SQLite %s; load average %s at "
           "the start%s; run order %s." % (
               data["commit"], " (BENCH_QUICK)" if data.get("quick") else "", m["nproc"],
               m["ram_bytes"] / 2 ** 30, m["cpu"], m["kernel"], m["sqlite"],
               " / ".join("%.2f" % x for x in data["loadavg_start"]),
               " (**above 1: figures doubtful**)" if data["load_flagged"] else "",
               " ".join(data["order"]) or "-"), "",
           "| figure | median | min | max | n | samples |", "| --- | --- | --- | --- | --- | --- |"]
    for key, f in data["figures"].items():
        label = f["label"] + (" (ratio to baseline: %.2f, %.2f-%.2f)"
                              % (f["ratio"]["median"], f["ratio"]["min"], f["ratio"]["max"])
                              if f.get("ratio") else "")
        out.append("| %s, %s | %s | %s | %s | %d | %s |" % (
            label, f["unit"], fmt(f["median"]), fmt(f["min"]), fmt(f["max"]), f["n"],
            ", ".join(fmt(x) for x in f["samples"])))
    bad = [c for c in data["checks"] if not c["ok"]]
    out += ["", "Work-done checks: %d, %s." % (
        len(data["checks"]), "all passed" if not bad else "FAILED: " + "; ".join(
            "%s (%s)" % (c["name"], c["detail"]) for c in bad))]
    for n in data.get("notes", []):
        out += ["", n]
    return "\n".join(out) + "\n"


def replace_between(doc, tag, text):
    begin, end = "<!-- bench:%s:begin -->" % tag, "<!-- bench:%s:end -->" % tag
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        raise SystemExit("docs/BENCHMARKS.md lacks the markers %s ... %s" % (begin, end))
    return doc[:i + len(begin)] + "\n" + text + doc[j:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--check", action="store_true",
                    help="validate the JSON only; exit 1 on a missing key or a failed check")
    a = ap.parse_args()
    results = load(a.dir)
    errs = ["%s: %s" % (n, e) for n, d in results.items() for e in validate(d)]
    errs += ["%s: work-done checks failed" % n for n, d in results.items() if not d.get("ok")]
    if a.check or errs:
        for e in errs:
            print(e, file=sys.stderr)
        if errs or not results:
            return 1
        if a.check:
            return 0
    with open(a.doc) as f:
        doc = f.read()
    doc = replace_between(doc, "summary", summary(results))
    doc = replace_between(doc, "results", "\n".join(section(n, d) for n, d in ordered(results)))
    with open(a.doc, "w") as f:
        f.write(doc)
    print("regenerated the tables of %s from %d results" % (os.path.relpath(a.doc, ROOT),
                                                            len(results)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
