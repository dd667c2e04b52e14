#include "frender.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disclosure.h"
#include "fapprovals.h"
#include "geo.h"
#include "record.h"

static const char *frender__kind_names[PERIOD_KINDS] = {
    "year", "quarter", "month", "bs_month", "fiscal_trimester", "fiscal_year"};

static const char *frender__agg_name(enum catalogue_agg agg)
{
    switch (agg) {
    case CATALOGUE_COUNT:
        return "count";
    case CATALOGUE_DISTINCT:
        return "distinct";
    case CATALOGUE_SUM:
        return "sum";
    default:
        return "ratio";
    }
}

static int frender__done(const sbuf *b)
{
    return b->failed ? REINT_ETOOBIG : 0;
}

/* What a role sees of one cell: exact, or what disclosure.h lets the public see. */
typedef struct frender__val {
    int shown; /* 0: withheld from the public, or a ratio of no denominator */
    int ratio;
    int64_t v;    /* counts and sums */
    double share; /* ratios */
} frender__val;

/* The value of cell c (NULL: an empty cell, which the store does not hold) of ind. sums says
 * whether the public sees sums of the answer's area and period at all. */
static frender__val frender__value(const catalogue_indicator *ind, const findicators_cell *c,
                                   int perturbed, int sums)
{
    frender__val x = {1, ind->agg == CATALOGUE_RATIO, 0, 0};
    int64_t nu = c ? c->nu : 0, de = c ? c->de : 0;
    if (x.ratio) {
        if (perturbed && !disclosure_ratio(nu, c ? c->nk : 0, de, c ? c->ck : 0, &nu, &de))
            de = 0;
        x.shown = de > 0;
        x.share = x.shown ? (double)nu / (double)de : 0;
    } else if (!perturbed) {
        x.v = nu;
    } else if (ind->agg == CATALOGUE_SUM) {
        /* An empty sum is withheld like a small one: its absence says nothing either. */
        x.shown = sums && c && disclosure_sum(nu, c->co, c->t1, c->t2, c->ck, &x.v);
    } else {
        x.v = disclosure_count(nu, c ? c->ck : 0);
    }
    return x;
}

static void frender__format(const frender__val *x, char *out, size_t outlen)
{
    if (!x->shown)
        snprintf(out, outlen, "null");
    else if (x->ratio)
        snprintf(out, outlen, "%.4f", x->share);
    else
        snprintf(out, outlen, "%" PRId64, x->v);
}

/* Whether the public sees sums in q's answer (its area and period). */
static int frender__sums(const params_query *q)
{
    enum disclosure_area a = q->municipality ? DISCLOSURE_MUNICIPALITY
                             : q->district   ? DISCLOSURE_DISTRICT
                             : q->province   ? DISCLOSURE_PROVINCE
                                             : DISCLOSURE_NATION;
    return disclosure_sum_level(a, q->kind);
}

static void frender__json_cell(sbuf *b, const catalogue_indicator *ind, const findicators_cell *c,
                               int perturbed, int sums)
{
    char v[64];
    frender__val x = frender__value(ind, c, perturbed, sums);
    frender__format(&x, v, sizeof(v));
    sbuf_printf(b, "\"value\":%s", v);
    if (perturbed) {
        /* Every value the public does not see is marked the same way, empty cells included. */
        if (!x.shown)
            sbuf_puts(b, ",\"suppressed\":true");
        return;
    }
    if (ind->agg == CATALOGUE_RATIO)
        sbuf_printf(b, ",\"numerator\":%" PRId64 ",\"denominator\":%" PRId64, c ? c->nu : 0,
                    c ? c->de : 0);
    sbuf_printf(b, ",\"contributors\":%" PRId64, c ? c->co : 0);
}

/* --- category spaces ------------------------------------------------------------------------ */

/* The values of each dimension: an enumeration's names in value order, or (a NULL
 * descriptor) every two-letter country code; then UNKNOWN. */
typedef struct frender__dim {
    const char *name;
    const ProtobufCEnumDescriptor *desc;
} frender__dim;

static const frender__dim frender__dims[] = {
    {"category", &reint__v1__category__descriptor},
    {"sex", &reint__v1__sex__descriptor},
    {"age_band", &reint__v1__age_band__descriptor},
    {"caste_group", &reint__v1__caste_group__descriptor},
    {"disability", &reint__v1__flag__descriptor},
    {"destination_country", NULL},
    {"service_type", &reint__v1__service_type__descriptor},
    {"programme", &reint__v1__programme__descriptor},
    {"provider", &reint__v1__provider__descriptor},
    {"action", &reint__v1__enterprise_action__descriptor},
    {"sector", &reint__v1__sector__descriptor},
    {"owner_sex", &reint__v1__sex__descriptor},
    {"owner_category", &reint__v1__category__descriptor},
};

#define FRENDER_COUNTRIES (26 * 26)

static const frender__dim *frender__dim_of(const char *name)
{
    for (size_t i = 0; i < sizeof(frender__dims) / sizeof(frender__dims[0]); i++)
        if (strcmp(frender__dims[i].name, name) == 0)
            return &frender__dims[i];
    return NULL;
}

/* How many values dimension d has, UNKNOWN included (1 for a dimension this build does not
 * know: UNKNOWN alone). */
static size_t frender__space_n(const frender__dim *d)
{
    if (d == NULL)
        return 1;
    if (d->desc == NULL)
        return FRENDER_COUNTRIES + 1;
    size_t n = 0;
    for (unsigned i = 0; i < d->desc->n_values; i++)
        n += d->desc->values[i].value != 0;
    return n + 1;
}

/* Value i of dimension d (i < frender__space_n(d)), into out. */
static void frender__space_at(const frender__dim *d, size_t i, char out[FRENDER_PART_MAX])
{
    size_t n = frender__space_n(d);
    if (i + 1 >= n) {
        snprintf(out, FRENDER_PART_MAX, "UNKNOWN");
    } else if (d->desc == NULL) {
        snprintf(out, FRENDER_PART_MAX, "%c%c", (char)('A' + i / 26), (char)('A' + i % 26));
    } else {
        /* Values in value order; protobuf-c keeps them so, and 0 (UNKNOWN) comes last here. */
        size_t k = 0;
        for (unsigned j = 0; j < d->desc->n_values; j++) {
            if (d->desc->values[j].value == 0)
                continue;
            if (k++ == i) {
                snprintf(out, FRENDER_PART_MAX, "%s",
                         record_enum_name(d->desc, d->desc->values[j].value));
                return;
            }
        }
    }
}

/* Whether s is a value of dimension d's space. */
static int frender__in_space(const frender__dim *d, const char *s)
{
    if (strcmp(s, "UNKNOWN") == 0)
        return 1;
    if (d == NULL)
        return 0;
    if (d->desc == NULL)
        return strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
    int v;
    return record_enum_parse(d->desc, s, &v) == 0 && strcmp(record_enum_name(d->desc, v), s) == 0;
}

/* The parts of a grouping ("sex,age_band") or a key ("FEMALE,25_39") into d; returns their
 * number (0 for ""). */
static int frender__split(const char *s, char d[2][FRENDER_PART_MAX])
{
    if (s[0] == '\0')
        return 0;
    const char *comma = strchr(s, ',');
    if (comma == NULL) {
        snprintf(d[0], FRENDER_PART_MAX, "%s", s);
        return 1;
    }
    snprintf(d[0], FRENDER_PART_MAX, "%.*s", (int)(comma - s), s);
    snprintf(d[1], FRENDER_PART_MAX, "%s", comma + 1);
    return 2;
}

/* The cells of one grouping of one indicator, sorted by key for lookups. */
typedef struct frender__set {
    const findicators_cell **v; /* malloc'd; NULL when empty */
    size_t n;
} frender__set;

static int frender__key_cmp(const void *a, const void *b)
{
    const findicators_cell *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

/* The cells of r of indicator and grouping into out. Returns 0 or REINT_ENOMEM. */
static int frender__select(const findicators_result *r, const char *indicator, const char *grouping,
                           frender__set *out)
{
    out->v = NULL;
    out->n = 0;
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += strcmp(r->cells[i].indicator, indicator) == 0 &&
             strcmp(r->cells[i].grouping, grouping) == 0;
    if (n == 0)
        return 0;
    if ((out->v = malloc(n * sizeof(*out->v))) == NULL)
        return REINT_ENOMEM;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->cells[i].indicator, indicator) == 0 &&
            strcmp(r->cells[i].grouping, grouping) == 0)
            out->v[out->n++] = &r->cells[i];
    qsort(out->v, out->n, sizeof(*out->v), frender__key_cmp);
    return 0;
}

static const findicators_cell *frender__find(const frender__set *set, const char *key)
{
    findicators_cell probe = {.key = key};
    const findicators_cell *p = &probe, *const * hit;
    if (set->n == 0)
        return NULL;
    hit = bsearch(&p, set->v, set->n, sizeof(*set->v), frender__key_cmp);
    return hit ? *hit : NULL;
}

/* One row of a grouping: its dimensions' values and its cell (NULL: empty). */
typedef void (*frender__row_fn)(void *ud, char kv[2][FRENDER_PART_MAX], int nk,
                                const findicators_cell *c);

/* Calls fn for every row of the grouping of nd dimensions named dims whose cells are set:
 * one per combination of the dimensions' values (the whole category space, empty cells
 * included, so that a row's presence says nothing), then one per cell of a key outside it
 * (a value a newer sender knows and this build does not). */
static void frender__rows(const frender__set *set, int nd, char dims[2][FRENDER_PART_MAX],
                          frender__row_fn fn, void *ud)
{
    const frender__dim *d[2] = {NULL, NULL};
    size_t n[2] = {1, 1};
    char kv[2][FRENDER_PART_MAX], key[2 * FRENDER_PART_MAX + 1];
    for (int i = 0; i < nd; i++) {
        d[i] = frender__dim_of(dims[i]);
        n[i] = frender__space_n(d[i]);
    }
    for (size_t i0 = 0; i0 < n[0]; i0++) {
        for (size_t i1 = 0; i1 < n[1]; i1++) {
            frender__space_at(d[0], i0, kv[0]);
            if (nd == 2) {
                frender__space_at(d[1], i1, kv[1]);
                snprintf(key, sizeof(key), "%s,%s", kv[0], kv[1]);
            } else {
                snprintf(key, sizeof(key), "%s", kv[0]);
            }
            fn(ud, kv, nd, frender__find(set, key));
        }
    }
    for (size_t i = 0; i < set->n; i++) {
        int nk = frender__split(set->v[i]->key, kv), inside = nk == nd;
        for (int k = 0; k < nk && inside; k++)
            inside = frender__in_space(d[k], kv[k]);
        if (!inside)
            fn(ud, kv, nk, set->v[i]);
    }
}

/* The cell of the total (grouping ""), or NULL when the store holds none. */
static const findicators_cell *frender__total(const findicators_result *r)
{
    const findicators_cell *total = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->cells[i].grouping[0] == '\0')
            total = &r->cells[i];
    return total;
}

/* The name of an official district ("" for none). */
static const char *frender__district_name(int district)
{
    unsigned n = 0;
    const geo_local_level *all = geo_all(&n);
    for (unsigned i = 0; i < n; i++)
        if (all[i].district == district)
            return all[i].district_name;
    return "";
}

/* The area of an answer: its level, its official code under the level's name and as "code",
 * its name, and the province that holds it. */
static void frender__area_json(sbuf *b, const params_query *q)
{
    const char *name = NULL;
    if (q->municipality) {
        const geo_local_level *g = geo_find(q->municipality);
        name = g ? g->name : "";
        sbuf_printf(b, "{\"level\":\"municipality\",\"municipality\":%u,\"code\":%u",
                    q->municipality, q->municipality);
    } else if (q->district) {
        name = frender__district_name(q->district);
        sbuf_printf(b, "{\"level\":\"district\",\"district\":%d,\"code\":%d", q->district,
                    q->district);
    } else if (q->province) {
        name = geo_province_name((unsigned)q->province);
        sbuf_printf(b, "{\"level\":\"province\",\"code\":%d", q->province);
    } else {
        sbuf_puts(b, "{\"level\":\"national\",\"name\":\"Nepal\"}");
        return;
    }
    sbuf_puts(b, ",\"name\":");
    sbuf_json_str(b, name ? name : "");
    sbuf_printf(b, ",\"province\":%d}", q->area_province);
}

static void frender__as_of_json(sbuf *b, const params_query *q, const findicators_result *r)
{
    sbuf_puts(b, "{");
    int first = 1;
    for (int p = 1; p <= 7; p++) {
        if (q->area_province && q->area_province != p)
            continue;
        sbuf_printf(b, "%s\"%d\":", first ? "" : ",", p);
        if (r->as_of[p])
            sbuf_json_str(b, r->as_of[p]);
        else
            sbuf_puts(b, "null");
        first = 0;
    }
    sbuf_puts(b, "}");
}

void frender_as_of_header(const params_query *q, const findicators_result *r, char *out,
                          size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    out[0] = '\0';
    for (int p = 1; p <= 7; p++) {
        if (q->area_province && q->area_province != p)
            continue;
        int w = snprintf(out + o, outlen - o, "%s%d=%s", o ? "; " : "", p,
                         r->as_of[p] ? r->as_of[p] : "none");
        if (w < 0 || (size_t)w >= outlen - o)
            break;
        o += (size_t)w;
    }
}

int frender_catalogue(sbuf *b)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    sbuf_puts(b, "{\"indicators\":[");
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(b, i ? ",{\"code\":" : "{\"code\":");
        sbuf_json_str(b, all[i].code);
        sbuf_puts(b, ",\"title\":");
        sbuf_json_str(b, all[i].title);
        sbuf_printf(b, ",\"sdg\":\"%s\",\"aggregation\":\"%s\",\"dimensions\":[", all[i].sdg,
                    frender__agg_name(all[i].agg));
        for (int d = 0; all[i].dims[d]; d++)
            sbuf_printf(b, "%s\"%s\"", d ? "," : "", all[i].dims[d]);
        sbuf_puts(b, "],\"groupings\":[");
        for (int g = 0; all[i].groupings[g]; g++)
            sbuf_printf(b, "%s\"%s\"", g ? "," : "", all[i].groupings[g]);
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "],\"periods\":[\"2026\",\"2026-Q3\",\"2026-07\",\"BS2083-04\","
                 "\"FY2083/84-T1\",\"FY2083/84\"]}\n");
    return frender__done(b);
}

/* What the row callbacks of one answer need. */
typedef struct frender__ctx {
    sbuf *b;
    const catalogue_indicator *ind;
    const params_query *q;
    char dims[2][FRENDER_PART_MAX];
    int nd, perturbed, sums, first;
    const char *area;
} frender__ctx;

static void frender__json_row(void *ud, char kv[2][FRENDER_PART_MAX], int nk,
                              const findicators_cell *c)
{
    frender__ctx *x = ud;
    sbuf_puts(x->b, x->first ? "{" : ",{");
    for (int d = 0; d < x->nd; d++) {
        sbuf_printf(x->b, "\"%s\":", x->dims[d]);
        sbuf_json_str(x->b, d < nk ? kv[d] : "");
        sbuf_puts(x->b, ",");
    }
    frender__json_cell(x->b, x->ind, c, x->perturbed, x->sums);
    sbuf_puts(x->b, "}");
    x->first = 0;
}

int frender_indicator_json(sbuf *b, const catalogue_indicator *ind, const params_query *q,
                           const findicators_result *r, int perturbed)
{
    frender__ctx x = {.b = b, .ind = ind, .q = q, .perturbed = perturbed, .first = 1};
    frender__set set;
    x.nd = frender__split(q->by, x.dims);
    x.sums = frender__sums(q);
    if (frender__select(r, ind->code, q->by, &set) != 0)
        return REINT_ETOOBIG;
    sbuf_puts(b, "{\"indicator\":");
    sbuf_json_str(b, ind->code);
    sbuf_puts(b, ",\"title\":");
    sbuf_json_str(b, ind->title);
    sbuf_printf(b,
                ",\"sdg\":\"%s\",\"aggregation\":\"%s\",\"period\":\"%s\","
                "\"period_kind\":\"%s\",\"area\":",
                ind->sdg, frender__agg_name(ind->agg), q->period, frender__kind_names[q->kind]);
    frender__area_json(b, q);
    sbuf_printf(b, ",\"by\":\"%s\",\"dimensions\":[", q->by);
    for (int d = 0; d < x.nd; d++)
        sbuf_printf(b, "%s\"%s\"", d ? "," : "", x.dims[d]);
    sbuf_printf(b,
                "],\"disclosure\":\"%s\",\"as_of\":", perturbed ? "cell-key perturbed" : "exact");
    frender__as_of_json(b, q, r);
    if (r->approval)
        fapprovals_coverage_json(b, r->approval, q->approved, perturbed);
    sbuf_puts(b, ",\"total\":{");
    frender__json_cell(b, ind, frender__total(r), perturbed, x.sums);
    sbuf_puts(b, "},\"rows\":[");
    if (x.nd > 0)
        frender__rows(&set, x.nd, x.dims, frender__json_row, &x);
    sbuf_puts(b, "]}\n");
    free(set.v);
    return frender__done(b);
}

static void frender__csv_row(void *ud, char kv[2][FRENDER_PART_MAX], int nk,
                             const findicators_cell *c)
{
    frender__ctx *x = ud;
    char v[64];
    frender__val val = frender__value(x->ind, c, x->perturbed, x->sums);
    frender__format(&val, v, sizeof(v));
    sbuf_printf(x->b, "%s,%s,%s", x->ind->code, x->q->period, x->area);
    for (int d = 0; d < x->nd; d++) {
        sbuf_puts(x->b, ",");
        if (kv == NULL)
            sbuf_puts(x->b, "TOTAL");
        else
            sbuf_csv_str(x->b, d < nk ? kv[d] : "");
    }
    sbuf_printf(x->b, ",%s", val.shown ? v : "");
    if (!x->perturbed)
        sbuf_printf(x->b, ",%" PRId64 ",%" PRId64 ",%" PRId64, c ? c->nu : 0, c ? c->de : 0,
                    c ? c->co : 0);
    sbuf_puts(x->b, "\n");
}

int frender_indicator_csv(sbuf *b, const catalogue_indicator *ind, const params_query *q,
                          const findicators_result *r, int perturbed)
{
    char area[64];
    frender__ctx x = {.b = b, .ind = ind, .q = q, .perturbed = perturbed, .area = area};
    frender__set set;
    x.nd = frender__split(q->by, x.dims);
    x.sums = frender__sums(q);
    if (frender__select(r, ind->code, q->by, &set) != 0)
        return REINT_ETOOBIG;
    sbuf_puts(b, "indicator,period,area");
    for (int d = 0; d < x.nd; d++)
        sbuf_printf(b, ",%s", x.dims[d]);
    sbuf_puts(b, perturbed ? ",value\n" : ",value,numerator,denominator,contributors\n");
    if (q->municipality)
        snprintf(area, sizeof(area), "municipality:%u", q->municipality);
    else if (q->district)
        snprintf(area, sizeof(area), "district:%d", q->district);
    else if (q->province)
        snprintf(area, sizeof(area), "province:%d", q->province);
    else
        snprintf(area, sizeof(area), "national");
    /* The rows of the grouping asked, then the total (its dimension columns TOTAL). */
    if (x.nd > 0)
        frender__rows(&set, x.nd, x.dims, frender__csv_row, &x);
    frender__csv_row(&x, NULL, 0, frender__total(r));
    free(set.v);
    return frender__done(b);
}

void frender_dv_each(const params_query *q, const findicators_result *r, int perturbed,
                     frender_dv_fn fn, void *ud)
{
    int sums = frender__sums(q);
    /* Like DHIS2, no value is sent for a zero: an empty cell and a perturbed count shown as 0
     * are omitted alike, and so is every value withheld from the public. */
    for (size_t i = 0; i < r->n; i++) {
        const findicators_cell *c = &r->cells[i];
        const catalogue_indicator *ind = catalogue_find(c->indicator);
        frender_dv v;
        if (ind == NULL)
            continue;
        frender__val x = frender__value(ind, c, perturbed, sums);
        if (!x.shown || (!x.ratio && x.v == 0))
            continue;
        v.ind = ind;
        v.cell = c;
        frender__format(&x, v.value, sizeof(v.value));
        v.nd = frender__split(c->grouping, v.dims);
        if (frender__split(c->key, v.vals) != v.nd)
            continue; /* a key of another shape than its grouping: not a cell of the store */
        fn(ud, &v);
    }
}

void frender_as_of_json(sbuf *b, const params_query *q, const findicators_result *r)
{
    frender__as_of_json(b, q, r);
}

size_t frender_space_n(const char *dim)
{
    return frender__space_n(frender__dim_of(dim));
}

void frender_space_at(const char *dim, size_t i, char out[FRENDER_PART_MAX])
{
    frender__space_at(frender__dim_of(dim), i, out);
}
