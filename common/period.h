/* Reporting periods, each a string that both tiers and their users read:
 *   Gregorian year "2026", quarter "2026-Q3", month "2026-07";
 *   Bikram Sambat month "BS2083-04"; fiscal trimester "FY2083/84-T1"; fiscal year
 *   "FY2083/84" (the BS fiscal year starts on Shrawan 1, BS month 4).
 * A day belongs to exactly one period of each of the six kinds. An event of a person is
 * placed by its pair of months (Gregorian month, BS month; bscal.h) instead of its day: the
 * Gregorian kinds by the first, the BS kinds by the second. */
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

/* Writes the six periods of an event whose pair is (ad_month, bs_month), YYYYMM each: the
 * Gregorian year, quarter and month of ad_month, the BS month, fiscal trimester and fiscal
 * year of bs_month. Returns 0, or REINT_EINVAL when either is not a month (the kinds of that
 * calendar are then empty strings). The pair is not checked for overlap (record.h does). */
int period_of_pair(int32_t ad_month, int32_t bs_month, char out[PERIOD_KINDS][PERIOD_MAX]);

/* Whether periods of kind k are made of BS months (BS month, fiscal trimester, fiscal year)
 * rather than Gregorian ones. */
int period_kind_bs(enum period_kind k);

/* The months of a period: its kind, its calendar (*bs non-zero for the BS kinds) and its
 * first and last month as YYYYMM of that calendar ("FY2083/84" is 208304..208403). An event
 * belongs to the period when the month of its pair in that calendar lies in [first, last].
 * Returns 0, REINT_ERANGE or REINT_EINVAL (as period_parse). */
int period_months(const char *s, enum period_kind *kind, int *bs, int32_t *first, int32_t *last);

/* Parses a period string: its kind and its first and last day (inclusive). Returns 0,
 * REINT_ERANGE (a BS month, fiscal trimester or fiscal year whose years are outside the BS
 * table) or REINT_EINVAL (unknown shape, month 13, ...). */
int period_parse(const char *s, enum period_kind *kind, int32_t *first, int32_t *last);

#endif
