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

static int params__one(const char *name, unsigned flag, const char *v,
                       const catalogue_indicator *ind, params_query *q, char *err, size_t errlen)
{
    long x = 0;
    switch (flag) {
    case PARAM_PERIOD: {
        int32_t first, last;
        if (period_parse(v, &q->kind, &first, &last) != 0 || strlen(v) >= PERIOD_MAX) {
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
        if (ind == NULL || !catalogue_grouping(ind, v, norm, sizeof(norm))) {
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
