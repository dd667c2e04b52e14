#include "dhis2.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "catalogue.h"
#include "clock.h"
#include "fapprovals.h"
#include "frender.h"
#include "geo.h"
#include "period.h"

/* DHIS2's default category and option (every instance has them under these ids). */
#define DHIS2_DEFAULT_CATEGORY "GLevLNI9wkl"
#define DHIS2_DEFAULT_OPTION   "xYerKDKCefk"

/* The most distinct groupings and dimensions the catalogue can declare. */
#define DHIS2_MAX_COMBOS 64
#define DHIS2_MAX_DIMS   32
/* Our codes: an indicator code (64), a grouping and a key, with separators. */
#define DHIS2_CODE_MAX 200
/* DHIS2 caps codes and short names at 50 characters. */
#define DHIS2_SHORT_MAX 50

static const char dhis2__letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char dhis2__alnum[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

void dhis2_uid(const char *kind, const char *code, char out[DHIS2_UID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char in[2 * DHIS2_CODE_MAX];
    /* kind and code are hashed with a separator that neither contains, so that no two
     * objects of different kinds can share an id by their codes alone. A code is at most
     * DHIS2_CODE_MAX bytes, so in never cuts one. */
    int n = snprintf(in, sizeof(in), "reint-dhis2\n%s\n%s", kind, code);
    if (n < 0 || (size_t)n >= sizeof(in) ||
        EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 32)
        memset(md, 0, sizeof(md)); /* unreachable with our codes; still a valid id */
    /* Each character takes two bytes of the digest, so the bias of the modulo is below 0.1%. */
    out[0] = dhis2__letters[((unsigned)md[0] << 8 | md[1]) % 52];
    for (int i = 1; i < DHIS2_UID_LEN; i++)
        out[i] = dhis2__alnum[((unsigned)md[2 * i] << 8 | md[2 * i + 1]) % 62];
    out[DHIS2_UID_LEN] = '\0';
}

/* --- codes ---------------------------------------------------------------------------------- */

/* A data element's code: the indicator's, and its grouping's dimensions after dots. */
static void dhis2__de_code(const char *indicator, const char *grouping, char *out, size_t outlen)
{
    size_t o = (size_t)snprintf(out, outlen, "%s", indicator);
    if (grouping[0] && o + 1 < outlen) {
        snprintf(out + o, outlen - o, ".%s", grouping);
        for (char *p = out + o; *p; p++)
            if (*p == ',')
                *p = '.';
    }
}

/* An option's code: "sex:FEMALE". */
static void dhis2__option_code(const char *dim, const char *value, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:%s", dim, value);
}

/* Short names of the dimensions in option combinations' codes, so that every code keeps to
 * DHIS2's 50 characters ("osex,ocat/UNKNOWN,PROSPECTIVE_MIGRANT"); docs/DHIS2.md lists them. */
static const char *dhis2__short_dims[][2] = {
    {"category", "cat"},
    {"age_band", "age"},
    {"caste_group", "caste"},
    {"disability", "dis"},
    {"destination_country", "country"},
    {"service_type", "service"},
    {"programme", "prog"},
    {"provider", "prov"},
    {"owner_sex", "osex"},
    {"owner_category", "ocat"},
};

static const char *dhis2__short_dim(const char *dim)
{
    for (size_t i = 0; i < sizeof(dhis2__short_dims) / sizeof(dhis2__short_dims[0]); i++)
        if (strcmp(dhis2__short_dims[i][0], dim) == 0)
            return dhis2__short_dims[i][1];
    return dim;
}

static int dhis2__split(const char *s, char d[2][FRENDER_PART_MAX]);

/* An option combination's code: its grouping's short dimension names, a slash and the key
 * ("sex/FEMALE", "cat,sex/RETURNEE,MALE"; "default" for none). Unique, since a key is unique
 * in its grouping, and at most 50 characters (test_dhis2 checks every one). */
static void dhis2__coc_code(const char *grouping, const char *key, char *out, size_t outlen)
{
    char d[2][FRENDER_PART_MAX];
    int nd = dhis2__split(grouping, d);
    if (nd == 0)
        snprintf(out, outlen, "default");
    else if (nd == 1)
        snprintf(out, outlen, "%s/%s", dhis2__short_dim(d[0]), key);
    else
        snprintf(out, outlen, "%s,%s/%s", dhis2__short_dim(d[0]), dhis2__short_dim(d[1]), key);
}

/* The id of an option combination: by its combination's grouping and its key, since the
 * same options in two combinations are two objects in DHIS2. */
static void dhis2__coc_uid(const char *grouping, const char *key, char out[DHIS2_UID_LEN + 1])
{
    char code[DHIS2_CODE_MAX];
    if (grouping[0] == '\0') {
        snprintf(out, DHIS2_UID_LEN + 1, "%s", DHIS2_DEFAULT_COC);
        return;
    }
    snprintf(code, sizeof(code), "%s|%s", grouping, key);
    dhis2_uid("coc", code, out);
}

static void dhis2__combo_uid(const char *grouping, char out[DHIS2_UID_LEN + 1])
{
    if (grouping[0] == '\0')
        snprintf(out, DHIS2_UID_LEN + 1, "%s", DHIS2_DEFAULT_COMBO);
    else
        dhis2_uid("cc", grouping, out);
}

/* The organisation unit code of q's area: "NP", "P3", "D07" or the local level's code. */
static void dhis2__ou_code(const params_query *q, char *out, size_t outlen)
{
    if (q->municipality)
        snprintf(out, outlen, "%u", q->municipality);
    else if (q->district)
        snprintf(out, outlen, "D%02d", q->district);
    else if (q->province)
        snprintf(out, outlen, "P%d", q->province);
    else
        snprintf(out, outlen, "NP");
}

/* --- periods -------------------------------------------------------------------------------- */

/* The Gregorian date of a day number (days since 1970-01-01), by H. Hinnant's algorithm. */
static void dhis2__civil(int32_t day, int *y, int *m, int *d)
{
    int64_t z = (int64_t)day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int dhis2_period(const char *period, char *out, size_t outlen)
{
    enum period_kind kind;
    int32_t first, last;
    int bs;
    if (period_months(period, &kind, &bs, &first, &last) != 0)
        return REINT_EINVAL;
    switch (kind) {
    case PERIOD_YEAR:
        snprintf(out, outlen, "%" PRId32, first / 100);
        return 0;
    case PERIOD_QUARTER:
        snprintf(out, outlen, "%" PRId32 "Q%" PRId32, first / 100, (first % 100 + 2) / 3);
        return 0;
    case PERIOD_MONTH:
    case PERIOD_BS_MONTH:
        /* A DHIS2 using the Nepali calendar names months by its own year and month. */
        snprintf(out, outlen, "%" PRId32, first);
        return 0;
    case PERIOD_FISCAL_YEAR:
        /* FinancialApril starts in the calendar's fourth month: Shrawan, in a DHIS2 using
         * the Nepali calendar (docs/DHIS2.md). */
        snprintf(out, outlen, "%" PRId32 "April", first / 100);
        return 0;
    default:
        return REINT_EINVAL;
    }
}

int dhis2_adx_period(const char *period, char *out, size_t outlen)
{
    enum period_kind kind;
    int32_t first, last;
    int y, m, d;
    char tmp[PERIOD_MAX + 16];
    if (dhis2_period(period, tmp, sizeof(tmp)) != 0 ||
        period_parse(period, &kind, &first, &last) != 0)
        return REINT_EINVAL;
    dhis2__civil(first, &y, &m, &d);
    switch (kind) {
    case PERIOD_YEAR:
        snprintf(out, outlen, "%04d-%02d-%02d/P1Y", y, m, d);
        break;
    case PERIOD_QUARTER:
        snprintf(out, outlen, "%04d-%02d-%02d/P3M", y, m, d);
        break;
    case PERIOD_MONTH:
        snprintf(out, outlen, "%04d-%02d-%02d/P1M", y, m, d);
        break;
    default:
        /* BS months and years have no Gregorian length of their own: their days. */
        snprintf(out, outlen, "%04d-%02d-%02d/P%" PRId32 "D", y, m, d, last - first + 1);
        break;
    }
    return 0;
}

/* --- metadata ------------------------------------------------------------------------------- */

/* The distinct non-empty groupings of the catalogue and their dimensions. */
typedef struct dhis2__space {
    const char *combos[DHIS2_MAX_COMBOS];
    size_t ncombos;
    const char *dims[DHIS2_MAX_DIMS];
    size_t ndims;
} dhis2__space;

static void dhis2__collect(dhis2__space *s)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        for (int g = 0; all[i].groupings[g]; g++) {
            const char *gr = all[i].groupings[g];
            size_t k = 0;
            if (gr[0] == '\0')
                continue;
            while (k < s->ncombos && strcmp(s->combos[k], gr) != 0)
                k++;
            if (k == s->ncombos && s->ncombos < DHIS2_MAX_COMBOS)
                s->combos[s->ncombos++] = gr;
        }
        for (int d = 0; all[i].dims[d]; d++) {
            size_t k = 0;
            while (k < s->ndims && strcmp(s->dims[k], all[i].dims[d]) != 0)
                k++;
            if (k == s->ndims && s->ndims < DHIS2_MAX_DIMS)
                s->dims[s->ndims++] = all[i].dims[d];
        }
    }
}

/* The dimensions of a grouping ("sex,age_band") into d; returns their number. */
static int dhis2__split(const char *s, char d[2][FRENDER_PART_MAX])
{
    const char *comma = strchr(s, ',');
    if (s[0] == '\0')
        return 0;
    if (comma == NULL) {
        snprintf(d[0], FRENDER_PART_MAX, "%s", s);
        return 1;
    }
    snprintf(d[0], FRENDER_PART_MAX, "%.*s", (int)(comma - s), s);
    snprintf(d[1], FRENDER_PART_MAX, "%s", comma + 1);
    return 2;
}

/* "id", "code", "name" and "shortName" members (the short name cut to DHIS2's 50). */
static void dhis2__head(sbuf *b, const char *uid, const char *code, const char *name)
{
    char shortname[DHIS2_SHORT_MAX + 1];
    snprintf(shortname, sizeof(shortname), "%s", name);
    sbuf_printf(b, "{\"id\":\"%s\",\"code\":", uid);
    sbuf_json_str(b, code);
    sbuf_puts(b, ",\"name\":");
    sbuf_json_str(b, name);
    sbuf_puts(b, ",\"shortName\":");
    sbuf_json_str(b, shortname);
}

static void dhis2__data_elements(sbuf *b)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    int first = 1;
    sbuf_puts(b, "\"dataElements\":[");
    for (size_t i = 0; i < n; i++) {
        const catalogue_indicator *ind = &all[i];
        int ratio = ind->agg == CATALOGUE_RATIO;
        for (int g = 0; ind->groupings[g]; g++) {
            char code[DHIS2_CODE_MAX], name[DHIS2_CODE_MAX + 256], uid[DHIS2_UID_LEN + 1],
                combo[DHIS2_UID_LEN + 1];
            dhis2__de_code(ind->code, ind->groupings[g], code, sizeof(code));
            dhis2_uid("de", code, uid);
            dhis2__combo_uid(ind->groupings[g], combo);
            if (ind->groupings[g][0])
                snprintf(name, sizeof(name), "%s, by %s", ind->title, ind->groupings[g]);
            else
                snprintf(name, sizeof(name), "%s", ind->title);
            sbuf_puts(b, first ? "" : ",");
            first = 0;
            /* The short name must be unique in DHIS2: the code is (the title is not). */
            dhis2__head(b, uid, code, code);
            sbuf_puts(b, ",\"formName\":");
            sbuf_json_str(b, name);
            sbuf_puts(b, ",\"description\":");
            sbuf_json_str(b, name);
            /* A ratio is divided at read time: summing it over areas or periods is wrong. */
            sbuf_printf(b,
                        ",\"valueType\":\"%s\",\"aggregationType\":\"%s\","
                        "\"domainType\":\"AGGREGATE\",\"zeroIsSignificant\":false,"
                        "\"categoryCombo\":{\"id\":\"%s\"}}",
                        ratio ? "NUMBER" : "INTEGER", ratio ? "NONE" : "SUM", combo);
        }
    }
    sbuf_puts(b, "]");
}

/* Indicators: each ratio's values are already divided (numerator / denominator, both summed
 * over the area and period), so a DHIS2 indicator shows its data element with factor 1. */
static void dhis2__indicators(sbuf *b)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    char type[DHIS2_UID_LEN + 1];
    int first = 1;
    dhis2_uid("it", "ratio", type);
    sbuf_printf(b,
                ",\"indicatorTypes\":[{\"id\":\"%s\",\"code\":\"ratio\",\"name\":\"Ratio "
                "(factor 1)\",\"factor\":1,\"number\":true}],\"indicators\":[",
                type);
    for (size_t i = 0; i < n; i++) {
        char uid[DHIS2_UID_LEN + 1], de[DHIS2_UID_LEN + 1];
        if (all[i].agg != CATALOGUE_RATIO)
            continue;
        dhis2_uid("in", all[i].code, uid);
        dhis2_uid("de", all[i].code, de);
        sbuf_puts(b, first ? "" : ",");
        first = 0;
        dhis2__head(b, uid, all[i].code, all[i].title);
        sbuf_printf(b,
                    ",\"numerator\":\"#{%s}\",\"numeratorDescription\":\"summed numerator / "
                    "summed denominator\",\"denominator\":\"1\",\"denominatorDescription\":"
                    "\"1\",\"annualized\":false,\"indicatorType\":{\"id\":\"%s\"}}",
                    de, type);
    }
    sbuf_puts(b, "]");
}

static void dhis2__categories(sbuf *b, const dhis2__space *s)
{
    char uid[DHIS2_UID_LEN + 1], code[DHIS2_CODE_MAX], value[FRENDER_PART_MAX];
    sbuf_puts(b, ",\"categoryOptions\":[{\"id\":\"" DHIS2_DEFAULT_OPTION
                 "\",\"code\":\"default\",\"name\":\"default\",\"shortName\":\"default\"}");
    for (size_t d = 0; d < s->ndims; d++) {
        size_t n = frender_space_n(s->dims[d]);
        for (size_t i = 0; i < n; i++) {
            frender_space_at(s->dims[d], i, value);
            dhis2__option_code(s->dims[d], value, code, sizeof(code));
            dhis2_uid("co", code, uid);
            sbuf_puts(b, ",");
            /* Option names are unique in DHIS2: FEMALE is an option of sex and of owner_sex. */
            dhis2__head(b, uid, code, code);
            sbuf_puts(b, "}");
        }
    }
    sbuf_puts(b, "],\"categories\":[{\"id\":\"" DHIS2_DEFAULT_CATEGORY
                 "\",\"code\":\"default\",\"name\":\"default\",\"shortName\":\"default\","
                 "\"dataDimensionType\":\"DISAGGREGATION\",\"categoryOptions\":[{\"id\":"
                 "\"" DHIS2_DEFAULT_OPTION "\"}]}");
    for (size_t d = 0; d < s->ndims; d++) {
        size_t n = frender_space_n(s->dims[d]);
        dhis2_uid("ca", s->dims[d], uid);
        sbuf_puts(b, ",");
        dhis2__head(b, uid, s->dims[d], s->dims[d]);
        sbuf_puts(b, ",\"dataDimensionType\":\"DISAGGREGATION\",\"categoryOptions\":[");
        for (size_t i = 0; i < n; i++) {
            frender_space_at(s->dims[d], i, value);
            dhis2__option_code(s->dims[d], value, code, sizeof(code));
            dhis2_uid("co", code, uid);
            sbuf_printf(b, "%s{\"id\":\"%s\"}", i ? "," : "", uid);
        }
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "]");
}

static void dhis2__combos(sbuf *b, const dhis2__space *s)
{
    char uid[DHIS2_UID_LEN + 1], dims[2][FRENDER_PART_MAX];
    sbuf_puts(b, ",\"categoryCombos\":[{\"id\":\"" DHIS2_DEFAULT_COMBO
                 "\",\"code\":\"default\",\"name\":\"default\",\"dataDimensionType\":"
                 "\"DISAGGREGATION\",\"categories\":[{\"id\":\"" DHIS2_DEFAULT_CATEGORY "\"}]}");
    for (size_t c = 0; c < s->ncombos; c++) {
        int nd = dhis2__split(s->combos[c], dims);
        dhis2__combo_uid(s->combos[c], uid);
        sbuf_printf(b, ",{\"id\":\"%s\",\"code\":", uid);
        sbuf_json_str(b, s->combos[c]);
        sbuf_puts(b, ",\"name\":");
        sbuf_json_str(b, s->combos[c]);
        sbuf_puts(b, ",\"dataDimensionType\":\"DISAGGREGATION\",\"categories\":[");
        for (int k = 0; k < nd; k++) {
            dhis2_uid("ca", dims[k], uid);
            sbuf_printf(b, "%s{\"id\":\"%s\"}", k ? "," : "", uid);
        }
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "]");
}

/* Every option combination of every combination: the product of its categories' options. */
static void dhis2__option_combos(sbuf *b, const dhis2__space *s)
{
    char uid[DHIS2_UID_LEN + 1], combo[DHIS2_UID_LEN + 1], dims[2][FRENDER_PART_MAX],
        vals[2][FRENDER_PART_MAX], code[DHIS2_CODE_MAX], key[2 * FRENDER_PART_MAX + 1],
        name[2 * FRENDER_PART_MAX + 3], oc[DHIS2_CODE_MAX];
    sbuf_puts(b, ",\"categoryOptionCombos\":[{\"id\":\"" DHIS2_DEFAULT_COC
                 "\",\"code\":\"default\",\"name\":\"default\",\"categoryCombo\":{\"id\":"
                 "\"" DHIS2_DEFAULT_COMBO "\"},\"categoryOptions\":[{\"id\":\"" DHIS2_DEFAULT_OPTION
                 "\"}]}");
    for (size_t c = 0; c < s->ncombos; c++) {
        int nd = dhis2__split(s->combos[c], dims);
        size_t n0 = frender_space_n(dims[0]), n1 = nd == 2 ? frender_space_n(dims[1]) : 1;
        dhis2__combo_uid(s->combos[c], combo);
        for (size_t i0 = 0; i0 < n0; i0++) {
            for (size_t i1 = 0; i1 < n1; i1++) {
                frender_space_at(dims[0], i0, vals[0]);
                if (nd == 2) {
                    frender_space_at(dims[1], i1, vals[1]);
                    snprintf(key, sizeof(key), "%s,%s", vals[0], vals[1]);
                    snprintf(name, sizeof(name), "%s, %s", vals[0], vals[1]);
                } else {
                    snprintf(key, sizeof(key), "%s", vals[0]);
                    snprintf(name, sizeof(name), "%s", vals[0]);
                }
                dhis2__coc_uid(s->combos[c], key, uid);
                dhis2__coc_code(s->combos[c], key, code, sizeof(code));
                sbuf_printf(b, ",{\"id\":\"%s\",\"code\":", uid);
                sbuf_json_str(b, code);
                sbuf_puts(b, ",\"name\":");
                sbuf_json_str(b, name);
                sbuf_printf(b, ",\"categoryCombo\":{\"id\":\"%s\"},\"categoryOptions\":[", combo);
                for (int k = 0; k < nd; k++) {
                    dhis2__option_code(dims[k], vals[k], oc, sizeof(oc));
                    dhis2_uid("co", oc, uid);
                    sbuf_printf(b, "%s{\"id\":\"%s\"}", k ? "," : "", uid);
                }
                sbuf_puts(b, "]}");
            }
        }
    }
    sbuf_puts(b, "]");
}

/* One organisation unit: its code, name, level, path of ids from the root and parent. */
static void dhis2__ou(sbuf *b, const char *code, const char *name, int level, const char *path,
                      const char *parent, const char *opening)
{
    char uid[DHIS2_UID_LEN + 1];
    dhis2_uid("ou", code, uid);
    sbuf_puts(b, level == 1 ? "" : ",");
    dhis2__head(b, uid, code, name);
    sbuf_printf(b, ",\"level\":%d,\"path\":\"%s/%s\",\"openingDate\":\"%s\"", level, path, uid,
                opening);
    if (parent)
        sbuf_printf(b, ",\"parent\":{\"id\":\"%s\"}", parent);
    sbuf_puts(b, "}");
}

/* Nepal, its 7 provinces, 77 districts and 753 local levels. The provinces and districts date
 * from the 2015 constitution, the local levels from March 2017. */
static void dhis2__org_units(sbuf *b)
{
    static const char *levels[4] = {"Nation", "Province", "District", "Local level"};
    unsigned n = 0;
    const geo_local_level *all = geo_all(&n);
    char np[DHIS2_UID_LEN + 1], pv[DHIS2_UID_LEN + 1], di[DHIS2_UID_LEN + 1], code[16],
        path[4 * (DHIS2_UID_LEN + 1) + 1];
    int seen_p[8] = {0}, seen_d[100] = {0};
    sbuf_puts(b, ",\"organisationUnitLevels\":[");
    for (int l = 0; l < 4; l++) {
        char uid[DHIS2_UID_LEN + 1], lc[8];
        snprintf(lc, sizeof(lc), "%d", l + 1);
        dhis2_uid("ol", lc, uid);
        sbuf_printf(b, "%s{\"id\":\"%s\",\"name\":\"%s\",\"level\":%d}", l ? "," : "", uid,
                    levels[l], l + 1);
    }
    sbuf_puts(b, "],\"organisationUnits\":[");
    dhis2_uid("ou", "NP", np);
    dhis2__ou(b, "NP", "Nepal", 1, "", NULL, "2015-09-20");
    for (unsigned i = 0; i < n; i++) {
        const geo_local_level *g = &all[i];
        if (g->province < 1 || g->province > 7 || g->district >= 100)
            continue;
        snprintf(code, sizeof(code), "P%u", (unsigned)g->province);
        dhis2_uid("ou", code, pv);
        if (!seen_p[g->province]) {
            seen_p[g->province] = 1;
            snprintf(path, sizeof(path), "/%s", np);
            dhis2__ou(b, code, g->province_name, 2, path, np, "2015-09-20");
        }
        snprintf(code, sizeof(code), "D%02u", (unsigned)g->district);
        dhis2_uid("ou", code, di);
        if (!seen_d[g->district]) {
            seen_d[g->district] = 1;
            snprintf(path, sizeof(path), "/%s/%s", np, pv);
            dhis2__ou(b, code, g->district_name, 3, path, pv, "2015-09-20");
        }
        snprintf(code, sizeof(code), "%u", g->code);
        snprintf(path, sizeof(path), "/%s/%s/%s", np, pv, di);
        dhis2__ou(b, code, g->name, 4, path, di, "2017-03-10");
    }
    sbuf_puts(b, "]");
}

int dhis2_metadata(sbuf *b)
{
    dhis2__space s;
    dhis2__collect(&s);
    sbuf_puts(b, "{");
    dhis2__data_elements(b);
    dhis2__indicators(b);
    dhis2__categories(b, &s);
    dhis2__combos(b, &s);
    dhis2__option_combos(b, &s);
    dhis2__org_units(b);
    sbuf_puts(b, "}\n");
    return b->failed ? REINT_ETOOBIG : 0;
}

/* --- data values ---------------------------------------------------------------------------- */

/* The page of values being written, and what each needs. */
typedef struct dhis2__page {
    sbuf *b;
    const params_query *q;
    size_t index, from, to; /* values [from, to) of the answer are written */
    int adx, first;
    char period[PERIOD_MAX + 16];
    char ou[DHIS2_CODE_MAX];
} dhis2__page;

static void dhis2__count(void *ud, const frender_dv *v)
{
    (void)v;
    ((dhis2__page *)ud)->index++;
}

/* A JSON dataValue, with DHIS2 ids or (idScheme=CODE) our codes. */
static void dhis2__json_value(dhis2__page *p, const frender_dv *v)
{
    char de[DHIS2_CODE_MAX], coc[DHIS2_CODE_MAX];
    dhis2__de_code(v->ind->code, v->cell->grouping, de, sizeof(de));
    if (p->q->id_code) {
        dhis2__coc_code(v->cell->grouping, v->cell->key, coc, sizeof(coc));
    } else {
        char uid[DHIS2_UID_LEN + 1];
        dhis2_uid("de", de, uid);
        snprintf(de, sizeof(de), "%s", uid);
        dhis2__coc_uid(v->cell->grouping, v->cell->key, uid);
        snprintf(coc, sizeof(coc), "%s", uid);
    }
    sbuf_puts(p->b, p->first ? "{\"dataElement\":" : ",{\"dataElement\":");
    sbuf_json_str(p->b, de);
    sbuf_printf(p->b, ",\"period\":\"%s\",\"orgUnit\":\"%s\",\"categoryOptionCombo\":", p->period,
                p->ou);
    sbuf_json_str(p->b, coc);
    sbuf_printf(p->b, ",\"value\":\"%s\"}", v->value);
}

/* An ADX dataValue: the data element's code, a category attribute per dimension whose value is
 * its option's code. Codes are of a-z, 0-9, _ . , : and A-Z only: nothing to escape. */
static void dhis2__adx_value(dhis2__page *p, const frender_dv *v)
{
    char de[DHIS2_CODE_MAX], oc[DHIS2_CODE_MAX];
    dhis2__de_code(v->ind->code, v->cell->grouping, de, sizeof(de));
    sbuf_printf(p->b, "    <dataValue dataElement=\"%s\"", de);
    for (int k = 0; k < v->nd; k++) {
        dhis2__option_code(v->dims[k], v->vals[k], oc, sizeof(oc));
        sbuf_printf(p->b, " %s=\"%s\"", v->dims[k], oc);
    }
    sbuf_printf(p->b, " value=\"%s\"/>\n", v->value);
}

static void dhis2__write(void *ud, const frender_dv *v)
{
    dhis2__page *p = ud;
    size_t i = p->index++;
    if (i < p->from || i >= p->to)
        return;
    if (p->adx)
        dhis2__adx_value(p, v);
    else
        dhis2__json_value(p, v);
    p->first = 0;
}

/* Counts the values of r and sets p's range to q's page; returns the number of values. */
static size_t dhis2__paginate(dhis2__page *p, const params_query *q, const findicators_result *r,
                              int perturbed)
{
    size_t size = (size_t)q->page_size, page = (size_t)q->page;
    p->index = 0;
    frender_dv_each(q, r, perturbed, dhis2__count, p);
    size_t total = p->index;
    p->from = (page - 1) * size;
    p->to = p->from + size;
    p->index = 0;
    p->first = 1;
    return total;
}

int dhis2_dvs(sbuf *b, const params_query *q, const findicators_result *r, int perturbed)
{
    dhis2__page p = {.b = b, .q = q};
    char code[DHIS2_CODE_MAX];
    if (dhis2_period(q->period, p.period, sizeof(p.period)) != 0)
        return REINT_EINVAL;
    dhis2__ou_code(q, code, sizeof(code));
    if (q->id_code) {
        snprintf(p.ou, sizeof(p.ou), "%s", code);
    } else {
        char uid[DHIS2_UID_LEN + 1];
        dhis2_uid("ou", code, uid);
        snprintf(p.ou, sizeof(p.ou), "%s", uid);
    }
    size_t total = dhis2__paginate(&p, q, r, perturbed);
    size_t count = total ? (total + (size_t)q->page_size - 1) / (size_t)q->page_size : 1;
    sbuf_printf(b,
                "{\"period\":\"%s\",\"orgUnit\":\"%s\",\"disclosure\":\"%s\",\"asOf\":", p.period,
                p.ou, perturbed ? "cell-key perturbed" : "exact");
    frender_as_of_json(b, q, r);
    if (r->approval)
        fapprovals_coverage_json(b, r->approval, q->approved, perturbed);
    sbuf_printf(b,
                ",\"pager\":{\"page\":%ld,\"pageCount\":%zu,\"total\":%zu,\"pageSize\":%ld},"
                "\"dataValues\":[",
                q->page, count, total, q->page_size);
    frender_dv_each(q, r, perturbed, dhis2__write, &p);
    sbuf_puts(b, "]}\n");
    return b->failed ? REINT_ETOOBIG : 0;
}

int dhis2_adx(sbuf *b, const params_query *q, const findicators_result *r, int perturbed)
{
    dhis2__page p = {.b = b, .q = q, .adx = 1};
    char stamp[32];
    uint64_t ms = clock_now_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (dhis2_adx_period(q->period, p.period, sizeof(p.period)) != 0)
        return REINT_EINVAL;
    if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "1970-01-01T00:00:00Z");
    dhis2__ou_code(q, p.ou, sizeof(p.ou));
    dhis2__paginate(&p, q, r, perturbed);
    sbuf_printf(b,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<adx xmlns=\"urn:ihe:qrph:adx:2015\" exported=\"%s\">\n"
                "  <group orgUnit=\"%s\" period=\"%s\">\n",
                stamp, p.ou, p.period);
    frender_dv_each(q, r, perturbed, dhis2__write, &p);
    sbuf_puts(b, "  </group>\n</adx>\n");
    return b->failed ? REINT_ETOOBIG : 0;
}
