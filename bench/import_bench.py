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
3. Baseline: the sqlite3 shell (Debian's, the same library version) imports the same rows
   with `.import --csv --skip 1` into a fresh database on the same disk with the node's
   settings (16 KiB pages, 32 MiB cache, WAL, synchronous=FULL): a rowid table with the
   CSV's columns and local_id its primary key (the node's indexes: a rowid table with one
   unique index). The shell commits once per .import, so the file is split (before any
   timer) into pieces of the node's commit size (IMPORT_BATCH, municipal-node/import.h:
   10,000 rows), each imported by its own .import: as many durable commits as the node's.
   The row count is checked after the timed command. Node and baseline alternate
   (A B B A ...), --repeat pairs.

Writes build/bench/import.json (bench/benchlib.py); exits 1 when a work-done check fails.
Timings are reported, never asserted."""
import argparse
import datetime
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

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
    r["count"], r["local"] = int(out[0]), int(out[1])
    r["summary"] = r["out"].strip()
    r["db_bytes"] = sum(os.path.getsize(os.path.join(ndir, f)) for f in os.listdir(ndir)
                        if f.startswith("node.db"))
    return r


# The node's store settings (common/store.c store_open_paged with municipal-node/outbox.c's
# OUTBOX_PAGE_SIZE): 16 KiB pages, a 32 MiB page cache, WAL, synchronous=FULL, temporary
# tables in memory. page_size comes first: it only takes effect before the first page.
NODE_PRAGMAS = """PRAGMA page_size=16384;
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
PRAGMA temp_store=MEMORY;
PRAGMA cache_size=-32768;
"""

PLAIN_SQL = NODE_PRAGMAS + """CREATE TABLE persons(local_id TEXT PRIMARY KEY, category, sex,
  birth_year, caste_group, disability, registered_on, destination_country, years_abroad,
  return_date, remigration_intention, family_member_abroad, consent, full_name, phone,
  citizenship_no, ward, address);
"""


def settings(db):
    out = subprocess.run(["sqlite3", db, "PRAGMA page_size; PRAGMA journal_mode;"],
                         check=True, capture_output=True, text=True).stdout.split()
    return {"page_size": int(out[0]), "journal_mode": out[1]}


def node_commit_rows():
    """The node's rows per import transaction (IMPORT_BATCH in municipal-node/import.h)."""
    with open(os.path.join(ROOT, "municipal-node", "import.h")) as f:
        m = re.search(r"^#define IMPORT_BATCH (\d+)$", f.read(), re.M)
    if not m:
        raise SystemExit("municipal-node/import.h: no IMPORT_BATCH")
    return int(m.group(1))


def split_csv(csv_path, rows_per_piece):
    """Splits csv_path into pieces of rows_per_piece rows, each with the header line (the
    .import of each skips it). Returns the pieces' paths, in order."""
    pieces, out, n = [], None, 0
    with open(csv_path, encoding="utf-8", newline="") as f:
        header = f.readline()
        for line in f:
            if out is None or n == rows_per_piece:
                if out:
                    out.close()
                pieces.append("%s.%04d" % (csv_path, len(pieces)))
                out = open(pieces[-1], "w", encoding="utf-8", newline="")
                out.write(header)
                n = 0
            out.write(line)
            n += 1
    if out:
        out.close()
    return pieces


def baseline_import(workdir, pieces, rows):
    """sqlite3's .import of the same rows with the node's settings, one .import (one commit)
    per piece; the count is checked after the timed command, in a separate one."""
    db = os.path.join(workdir, "baseline.db")
    for f in os.listdir(workdir):
        if f.startswith("baseline.db"):
            os.unlink(os.path.join(workdir, f))
    script = PLAIN_SQL + "".join(".import --csv --skip 1 %s persons\n" % p for p in pieces)
    r = timed(["sqlite3", "-batch", "-bail", db], stdin_text=script)
    if r["rc"] != 0:
        raise SystemExit("sqlite3 exited %d: %s" % (r["rc"], r["err"][-2000:]))
    r["count"] = int(subprocess.run(["sqlite3", db, "SELECT count(*) FROM persons"],
                                    check=True, capture_output=True, text=True).stdout)
    r["settings"] = settings(db)
    r["db_bytes"] = sum(os.path.getsize(os.path.join(workdir, f)) for f in os.listdir(workdir)
                        if f.startswith("baseline.db"))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=5,
                    help="pairs of (node import, sqlite3 .import), in alternating order")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--dir", help="work directory (default: a new one under /var/tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if not os.access(NODE_BIN, os.X_OK):
        raise SystemExit("build/bin/municipal-node is missing: run make first")
    res = benchlib.Result("import", "bench/import_bench.py", params=vars(a))
    base = a.dir or tempfile.mkdtemp(prefix="import-bench-", dir="/var/tmp")
    os.makedirs(base, exist_ok=True)
    csv_path = os.path.join(base, "persons.csv")
    t0 = time.monotonic()
    size = write_csv(csv_path, a.rows, a.seed)
    print("wrote %s: %d rows, %.1f MB in %.1f s" % (csv_path, a.rows, size / 1e6,
                                                     time.monotonic() - t0), file=sys.stderr)
    commit_rows = node_commit_rows()
    pieces = split_csv(csv_path, commit_rows)
    res.data["extra"]["baseline_commits"] = len(pieces)
    res.check("the baseline commits as often as the node (%d rows a commit)" % commit_rows,
              len(pieces) == (a.rows + commit_rows - 1) // commit_rows,
              "%d pieces for %d rows" % (len(pieces), a.rows))
    nodes, bases = [], []
    order = benchlib.alternating(a.repeat)
    res.data["order"] = order
    try:
        for i, step in enumerate(order):
            wd = os.path.join(base, "run-%d" % i)
            os.makedirs(wd)
            if step == "A":
                n = node_import(wd, csv_path, a.rows)
                n["settings"] = settings(os.path.join(wd, "node", "node.db"))
                nodes.append(n)
                print("A: node %.0f rows/s (%.2f s, RSS %.1f MiB)"
                      % (a.rows / n["wall"], n["wall"], n["rss_kib"] / 1024), file=sys.stderr)
            else:
                b = baseline_import(wd, pieces, a.rows)
                bases.append(b)
                print("B: sqlite3 .import %.0f rows/s (%.2f s)" % (a.rows / b["wall"], b["wall"]),
                      file=sys.stderr)
            shutil.rmtree(wd)
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    for i, n in enumerate(nodes):
        res.check("node run %d stored every row (records and local rows)" % (i + 1),
                  n["count"] == a.rows and n["local"] == a.rows,
                  "%d records, %d local rows, %d expected" % (n["count"], n["local"], a.rows))
    for i, b in enumerate(bases):
        res.check("baseline run %d imported every row" % (i + 1), b["count"] == a.rows,
                  "%d of %d" % (b["count"], a.rows))
        res.check("baseline run %d has the node's page size and journal mode" % (i + 1),
                  b["settings"] == nodes[0]["settings"],
                  "baseline %s, node %s" % (b["settings"], nodes[0]["settings"]))
    res.figure("node_rate", "`municipal-node import --kind persons`, %s rows" % f"{a.rows:,}",
               "rows/s", goal=">= 200,000 rows/s", goal_value=200000, baseline="sqlite_rate",
               headline=True)
    res.samples("node_rate", [a.rows / n["wall"] for n in nodes])
    res.figure("sqlite_rate", "sqlite3 .import of the same rows, the node's page size, cache, "
               "journal mode, synchronous and commit size (%s rows)" % f"{commit_rows:,}",
               "rows/s")
    res.samples("sqlite_rate", [a.rows / b["wall"] for b in bases])
    res.figure("node_rss_mib", "node import peak RSS (ru_maxrss)", "MiB", better="lower",
               goal="< 64 MiB", goal_value=64, headline=True)
    res.samples("node_rss_mib", [n["rss_kib"] / 1024 for n in nodes])
    res.figure("node_cpu_s", "node import CPU", "s", better="lower")
    res.samples("node_cpu_s", [n["cpu"] for n in nodes])
    res.data["extra"].update({"csv_bytes": size, "node_db_bytes": nodes[0]["db_bytes"],
                              "baseline_db_bytes": bases[0]["db_bytes"],
                              "import_summary": nodes[0]["summary"],
                              "node_settings": nodes[0]["settings"]})
    res.write()
    return res.exit_status()


if __name__ == "__main__":
    sys.exit(main())
