#include "period.h"

#include <stdio.h>
#include <string.h>

#include "bscal.h"

int period_of_day(int32_t day, char out[PERIOD_KINDS][PERIOD_MAX])
{
    int y, m, d, by, bm, bd, fy, tri;
    bscal_ad_from_days(day, &y, &m, &d);
    snprintf(out[PERIOD_YEAR], PERIOD_MAX, "%04d", y);
    snprintf(out[PERIOD_QUARTER], PERIOD_MAX, "%04d-Q%d", y, (m - 1) / 3 + 1);
    snprintf(out[PERIOD_MONTH], PERIOD_MAX, "%04d-%02d", y, m);
    if (bscal_bs_from_days(day, &by, &bm, &bd) != 0 || bscal_fiscal(day, &fy, &tri) != 0) {
        out[PERIOD_BS_MONTH][0] = out[PERIOD_FISCAL_TRIMESTER][0] = out[PERIOD_FISCAL_YEAR][0] =
            '\0';
        return REINT_EINVAL;
    }
    snprintf(out[PERIOD_BS_MONTH], PERIOD_MAX, "BS%04d-%02d", by, bm);
    snprintf(out[PERIOD_FISCAL_TRIMESTER], PERIOD_MAX, "FY%04d/%02d-T%d", fy, (fy + 1) % 100, tri);
    snprintf(out[PERIOD_FISCAL_YEAR], PERIOD_MAX, "FY%04d/%02d", fy, (fy + 1) % 100);
    return 0;
}

int period_kind_bs(enum period_kind k)
{
    return k == PERIOD_BS_MONTH || k == PERIOD_FISCAL_TRIMESTER || k == PERIOD_FISCAL_YEAR;
}

int period_of_pair(int32_t ad_month, int32_t bs_month, char out[PERIOD_KINDS][PERIOD_MAX])
{
    int y = ad_month / 100, m = ad_month % 100, rc = 0;
    if (ad_month > 0 && y <= 9999 && m >= 1 && m <= 12) {
        snprintf(out[PERIOD_YEAR], PERIOD_MAX, "%04d", y);
        snprintf(out[PERIOD_QUARTER], PERIOD_MAX, "%04d-Q%d", y, (m - 1) / 3 + 1);
        snprintf(out[PERIOD_MONTH], PERIOD_MAX, "%04d-%02d", y, m);
    } else {
        out[PERIOD_YEAR][0] = out[PERIOD_QUARTER][0] = out[PERIOD_MONTH][0] = '\0';
        rc = REINT_EINVAL;
    }
    y = bs_month / 100, m = bs_month % 100;
    if (bs_month > 0 && y <= 9999 && m >= 1 && m <= 12) {
        /* Shrawan (4) opens the fiscal year: months 4..7 are T1, 8..11 T2, 12 and 1..3 T3. */
        int fy = m >= 4 ? y : y - 1, tri = m >= 4 && m <= 7 ? 1 : (m >= 8 && m <= 11 ? 2 : 3);
        snprintf(out[PERIOD_BS_MONTH], PERIOD_MAX, "BS%04d-%02d", y, m);
        snprintf(out[PERIOD_FISCAL_TRIMESTER], PERIOD_MAX, "FY%04d/%02d-T%d", fy, (fy + 1) % 100,
                 tri);
        snprintf(out[PERIOD_FISCAL_YEAR], PERIOD_MAX, "FY%04d/%02d", fy, (fy + 1) % 100);
    } else {
        out[PERIOD_BS_MONTH][0] = out[PERIOD_FISCAL_TRIMESTER][0] = out[PERIOD_FISCAL_YEAR][0] =
            '\0';
        rc = REINT_EINVAL;
    }
    return rc;
}

/* Reads exactly n digits at s into *v. */
static int period__digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

static int period__bs_span(int y1, int m1, int y2, int m2, int32_t *first, int32_t *last)
{
    int32_t a, b;
    int n = bscal_bs_month_days(y2, m2);
    if (n < 0 || bscal_days_from_bs(y1, m1, 1, &a) != 0 || bscal_days_from_bs(y2, m2, n, &b) != 0)
        return REINT_ERANGE; /* the shape was read: the years are outside the table */
    *first = a;
    *last = b;
    return 0;
}

int period_parse(const char *s, enum period_kind *kind, int32_t *first, int32_t *last)
{
    size_t len = strlen(s);
    int y, m, y2;
    if (len == 4 && period__digits(s, 4, &y) == 0 && y >= 1) {
        *kind = PERIOD_YEAR;
        *first = bscal_days_from_ad(y, 1, 1);
        *last = bscal_days_from_ad(y, 12, 31);
        return 0;
    }
    if (len == 7 && period__digits(s, 4, &y) == 0 && s[4] == '-' && s[5] == 'Q' && s[6] >= '1' &&
        s[6] <= '4' && y >= 1) {
        int q = s[6] - '0';
        *kind = PERIOD_QUARTER;
        *first = bscal_days_from_ad(y, 3 * q - 2, 1);
        *last =
            (q == 4 ? bscal_days_from_ad(y + 1, 1, 1) : bscal_days_from_ad(y, 3 * q + 1, 1)) - 1;
        return 0;
    }
    if (len == 7 && period__digits(s, 4, &y) == 0 && s[4] == '-' &&
        period__digits(s + 5, 2, &m) == 0 && m >= 1 && m <= 12 && y >= 1) {
        *kind = PERIOD_MONTH;
        *first = bscal_days_from_ad(y, m, 1);
        *last = (m == 12 ? bscal_days_from_ad(y + 1, 1, 1) : bscal_days_from_ad(y, m + 1, 1)) - 1;
        return 0;
    }
    if (len == 9 && s[0] == 'B' && s[1] == 'S' && period__digits(s + 2, 4, &y) == 0 &&
        s[6] == '-' && period__digits(s + 7, 2, &m) == 0 && m >= 1 && m <= 12) {
        *kind = PERIOD_BS_MONTH;
        return period__bs_span(y, m, y, m, first, last);
    }
    if ((len == 9 || len == 12) && s[0] == 'F' && s[1] == 'Y' &&
        period__digits(s + 2, 4, &y) == 0 && s[6] == '/' && period__digits(s + 7, 2, &y2) == 0 &&
        y2 == (y + 1) % 100) {
        if (len == 9) {
            *kind = PERIOD_FISCAL_YEAR;
            return period__bs_span(y, 4, y + 1, 3, first, last);
        }
        if (s[9] != '-' || s[10] != 'T' || s[11] < '1' || s[11] > '3')
            return REINT_EINVAL;
        *kind = PERIOD_FISCAL_TRIMESTER;
        switch (s[11]) {
        case '1':
            return period__bs_span(y, 4, y, 7, first, last);
        case '2':
            return period__bs_span(y, 8, y, 11, first, last);
        default:
            return period__bs_span(y, 12, y + 1, 3, first, last);
        }
    }
    return REINT_EINVAL;
}

int period_months(const char *s, enum period_kind *kind, int *bs, int32_t *first, int32_t *last)
{
    int32_t a, b;
    int rc = period_parse(s, kind, &a, &b);
    if (rc != 0)
        return rc;
    *bs = period_kind_bs(*kind);
    int y, m, d;
    if (*bs) {
        /* The period's own first and last days lie in its first and last BS months. */
        if (bscal_bs_from_days(a, &y, &m, &d) != 0)
            return REINT_EINVAL;
        *first = y * 100 + m;
        if (bscal_bs_from_days(b, &y, &m, &d) != 0)
            return REINT_EINVAL;
        *last = y * 100 + m;
    } else {
        bscal_ad_from_days(a, &y, &m, &d);
        *first = y * 100 + m;
        bscal_ad_from_days(b, &y, &m, &d);
        *last = y * 100 + m;
    }
    return 0;
}
