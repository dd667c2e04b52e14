/* Bikram Sambat <-> Gregorian conversion by a walk over the month-length table of
 * data/bikram_sambat.csv (BS 2000-01-01 .. 2099-12-30 = AD 1943-04-14 .. 2043-04-13), which
 * the build compiles in. Days are counted from 1970-01-01 (negative before). */
#ifndef COMMON_BSCAL_H
#define COMMON_BSCAL_H

#include "error.h"

#include <stdint.h>

#define BSCAL_FIRST_YEAR 2000
#define BSCAL_LAST_YEAR  2099

/* Gregorian y-m-d to days since 1970-01-01 and back (proleptic, valid for years 1..9999). */
int32_t bscal_days_from_ad(int y, int m, int d);
void bscal_ad_from_days(int32_t days, int *y, int *m, int *d);
/* Returns 0 when y-m-d is a real Gregorian date, REINT_EINVAL otherwise. */
int bscal_ad_valid(int y, int m, int d);
/* Days in Gregorian month m (1..12) of year y. */
int bscal_ad_month_days(int y, int m);

/* BS date to days since 1970-01-01. Returns 0 or BSCAL_E*. */
int bscal_days_from_bs(int y, int m, int d, int32_t *days);
/* Days since 1970-01-01 to a BS date. Returns 0 or REINT_ERANGE. */
int bscal_bs_from_days(int32_t days, int *y, int *m, int *d);
/* Days in BS month m of year y, or a negative BSCAL_E* code. */
int bscal_bs_month_days(int y, int m);

/* Parses "YYYY-MM-DD" strictly (exactly 10 chars, digits and dashes) as a BS date when bs
 * is non-zero, else as a Gregorian date, into days since 1970-01-01. Returns 0 or BSCAL_E*.
 * (REINT_EINVAL also for text that is not of that form.) */
int bscal_parse(const char *s, int bs, int32_t *days);
/* Formats days as "YYYY-MM-DD" in BS (bs non-zero) or Gregorian into out (at least 11
 * bytes). Returns 0 or REINT_ERANGE. */
int bscal_format(int32_t days, int bs, char *out, unsigned long outlen);

/* BS fiscal year (starts Shrawan 1, month 4) containing days: *fy_start_year is the BS year
 * in which it starts (FY2080/81 -> 2080), *trimester 1..3 (Shrawan-Kartik, Mangsir-Falgun,
 * Chaitra-Asar). Returns 0 or REINT_ERANGE. */
int bscal_fiscal(int32_t days, int *fy_start_year, int *trimester);

/* Months as YYYYMM integers (2026-07 is 202607), in either calendar: upstream, an event of a
 * person travels as the pair (Gregorian month, BS month) of its day, never as the day.
 *
 * The pair of a day: *ad_month and *bs_month. Returns 0 or REINT_ERANGE (outside the BS
 * table). */
int bscal_pair_of_day(int32_t days, int32_t *ad_month, int32_t *bs_month);
/* The first and last day of month ym of calendar bs (non-zero: BS). Returns 0, REINT_EINVAL
 * (not a YYYYMM month: month outside 1..12, Gregorian year outside 1..9999) or REINT_ERANGE
 * (a BS year outside the table). */
int bscal_month_span(int bs, int32_t ym, int32_t *first, int32_t *last);
/* The days a pair can stand for: the overlap of its two months, [*first, *last]. Returns 0,
 * REINT_EINVAL or REINT_ERANGE (either month as for bscal_month_span), or REINT_ENOTFOUND when
 * both are months but they do not overlap (no day lies in both). */
int bscal_pair_span(int32_t ad_month, int32_t bs_month, int32_t *first, int32_t *last);
/* ym moved by k months (k may be negative), in either calendar (both have 12 months). */
int32_t bscal_month_add(int32_t ym, int k);

#endif
