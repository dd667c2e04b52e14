#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "geo.h"
#include "query.h"

static const struct {
    const char *name;
    unsigned flag;
} params__names[] = {
    {"period", PARAM_PERIOD},
    {"province", PARAM_PROVINCE},
    {"district", PARAM_DISTRICT},
    {"municipality", PARAM_MUNICIPALITY},
    {"by", PARAM_BY},
    {"format", PARAM_FORMAT},
    {"exact", PARAM_EXACT},
    {"limit", PARAM_LIMIT},
    {"approval", PARAM_APPROVAL},
    {"page", PARAM_PAGE},
    {"pageSize", PARAM_PAGE_SIZE},
    {"idScheme", PARAM_ID_SCHEME},
    {"series", PARAM_SERIES},
};
#define PARAMS_N_NAMES (sizeof(params__names) / sizeof(params__names[0]))

/* A positive decimal number of at most 6 digits, nothing else. */
static int params__number(const char *v, long *out)
{
    char *end = NULL;
    size_t n = strlen(v);
    if (n == 0 || n > 6 || v[0] < '0' || v[0] > '9')
        return -1;
    long x = strtol(v, &end, 10);
    if (*end != '\0' || x <= 0)
        return -1;
    *out = x;
    return 0;
}

static int params__district_province(long district)
{
    unsigned n = 0;
    const geo_local_level *all = geo_all(&n);
    for (unsigned i = 0; i < n; i++)
        if (all[i].district == district)
            return all[i].province;
    return 0;
}

static void params__allowed_groupings(const catalogue_indicator *ind, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; ind->groupings[i] && o < outlen; i++) {
        const char *g = ind->groupings[i][0] ? ind->groupings[i] : "(empty: the total)";
        int w = snprintf(out + o, outlen - o, "%s%s", i ? "; " : "", g);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* by=<area> or by=<area>,<grouping>: the area level, with *rest at the grouping ("" for
 * none); PARAMS_AREA_NONE (and *rest = v) when v does not start with an area. */
static int params__area(const char *v, const char **rest)
{
    static const struct {
        const char *name;
        int area;
    } areas[] = {{"province", PARAMS_AREA_PROVINCE},
                 {"district", PARAMS_AREA_DISTRICT},
                 {"municipality", PARAMS_AREA_MUNICIPALITY}};
    for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]); i++) {
        size_t n = strlen(areas[i].name);
        if (strncmp(v, areas[i].name, n) == 0 && (v[n] == '\0' || v[n] == ',')) {
            *rest = v[n] ? v + n + 1 : v + n;
            return areas[i].area;
        }
    }
    *rest = v;
    return PARAMS_AREA_NONE;
}

/* series= names: "year" is the Gregorian or the fiscal year, as the period's calendar. */
static const struct {
    const char *name;
    enum period_kind kind;
} params__series_names[] = {
    {"year", PERIOD_YEAR},
    {"quarter", PERIOD_QUARTER},
    {"month", PERIOD_MONTH},
    {"bs_month", PERIOD_BS_MONTH},
    {"trimester", PERIOD_FISCAL_TRIMESTER},
};
#define PARAMS_N_SERIES (sizeof(params__series_names) / sizeof(params__series_names[0]))

/* The series= name of each kind, for messages. */
static const char *const params__series_label[PERIOD_KINDS] = {"year",     "quarter",   "month",
                                                               "bs_month", "trimester", "year"};

/* How fine a kind is within its calendar: 0 year, 1 quarter or trimester, 2 month. */
static int params__fineness(enum period_kind k)
{
    return period_kind_bs(k) ? PERIOD_FISCAL_YEAR - (int)k : (int)k;
}

/* period=A..B: two periods of one kind, years or fiscal years, A not after B. */
static int params__range(const char *v, const char *dots, params_query *q, char *err, size_t errlen)
{
    char a[PERIOD_MAX], b[PERIOD_MAX];
    enum period_kind ka, kb;
    int32_t fa, la, fb, lb;
    size_t n = (size_t)(dots - v);
    if (n == 0 || n >= sizeof(a) || strlen(dots + 2) >= sizeof(b)) {
        snprintf(err, errlen, "period range \"%s\" is not A..B (e.g. 2023..2026)", v);
        return REINT_EINVAL;
    }
    memcpy(a, v, n);
    a[n] = '\0';
    snprintf(b, sizeof(b), "%s", dots + 2);
    if (period_parse(a, &ka, &fa, &la) != 0 || period_parse(b, &kb, &fb, &lb) != 0 || ka != kb ||
        (ka != PERIOD_YEAR && ka != PERIOD_FISCAL_YEAR) || fb < fa) {
        snprintf(err, errlen,
                 "period range \"%s\" is not two years or two fiscal years, the first not "
                 "after the second (2023..2026, FY2080/81..FY2083/84)",
                 v);
        return REINT_EINVAL;
    }
    snprintf(q->period, sizeof(q->period), "%s", a);
    snprintf(q->period_last, sizeof(q->period_last), "%s", b);
    q->kind = ka;
    q->has_period = 1;
    return 0;
}

size_t params_series(const params_query *q, char (*out)[PERIOD_MAX], size_t max)
{
    enum period_kind k;
    int bs;
    int32_t first, last, f2, l2;
    size_t n = 0;
    if (q->series < 0 || period_months(q->period, &k, &bs, &first, &last) != 0)
        return 0;
    if (q->period_last[0] && period_months(q->period_last, &k, &bs, &f2, &l2) == 0)
        last = l2;
    char prev[PERIOD_MAX] = "";
    for (int32_t ym = first; ym <= last; ym = ym % 100 == 12 ? ym + 89 : ym + 1) {
        char p[PERIOD_KINDS][PERIOD_MAX];
        /* Both calendars get the same YYYYMM: only the series' own calendar is read. */
        period_of_pair(ym, ym, p);
        const char *s = p[q->series];
        if (strcmp(s, prev) == 0)
            continue;
        snprintf(prev, sizeof(prev), "%s", s);
        if (n < max)
            snprintf(out[n], PERIOD_MAX, "%s", s);
        n++;
    }
    return n;
}

/* What by=<area>, series= and period ranges need of each other and of the filter. */
static int params__breakdown(unsigned allowed, params_query *q, char *err, size_t errlen)
{
    if (q->period_last[0] && !(allowed & PARAM_SERIES)) {
        snprintf(err, errlen,
                 "a range of periods is accepted only with series= on "
                 "/v1/indicators/<code>");
        return REINT_EINVAL;
    }
    if (q->period_last[0] && q->series < 0) {
        snprintf(err, errlen, "a range of periods needs series= (e.g. series=year)");
        return REINT_EINVAL;
    }
    if (q->series >= 0) {
        if (q->series == PERIOD_YEAR && period_kind_bs(q->kind))
            q->series = PERIOD_FISCAL_YEAR;
        if (period_kind_bs((enum period_kind)q->series) != period_kind_bs(q->kind) ||
            params__fineness((enum period_kind)q->series) < params__fineness(q->kind)) {
            snprintf(err, errlen,
                     "series %s does not divide period %s: month and quarter divide a "
                     "Gregorian year, bs_month and trimester a fiscal year, year a range",
                     params__series_label[q->series], q->period);
            return REINT_EINVAL;
        }
        if (params_series(q, NULL, 0) > PARAMS_MAX_SERIES) {
            snprintf(err, errlen, "series: more than %d periods; ask a shorter range",
                     PARAMS_MAX_SERIES);
            return REINT_EINVAL;
        }
    }
    if (q->by_area == PARAMS_AREA_PROVINCE && (q->district || q->municipality)) {
        snprintf(err, errlen, "by=province takes no district or municipality filter");
        return REINT_EINVAL;
    }
    if (q->by_area == PARAMS_AREA_DISTRICT && q->municipality) {
        snprintf(err, errlen, "by=district takes no municipality filter");
        return REINT_EINVAL;
    }
    if (q->approved && (q->by_area || q->series >= 0)) {
        snprintf(err, errlen,
                 "approval=approved is answered one area and one period at a "
                 "time: drop by=<area> and series=");
        return REINT_EINVAL;
    }
    return 0;
}

static int params__one(const char *name, unsigned flag, const char *v,
                       const catalogue_indicator *ind, params_query *q, char *err, size_t errlen)
{
    long x = 0;
    switch (flag) {
    case PARAM_PERIOD: {
        int32_t first, last;
        const char *dots = strstr(v, "..");
        if (dots != NULL)
            return params__range(v, dots, q, err, errlen);
        int rc = strlen(v) >= PERIOD_MAX ? REINT_EINVAL : period_parse(v, &q->kind, &first, &last);
        if (rc == REINT_ERANGE) {
            snprintf(err, errlen,
                     "period \"%s\" is outside the BS calendar table (BS2000-01..BS2099-12)", v);
            return REINT_EINVAL;
        }
        if (rc != 0) {
            snprintf(err, errlen,
                     "period \"%s\" is not a period (2026, 2026-Q3, 2026-07, BS2083-04, "
                     "FY2083/84-T1 or FY2083/84)",
                     v);
            return REINT_EINVAL;
        }
        snprintf(q->period, sizeof(q->period), "%s", v);
        q->has_period = 1;
        return 0;
    }
    case PARAM_PROVINCE:
        if (params__number(v, &x) != 0 || x < 1 || x > 7) {
            snprintf(err, errlen, "province \"%s\" is not a province code 1..7", v);
            return REINT_EINVAL;
        }
        q->province = (int)x;
        q->area_province = (int)x;
        return 0;
    case PARAM_DISTRICT:
        if (params__number(v, &x) != 0 || x > 255 || params__district_province(x) == 0) {
            snprintf(err, errlen, "district \"%s\" is not an official district code", v);
            return REINT_EINVAL;
        }
        q->district = (int)x;
        q->area_province = params__district_province(x);
        return 0;
    case PARAM_MUNICIPALITY: {
        const geo_local_level *g = NULL;
        if (params__number(v, &x) != 0 || (g = geo_find((uint32_t)x)) == NULL) {
            snprintf(err, errlen, "municipality \"%s\" is not an official local level code", v);
            return REINT_EINVAL;
        }
        q->municipality = (uint32_t)x;
        q->area_province = g->province;
        return 0;
    }
    case PARAM_BY: {
        char norm[64], allowed[512];
        const char *g = v;
        if (ind != NULL && (q->by_area = params__area(v, &g)) != PARAMS_AREA_NONE && *g == '\0') {
            q->by[0] = '\0';
            return 0;
        }
        if (ind == NULL || !catalogue_grouping(ind, g, norm, sizeof(norm))) {
            if (ind == NULL) {
                snprintf(err, errlen, "by is not accepted here");
            } else {
                params__allowed_groupings(ind, allowed, sizeof(allowed));
                snprintf(err, errlen, "by \"%s\" is not a declared grouping of %s; allowed: %s", v,
                         ind->code, allowed);
            }
            return REINT_EINVAL;
        }
        snprintf(q->by, sizeof(q->by), "%s", norm);
        return 0;
    }
    case PARAM_FORMAT:
        if (strcmp(v, "json") == 0 || strcmp(v, "csv") == 0) {
            q->csv = v[0] == 'c';
            return 0;
        }
        snprintf(err, errlen, "format \"%s\" is not json or csv", v);
        return REINT_EINVAL;
    case PARAM_EXACT:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            q->exact = 1;
            return 0;
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            q->exact = 0;
            return 0;
        }
        snprintf(err, errlen, "exact \"%s\" is not true or false", v);
        return REINT_EINVAL;
    case PARAM_APPROVAL:
        if (strcmp(v, "approved") == 0 || strcmp(v, "all") == 0) {
            q->approved = v[1] == 'p';
            return 0;
        }
        snprintf(err, errlen, "approval \"%s\" is not approved or all", v);
        return REINT_EINVAL;
    case PARAM_BY_AREA:
        if (strcmp(v, "province") == 0 || strcmp(v, "municipality") == 0) {
            snprintf(q->by, sizeof(q->by), "%s", v);
            return 0;
        }
        snprintf(err, errlen, "by \"%s\" is not province or municipality", v);
        return REINT_EINVAL;
    case PARAM_SERIES:
        for (size_t i = 0; i < PARAMS_N_SERIES; i++)
            if (strcmp(v, params__series_names[i].name) == 0) {
                q->series = (int)params__series_names[i].kind;
                return 0;
            }
        snprintf(err, errlen, "series \"%s\" is not month, quarter, bs_month, trimester or year",
                 v);
        return REINT_EINVAL;
    case PARAM_LIMIT:
        if (params__number(v, &x) != 0 || x > 10000) {
            snprintf(err, errlen, "limit \"%s\" is not a number from 1 to 10000", v);
            return REINT_EINVAL;
        }
        q->limit = x;
        return 0;
    case PARAM_PAGE:
        if (params__number(v, &x) != 0) {
            snprintf(err, errlen, "page \"%s\" is not a number from 1 to 999999", v);
            return REINT_EINVAL;
        }
        q->page = x;
        return 0;
    case PARAM_PAGE_SIZE:
        if (params__number(v, &x) != 0 || x > PARAMS_MAX_PAGE_SIZE) {
            snprintf(err, errlen, "pageSize \"%s\" is not a number from 1 to %d", v,
                     PARAMS_MAX_PAGE_SIZE);
            return REINT_EINVAL;
        }
        q->page_size = x;
        return 0;
    case PARAM_ID_SCHEME:
        /* DHIS2 spells the schemes in capitals and accepts either case. */
        if (strcasecmp(v, "UID") == 0 || strcasecmp(v, "CODE") == 0) {
            q->id_code = strcasecmp(v, "CODE") == 0;
            return 0;
        }
        snprintf(err, errlen, "idScheme \"%s\" is not UID or CODE", v);
        return REINT_EINVAL;
    default:
        snprintf(err, errlen, "parameter %s is not accepted here", name);
        return REINT_EINVAL;
    }
}

int params_parse(const char *raw, unsigned allowed, const catalogue_indicator *ind, params_query *q,
                 char *err, size_t errlen)
{
    query_pairs pairs;
    memset(q, 0, sizeof(*q));
    q->exact = -1;
    q->series = -1;
    q->page = 1;
    q->page_size = PARAMS_DEFAULT_PAGE_SIZE;
    if (query_parse(raw, &pairs, err, errlen) != 0)
        return REINT_EINVAL;
    for (size_t k = 0; k < pairs.n; k++) {
        const char *name = pairs.p[k].name;
        unsigned flag = 0;
        for (size_t i = 0; i < PARAMS_N_NAMES; i++)
            if (strcmp(params__names[i].name, name) == 0)
                flag = params__names[i].flag;
        /* by= names an area on the routes that break down by area, a grouping elsewhere. */
        if (flag == PARAM_BY && (allowed & PARAM_BY_AREA))
            flag = PARAM_BY_AREA;
        /* A route may take period= without requiring it. */
        int optional = flag == PARAM_PERIOD && (allowed & PARAM_PERIOD_OPTIONAL);
        if (flag == 0 || !((allowed & flag) || optional)) {
            snprintf(err, errlen, "parameter \"%s\" is not accepted here", name);
            return REINT_EINVAL;
        }
        if (params__one(name, flag, pairs.p[k].value, ind, q, err, errlen) != 0)
            return REINT_EINVAL;
    }
    if ((q->province != 0) + (q->district != 0) + (q->municipality != 0) > 1) {
        snprintf(err, errlen, "give at most one of province, district and municipality");
        return REINT_EINVAL;
    }
    if (params__breakdown(allowed, q, err, errlen) != 0)
        return REINT_EINVAL;
    if ((allowed & PARAM_PERIOD) && !q->has_period) {
        snprintf(err, errlen, "period is required (e.g. period=2026-07)");
        return REINT_EINVAL;
    }
    /* Every value was checked above and is short: the spelling always fits. */
    if (query_format(&pairs, q->normalised, sizeof(q->normalised)) != 0) {
        snprintf(err, errlen, "query string is too long");
        return REINT_EINVAL;
    }
    return 0;
}

int params_code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return 0;
    return 1;
}
