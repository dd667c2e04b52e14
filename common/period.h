/* Reporting periods, each a string that both tiers and their users read:
 *   Gregorian year "2026", quarter "2026-Q3", month "2026-07";
 *   Bikram Sambat month "BS2083-04"; fiscal trimester "FY2083/84-T1"; fiscal year
 *   "FY2083/84" (the BS fiscal year starts on Shrawan 1, BS month 4).
 * A day belongs to exactly one period of each of the six kinds. */
#ifndef COMMON_PERIOD_H
#define COMMON_PERIOD_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define PERIOD_MAX   16 /* longest period string with its NUL ("FY2083/84-T1") */
#define PERIOD_KINDS 6

enum period_kind {
    PERIOD_YEAR,
    PERIOD_QUARTER,
    PERIOD_MONTH,
    PERIOD_BS_MONTH,
    PERIOD_FISCAL_TRIMESTER,
    PERIOD_FISCAL_YEAR,
};

/* Writes the six periods containing day (days since 1970-01-01), indexed by period_kind.
 * Returns 0, or REINT_EINVAL for a day outside the BS table (then only the Gregorian
 * ones are meaningful and the others are empty strings). */
int period_of_day(int32_t day, char out[PERIOD_KINDS][PERIOD_MAX]);

/* Parses a period string: its kind and its first and last day (inclusive). Returns 0 or
 * REINT_EINVAL (unknown shape, month 13, a year outside the BS table, ...). */
int period_parse(const char *s, enum period_kind *kind, int32_t *first, int32_t *last);

#endif
