/* Bikram Sambat <-> Gregorian by a walk over the compiled-in month-length table. All dates
 * travel as days since 1970-01-01 so that no libc time function (and no time zone) is
 * involved. */
#include "bscal.h"

#include <stddef.h>

/* Defined in the generated build/gen/tables.c (tools/embed_tables.sh), which has checked
 * that each year's months add up and that the year starts chain from the anchor. */
extern const int32_t bscal__year_start[BSCAL_LAST_YEAR - BSCAL_FIRST_YEAR + 2];
extern const unsigned char bscal__month_len[BSCAL_LAST_YEAR - BSCAL_FIRST_YEAR + 1][12];

#define NYEARS (BSCAL_LAST_YEAR - BSCAL_FIRST_YEAR + 1)

/* Howard Hinnant's days_from_civil, in 64 bits so that no int input can overflow; the
 * result is meaningful for years 1..9999 as the header says. */
int32_t bscal_days_from_ad(int y, int m, int d)
{
    long long yy = (long long)y - (m <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long mp = m > 2 ? m - 3 : m + 9;
    long long doy = (153 * mp + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

/* Hinnant's civil_from_days. */
void bscal_ad_from_days(int32_t days, int *y, int *m, int *d)
{
    long long z = (long long)days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long dd = doy - (153 * mp + 2) / 5 + 1;
    long long mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

int bscal_ad_month_days(int y, int m)
{
    static const unsigned char len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return len[m - 1];
}

int bscal_ad_valid(int y, int m, int d)
{
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > bscal_ad_month_days(y, m))
        return REINT_EINVAL;
    return 0;
}

int bscal_bs_month_days(int y, int m)
{
    if (m < 1 || m > 12)
        return REINT_EINVAL;
    if (y < BSCAL_FIRST_YEAR || y > BSCAL_LAST_YEAR)
        return REINT_ERANGE;
    return bscal__month_len[y - BSCAL_FIRST_YEAR][m - 1];
}

int bscal_days_from_bs(int y, int m, int d, int32_t *days)
{
    /* A month or day that exists in no BS year is invalid whatever the year; only a
     * plausible date is reported as out of range. */
    if (m < 1 || m > 12 || d < 1 || d > 32)
        return REINT_EINVAL;
    if (y < BSCAL_FIRST_YEAR || y > BSCAL_LAST_YEAR)
        return REINT_ERANGE;
    const unsigned char *len = bscal__month_len[y - BSCAL_FIRST_YEAR];
    if (d > len[m - 1])
        return REINT_EINVAL;
    int32_t n = bscal__year_start[y - BSCAL_FIRST_YEAR];
    for (int i = 0; i < m - 1; i++)
        n += len[i];
    *days = n + d - 1;
    return 0;
}

int bscal_bs_from_days(int32_t days, int *y, int *m, int *d)
{
    if (days < bscal__year_start[0] || days >= bscal__year_start[NYEARS])
        return REINT_ERANGE;
    /* Largest lo with year_start[lo] <= days: about 7 probes over 100 years. */
    size_t lo = 0, hi = NYEARS;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (bscal__year_start[mid] <= days)
            lo = mid;
        else
            hi = mid;
    }
    int32_t rem = days - bscal__year_start[lo];
    const unsigned char *len = bscal__month_len[lo];
    int month = 0;
    while (rem >= len[month]) {
        rem -= len[month];
        month++;
    }
    *y = BSCAL_FIRST_YEAR + (int)lo;
    *m = month + 1;
    *d = (int)rem + 1;
    return 0;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int bscal_parse(const char *s, int bs, int32_t *days)
{
    if (s == NULL)
        return REINT_EINVAL;
    /* Checking the dashes first also guarantees, byte by byte, that s is long enough for
     * the digit reads that follow. */
    for (int i = 0; i < 10; i++) {
        if (s[i] == '\0')
            return REINT_EINVAL;
    }
    if (s[4] != '-' || s[7] != '-' || s[10] != '\0')
        return REINT_EINVAL;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 0 || d < 0)
        return REINT_EINVAL;
    if (bs)
        return bscal_days_from_bs(y, m, d, days);
    if (bscal_ad_valid(y, m, d) != 0)
        return REINT_EINVAL;
    /* Gregorian input is held to the same range as BS input, so that a record accepted
     * under one input calendar is never refused under the other, and every stored day
     * has a BS month and fiscal period. */
    int32_t n = bscal_days_from_ad(y, m, d);
    if (n < bscal__year_start[0] || n >= bscal__year_start[NYEARS])
        return REINT_ERANGE;
    *days = n;
    return 0;
}

static void put_digits(char *out, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

int bscal_format(int32_t days, int bs, char *out, unsigned long outlen)
{
    int y, m, d;
    if (out == NULL || outlen < 11)
        return REINT_EINVAL;
    if (bs) {
        int rc = bscal_bs_from_days(days, &y, &m, &d);
        if (rc != 0)
            return rc;
    } else {
        bscal_ad_from_days(days, &y, &m, &d);
        if (y < 1 || y > 9999)
            return REINT_ERANGE;
    }
    put_digits(out, y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = '\0';
    return 0;
}

int bscal_fiscal(int32_t days, int *fy_start_year, int *trimester)
{
    int y, m, d;
    int rc = bscal_bs_from_days(days, &y, &m, &d);
    if (rc != 0)
        return rc;
    /* Months 4..7 -> T1, 8..11 -> T2, 12 and 1..3 -> T3; Baisakh..Asar close the fiscal
     * year that began in the previous BS year. */
    *fy_start_year = m >= 4 ? y : y - 1;
    *trimester = m >= 4 && m <= 7 ? 1 : (m >= 8 && m <= 11 ? 2 : 3);
    return 0;
}

int bscal_pair_of_day(int32_t days, int32_t *ad_month, int32_t *bs_month)
{
    int y, m, d, by, bm, bd;
    int rc = bscal_bs_from_days(days, &by, &bm, &bd);
    if (rc != 0)
        return rc;
    bscal_ad_from_days(days, &y, &m, &d);
    *ad_month = y * 100 + m;
    *bs_month = by * 100 + bm;
    return 0;
}

int bscal_month_span(int bs, int32_t ym, int32_t *first, int32_t *last)
{
    int y = ym / 100, m = ym % 100;
    if (ym <= 0 || m < 1 || m > 12)
        return REINT_EINVAL;
    if (bs) {
        int n = bscal_bs_month_days(y, m);
        int32_t a;
        if (n < 0)
            return n;
        int rc = bscal_days_from_bs(y, m, 1, &a);
        if (rc != 0)
            return rc;
        *first = a;
        *last = a + n - 1;
        return 0;
    }
    if (y < 1 || y > 9999)
        return REINT_EINVAL;
    *first = bscal_days_from_ad(y, m, 1);
    *last = *first + bscal_ad_month_days(y, m) - 1;
    return 0;
}

int bscal_pair_span(int32_t ad_month, int32_t bs_month, int32_t *first, int32_t *last)
{
    int32_t a0, a1, b0, b1;
    int rc = bscal_month_span(0, ad_month, &a0, &a1);
    if (rc != 0 || (rc = bscal_month_span(1, bs_month, &b0, &b1)) != 0)
        return rc;
    int32_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    if (lo > hi)
        return REINT_ENOTFOUND;
    *first = lo;
    *last = hi;
    return 0;
}

int32_t bscal_month_add(int32_t ym, int k)
{
    int32_t i = (ym / 100) * 12 + ym % 100 - 1 + k;
    /* Floor division: a month index below 0 is no date of ours, but stays a month. */
    int32_t y = i >= 0 ? i / 12 : -((11 - i) / 12);
    return y * 100 + (i - y * 12) + 1;
}
