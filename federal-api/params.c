#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"
#include "hex.h"

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
};
#define PARAMS_N_NAMES (sizeof(params__names) / sizeof(params__names[0]))

/* Decodes src[0..n) into dst (dstlen bytes with the NUL); '+' is a space. Returns the
 * length, -1 for a bad escape, -2 when longer than dstlen - 1. */
static long params__decode(const char *src, size_t n, char *dst, size_t dstlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)src[i];
        if (ch == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_digit((unsigned char)src[i + 1]),
                lo = hex_digit((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= dstlen)
            return -2;
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return (long)o;
}

static int params__value_chars_ok(const char *v)
{
    for (; *v; v++) {
        char c = *v;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ',' || c == '/' || c == '-'))
            return 0;
    }
    return 1;
}

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
    case PARAM_LIMIT:
        if (params__number(v, &x) != 0 || x > 10000) {
            snprintf(err, errlen, "limit \"%s\" is not a number from 1 to 10000", v);
            return REINT_EINVAL;
        }
        q->limit = x;
        return 0;
    default:
        snprintf(err, errlen, "parameter %s is not accepted here", name);
        return REINT_EINVAL;
    }
}

int params_parse(const char *raw, unsigned allowed, const catalogue_indicator *ind, params_query *q,
                 char *err, size_t errlen)
{
    unsigned seen = 0;
    memset(q, 0, sizeof(*q));
    q->exact = -1;
    size_t rl = strlen(raw);
    if (rl > PARAMS_MAX_QUERY) {
        snprintf(err, errlen, "query string is longer than %d bytes", PARAMS_MAX_QUERY);
        return REINT_EINVAL;
    }
    const char *s = raw, *end = raw + rl;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        if (pe > s) {
            const char *eq = memchr(s, '=', (size_t)(pe - s));
            const char *ke = eq ? eq : pe;
            char name[32], value[PARAMS_MAX_VALUE + 1];
            long kl = params__decode(s, (size_t)(ke - s), name, sizeof(name));
            if (kl < 0 || !params__value_chars_ok(name)) {
                snprintf(err, errlen, "query has an unknown or malformed parameter name");
                return REINT_EINVAL;
            }
            unsigned flag = 0;
            for (size_t i = 0; i < PARAMS_N_NAMES; i++)
                if (strcmp(params__names[i].name, name) == 0)
                    flag = params__names[i].flag;
            if (flag == 0 || !(allowed & flag)) {
                snprintf(err, errlen, "parameter \"%s\" is not accepted here", name);
                return REINT_EINVAL;
            }
            if (seen & flag) {
                snprintf(err, errlen, "parameter %s is given more than once", name);
                return REINT_EINVAL;
            }
            seen |= flag;
            long vl = eq ? params__decode(eq + 1, (size_t)(pe - eq - 1), value, sizeof(value))
                         : (value[0] = '\0', 0);
            if (vl == -2) {
                snprintf(err, errlen, "%s is longer than %d bytes", name, PARAMS_MAX_VALUE);
                return REINT_EINVAL;
            }
            if (vl < 0 || (size_t)vl != strlen(value) || !params__value_chars_ok(value)) {
                snprintf(err, errlen, "%s contains characters other than A-Z a-z 0-9 _ , / -",
                         name);
                return REINT_EINVAL;
            }
            if (params__one(name, flag, value, ind, q, err, errlen) != 0)
                return REINT_EINVAL;
        }
        s = pe + (amp ? 1 : 0);
    }
    if ((q->province != 0) + (q->district != 0) + (q->municipality != 0) > 1) {
        snprintf(err, errlen, "give at most one of province, district and municipality");
        return REINT_EINVAL;
    }
    if ((allowed & PARAM_PERIOD) && !q->has_period) {
        snprintf(err, errlen, "period is required (e.g. period=2026-07)");
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
