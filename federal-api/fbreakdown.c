#include "fbreakdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faudit.h"
#include "findicators.h"
#include "frender.h"
#include "geo.h"
#include "log.h"

#define FBREAKDOWN_MAX_BODY (64u * 1024 * 1024)

/* The statement's parameters: $1..$4 the audit row's, $5 the provinces of the filter, $6 the
 * periods, $7 the indicator, $8 its groupings ("" and the one asked), then for the
 * municipalities' cells $9 the period kind, $10 the district and $11 the municipality of the
 * filter (NULL when not given). */
#define FBREAKDOWN_PARAMS_PROVINCES 8
#define FBREAKDOWN_PARAMS_CELLS     11

/* The sums of one group of cells and the tops of the same group, as findicators.c's
 * statements compute them; AREA is the grouping column of the area. */
#define FBREAKDOWN_SUMS                                                                            \
    " sum(numerator)::bigint AS nu, sum(denominator)::bigint AS de,"                               \
    " (sum(cell_key) % 4294967296)::bigint AS ck, sum(contributors)::bigint AS co,"                \
    " (sum(numerator_key) % 4294967296)::bigint AS nk"
#define FBREAKDOWN_TOPS_COLUMNS                                                                    \
    " t.period, t.indicator, t.grouping, t.key, (array_agg(x.v ORDER BY x.v DESC))[1] AS t1,"      \
    " (array_agg(x.v ORDER BY x.v DESC))[2] AS t2 FROM cell_tops t"                                \
    " CROSS JOIN LATERAL (VALUES (t.top1), (t.top2)) AS x(v)"
#define FBREAKDOWN_FILTER(t)                                                                       \
    " AND " t "indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR " t                          \
    "grouping = ANY($8::text[]))"
#define FBREAKDOWN_SELECT                                                                          \
    " SELECT 0 AS k, c.indicator, c.grouping, c.key, c.nu, c.de, c.ck, c.co, c.nk,"                \
    " coalesce(tops.t1, 0), coalesce(tops.t2, 0), c.area, c.period FROM ("
#define FBREAKDOWN_JOIN                                                                            \
    ") c LEFT JOIN tops ON tops.area = c.area AND tops.period = c.period"                          \
    " AND tops.indicator = c.indicator AND tops.grouping = c.grouping AND tops.key = c.key"        \
    " UNION ALL SELECT 1, province::text, to_char(last_commit AT TIME ZONE 'UTC',"                 \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"       \
    " NULL, NULL FROM province_status WHERE province = ANY($5::smallint[])"                        \
    " ORDER BY 1, 12, 13, 2, 3, 4"

/* Nation and provinces: the provinces' aggregates, grouped by province or not at all. */
static const char *fbreakdown__sql_provinces[2] = {
    FAUDIT_READ_SQL ", tops AS (SELECT 0 AS area," FBREAKDOWN_TOPS_COLUMNS
                    " WHERE t.province = ANY($5::smallint[]) AND t.period = ANY($6::text[])"
                    " " FBREAKDOWN_FILTER(
                        "t.") " GROUP BY 1, 2, 3, 4, 5)" FBREAKDOWN_SELECT
                              "SELECT 0 AS area, period, indicator, grouping, key," FBREAKDOWN_SUMS
                              " FROM province_cells WHERE province = ANY($5::smallint[])"
                              " AND period = ANY($6::text[])" FBREAKDOWN_FILTER(
                                  "") " GROUP BY 1, 2, 3, 4, 5" FBREAKDOWN_JOIN,
    FAUDIT_READ_SQL
    ", tops AS (SELECT t.province AS area," FBREAKDOWN_TOPS_COLUMNS
    " WHERE t.province = ANY($5::smallint[]) AND t.period = ANY($6::text[])"
    " " FBREAKDOWN_FILTER(
        "t.") " GROUP BY 1, 2, 3, 4, 5)" FBREAKDOWN_SELECT
              "SELECT province AS area, period, indicator, grouping, key," FBREAKDOWN_SUMS
              " FROM province_cells WHERE province = ANY($5::smallint[])"
              " AND period = ANY($6::text[])" FBREAKDOWN_FILTER(
                  "") " GROUP BY 1, 2, 3, 4, 5" FBREAKDOWN_JOIN,
};

/* The cells of indicators $7 and groupings $8 in the municipalities' snapshots of kind $9 and
 * periods $6, as rows (municipality, period, indicator, grouping, key, numerator, denominator,
 * cell_key, contributors, numerator_key). A breakdown by municipality reads 753 x 12 snapshots of
 * about 300 cells each for one indicator and one or two groupings: unnesting every snapshot (the
 * `cells` view) made 2.7 million rows to keep 9,036 and was most of the answer's time. Here the
 * positions are found in the arrays themselves: those of the indicator, then those of each
 * grouping within the span the indicator covers, and only the cells there are read. A
 * snapshot's arrays may be in any order (the hub's is by indicator, grouping, key, but the
 * store does not rely on it), so a position found in the span also has its indicator checked.
 * The OFFSET 0s keep each array of positions computed once per row and the cells' values taken
 * out of the arrays before the rows are sorted (else the sort carries every row's whole
 * arrays: 50 MB and a spill to disk for 9,036 cells). */
#define FBREAKDOWN_CELLS_OF                                                                        \
    "(SELECT s.municipality, s.period, w.ind AS indicator, v.g AS grouping, s.key[y.j] AS key,"    \
    " s.numerator[y.j] AS numerator, s.denominator[y.j] AS denominator,"                           \
    " s.cell_key[y.j] AS cell_key, s.contributors[y.j] AS contributors,"                           \
    " s.numerator_key[y.j] AS numerator_key FROM snapshot_cells s"                                 \
    " CROSS JOIN LATERAL (SELECT DISTINCT i FROM unnest($7::text[]) AS i) w(ind)"                  \
    " CROSS JOIN LATERAL (SELECT array_positions(s.indicator, w.ind) OFFSET 0) x(p)"               \
    " CROSS JOIN LATERAL (SELECT DISTINCT g FROM unnest($8::text[]) AS g) v(g)"                    \
    " CROSS JOIN LATERAL unnest(array_positions(s.grouping[x.p[1]:x.p[cardinality(x.p)]], v.g))"   \
    " AS q(i) CROSS JOIN LATERAL (SELECT x.p[1] - 1 + q.i OFFSET 0) y(j)"                          \
    " WHERE s.period_kind = $9::smallint AND s.period = ANY($6::text[])"                           \
    " AND s.indicator[y.j] = w.ind OFFSET 0) cells"

/* Districts and municipalities: the municipalities' own cells, grouped by the area the
 * municipality belongs to (0: the filter's area as a whole). */
#define FBREAKDOWN_SQL_CELLS(area)                                                                 \
    FAUDIT_READ_SQL ", m AS (SELECT g.municipality, " area " AS area FROM geo g"                   \
                    " WHERE g.province = ANY($5::smallint[])"                                      \
                    " AND ($10::smallint IS NULL OR g.district = $10::smallint)"                   \
                    " AND ($11::integer IS NULL OR g.municipality = $11::integer))"                \
                    ", tops AS (SELECT m.area," FBREAKDOWN_TOPS_COLUMNS                            \
                    " JOIN m ON m.municipality = t.municipality"                                   \
                    " WHERE t.period = ANY($6::text[])" FBREAKDOWN_FILTER(                         \
                        "t.") " GROUP BY 1, 2, 3, 4, 5)" FBREAKDOWN_SELECT                         \
                              "SELECT m.area, period, indicator, grouping, key," FBREAKDOWN_SUMS   \
                              " FROM " FBREAKDOWN_CELLS_OF                                         \
                              " JOIN m ON m.municipality = cells.municipality"                     \
                              " GROUP BY 1, 2, 3, 4, 5" FBREAKDOWN_JOIN

static const char *fbreakdown__sql_cells[3] = {
    FBREAKDOWN_SQL_CELLS("0"),
    FBREAKDOWN_SQL_CELLS("g.district"),
    FBREAKDOWN_SQL_CELLS("g.municipality"),
};

/* What the request keeps between its statement and its answer. */
typedef struct fbreakdown {
    uint32_t *areas; /* the areas' codes, in order (one 0 without by=<area>) */
    size_t n_areas;
    char (*periods)[PERIOD_MAX];
    size_t n_periods;
} fbreakdown;

static void fbreakdown__free(void *p)
{
    fbreakdown *b = p;
    if (b == NULL)
        return;
    free(b->areas);
    free(b->periods);
    free(b);
}

int fbreakdown_wanted(const freq *f)
{
    return f->ind != NULL && (f->q.by_area != PARAMS_AREA_NONE || f->q.series >= 0);
}

/* The areas of the level asked within the filter, in code order. */
static int fbreakdown__areas(const params_query *q, fbreakdown *b)
{
    unsigned n = 0;
    const geo_local_level *all = geo_all(&n);
    b->areas = calloc(n, sizeof(*b->areas));
    if (b->areas == NULL)
        return REINT_ENOMEM;
    if (q->by_area == PARAMS_AREA_NONE) {
        b->n_areas = 1;
        return 0;
    }
    if (q->by_area == PARAMS_AREA_PROVINCE) {
        for (uint32_t p = 1; p <= 7; p++)
            if (q->province == 0 || (uint32_t)q->province == p)
                b->areas[b->n_areas++] = p;
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        const geo_local_level *g = &all[i];
        if ((q->province && g->province != q->province) ||
            (q->district && g->district != q->district) ||
            (q->municipality && g->code != q->municipality))
            continue;
        uint32_t code = q->by_area == PARAMS_AREA_DISTRICT ? g->district : g->code;
        /* Local levels are ordered by code, and a district's code is part of theirs: a
         * district's local levels are consecutive. */
        if (b->n_areas == 0 || b->areas[b->n_areas - 1] != code)
            b->areas[b->n_areas++] = code;
    }
    return 0;
}

static int fbreakdown__cell_cmp(const void *a, const void *b)
{
    const findicators_cell *x = a, *y = b;
    if (x->area != y->area)
        return x->area < y->area ? -1 : 1;
    return strcmp(x->period, y->period);
}

/* The first cell at or after (area, period) in cells sorted by fbreakdown__cell_cmp. */
static size_t fbreakdown__lower(const findicators_result *r, uint32_t area, const char *period)
{
    findicators_cell key = {.area = area, .period = period};
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fbreakdown__cell_cmp(&r->cells[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The query this area and period would have alone. */
static void fbreakdown__single(const params_query *q, uint32_t area, const char *period,
                               params_query *one)
{
    *one = *q;
    snprintf(one->period, sizeof(one->period), "%s", period);
    if (q->series >= 0)
        one->kind = (enum period_kind)q->series;
    one->series = -1;
    one->period_last[0] = '\0';
    one->by_area = PARAMS_AREA_NONE;
    if (q->by_area == PARAMS_AREA_NONE)
        return;
    one->province = one->district = 0;
    one->municipality = 0;
    if (q->by_area == PARAMS_AREA_PROVINCE) {
        one->province = (int)area;
        one->area_province = (int)area;
    } else if (q->by_area == PARAMS_AREA_DISTRICT) {
        unsigned n = 0;
        const geo_local_level *all = geo_all(&n);
        one->district = (int)area;
        for (unsigned i = 0; i < n; i++)
            if (all[i].district == area) {
                one->area_province = all[i].province;
                break;
            }
    } else {
        const geo_local_level *g = geo_find(area);
        one->municipality = area;
        one->area_province = g ? g->province : 0;
    }
}

static const char *const fbreakdown__area_names[] = {"", "province", "district", "municipality"};
static const char *const fbreakdown__series_names[PERIOD_KINDS] = {"year",     "quarter",   "month",
                                                                   "bs_month", "trimester", "year"};

static int fbreakdown__render(freq *f, const fbreakdown *bd, findicators_result *r, sbuf *b)
{
    const params_query *q = &f->q;
    int perturbed = f->role == AUTH_PUBLIC;
    for (size_t i = 0; i < r->n; i++)
        if (r->cells[i].period == NULL)
            return REINT_EMALFORMED;
    qsort(r->cells, r->n, sizeof(*r->cells), fbreakdown__cell_cmp);
    if (!q->csv) {
        sbuf_puts(b, "{\"indicator\":");
        sbuf_json_str(b, f->ind->code);
        sbuf_puts(b, ",\"title\":");
        sbuf_json_str(b, f->ind->title);
        sbuf_printf(b, ",\"by\":\"%s%s%s\",\"series\":", fbreakdown__area_names[q->by_area],
                    q->by_area && q->by[0] ? "," : "", q->by);
        if (q->series >= 0)
            sbuf_printf(b, "\"%s\"", fbreakdown__series_names[q->series]);
        else
            sbuf_puts(b, "null");
        sbuf_printf(b, ",\"period\":\"%s\"", q->period);
        if (q->period_last[0])
            sbuf_printf(b, ",\"period_last\":\"%s\"", q->period_last);
        sbuf_printf(b, ",\"disclosure\":\"%s\",\"answers\":[",
                    perturbed ? "cell-key perturbed" : "exact");
    }
    for (size_t a = 0; a < bd->n_areas; a++) {
        for (size_t p = 0; p < bd->n_periods; p++) {
            params_query one;
            fbreakdown__single(q, bd->areas[a], bd->periods[p], &one);
            size_t lo = fbreakdown__lower(r, bd->areas[a], bd->periods[p]), hi = lo;
            while (hi < r->n && r->cells[hi].area == bd->areas[a] &&
                   strcmp(r->cells[hi].period, bd->periods[p]) == 0)
                hi++;
            findicators_result sub = {.cells = r->cells + lo, .n = hi - lo};
            memcpy(sub.as_of, r->as_of, sizeof(sub.as_of));
            size_t start = b->len;
            int rc;
            if (q->csv) {
                rc = frender_indicator_csv(b, f->ind, &one, &sub, perturbed);
                /* One header for the whole answer: the later answers lose theirs. */
                char *nl = rc == 0 && (a || p) ? memchr(b->p + start, '\n', b->len - start) : NULL;
                if (nl != NULL) {
                    size_t cut = (size_t)(nl + 1 - (b->p + start));
                    memmove(b->p + start, nl + 1, b->len - start - cut);
                    b->len -= cut;
                    b->p[b->len] = '\0';
                }
            } else {
                if (a || p)
                    sbuf_puts(b, ",");
                rc = frender_indicator_json(b, f->ind, &one, &sub, perturbed);
                if (rc == 0 && b->len > 0 && b->p[b->len - 1] == '\n')
                    b->p[--b->len] = '\0';
            }
            if (rc != 0)
                return rc;
        }
    }
    if (!q->csv)
        sbuf_puts(b, "]}\n");
    return b->failed ? REINT_ETOOBIG : 0;
}

static void fbreakdown__on_rows(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    fbreakdown *bd = f->state;
    findicators_result r;
    if (findicators_rows(f, res, err, &r) != 0)
        return;
    sbuf b;
    sbuf_init(&b, FBREAKDOWN_MAX_BODY);
    int rc = fbreakdown__render(f, bd, &r, &b);
    if (rc == 0 && f->q.csv) {
        char h[512];
        frender_as_of_header(&f->q, &r, h, sizeof(h));
        http_add_header(f->r, "X-Data-As-Of", h);
    }
    if (rc == REINT_EMALFORMED)
        freq_error(f, 500, "unexpected answer from the federal store");
    else if (rc != 0)
        freq_error(f, 500, "answer too large");
    else
        freq_finish(f, 200, f->q.csv ? "text/csv; charset=utf-8" : NULL, b.p, b.len);
    sbuf_free(&b);
    findicators_result_free(&r);
}

/* An array literal of the periods, bound as text[]: each was made by period_of_pair, so
 * its characters need no quoting. */
static int fbreakdown__periods_literal(const fbreakdown *bd, sbuf *s)
{
    sbuf_puts(s, "{");
    for (size_t i = 0; i < bd->n_periods; i++)
        sbuf_printf(s, "%s\"%s\"", i ? "," : "", bd->periods[i]);
    sbuf_puts(s, "}");
    return s->failed ? REINT_ENOMEM : 0;
}

void fbreakdown_answer(freq *f)
{
    const params_query *q = &f->q;
    fbreakdown *bd = calloc(1, sizeof(*bd));
    if (bd == NULL) {
        faudit_error(f, 503, "out of memory");
        return;
    }
    f->state = bd;
    f->state_free = fbreakdown__free;
    size_t np = q->series >= 0 ? params_series(q, NULL, 0) : 1;
    bd->periods = calloc(np ? np : 1, sizeof(*bd->periods));
    if (bd->periods == NULL || fbreakdown__areas(q, bd) != 0) {
        faudit_error(f, 503, "out of memory");
        return;
    }
    if (q->series >= 0)
        bd->n_periods = params_series(q, bd->periods, np);
    else {
        snprintf(bd->periods[0], PERIOD_MAX, "%s", q->period);
        bd->n_periods = 1;
    }
    char provs[32], inds[80], groupings[160], kind[8], dist[8], muni[12];
    if (q->area_province)
        snprintf(provs, sizeof(provs), "{%d}", q->area_province);
    else
        snprintf(provs, sizeof(provs), "{1,2,3,4,5,6,7}");
    snprintf(inds, sizeof(inds), "{\"%s\"}", f->ind->code);
    snprintf(groupings, sizeof(groupings), "{\"\",\"%s\"}", q->by);
    snprintf(kind, sizeof(kind), "%d", q->series >= 0 ? q->series : (int)q->kind);
    snprintf(dist, sizeof(dist), "%d", q->district);
    snprintf(muni, sizeof(muni), "%u", q->municipality);
    sbuf periods;
    sbuf_init(&periods, 64 * 1024);
    if (fbreakdown__periods_literal(bd, &periods) != 0) {
        sbuf_free(&periods);
        faudit_error(f, 503, "out of memory");
        return;
    }
    const char *v[FBREAKDOWN_PARAMS_CELLS];
    faudit_read_params(f, v);
    v[4] = provs;
    v[5] = periods.p;
    v[6] = inds;
    v[7] = groupings;
    v[8] = kind;
    v[9] = q->district ? dist : NULL;
    v[10] = q->municipality ? muni : NULL;
    /* The provinces' aggregates answer the nation and provinces; districts and municipalities,
     * as areas or as the filter, come from the municipalities' cells, as in findicators.c. */
    int cells = q->by_area == PARAMS_AREA_DISTRICT || q->by_area == PARAMS_AREA_MUNICIPALITY ||
                q->district || q->municipality;
    const char *sql;
    int nv;
    if (cells) {
        sql = fbreakdown__sql_cells[q->by_area == PARAMS_AREA_DISTRICT       ? 1
                                    : q->by_area == PARAMS_AREA_MUNICIPALITY ? 2
                                                                             : 0];
        nv = FBREAKDOWN_PARAMS_CELLS;
    } else {
        sql = fbreakdown__sql_provinces[q->by_area == PARAMS_AREA_PROVINCE];
        nv = FBREAKDOWN_PARAMS_PROVINCES;
    }
    int rc = db_query(f->env->db, sql, nv, v, fbreakdown__on_rows, f);
    sbuf_free(&periods);
    if (rc != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}
