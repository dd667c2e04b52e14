#!/usr/bin/env bash
# Compiles the two reference tables into C data that common/bscal.c and common/geo.c declare
# extern:
#   tools/embed_tables.sh data/bikram_sambat.csv data/nepal_local_levels.csv > tables.c
# The input is validated first (row counts, month sums, the chain of AD year starts, the
# structure of the local-level codes); on any problem the script names the file and line,
# writes nothing to stdout and exits non-zero, so a bad table never reaches the build.
# Plain POSIX awk (Debian's mawk), byte semantics.
set -euo pipefail
export LC_ALL=C

if [ "$#" -ne 2 ]; then
    echo "usage: $0 bikram_sambat.csv nepal_local_levels.csv" >&2
    exit 2
fi
bs_csv=$1
geo_csv=$2
for f in "$bs_csv" "$geo_csv"; do
    if [ ! -r "$f" ]; then
        echo "$0: cannot read $f" >&2
        exit 1
    fi
done

# Output is assembled in memory and printed only when both tables are valid.
bs_out=$(awk -v FILE="$bs_csv" '
function fail(msg) { printf "%s line %d: %s\n", FILE, NR, msg > "/dev/stderr"; failed = 1; exit 1 }
# Howard Hinnant days_from_civil: days since 1970-01-01 (years >= 1 here, so no negative era).
function days_from_civil(y, m, d,    era, yoe, doy, doe) {
    if (m <= 2) y -= 1
    era = int(y / 400)
    yoe = y - era * 400
    doy = int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
    doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
    return era * 146097 + doe - 719468
}
function is_uint(s) { return s ~ /^[0-9]+$/ }
BEGIN { FS = ","; first_year = 2000; nyears = 100; anchor = days_from_civil(1943, 4, 14) }
{
    sub(/\r$/, "")
    if (NR == 1) {
        sub(/^\357\273\277/, "")
        if ($0 != "bs_year,m1,m2,m3,m4,m5,m6,m7,m8,m9,m10,m11,m12,days,ad_start")
            fail("unexpected header \"" $0 "\"")
        next
    }
    if ($0 == "") next
    if (NF != 15) fail("expected 15 columns, found " NF)
    n++
    if (n > nyears) fail("more than " nyears " BS years")
    if (!is_uint($1) || $1 + 0 != first_year + n - 1)
        fail("bs_year \"" $1 "\" should be " (first_year + n - 1))
    sum = 0
    for (i = 2; i <= 13; i++) {
        if (!is_uint($i) || $i + 0 < 29 || $i + 0 > 32)
            fail("BS " $1 " month " (i - 1) " has \"" $i "\" days (expected 29..32)")
        sum += $i
        len[n, i - 1] = $i + 0
    }
    if (!is_uint($14) || $14 + 0 != sum)
        fail("BS " $1 ": days column \"" $14 "\" but the months sum to " sum)
    if (sum != 365 && sum != 366)
        fail("BS " $1 " has " sum " days (a solar year has 365 or 366)")
    if ($15 !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/)
        fail("ad_start \"" $15 "\" is not YYYY-MM-DD")
    ad = days_from_civil(substr($15, 1, 4) + 0, substr($15, 6, 2) + 0, substr($15, 9, 2) + 0)
    expect = (n == 1) ? anchor : start[n - 1] + prev_days
    if (ad != expect)
        fail("BS " $1 " ad_start " $15 " does not follow from the anchor BS 2000-01-01 = " \
             "1943-04-14 and the days of the years before it")
    start[n] = ad
    prev_days = sum
}
END {
    if (failed) exit 1
    if (n != nyears) {
        printf "%s: expected %d BS years (%d..%d), found %d\n", FILE, nyears, first_year,
            first_year + nyears - 1, n > "/dev/stderr"
        exit 1
    }
    start[n + 1] = start[n] + prev_days
    printf "/* Baisakh 1 of BS %d..%d as days since 1970-01-01; the last entry is the day after\n", \
        first_year, first_year + nyears
    printf " * the table ends. */\n"
    printf "const int32_t bscal__year_start[%d] = {\n", nyears + 1
    for (i = 1; i <= nyears + 1; i++)
        printf "%s%d,%s", (i % 8 == 1) ? "    " : " ", start[i], (i % 8 == 0 || i == nyears + 1) ? "\n" : ""
    printf "};\n\n"
    printf "const unsigned char bscal__month_len[%d][12] = {\n", nyears
    for (i = 1; i <= nyears; i++) {
        printf "    {"
        for (m = 1; m <= 12; m++)
            printf "%d%s", len[i, m], m < 12 ? ", " : ""
        printf "}, /* %d */\n", first_year + i - 1
    }
    printf "};\n"
}' "$bs_csv")

geo_out=$(awk -v FILE="$geo_csv" '
function fail(msg) { printf "%s line %d: %s\n", FILE, NR, msg > "/dev/stderr"; failed = 1; exit 1 }
# Splits one CSV line (quoted fields allowed, no embedded newlines) into f[1..]; returns the
# field count or -1 on a malformed quote.
function split_csv(line, f,    n, i, c, s, q, L) {
    n = 1; s = ""; q = 0; L = length(line)
    for (i = 1; i <= L; i++) {
        c = substr(line, i, 1)
        if (q) {
            if (c == "\"") {
                if (substr(line, i + 1, 1) == "\"") { s = s "\""; i++ }
                else q = 0
            } else s = s c
        } else if (c == "\"" && s == "") q = 1
        else if (c == ",") { f[n++] = s; s = "" }
        else s = s c
    }
    if (q) return -1
    f[n] = s
    return n
}
# A C string literal: backslash, double quote and "?" (trigraphs) escaped, control bytes refused.
function cstr(s,    out, i, c, L) {
    out = ""; L = length(s)
    for (i = 1; i <= L; i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"" || c == "?") out = out "\\" c
        else if (c < " " || c == "\177") fail("control character in \"" s "\"")
        else out = out c
    }
    return "\"" out "\""
}
function is_uint(s) { return s ~ /^[0-9]+$/ }
BEGIN {
    nlevels = 753; nprov = 7; ndist = 77
    types["Metropolitan City"] = 1; types["Sub-Metropolitan City"] = 1
    types["Municipality"] = 1; types["Rural Municipality"] = 1
}
{
    sub(/\r$/, "")
    if (NR == 1) {
        sub(/^\357\273\277/, "")
        if ($0 != "province_code,province_name,district_code,district_name,local_level_code,local_level_name,local_level_type")
            fail("unexpected header \"" $0 "\"")
        next
    }
    if ($0 == "") next
    nf = split_csv($0, f)
    if (nf < 0) fail("unterminated quote")
    if (nf != 7) fail("expected 7 columns, found " nf)
    for (i = 1; i <= 7; i++) {
        sub(/^ +/, "", f[i]); sub(/ +$/, "", f[i])
        if (f[i] == "") fail("column " i " is empty")
    }
    p = f[1]; d = f[3]; code = f[5]
    if (!is_uint(p) || p + 0 < 1 || p + 0 > nprov) fail("province_code \"" p "\" is not 1..7")
    if (!is_uint(d) || d + 0 < 1 || d + 0 > ndist) fail("district_code \"" d "\" is not 1..77")
    if (!is_uint(code)) fail("local_level_code \"" code "\" is not a number")
    p += 0; d += 0; code += 0
    if (int(code / 100) != p * 100 + d || code % 100 == 0)
        fail("local_level_code " code " does not read as province " p ", district " d ", level 01..99")
    if (n > 0 && code <= last_code)
        fail("local_level_code " code " is not above the previous " last_code " (rows must be sorted)")
    if (!(f[7] in types)) fail("local_level_type \"" f[7] "\" is not a known type")
    if ((p in pname) && pname[p] != f[2])
        fail("province " p " named \"" f[2] "\" here but \"" pname[p] "\" earlier")
    if ((d in dname) && dname[d] != f[4])
        fail("district " d " named \"" f[4] "\" here but \"" dname[d] "\" earlier")
    if ((d in dprov) && dprov[d] != p)
        fail("district " d " in province " p " here but in province " dprov[d] " earlier")
    if (!(p in pname)) np++
    if (!(d in dname)) nd++
    pname[p] = f[2]; dname[d] = f[4]; dprov[d] = p
    last_code = code
    n++
    row[n] = sprintf("    {%d, %d, %d, %s, %s, %s, %s},", code, p, d, cstr(f[6]), cstr(f[4]),
                     cstr(f[2]), cstr(f[7]))
}
END {
    if (failed) exit 1
    if (n != nlevels) { printf "%s: expected %d local levels, found %d\n", FILE, nlevels, n > "/dev/stderr"; exit 1 }
    if (np != nprov) { printf "%s: expected %d provinces, found %d\n", FILE, nprov, np > "/dev/stderr"; exit 1 }
    if (nd != ndist) { printf "%s: expected %d districts, found %d\n", FILE, ndist, nd > "/dev/stderr"; exit 1 }
    printf "/* Local levels ordered by code (geo_find relies on the order). */\n"
    printf "const unsigned geo__nlevels = %d;\n", n
    printf "const geo_local_level geo__levels[%d] = {\n", n
    for (i = 1; i <= n; i++) print row[i]
    printf "};\n\n"
    printf "const char *const geo__province_names[%d] = {\n    0,\n", nprov + 1
    for (i = 1; i <= nprov; i++) printf "    %s,\n", cstr(pname[i])
    printf "};\n"
}' "$geo_csv")

cat <<EOF
/* Generated by tools/embed_tables.sh from $bs_csv and $geo_csv. Do not edit. */
#include <stdint.h>

#include "geo.h"

$bs_out

$geo_out
EOF
