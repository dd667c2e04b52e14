#include "frender.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "disclosure.h"
#include "fapprovals.h"
#include "geo.h"

/* A key or a grouping's part longer than this is cut; the catalogue's longest is 25. */
#define FRENDER_PART_MAX 40

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

/* The value a role sees, as JSON (or CSV) text: exact, or cell-key perturbed for the
 * public. Returns 0 when suppressed or undefined (then out is "null"). */
static int frender__value(const catalogue_indicator *ind, const findicators_cell *c, int perturbed,
                          char *out, size_t outlen)
{
    int64_t v = 0;
    if (ind->agg == CATALOGUE_RATIO) {
        int64_t nu = c ? c->nu : 0, de = c ? c->de : 0;
        if (perturbed && c) {
            /* The denominator is a cell of its own: it gets a key of its own, derived from
             * the cell's, so that its noise is not the numerator's. */
            nu = disclosure_count(nu, c->ck);
            de = disclosure_count(de, c->ck * 2654435761u);
        }
        if (de <= 0) {
            snprintf(out, outlen, "null");
            return 0;
        }
        snprintf(out, outlen, "%.4f", (double)nu / (double)de);
        return 1;
    }
    if (c == NULL) {
        snprintf(out, outlen, "0");
        return 1;
    }
    if (!perturbed)
        v = c->nu;
    else if (ind->agg == CATALOGUE_SUM) {
        if (!disclosure_sum(c->nu, c->co, c->ck, &v)) {
            snprintf(out, outlen, "null");
            return 0;
        }
    } else
        v = disclosure_count(c->nu, c->ck);
    snprintf(out, outlen, "%" PRId64, v);
    return 1;
}

static void frender__json_cell(sbuf *b, const catalogue_indicator *ind, const findicators_cell *c,
                               int perturbed)
{
    char v[64];
    int shown = frender__value(ind, c, perturbed, v, sizeof(v));
    sbuf_printf(b, "\"value\":%s", v);
    if (perturbed) {
        if (!shown && c)
            sbuf_puts(b, ",\"suppressed\":true");
        return;
    }
    if (ind->agg == CATALOGUE_RATIO)
        sbuf_printf(b, ",\"numerator\":%" PRId64 ",\"denominator\":%" PRId64, c ? c->nu : 0,
                    c ? c->de : 0);
    sbuf_printf(b, ",\"contributors\":%" PRId64, c ? c->co : 0);
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

/* The cell of the total (grouping ""), or NULL when the store holds none. */
static const findicators_cell *frender__total(const findicators_result *r)
{
    const findicators_cell *total = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->cells[i].grouping[0] == '\0')
            total = &r->cells[i];
    return total;
}

static void frender__area_json(sbuf *b, const params_query *q)
{
    if (q->municipality) {
        const geo_local_level *g = geo_find(q->municipality);
        sbuf_printf(b,
                    "{\"level\":\"municipality\",\"municipality\":%u,\"name\":", q->municipality);
        sbuf_json_str(b, g ? g->name : "");
        sbuf_printf(b, ",\"province\":%d}", q->area_province);
    } else if (q->district) {
        sbuf_printf(b, "{\"level\":\"district\",\"district\":%d,\"province\":%d}", q->district,
                    q->area_province);
    } else if (q->province) {
        sbuf_printf(b, "{\"level\":\"province\",\"province\":%d,\"name\":", q->province);
        sbuf_json_str(b, geo_province_name((unsigned)q->province));
        sbuf_puts(b, "}");
    } else {
        sbuf_puts(b, "{\"level\":\"national\"}");
    }
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

int frender_indicator_json(sbuf *b, const catalogue_indicator *ind, const params_query *q,
                           const findicators_result *r, int perturbed)
{
    char dims[2][FRENDER_PART_MAX];
    int nd = frender__split(q->by, dims);
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
    for (int d = 0; d < nd; d++)
        sbuf_printf(b, "%s\"%s\"", d ? "," : "", dims[d]);
    sbuf_printf(b,
                "],\"disclosure\":\"%s\",\"as_of\":", perturbed ? "cell-key perturbed" : "exact");
    frender__as_of_json(b, q, r);
    if (r->approval)
        fapprovals_coverage_json(b, r->approval, q->approved);
    sbuf_puts(b, ",\"total\":{");
    frender__json_cell(b, ind, frender__total(r), perturbed);
    sbuf_puts(b, "},\"rows\":[");
    int first = 1;
    for (size_t i = 0; i < r->n && nd > 0; i++) {
        const findicators_cell *c = &r->cells[i];
        if (strcmp(c->grouping, q->by) != 0)
            continue;
        char kv[2][FRENDER_PART_MAX];
        int nk = frender__split(c->key, kv);
        sbuf_puts(b, first ? "{" : ",{");
        for (int d = 0; d < nd; d++) {
            sbuf_printf(b, "\"%s\":", dims[d]);
            sbuf_json_str(b, d < nk ? kv[d] : "");
            sbuf_puts(b, ",");
        }
        frender__json_cell(b, ind, c, perturbed);
        sbuf_puts(b, "}");
        first = 0;
    }
    sbuf_puts(b, "]}\n");
    return frender__done(b);
}

int frender_indicator_csv(sbuf *b, const catalogue_indicator *ind, const params_query *q,
                          const findicators_result *r, int perturbed)
{
    char dims[2][FRENDER_PART_MAX], area[64];
    int nd = frender__split(q->by, dims);
    const findicators_cell *total = frender__total(r);
    sbuf_puts(b, "indicator,period,area");
    for (int d = 0; d < nd; d++)
        sbuf_printf(b, ",%s", dims[d]);
    sbuf_puts(b, perturbed ? ",value\n" : ",value,numerator,denominator,contributors\n");
    if (q->municipality)
        snprintf(area, sizeof(area), "municipality:%u", q->municipality);
    else if (q->district)
        snprintf(area, sizeof(area), "district:%d", q->district);
    else if (q->province)
        snprintf(area, sizeof(area), "province:%d", q->province);
    else
        snprintf(area, sizeof(area), "national");
    /* The rows of the grouping asked, then (i == r->n) the total. */
    for (size_t i = 0; i <= r->n; i++) {
        const findicators_cell *c = i < r->n ? &r->cells[i] : total;
        if (i < r->n && (nd == 0 || strcmp(c->grouping, q->by) != 0))
            continue;
        char v[64];
        int shown = frender__value(ind, c, perturbed, v, sizeof(v));
        sbuf_printf(b, "%s,%s,%s", ind->code, q->period, area);
        if (i < r->n) {
            char kv[2][FRENDER_PART_MAX];
            int nk = frender__split(c->key, kv);
            for (int d = 0; d < nd; d++) {
                sbuf_puts(b, ",");
                sbuf_csv_str(b, d < nk ? kv[d] : "");
            }
        } else {
            for (int d = 0; d < nd; d++)
                sbuf_puts(b, ",TOTAL");
        }
        sbuf_printf(b, ",%s", shown ? v : "");
        if (!perturbed)
            sbuf_printf(b, ",%" PRId64 ",%" PRId64 ",%" PRId64, c ? c->nu : 0, c ? c->de : 0,
                        c ? c->co : 0);
        sbuf_puts(b, "\n");
    }
    return frender__done(b);
}

int frender_dvs(sbuf *b, const params_query *q, const findicators_result *r, int perturbed)
{
    char ou[32];
    if (q->municipality)
        snprintf(ou, sizeof(ou), "%u", q->municipality);
    else if (q->district)
        snprintf(ou, sizeof(ou), "D%02d", q->district);
    else if (q->province)
        snprintf(ou, sizeof(ou), "P%d", q->province);
    else
        snprintf(ou, sizeof(ou), "NP");
    sbuf_printf(b,
                "{\"dataSet\":\"reintegration_v1\",\"period\":\"%s\",\"orgUnit\":\"%s\","
                "\"disclosure\":\"%s\",\"asOf\":",
                q->period, ou, perturbed ? "cell-key perturbed" : "exact");
    frender__as_of_json(b, q, r);
    if (r->approval)
        fapprovals_coverage_json(b, r->approval, q->approved);
    sbuf_puts(b, ",\"dataValues\":[");
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        const findicators_cell *c = &r->cells[i];
        const catalogue_indicator *ind = catalogue_find(c->indicator);
        char v[64], dims[2][FRENDER_PART_MAX], kv[2][FRENDER_PART_MAX], coc[200];
        if (ind == NULL || !frender__value(ind, c, perturbed, v, sizeof(v)))
            continue;
        int nd = frender__split(c->grouping, dims), nk = frender__split(c->key, kv);
        if (nd == 0 || nk != nd)
            snprintf(coc, sizeof(coc), "default");
        else if (nd == 1)
            snprintf(coc, sizeof(coc), "%s:%s", dims[0], kv[0]);
        else
            snprintf(coc, sizeof(coc), "%s:%s,%s:%s", dims[0], kv[0], dims[1], kv[1]);
        sbuf_puts(b, first ? "{\"dataElement\":" : ",{\"dataElement\":");
        sbuf_json_str(b, c->indicator);
        sbuf_printf(b, ",\"period\":\"%s\",\"orgUnit\":\"%s\",\"categoryOptionCombo\":", q->period,
                    ou);
        sbuf_json_str(b, coc);
        sbuf_printf(b, ",\"value\":\"%s\"}", v);
        first = 0;
    }
    sbuf_puts(b, "]}\n");
    return frender__done(b);
}
