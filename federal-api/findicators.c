#include "findicators.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapprovals.h"
#include "dhis2.h"
#include "faudit.h"
#include "fbreakdown.h"
#include "frender.h"
#include "log.h"

#define FINDICATORS_MAX_BODY (64u * 1024 * 1024)
#define FINDICATORS_COLUMNS  11

/* Both statements answer rows (k, indicator, grouping, key, numerator, denominator, cell key,
 * contributors, numerator key, top1, top2) with k = 0, then rows (1, province, last commit)
 * with k = 1. National and provincial areas add the provinces' aggregates; districts and
 * municipalities add the municipalities' cells (a district's cells are not kept as such).
 * The tops of a sum are the two largest of the municipalities' two largest (cell_tops holds
 * those of sums only). */
static const char *findicators__sql_provinces = FAUDIT_READ_SQL
    ", tops AS (" FINDICATORS_TOPS
    " WHERE t.province = ANY($5::smallint[]) AND t.period = $6 AND t.indicator = ANY($7::text[])"
    " AND ($8::text[] IS NULL OR t.grouping = ANY($8::text[]))"
    " GROUP BY t.indicator, t.grouping, t.key)"
    " SELECT 0 AS k, p.indicator, p.grouping, p.key, p.nu, p.de, p.ck, p.co, p.nk,"
    " coalesce(tops.t1, 0), coalesce(tops.t2, 0)"
    " FROM (SELECT indicator, grouping, key, sum(numerator)::bigint AS nu,"
    " sum(denominator)::bigint AS de, (sum(cell_key) % 4294967296)::bigint AS ck,"
    " sum(contributors)::bigint AS co, (sum(numerator_key) % 4294967296)::bigint AS nk"
    " FROM province_cells WHERE province = ANY($5::smallint[]) AND period = $6"
    " AND indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR grouping = ANY($8::text[]))"
    " GROUP BY indicator, grouping, key) p"
    " LEFT JOIN tops ON tops.indicator = p.indicator AND tops.grouping = p.grouping"
    " AND tops.key = p.key" FINDICATORS_AS_OF;

static const char *findicators__sql_cells = FAUDIT_READ_SQL
    ", m AS (SELECT g.municipality FROM geo g"
    " WHERE g.district = $10::smallint OR g.municipality = $11::integer)"
    ", tops AS (" FINDICATORS_TOPS
    " WHERE t.municipality IN (SELECT municipality FROM m) AND t.period = $6"
    " AND t.indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR t.grouping = ANY($8::text[]))"
    " GROUP BY t.indicator, t.grouping, t.key)"
    " SELECT 0 AS k, c.indicator, c.grouping, c.key, c.nu, c.de, c.ck, c.co, c.nk,"
    " coalesce(tops.t1, 0), coalesce(tops.t2, 0)"
    " FROM (SELECT indicator, grouping, key, sum(numerator)::bigint AS nu,"
    " sum(denominator)::bigint AS de, (sum(cell_key) % 4294967296)::bigint AS ck,"
    " sum(contributors)::bigint AS co, (sum(numerator_key) % 4294967296)::bigint AS nk"
    " FROM cells WHERE period_kind = $9::smallint AND period = $6"
    " AND municipality IN (SELECT municipality FROM m)"
    " AND indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR grouping = ANY($8::text[]))"
    " GROUP BY indicator, grouping, key) c"
    " LEFT JOIN tops ON tops.indicator = c.indicator AND tops.grouping = c.grouping"
    " AND tops.key = c.key" FINDICATORS_AS_OF;

/* A decimal integer in [min, max] and nothing else. */
static int findicators__int(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < min || v > max)
        return REINT_EMALFORMED;
    *out = v;
    return 0;
}

int findicators_decode(const PGresult *res, findicators_result *out)
{
    int rows = PQntuples(res);
    memset(out, 0, sizeof(*out));
    /* A breakdown's statement (fbreakdown.c) adds each cell's area and period. */
    int wide = PQnfields(res) == FINDICATORS_COLUMNS + 2;
    if (PQnfields(res) != FINDICATORS_COLUMNS && !wide)
        return REINT_EMALFORMED;
    out->cells = rows ? calloc((size_t)rows, sizeof(findicators_cell)) : NULL;
    if (rows && out->cells == NULL)
        return REINT_ENOMEM;
    for (int i = 0; i < rows; i++) {
        long long k, nu, de, ck, co, nk, t1, t2;
        if (findicators__int(PQgetvalue(res, i, 0), 0, 1, &k) != 0)
            goto malformed;
        if (k == 1) {
            long long p;
            if (findicators__int(PQgetvalue(res, i, 1), 1, 7, &p) != 0)
                goto malformed;
            out->as_of[p] = PQgetvalue(res, i, 2);
            continue;
        }
        if (findicators__int(PQgetvalue(res, i, 4), INT64_MIN, INT64_MAX, &nu) != 0 ||
            findicators__int(PQgetvalue(res, i, 5), INT64_MIN, INT64_MAX, &de) != 0 ||
            findicators__int(PQgetvalue(res, i, 6), 0, UINT32_MAX, &ck) != 0 ||
            findicators__int(PQgetvalue(res, i, 7), INT64_MIN, INT64_MAX, &co) != 0 ||
            findicators__int(PQgetvalue(res, i, 8), 0, UINT32_MAX, &nk) != 0 ||
            findicators__int(PQgetvalue(res, i, 9), 0, INT64_MAX, &t1) != 0 ||
            findicators__int(PQgetvalue(res, i, 10), 0, INT64_MAX, &t2) != 0)
            goto malformed;
        findicators_cell *c = &out->cells[out->n++];
        c->indicator = PQgetvalue(res, i, 1);
        c->grouping = PQgetvalue(res, i, 2);
        c->key = PQgetvalue(res, i, 3);
        c->nu = nu;
        c->de = de;
        c->ck = (uint32_t)ck;
        c->co = co;
        c->nk = (uint32_t)nk;
        c->t1 = t1;
        c->t2 = t2;
        if (wide) {
            long long area;
            if (findicators__int(PQgetvalue(res, i, 11), 0, UINT32_MAX, &area) != 0)
                goto malformed;
            c->area = (uint32_t)area;
            c->period = PQgetvalue(res, i, 12);
        }
    }
    return 0;
malformed:
    findicators_result_free(out);
    return REINT_EMALFORMED;
}

void findicators_result_free(findicators_result *r)
{
    free(r->cells);
    memset(r, 0, sizeof(*r));
}

/* Renders the decoded rows for f's route and answers. */
static void findicators__render(freq *f, findicators_result *r)
{
    const fapprovals_coverage *cov = f->state;
    char ah[300];
    r->approval = cov;
    int perturbed = f->role == AUTH_PUBLIC;
    if (cov && cov->have) {
        fapprovals_coverage_header(cov, f->q.approved, perturbed, ah, sizeof(ah));
        http_add_header(f->r, "X-Approval-Coverage", ah);
    }
    const char *ctype = NULL;
    sbuf b;
    int rc;
    sbuf_init(&b, FINDICATORS_MAX_BODY);
    if (f->route == FREQ_ADX) {
        rc = dhis2_adx(&b, &f->q, r, perturbed);
        ctype = "application/adx+xml; charset=utf-8";
    } else if (f->ind == NULL) {
        rc = dhis2_dvs(&b, &f->q, r, perturbed);
    } else if (f->q.csv) {
        rc = frender_indicator_csv(&b, f->ind, &f->q, r, perturbed);
        ctype = "text/csv; charset=utf-8";
    } else {
        rc = frender_indicator_json(&b, f->ind, &f->q, r, perturbed);
    }
    if (rc == 0 && f->ind && f->q.csv) {
        char h[512];
        frender_as_of_header(&f->q, r, h, sizeof(h));
        http_add_header(f->r, "X-Data-As-Of", h);
    }
    if (rc != 0)
        freq_error(f, 500, "answer too large");
    else
        freq_finish(f, 200, ctype, b.p, b.len);
    sbuf_free(&b);
}

int findicators_rows(freq *f, const PGresult *res, const char *err, findicators_result *r)
{
    if (err) {
        log_error("indicator query (%s) failed: %s", f->code[0] ? f->code : "dataValueSets", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return -1;
    }
    int rc = findicators_decode(res, r);
    if (rc == REINT_ENOMEM) {
        freq_error(f, 503, "out of memory");
        return -1;
    }
    if (rc != 0) {
        log_error("indicator query (%s): a row does not have the statement's shape",
                  f->code[0] ? f->code : "dataValueSets");
        freq_error(f, 500, "unexpected answer from the federal store");
        return -1;
    }
    f->env->m->audit_rows++;
    return 0;
}

static void findicators__on_rows(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    findicators_result r;
    if (findicators_rows(f, res, err, &r) != 0)
        return;
    findicators__render(f, &r);
    findicators_result_free(&r);
}

static void findicators__query(freq *f);

/* The answer's approval coverage is read first (fapprovals.h), then its cells. */
static void findicators__on_coverage(freq *f, const char *why)
{
    if (why) {
        freq_error(f, 503, why);
        return;
    }
    findicators__query(f);
}

void findicators_answer(freq *f)
{
    if (fbreakdown_wanted(f)) {
        fbreakdown_answer(f);
        return;
    }
    fapprovals_coverage *cov = calloc(1, sizeof(*cov));
    if (cov == NULL) {
        freq_error(f, 503, "out of memory");
        return;
    }
    f->state = cov;
    f->state_free = free;
    if (fapprovals_coverage_fetch(f, cov, findicators__on_coverage) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}

static void findicators__query(freq *f)
{
    char provs[32], kind[8], dist[8], muni[12], groupings[160];
    char bs[400], ad[400];
    sbuf inds;
    sbuf_init(&inds, 4096);
    if (f->q.area_province)
        snprintf(provs, sizeof(provs), "{%d}", f->q.area_province);
    else
        snprintf(provs, sizeof(provs), "{1,2,3,4,5,6,7}");
    /* Array literals of codes and groupings, bound as text[]: their characters were checked
     * (catalogue codes, params.h's normalised grouping), so no quoting is needed. */
    sbuf_puts(&inds, "{");
    if (f->ind) {
        sbuf_printf(&inds, "\"%s\"", f->ind->code);
        snprintf(groupings, sizeof(groupings), "{\"\",\"%s\"}", f->q.by);
    } else {
        size_t n;
        const catalogue_indicator *all = catalogue_all(&n);
        for (size_t i = 0; i < n; i++)
            sbuf_printf(&inds, "%s\"%s\"", i ? "," : "", all[i].code);
    }
    sbuf_puts(&inds, "}");
    if (inds.failed) {
        sbuf_free(&inds);
        faudit_error(f, 500, "out of memory");
        return;
    }
    snprintf(kind, sizeof(kind), "%d", (int)f->q.kind);
    snprintf(dist, sizeof(dist), "%d", f->q.district);
    snprintf(muni, sizeof(muni), "%u", f->q.municipality);
    const char *v[FAPPROVALS_CELLS_PARAMS];
    faudit_read_params(f, v);
    v[4] = provs;
    v[5] = f->q.period;
    v[6] = inds.p;
    v[7] = f->ind ? groupings : NULL;
    v[8] = kind;
    v[9] = f->q.district ? dist : NULL;
    v[10] = f->q.municipality ? muni : NULL;
    int cells = f->q.district || f->q.municipality;
    const char *sql = cells ? findicators__sql_cells : findicators__sql_provinces;
    int nv = cells ? 11 : 8;
    /* approval=approved: only the municipalities whose every month of the period is
     * approved (fapprovals.h). */
    if (f->q.approved && fapprovals_months(f->q.period, bs, sizeof(bs), ad, sizeof(ad)) == 0) {
        v[11] = bs;
        v[12] = ad;
        sql = fapprovals_cells_sql;
        nv = FAPPROVALS_CELLS_PARAMS;
    }
    int rc = db_query(f->env->db, sql, nv, v, findicators__on_rows, f);
    sbuf_free(&inds);
    if (rc != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}
