#!/usr/bin/python3
"""Node CSV import benchmark (issue 3, item 3), with sqlite3's own `.import` as the baseline
in the same run.

1. Writes a persons CSV of N rows (default 1,000,000) with plausible values in the node's
   calendar (Bikram Sambat): the generator is built for speed (pools of values, one string
   format per row), not for ground truth; every row is valid.
2. `municipal-node init` a fresh node, then times `municipal-node import --kind persons FILE`
   (validation, BS conversion, record packing, the outbox and the local personal data, in
   transactions of 10,000 rows with WAL and synchronous=FULL). Peak RSS is the child's
   ru_maxrss from wait4(). The import must exit 0 and report every row inserted.
3. Baseline: the sqlite3 shell (Debian's, the same library version) imports the same file
   with `.import --csv --skip 1` into a fresh database on the same disk: WAL,
   synchronous=FULL, a rowid table with the CSV's columns and local_id its primary key: the
   same indexes as the node's records table (a rowid table with a unique index on
   (kind, local_id)); the shell imports in one transaction. A second baseline adds a UNIQUE
   16-byte time-ordered id column filled by a view's trigger (more indexes than the node).

Prints a Markdown section; with --write appends it (one write) to docs/BENCHMARKS.md.
Timings are reported, never asserted."""
import argparse
import datetime
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_BIN = os.path.join(ROOT, "build", "bin", "municipal-node")

COLS = ["local_id", "category", "sex", "birth_year", "caste_group", "disability",
        "registered_on", "destination_country", "years_abroad", "return_date",
        "remigration_intention", "family_member_abroad", "consent", "full_name", "phone",
        "citizenship_no", "ward", "address"]
GIVEN = ["Sita", "Ram", "Gita", "Hari", "Maya", "Bishnu", "Kamala", "Krishna", "Laxmi",
         "Suman", "Anita", "Bikash", "Sarita", "Dipak", "Puja", "Rajesh", "Sunita", "Nabin",
         "Kabita", "Prakash", "Srijana", "Bimala", "Ganesh", "Mina"]
FAMILY = ["Shrestha", "Gurung", "Tamang", "Rai", "Limbu", "Magar", "Thapa", "Karki",
          "Adhikari", "Yadav", "Sharma", "Bishwakarma", "Ansari", "Chaudhary", "Pariyar",
          "Sherpa", "Tharu", "Khadka"]
TOLES = ["Bhanu Chowk", "Naya Bazar", "Hile Road", "Buddha Marg", "Chuchepati", "Mill Road",
         "Purano Bazar", "Campus Road"]


def write_csv(path, n, seed):
    """n valid person rows in BS dates (years 2070-2080, days 1-28: always valid, never in
    the future). Returns the file size."""
    r = random.Random(seed)
    rnd = r.random
    # Pools of pre-formatted values keep the per-row cost to one string format.
    regs = ["%04d-%02d-%02d" % (2070 + r.randrange(11), 1 + r.randrange(12), 1 + r.randrange(28))
            for _ in range(4096)]
    names = ["%s %s" % (g, f) for g in GIVEN for f in FAMILY]
    kinds = []
    for cat, cc, ya, intent in (("RETURNEE", "QA", "3", "NONE"), ("RETURNEE", "MY", "7", "PLANNING"),
                                ("RETURNEE", "AE", "2", "UNDECIDED"), ("MIGRANT_FAMILY", "SA", "", ""),
                                ("PROSPECTIVE_MIGRANT", "KW", "", ""), ("VULNERABLE", "", "", ""),
                                ("COMMUNITY", "", "", "")):
        kinds.append((cat, cc, ya, intent))
    sexes = ["FEMALE", "MALE", "FEMALE", "MALE", "OTHER"]
    castes = ["DALIT", "JANAJATI", "MADHESI", "MUSLIM", "BRAHMIN_CHHETRI", "OTHER", "UNDISCLOSED"]
    bools = ["yes", "no", ""]
    fmt = ("N%07d,%s,%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,yes,%s %d,98%08d,%02d-%02d-%02d-%05d,%d,"
           "\"%s, ward %d\"\n")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLS) + "\n")
        buf = []
        for i in range(n):
            x = int(rnd() * 2 ** 52)
            cat, cc, ya, intent = kinds[x % 7]
            reg = regs[(x >> 3) & 4095]
            ret = reg if cat == "RETURNEE" else ""
            ward = 1 + (x >> 15) % 12
            buf.append(fmt % (i + 1, cat, sexes[(x >> 19) % 5], int(reg[:4]) - 16 - (x >> 22) % 50,
                              castes[(x >> 28) % 7], bools[(x >> 31) % 3], reg, cc, ya, ret,
                              intent, "true" if (x >> 33) & 1 else "false",
                              names[(x >> 34) % len(names)], i + 1, (x >> 20) % 100000000,
                              1 + (x >> 10) % 77, 1 + (x >> 17) % 99, 70 + (x >> 24) % 11,
                              (x >> 27) % 100000, ward, TOLES[(x >> 40) % len(TOLES)], ward))
            if len(buf) == 10000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return os.path.getsize(path)


def timed(args, stdin_text=None):
    """Runs args, reaping it with wait4() so that its own peak RSS and CPU time are known.
    stdout and stderr go to temporary files (no pipe to drain while it runs)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin_text else subprocess.DEVNULL,
                             stdout=out, stderr=err)
        if stdin_text:
            p.stdin.write(stdin_text.encode())
            p.stdin.close()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"rc": p.returncode, "wall": wall, "rss_kib": ru.ru_maxrss,
                "cpu": ru.ru_utime + ru.ru_stime, "out": out.read().decode(errors="replace"),
                "err": err.read().decode(errors="replace")}


def node_import(workdir, csv_path, rows):
    ndir = os.path.join(workdir, "node")
    subprocess.run([NODE_BIN, "init", "--municipality", "10703", "--dir", ndir,
                    "--calendar", "BS"], check=True, capture_output=True)
    cfg = os.path.join(ndir, "node.ini")
    r = timed([NODE_BIN, "--config", cfg, "import", "--kind", "persons", csv_path])
    if r["rc"] != 0:
        raise SystemExit("import exited %d:\n%s%s" % (r["rc"], r["out"], r["err"][-2000:]))
    db = os.path.join(ndir, "node.db")
    out = subprocess.run(["sqlite3", db, "SELECT count(*) FROM records;"
                          " SELECT count(*) FROM records WHERE fields IS NOT NULL;"
                          " PRAGMA journal_mode; PRAGMA synchronous;"],
                         check=True, capture_output=True, text=True).stdout.split()
    if int(out[0]) != rows or int(out[1]) != rows:
        raise SystemExit("the node stored %s records and %s local rows, not %d"
                         % (out[0], out[1], rows))
    r["summary"] = r["out"].strip()
    r["db_bytes"] = sum(os.path.getsize(os.path.join(ndir, f)) for f in os.listdir(ndir)
                        if f.startswith("node.db"))
    return r


BASELINE_SQL = """PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE persons(local_id TEXT PRIMARY KEY, category, sex, birth_year, caste_group,
  disability, registered_on, destination_country, years_abroad, return_date,
  remigration_intention, family_member_abroad, consent, full_name, phone, citizenship_no,
  ward, address, id BLOB NOT NULL UNIQUE);
-- .import binds every column of its target, so the 16-byte time-ordered id (Unix
-- milliseconds modulo 2^36 as 9 hex digits, then 7 random bytes: right-edge inserts like
-- the node's UUIDv7 ids) is added by a view's INSTEAD OF trigger.
CREATE VIEW persons_csv AS SELECT local_id, category, sex, birth_year, caste_group,
  disability, registered_on, destination_country, years_abroad, return_date,
  remigration_intention, family_member_abroad, consent, full_name, phone, citizenship_no,
  ward, address FROM persons;
CREATE TRIGGER persons_csv_insert INSTEAD OF INSERT ON persons_csv BEGIN
  INSERT INTO persons VALUES(NEW.local_id, NEW.category, NEW.sex, NEW.birth_year,
    NEW.caste_group, NEW.disability, NEW.registered_on, NEW.destination_country,
    NEW.years_abroad, NEW.return_date, NEW.remigration_intention, NEW.family_member_abroad,
    NEW.consent, NEW.full_name, NEW.phone, NEW.citizenship_no, NEW.ward, NEW.address,
    CAST(printf('%09x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
                        % 68719476736) || randomblob(7) AS BLOB));
END;
"""


PLAIN_SQL = """PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE persons(local_id TEXT PRIMARY KEY, category, sex, birth_year, caste_group,
  disability, registered_on, destination_country, years_abroad, return_date,
  remigration_intention, family_member_abroad, consent, full_name, phone, citizenship_no,
  ward, address);
"""


def baseline_import(workdir, csv_path, rows, plain=False):
    """sqlite3's .import of the same file; returns wall s, peak RSS, CPU s, database size.
    plain: the CSV's columns and the local_id key only (no id column, no trigger)."""
    db = os.path.join(workdir, "baseline.db")
    for f in os.listdir(workdir):
        if f.startswith("baseline.db"):
            os.unlink(os.path.join(workdir, f))
    if plain:
        script = (PLAIN_SQL + ".import --csv --skip 1 %s persons\n"
                  "SELECT count(*), count(*) FROM persons;\n" % csv_path)
    else:
        script = (BASELINE_SQL + ".import --csv --skip 1 %s persons_csv\n"
                  "SELECT count(*), count(DISTINCT id) FROM persons;\n" % csv_path)
    r = timed(["sqlite3", "-batch", "-bail", db], stdin_text=script)
    if r["rc"] != 0:
        raise SystemExit("sqlite3 exited %d: %s" % (r["rc"], r["err"][-2000:]))
    count, distinct = (int(x) for x in r["out"].split()[-1].split("|"))
    if count != rows or distinct != rows:
        raise SystemExit("sqlite3 imported %d rows (%d ids), not %d:\n%s"
                         % (count, distinct, rows, r["err"][-2000:]))
    r["db_bytes"] = sum(os.path.getsize(os.path.join(workdir, f)) for f in os.listdir(workdir)
                        if f.startswith("baseline.db"))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--dir", help="work directory (default: a new one under /var/tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--write", action="store_true", help="append the results to docs/BENCHMARKS.md")
    a = ap.parse_args()
    if not os.access(NODE_BIN, os.X_OK):
        raise SystemExit("build/bin/municipal-node is missing: run make first")
    base = a.dir or tempfile.mkdtemp(prefix="import-bench-", dir="/var/tmp")
    os.makedirs(base, exist_ok=True)
    csv_path = os.path.join(base, "persons.csv")
    t0 = time.monotonic()
    size = write_csv(csv_path, a.rows, a.seed)
    print("wrote %s: %d rows, %.1f MB in %.1f s" % (csv_path, a.rows, size / 1e6,
                                                     time.monotonic() - t0), file=sys.stderr)
    runs = []
    try:
        for i in range(a.repeat):
            wd = os.path.join(base, "run-%d" % i)
            os.makedirs(wd)
            n = node_import(wd, csv_path, a.rows)
            b = baseline_import(wd, csv_path, a.rows)
            p = baseline_import(wd, csv_path, a.rows, plain=True)
            runs.append((n, b, p))
            print("run %d: node %.0f rows/s (%.2f s, RSS %.1f MiB, CPU %.2f s); sqlite3 .import"
                  " %.0f rows/s (%.2f s), plain %.0f rows/s (%.2f s)"
                  % (i + 1, a.rows / n["wall"], n["wall"], n["rss_kib"] / 1024, n["cpu"],
                     a.rows / b["wall"], b["wall"], a.rows / p["wall"], p["wall"]),
                  file=sys.stderr)
            shutil.rmtree(wd)
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    n_rate = [a.rows / r[0]["wall"] for r in runs]
    b_rate = [a.rows / r[1]["wall"] for r in runs]
    p_rate = [a.rows / r[2]["wall"] for r in runs]
    n_rss = max(r[0]["rss_kib"] for r in runs) / 1024
    p_med = med(p_rate)
    runs_p = ", ".join("{:,.0f}".format(x) for x in p_rate)
    n_med = med(n_rate)
    b_med = med(b_rate)
    cmd = "/usr/bin/python3 bench/import_bench.py" + "".join(
        " " + shlex.quote(x) for x in sys.argv[1:] if x != "--write")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runs_n = ", ".join("{:,.0f}".format(x) for x in n_rate)
    runs_b = ", ".join("{:,.0f}".format(x) for x in b_rate)
    n0 = sorted((r[0] for r in runs), key=lambda x: x["wall"])[len(runs) // 2]
    lines = [
        "### %s: %s person rows, %d run%s (%s, %s)" % (
            now, "{:,}".format(a.rows), a.repeat, "s" if a.repeat > 1 else "",
            platform.machine(), "%d cores" % os.cpu_count()),
        "",
        "```",
        cmd,
        "```",
        "",
        "| measure | result |",
        "| --- | --- |",
        "| `municipal-node import --kind persons` (validated, BS dates converted, committed with "
        "WAL + synchronous=FULL, 10,000 rows/transaction) | **{:,.0f} rows/s** (runs: {}; "
        "{:.2f} s, CPU {:.2f} s) |".format(n_med, runs_n, n0["wall"], n0["cpu"]),
        "| its peak RSS (ru_maxrss) | **{:.1f} MiB** |".format(n_rss),
        "| baseline: `sqlite3` `.import --csv` of the same file, WAL + synchronous=FULL, "
        "the CSV's columns with local_id the primary key (the node's indexes) | "
        "**{:,.0f} rows/s** (runs: {}) |".format(p_med, runs_p),
        "| node / baseline | {:.2f} |".format(n_med / p_med),
        "| second baseline: the same plus a unique 16-byte id filled by a trigger | "
        "**{:,.0f} rows/s** (runs: {}) |".format(b_med, runs_b),
        "",
        "CSV %.0f MB; node store %.0f MB (records: outbox entry and local row), baseline database"
        " %.0f MB. Import summary: `%s`" % (size / 1e6, n0["db_bytes"] / 1e6,
                                             runs[0][1]["db_bytes"] / 1e6, n0["summary"]),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if a.write:
        path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
        with open(path) as f:
            have = f.read()
        head = "" if "## Node CSV import (issue 3)" in have else SECTION_HEAD
        with open(path, "a") as f:
            f.write(("\n" if not have.endswith("\n\n") else "") + head + text)


SECTION_HEAD = """## Node CSV import (issue 3)

**What is measured.** Rows/s that `municipal-node import --kind persons` reads, validates
(enumerations, dates in the Bikram Sambat calendar converted to Gregorian days, birth-year
range, country codes), turns into upstream records (coarse attributes only) plus the local
personal data, and commits durably (WAL, `synchronous=FULL`, one transaction per 10,000
rows), from process start to exit, on a 1,000,000-row persons CSV that `bench/import_bench.py`
writes (plausible values, every row valid). Peak RSS is the child's `ru_maxrss`.

**Baseline.** Debian's `sqlite3` shell `.import --csv` of the same file into a fresh database
on the same disk with WAL and `synchronous=FULL`: a rowid table with the CSV's columns and
local_id its primary key, the same indexes as the node's `records` table (a rowid table, the
outbox order, with one unique index on (kind, local_id)). A second figure adds a unique
16-byte time-ordered id column filled by a view's INSTEAD OF trigger (`.import` binds every
column). The shell imports in one transaction and validates nothing: it is the rate of SQLite
storing these rows, not an equivalent of the node's work (which also converts dates, encodes
the upstream record and commits every 10,000 rows).

**Goal (issue 3, item 3):** at least 200,000 rows/s validated and committed; peak memory
under 64 MiB.

### Results

"""

if __name__ == "__main__":
    main()
