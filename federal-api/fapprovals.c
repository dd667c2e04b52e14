#include "fapprovals.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bscal.h"
#include "catalogue.h"
#include "faudit.h"
#include "fcovcache.h"
#include "findicators.h"
#include "geo.h"
#include "hex.h"
#include "log.h"
#include "period.h"
#include "review.h"

#define FAPPROVALS_MAX_BODY (16u << 20)
#define FAPPROVALS_MONTHS   40 /* months of one calendar overlapping a period, at most */
#define FAPPROVALS_ARRAY    (FAPPROVALS_MONTHS * 8 + 4)
#define FAPPROVALS_TEXTS    (FAPPROVALS_MONTHS * 10 + 4) /* "BS2082-02," a month */

/* The area's municipality-months (mo): each municipality of the area with the months of its own
 * calendar overlapping the period ($BS and $AD array literals). P: provinces, D: district,
 * M: municipality, as parameters of the statement. */
#define FAPPROVALS_MO(P, D, M, BS, AD)                                                             \
    "mo AS (SELECT g.municipality, g.province, coalesce(cv.calendar, 0) <> 2 AS bs, x.ym"          \
    " FROM geo g LEFT JOIN coverage cv ON cv.municipality = g.municipality"                        \
    " CROSS JOIN LATERAL unnest(CASE WHEN coalesce(cv.calendar, 0) = 2 THEN " AD "::integer[]"     \
    " ELSE " BS "::integer[] END) AS x(ym)"                                                        \
    " WHERE g.province = ANY(" P "::smallint[]) AND (" D "::smallint IS NULL OR g.district = " D   \
    "::smallint) AND (" M "::integer IS NULL OR g.municipality = " M "::integer))"

/* The municipality-months of the area that the federal tier holds a cell of (held), and the
 * join that gives each mo row its held row (h) or none: a snapshot_cells row is stored only
 * for a snapshot with cells (its arrays are aggregated from them), so its key answers without
 * unpacking the arrays, and the months of the period are read in one range of its index per
 * month instead of a probe per municipality-month. (An EXISTS through the cells view, before,
 * unpacked a snapshot's arrays for each of the 1,506 municipality-months of a national month:
 * 24 ms of the statement under ingest; one probe each without the view still took 6 ms.)
 * The months' period texts are parameters (fapprovals__periods), not computed in the
 * statement: the planner then knows them, and it read the whole index of both partitions
 * (parallel, 130-220 ms) or probed the period's 753 rows once per municipality-month (a
 * memoized nested loop, 120-250 ms) when they came from a sub-select it could not see into,
 * once the tables had statistics. MATERIALIZED keeps held one scan hashed into the join. */
/* A month yyyymm as a period's text (yyyy-mm), of mo.ym. */
#define FAPPROVALS_MO_TEXT "(mo.ym / 100)::text || '-' || lpad((mo.ym % 100)::text, 2, '0')"
#define FAPPROVALS_HELD(BSP, ADP)                                                                  \
    "held AS MATERIALIZED (SELECT c.period_kind, c.period, c.municipality FROM snapshot_cells c"   \
    " WHERE c.period_kind = 3 AND c.period = ANY(" BSP "::text[])"                                 \
    " UNION ALL SELECT c.period_kind, c.period, c.municipality FROM snapshot_cells c"              \
    " WHERE c.period_kind = 2 AND c.period = ANY(" ADP "::text[]))"
#define FAPPROVALS_HELD_JOIN                                                                       \
    " LEFT JOIN held h ON h.municipality = mo.municipality"                                        \
    " AND h.period_kind = CASE WHEN mo.bs THEN 3 ELSE 2 END"                                       \
    " AND h.period = (CASE WHEN mo.bs THEN 'BS' ELSE '' END) || " FAPPROVALS_MO_TEXT
#define FAPPROVALS_HAS "(h.municipality IS NOT NULL)"

/* The decisions on the area's months (ap): read by the approvals_province index (province, bs,
 * ym), a range per month, instead of hashing the whole table (every municipality-month ever
 * decided: 88,698 rows at 120 months, most of a national answer's time under ingest). A
 * decision's province is its municipality's (the hub of that province sent it). */
#define FAPPROVALS_AP(P, BS, AD)                                                                   \
    "ap AS (SELECT a.* FROM approvals a WHERE a.province = ANY(" P "::smallint[])"                 \
    " AND ((a.bs AND a.ym = ANY(" BS "::integer[]))"                                               \
    " OR (NOT a.bs AND a.ym = ANY(" AD "::integer[]))))"

/* The common table expressions of each statement below, with its parameters' numbers:
 * provinces, district, municipality, BS months, AD months (and for held, the BS and AD months'
 * period texts). */
#define FAPPROVALS_CELLS_CTES                                                                      \
    FAPPROVALS_MO("$5", "$10", "$11", "$12", "$13") ", " FAPPROVALS_AP("$5", "$12", "$13")
#define FAPPROVALS_COVERAGE_CTES                                                                   \
    FAPPROVALS_MO("$1", "$2", "$3", "$4", "$5")                                                    \
    ", " FAPPROVALS_HELD("$6", "$7") ", " FAPPROVALS_AP("$1", "$4", "$5")
#define FAPPROVALS_LIST_CTES                                                                       \
    FAPPROVALS_MO("$5", "$6", "$7", "$8", "$9")                                                    \
    ", " FAPPROVALS_HELD("$10", "$11") ", " FAPPROVALS_AP("$5", "$8", "$9")

const char *const fapprovals_cells_sql = FAUDIT_READ_SQL
    ", " FAPPROVALS_CELLS_CTES
    ", ok AS (SELECT mo.municipality FROM mo LEFT JOIN ap a ON a.municipality = mo.municipality"
    " AND a.bs = mo.bs AND a.ym = mo.ym GROUP BY mo.municipality"
    " HAVING bool_and(coalesce(a.state, 0) = 3))"
    ", tops AS (" FINDICATORS_TOPS
    " JOIN ok ON ok.municipality = t.municipality WHERE t.period = $6"
    " AND t.indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR t.grouping = ANY($8::text[]))"
    " GROUP BY t.indicator, t.grouping, t.key)"
    " SELECT 0 AS k, c.indicator, c.grouping, c.key, c.nu, c.de, c.ck, c.co, c.nk,"
    " coalesce(tops.t1, 0), coalesce(tops.t2, 0)"
    " FROM (SELECT c.indicator, c.grouping, c.key, sum(c.numerator)::bigint AS nu,"
    " sum(c.denominator)::bigint AS de, (sum(c.cell_key) % 4294967296)::bigint AS ck,"
    " sum(c.contributors)::bigint AS co, (sum(c.numerator_key) % 4294967296)::bigint AS nk"
    " FROM cells c JOIN ok ON ok.municipality = c.municipality"
    " WHERE c.period_kind = $9::smallint AND c.period = $6 AND c.indicator = ANY($7::text[])"
    " AND ($8::text[] IS NULL OR c.grouping = ANY($8::text[]))"
    " GROUP BY c.indicator, c.grouping, c.key) c"
    " LEFT JOIN tops ON tops.indicator = c.indicator AND tops.grouping = c.grouping"
    " AND tops.key = c.key" FINDICATORS_AS_OF;

static const char *fapprovals__coverage_sql =
    "WITH " FAPPROVALS_COVERAGE_CTES
    ", st AS (SELECT mo.municipality, coalesce(a.state, 0) AS state, " FAPPROVALS_HAS " AS has"
    " FROM mo LEFT JOIN ap a ON a.municipality = mo.municipality AND a.bs = mo.bs"
    " AND a.ym = mo.ym" FAPPROVALS_HELD_JOIN ")"
    " SELECT count(*), count(*) FILTER (WHERE has), count(*) FILTER (WHERE state IN (2, 3, 5)),"
    " count(*) FILTER (WHERE state = 3), (SELECT count(DISTINCT municipality) FROM st),"
    " (SELECT count(*) FROM (SELECT 1 FROM st GROUP BY municipality"
    " HAVING bool_and(state = 3)) z) FROM st";

static const char *fapprovals__list_sql = FAUDIT_READ_SQL
    ", " FAPPROVALS_LIST_CTES
    " SELECT mo.municipality, mo.province, mo.bs, mo.ym, coalesce(a.state, 0), " FAPPROVALS_HAS
    ", coalesce(a.decided_by, ''), coalesce(a.decided_at_ms, 0), coalesce(a.comment, ''),"
    " coalesce(a.version, 0) FROM mo LEFT JOIN ap a ON a.municipality = mo.municipality"
    " AND a.bs = mo.bs AND a.ym = mo.ym" FAPPROVALS_HELD_JOIN " ORDER BY mo.municipality, mo.ym";

/* ---- months of a period -------------------------------------------------------------------- */

/* The months of calendar bs holding a day of [first, last], as an array literal. */
static int fapprovals__calendar(int bs, int32_t first, int32_t last, char *out, size_t outlen)
{
    size_t o = 0, n = 0;
    o += (size_t)snprintf(out, outlen, "{");
    for (int32_t d = first; d <= last && n < FAPPROVALS_MONTHS;) {
        int32_t ad, bsm, mfirst, mlast;
        if (bscal_pair_of_day(d, &ad, &bsm) != 0)
            return REINT_EINVAL;
        int32_t ym = bs ? bsm : ad;
        if (bscal_month_span(bs, ym, &mfirst, &mlast) != 0)
            return REINT_EINVAL;
        int w = snprintf(out + o, outlen - o, "%s%d", n ? "," : "", ym);
        if (w < 0 || (size_t)w >= outlen - o)
            return REINT_EINVAL;
        o += (size_t)w;
        n++;
        d = mlast + 1;
    }
    if (o + 2 > outlen)
        return REINT_EINVAL;
    memcpy(out + o, "}", 2);
    return 0;
}

int fapprovals_months(const char *period, char *bs, size_t bslen, char *ad, size_t adlen)
{
    enum period_kind kind;
    int32_t first, last;
    if (period_parse(period, &kind, &first, &last) != 0 ||
        fapprovals__calendar(1, first, last, bs, bslen) != 0 ||
        fapprovals__calendar(0, first, last, ad, adlen) != 0)
        return REINT_EINVAL;
    return 0;
}

/* The period texts ("{BS2082-02,BS2082-03}" or "{2025-06}") of the months of an array literal
 * that fapprovals_months wrote, in the BS calendar's form when bs. */
static int fapprovals__periods(const char *months, int bs, char *out, size_t outlen)
{
    size_t o = 0;
    const char *s = months;
    if (*s++ != '{' || outlen < 3)
        return REINT_EINVAL;
    out[o++] = '{';
    while (*s != '}') {
        char *end;
        long ym = strtol(s, &end, 10);
        if (end == s || ym < 100001 || ym > 999912)
            return REINT_EINVAL;
        int w = snprintf(out + o, outlen - o, "%s%s%04ld-%02ld", o > 1 ? "," : "", bs ? "BS" : "",
                         ym / 100, ym % 100);
        if (w < 0 || (size_t)w >= outlen - o)
            return REINT_EINVAL;
        o += (size_t)w;
        s = *end == ',' ? end + 1 : end;
    }
    if (o + 2 > outlen)
        return REINT_EINVAL;
    memcpy(out + o, "}", 2);
    return 0;
}

/* fapprovals_months' literals of period and their months' period texts. */
static int fapprovals__months_texts(const char *period, char bs[FAPPROVALS_ARRAY],
                                    char ad[FAPPROVALS_ARRAY], char bsp[FAPPROVALS_TEXTS],
                                    char adp[FAPPROVALS_TEXTS])
{
    if (fapprovals_months(period, bs, FAPPROVALS_ARRAY, ad, FAPPROVALS_ARRAY) != 0 ||
        fapprovals__periods(bs, 1, bsp, FAPPROVALS_TEXTS) != 0 ||
        fapprovals__periods(ad, 0, adp, FAPPROVALS_TEXTS) != 0)
        return REINT_EINVAL;
    return 0;
}

/* ---- the coverage of an indicator answer --------------------------------------------------- */

static void fapprovals__area(const freq *f, char provs[32], char dist[8], char muni[12])
{
    if (f->q.area_province)
        snprintf(provs, 32, "{%d}", f->q.area_province);
    else
        snprintf(provs, 32, "{1,2,3,4,5,6,7}");
    snprintf(dist, 8, "%d", f->q.district);
    snprintf(muni, 12, "%u", f->q.municipality);
}

/* The months' slots (fcovcache.h) of an array literal of fapprovals_months, appended to slots
 * (FCOVCACHE_MONTHS at most, counted in *n); -1 for a month outside them. */
static void fapprovals__slots(const char *months, int bs, int *slots, size_t *n)
{
    const char *s = months + 1;
    while (*s != '}' && *s != '\0') {
        char *end;
        long ym = strtol(s, &end, 10);
        if (end == s)
            break;
        if (*n < FCOVCACHE_MONTHS)
            slots[*n] = fcovcache_slot(bs, (int)ym);
        (*n)++;
        s = *end == ',' ? end + 1 : end;
    }
}

/* A coverage being read: the answer it is for, and what the cache needs to keep it. */
typedef struct fapprovals_fetch {
    freq *f;
    fapprovals_coverage *out;
    fapprovals_coverage_cb done;
    uint64_t since;
    char key[FCOVCACHE_KEY];
    int slots[FCOVCACHE_MONTHS];
    size_t n;
} fapprovals_fetch;

/* The coverage's numbers in the statement's column order (and the cache's). */
static void fapprovals__fields(fapprovals_coverage *c, long long *f[FCOVCACHE_VALUES])
{
    f[0] = &c->municipality_months;
    f[1] = &c->contributing;
    f[2] = &c->closed;
    f[3] = &c->approved;
    f[4] = &c->municipalities;
    f[5] = &c->municipalities_approved;
}

static int fapprovals__decode(const PGresult *res, fapprovals_coverage *out)
{
    memset(out, 0, sizeof(*out));
    if (PQnfields(res) != FCOVCACHE_VALUES || PQntuples(res) != 1)
        return REINT_EMALFORMED;
    long long *f[FCOVCACHE_VALUES];
    fapprovals__fields(out, f);
    for (int i = 0; i < FCOVCACHE_VALUES; i++) {
        char *end = NULL;
        *f[i] = strtoll(PQgetvalue(res, 0, i), &end, 10);
        if (end == PQgetvalue(res, 0, i) || *end != '\0' || *f[i] < 0)
            return REINT_EMALFORMED;
    }
    out->have = 1;
    return 0;
}

static void fapprovals__on_coverage(void *ud, const PGresult *res, const char *err)
{
    fapprovals_fetch *x = ud;
    freq *f = x->f;
    fapprovals_coverage_cb done = x->done;
    if (err) {
        log_error("coverage query failed: %s", err);
        free(x);
        done(f, "the federal store is unavailable; try again");
        return;
    }
    if (fapprovals__decode(res, x->out) != 0) {
        log_error("coverage query: a row does not have the statement's shape");
        free(x);
        done(f, "unexpected answer from the federal store");
        return;
    }
    fcovcache *cache = f->env->covcache;
    if (cache) {
        int64_t v[FCOVCACHE_VALUES];
        long long *fl[FCOVCACHE_VALUES];
        fapprovals__fields(x->out, fl);
        for (int i = 0; i < FCOVCACHE_VALUES; i++)
            v[i] = *fl[i];
        fcovcache_put(cache, x->key, x->since, x->slots, x->n, v);
    }
    free(x);
    done(f, NULL);
}

int fapprovals_coverage_fetch(freq *f, fapprovals_coverage *out, fapprovals_coverage_cb done)
{
    char provs[32], dist[8], muni[12], bs[FAPPROVALS_ARRAY], ad[FAPPROVALS_ARRAY];
    char bsp[FAPPROVALS_TEXTS], adp[FAPPROVALS_TEXTS];
    if (fapprovals__months_texts(f->q.period, bs, ad, bsp, adp) != 0)
        return REINT_EINVAL;
    fapprovals_fetch *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return REINT_ENOMEM;
    x->f = f;
    x->out = out;
    x->done = done;
    snprintf(x->key, sizeof(x->key), "%d|%d|%u|%s", f->q.area_province, f->q.district,
             f->q.municipality, f->q.period);
    fcovcache *cache = f->env->covcache;
    if (cache) {
        int64_t v[FCOVCACHE_VALUES];
        if (fcovcache_get(cache, x->key, v)) {
            memset(out, 0, sizeof(*out));
            long long *o[FCOVCACHE_VALUES];
            fapprovals__fields(out, o);
            for (int i = 0; i < FCOVCACHE_VALUES; i++)
                *o[i] = v[i];
            out->have = 1;
            free(x);
            done(f, NULL);
            return 0;
        }
        x->since = fcovcache_clock(cache);
        fapprovals__slots(bs, 1, x->slots, &x->n);
        fapprovals__slots(ad, 0, x->slots, &x->n);
    }
    fapprovals__area(f, provs, dist, muni);
    const char *v[7] = {
        provs, f->q.district ? dist : NULL, f->q.municipality ? muni : NULL, bs, ad, bsp, adp};
    int rc = db_query(f->env->db, fapprovals__coverage_sql, 7, v, fapprovals__on_coverage, x);
    if (rc != 0)
        free(x);
    return rc;
}

void fapprovals_coverage_json(sbuf *b, const fapprovals_coverage *c, int approved_only,
                              int perturbed)
{
    if (!c->have)
        return;
    sbuf_printf(b, ",\"approval\":{\"filter\":\"%s\",\"municipality_months\":%lld,",
                approved_only ? "approved" : "all", c->municipality_months);
    if (!perturbed)
        sbuf_printf(b, "\"contributing\":%lld,", c->contributing);
    sbuf_printf(b,
                "\"closed\":%lld,\"approved\":%lld,\"municipalities\":%lld,"
                "\"municipalities_approved\":%lld}",
                c->closed, c->approved, c->municipalities, c->municipalities_approved);
}

void fapprovals_coverage_header(const fapprovals_coverage *c, int approved_only, int perturbed,
                                char *out, size_t outlen)
{
    char contributing[48] = "";
    if (!perturbed)
        snprintf(contributing, sizeof(contributing), " contributing=%lld;", c->contributing);
    snprintf(out, outlen,
             "filter=%s; municipality_months=%lld;%s closed=%lld; approved=%lld; "
             "municipalities=%lld; municipalities_approved=%lld",
             approved_only ? "approved" : "all", c->municipality_months, contributing, c->closed,
             c->approved, c->municipalities, c->municipalities_approved);
}

/* ---- GET /v1/approvals --------------------------------------------------------------------- */

/* Counts of one row of the answer. */
typedef struct fapprovals__tally {
    long long months, contributing, closed, approved, municipalities, municipalities_approved;
} fapprovals__tally;

/* held: with "contributing" (not for the public: fapprovals_coverage_json). */
static void fapprovals__tally_json(sbuf *b, const fapprovals__tally *t, int held)
{
    sbuf_printf(b, "\"municipality_months\":%lld,", t->months);
    if (held)
        sbuf_printf(b, "\"contributing\":%lld,", t->contributing);
    sbuf_printf(b,
                "\"closed\":%lld,\"approved\":%lld,\"municipalities\":%lld,"
                "\"municipalities_approved\":%lld",
                t->closed, t->approved, t->municipalities, t->municipalities_approved);
}

static void fapprovals__on_list(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("approvals read failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 10) {
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    f->env->m->audit_rows++;
    /* Decisions (each month's state, who, when, the comment) are the ministry's and admins'. */
    int decisions = f->role == AUTH_MINISTRY || f->role == AUTH_ADMIN;
    /* Whether a municipality-month holds any record is exact: not for the public, whose
     * figures are perturbed so that a 0 never certifies an empty cell. */
    int held = f->role != AUTH_PUBLIC;
    int by_mun = strcmp(f->q.by, "municipality") == 0;
    fapprovals__tally prov[8], total;
    memset(prov, 0, sizeof(prov));
    memset(&total, 0, sizeof(total));
    sbuf b;
    sbuf_init(&b, FAPPROVALS_MAX_BODY);
    sbuf_printf(&b, "{\"period\":\"%s\",\"by\":\"%s\",\"decisions_shown\":%s,\"rows\":[",
                f->q.period, by_mun ? "municipality" : "province", decisions ? "true" : "false");
    int n = PQntuples(res), first_row = 1;
    for (int i = 0; i < n;) {
        /* One municipality's months are consecutive rows. */
        const char *mun = PQgetvalue(res, i, 0);
        int p = (int)strtol(PQgetvalue(res, i, 1), NULL, 10) & 7, all = 1, j = i;
        fapprovals__tally t;
        memset(&t, 0, sizeof(t));
        const geo_local_level *g = geo_find((uint32_t)strtoul(mun, NULL, 10));
        if (by_mun) {
            sbuf_printf(&b, "%s{\"municipality\":%s,\"name\":", first_row ? "" : ",", mun);
            sbuf_json_str(&b, g ? g->name : "");
            sbuf_printf(&b, ",\"province\":%d,\"calendar\":\"%s\",\"months\":[", p,
                        PQgetvalue(res, i, 2)[0] == 't' ? "BS" : "AD");
            first_row = 0;
        }
        for (; j < n && strcmp(PQgetvalue(res, j, 0), mun) == 0; j++) {
            int state = (int)strtol(PQgetvalue(res, j, 4), NULL, 10);
            int has = PQgetvalue(res, j, 5)[0] == 't';
            t.months++;
            t.contributing += has;
            t.closed += state == 2 || state == 3 || state == 5;
            t.approved += state == 3;
            all &= state == 3;
            if (!by_mun)
                continue;
            char per[16];
            review_period(PQgetvalue(res, j, 2)[0] == 't',
                          (int32_t)strtol(PQgetvalue(res, j, 3), NULL, 10), per, sizeof(per));
            sbuf_printf(&b, "%s{\"period\":\"%s\"", j > i ? "," : "", per);
            if (held)
                sbuf_printf(&b, ",\"has_data\":%s", has ? "true" : "false");
            if (decisions) {
                long long at = strtoll(PQgetvalue(res, j, 7), NULL, 10);
                sbuf_printf(&b, ",\"state\":\"%s\",\"version\":%s,\"decided_by\":",
                            state ? review_state_name(state) : "open", PQgetvalue(res, j, 9));
                sbuf_json_str(&b, PQgetvalue(res, j, 6));
                sbuf_printf(&b, ",\"decided_at_ms\":%lld,\"comment\":", at);
                sbuf_json_str(&b, PQgetvalue(res, j, 8));
            }
            sbuf_puts(&b, "}");
        }
        t.municipalities = 1;
        t.municipalities_approved = all;
        if (by_mun) {
            sbuf_puts(&b, "],");
            fapprovals__tally_json(&b, &t, held);
            sbuf_puts(&b, "}");
        }
        fapprovals__tally *acc[2] = {&prov[p], &total};
        for (int k = 0; k < 2; k++) {
            acc[k]->months += t.months;
            acc[k]->contributing += t.contributing;
            acc[k]->closed += t.closed;
            acc[k]->approved += t.approved;
            acc[k]->municipalities++;
            acc[k]->municipalities_approved += all;
        }
        i = j;
    }
    for (int p = 1; !by_mun && p <= 7; p++) {
        if (prov[p].municipalities == 0)
            continue;
        sbuf_printf(&b, "%s{\"province\":%d,", first_row ? "" : ",", p);
        fapprovals__tally_json(&b, &prov[p], held);
        sbuf_puts(&b, "}");
        first_row = 0;
    }
    sbuf_puts(&b, "],\"total\":{");
    fapprovals__tally_json(&b, &total, held);
    sbuf_puts(&b, "}}\n");
    freq_finish_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

void fapprovals_answer(freq *f)
{
    char provs[32], dist[8], muni[12], bs[FAPPROVALS_ARRAY], ad[FAPPROVALS_ARRAY];
    char bsp[FAPPROVALS_TEXTS], adp[FAPPROVALS_TEXTS];
    if (fapprovals__months_texts(f->q.period, bs, ad, bsp, adp) != 0) {
        faudit_error(f, 400, "period is outside the Bikram Sambat calendar table");
        return;
    }
    fapprovals__area(f, provs, dist, muni);
    const char *v[FAUDIT_READ_PARAMS + 7];
    faudit_read_params(f, v);
    v[4] = provs;
    v[5] = f->q.district ? dist : NULL;
    v[6] = f->q.municipality ? muni : NULL;
    v[7] = bs;
    v[8] = ad;
    v[9] = bsp;
    v[10] = adp;
    if (db_query(f->env->db, fapprovals__list_sql, FAUDIT_READ_PARAMS + 7, v, fapprovals__on_list,
                 f) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}

/* ---- GET /v1/directives/<serial>/progress -------------------------------------------------- */

static const char *fapprovals__progress_sql = FAUDIT_READ_SQL
    ", t AS (SELECT * FROM unnest($5::text[], $6::text[], $7::text[],"
    " $8::smallint[], $9::integer[], $10::text[], $11::smallint[])"
    " WITH ORDINALITY AS t(ind, grp, key, scope, code, period, kind, i)),"
    " tm AS (SELECT * FROM unnest($12::integer[], $13::boolean[], $14::integer[]) AS x(i, bs, ym)),"
    " mun AS (SELECT t.i, g.municipality, g.province, coalesce(cv.calendar, 0) <> 2 AS bs"
    " FROM t JOIN geo g ON (t.scope = 0 OR (t.scope = 1 AND g.province = t.code)"
    " OR (t.scope = 2 AND g.municipality = t.code))"
    " LEFT JOIN coverage cv ON cv.municipality = g.municipality),"
    " ok AS (SELECT mun.* FROM mun WHERE NOT $15::boolean OR NOT EXISTS (SELECT 1 FROM tm"
    " WHERE tm.i = mun.i AND tm.bs = mun.bs AND NOT EXISTS (SELECT 1 FROM approvals a"
    " WHERE a.municipality = mun.municipality AND a.bs = tm.bs AND a.ym = tm.ym"
    " AND a.state = 3)))"
    " SELECT ok.i, ok.province, sum(c.numerator)::bigint, sum(c.denominator)::bigint"
    " FROM ok JOIN t ON t.i = ok.i JOIN cells c ON c.period_kind = t.kind"
    " AND c.period = t.period AND c.municipality = ok.municipality AND c.indicator = t.ind"
    " AND c.grouping = t.grp AND c.key = t.key GROUP BY ok.i, ok.province ORDER BY 1, 2";

enum { P_IND, P_GRP, P_KEY, P_SCOPE, P_CODE, P_PERIOD, P_KIND, P_TI, P_TBS, P_TYM, P_N };

/* A progress request across its two round trips: the directive, then its actuals. */
typedef struct fapprovals__job {
    Reint__V1__Directive *d;
    const Reint__V1__Target **t; /* the targets shown, in order */
    size_t n;
} fapprovals__job;

static void fapprovals__job_free(void *state)
{
    fapprovals__job *j = state;
    if (j == NULL)
        return;
    reint__v1__directive__free_unpacked(j->d, NULL);
    free(j->t);
    free(j);
}

/* Appends s as a quoted element of a PostgreSQL array literal. */
static void fapprovals__text(sbuf *b, const char *s)
{
    sbuf_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sbuf_add(b, "\\", 1);
        sbuf_add(b, s, 1);
    }
    sbuf_add(b, "\"", 1);
}

static const char *fapprovals__scope_name(int scope)
{
    return scope == REINT__V1__TARGET_SCOPE__TARGET_SCOPE_PROVINCE       ? "province"
           : scope == REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY ? "municipality"
                                                                         : "national";
}

/* The province a target's scope lies in (0: national). */
static int fapprovals__scope_province(const Reint__V1__Target *t)
{
    if (t->scope == REINT__V1__TARGET_SCOPE__TARGET_SCOPE_PROVINCE)
        return (int)t->scope_code;
    if (t->scope == REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY) {
        const geo_local_level *g = geo_find(t->scope_code);
        return g ? (int)g->province : -1;
    }
    return 0;
}

/* A value as JSON: a ratio's numerator / denominator, or the count or sum itself. */
static void fapprovals__actual(sbuf *b, int ratio, long long num, long long den)
{
    if (!ratio)
        sbuf_printf(b, "%lld", num);
    else if (den > 0)
        sbuf_printf(b, "%.6g", (double)num / (double)den);
    else
        sbuf_puts(b, "null");
}

static void fapprovals__on_actuals(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    fapprovals__job *j = f->state;
    if (err) {
        log_error("directive progress read failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 4) {
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    f->env->m->audit_rows++;
    int rows = PQntuples(res);
    sbuf b;
    sbuf_init(&b, FAPPROVALS_MAX_BODY);
    sbuf_printf(&b, "{\"serial\":%" PRIu64 ",\"title\":", j->d->serial);
    sbuf_json_str(&b, j->d->title ? j->d->title : "");
    sbuf_printf(&b, ",\"approval\":\"%s\",\"by\":\"%s\",\"targets\":[",
                f->q.approved ? "approved" : "all", f->q.by);
    for (size_t i = 0; i < j->n; i++) {
        const Reint__V1__Target *t = j->t[i];
        const catalogue_indicator *ind = catalogue_find(t->indicator);
        int ratio = ind && ind->agg == CATALOGUE_RATIO;
        long long num = 0, den = 0;
        for (int r = 0; r < rows; r++) {
            if (strtoull(PQgetvalue(res, r, 0), NULL, 10) != i + 1)
                continue;
            num += strtoll(PQgetvalue(res, r, 2), NULL, 10);
            den += strtoll(PQgetvalue(res, r, 3), NULL, 10);
        }
        sbuf_puts(&b, i ? ",{\"indicator\":" : "{\"indicator\":");
        sbuf_json_str(&b, t->indicator);
        sbuf_puts(&b, ",\"grouping\":");
        sbuf_json_str(&b, t->grouping);
        sbuf_puts(&b, ",\"key\":[");
        for (size_t k = 0; k < t->n_key; k++) {
            sbuf_puts(&b, k ? "," : "");
            sbuf_json_str(&b, t->key[k]);
        }
        sbuf_printf(&b, "],\"scope\":\"%s\",\"scope_code\":%u,\"period\":",
                    fapprovals__scope_name((int)t->scope), t->scope_code);
        sbuf_json_str(&b, t->period);
        if (ratio)
            sbuf_printf(&b, ",\"target\":%.6g,\"actual\":", t->share);
        else
            sbuf_printf(&b, ",\"target\":%lld,\"actual\":", (long long)t->value);
        fapprovals__actual(&b, ratio, num, den);
        sbuf_printf(&b, ",\"numerator\":%lld,\"denominator\":%lld,\"reached\":", num, den);
        double target = ratio ? t->share : (double)t->value;
        if (target > 0 && (!ratio || den > 0))
            sbuf_printf(&b, "%.6g", (ratio ? (double)num / (double)den : (double)num) / target);
        else
            sbuf_puts(&b, "null");
        if (strcmp(f->q.by, "province") == 0) {
            sbuf_puts(&b, ",\"by_province\":[");
            int first = 1;
            for (int r = 0; r < rows; r++) {
                if (strtoull(PQgetvalue(res, r, 0), NULL, 10) != i + 1)
                    continue;
                long long pn = strtoll(PQgetvalue(res, r, 2), NULL, 10);
                long long pd = strtoll(PQgetvalue(res, r, 3), NULL, 10);
                sbuf_printf(&b, "%s{\"province\":%s,\"actual\":", first ? "" : ",",
                            PQgetvalue(res, r, 1));
                fapprovals__actual(&b, ratio, pn, pd);
                sbuf_printf(&b, ",\"numerator\":%lld,\"denominator\":%lld}", pn, pd);
                first = 0;
            }
            sbuf_puts(&b, "]");
        }
        sbuf_puts(&b, "}");
    }
    sbuf_puts(&b, "]}\n");
    freq_finish_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

/* Whether f may see target t, and asked for it (period=, province=, municipality=). */
static int fapprovals__wanted(const freq *f, const Reint__V1__Target *t)
{
    int prov = fapprovals__scope_province(t);
    if (f->role == AUTH_PROVINCE && (prov != f->province || f->province == 0))
        return 0;
    if (f->q.has_period && strcmp(f->q.period, t->period) != 0)
        return 0;
    if (f->q.province && prov != f->q.province)
        return 0;
    if (f->q.municipality && (t->scope != REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY ||
                              t->scope_code != f->q.municipality))
        return 0;
    return 1;
}

static void fapprovals__on_directive(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("directive read failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        faudit_error(f, 404, "no such directive (see GET /v1/directives)");
        return;
    }
    uint8_t *body = NULL;
    size_t len = 0;
    const char *hex = PQgetvalue(res, 0, 0);
    fapprovals__job *j = calloc(1, sizeof(*j));
    if (j == NULL || hex_decode_alloc(hex, strlen(hex), &body, &len) != 0 ||
        (j->d = reint__v1__directive__unpack(NULL, len, body)) == NULL ||
        (j->d->n_targets && (j->t = calloc(j->d->n_targets, sizeof(*j->t))) == NULL)) {
        free(body);
        fapprovals__job_free(j);
        faudit_error(f, 500, "the directive could not be read");
        return;
    }
    free(body);
    f->state = j;
    f->state_free = fapprovals__job_free;
    sbuf a[P_N];
    for (int k = 0; k < P_N; k++) {
        sbuf_init(&a[k], 1u << 20);
        sbuf_puts(&a[k], "{");
    }
    size_t nm = 0;
    for (size_t i = 0; i < j->d->n_targets; i++) {
        const Reint__V1__Target *t = j->d->targets[i];
        enum period_kind kind;
        int32_t first, last;
        char bs[FAPPROVALS_ARRAY], ad[FAPPROVALS_ARRAY];
        if (!fapprovals__wanted(f, t) || period_parse(t->period, &kind, &first, &last) != 0 ||
            fapprovals_months(t->period, bs, sizeof(bs), ad, sizeof(ad)) != 0)
            continue;
        const char *sep = j->n ? "," : "";
        j->t[j->n++] = t;
        sbuf_puts(&a[P_IND], sep);
        fapprovals__text(&a[P_IND], t->indicator);
        sbuf_puts(&a[P_GRP], sep);
        fapprovals__text(&a[P_GRP], t->grouping);
        sbuf_puts(&a[P_KEY], sep);
        sbuf_add(&a[P_KEY], "\"", 1);
        for (size_t k = 0; k < t->n_key; k++) {
            sbuf_puts(&a[P_KEY], k ? "," : "");
            for (const char *s = t->key[k]; *s; s++) {
                if (*s == '"' || *s == '\\')
                    sbuf_add(&a[P_KEY], "\\", 1);
                sbuf_add(&a[P_KEY], s, 1);
            }
        }
        sbuf_add(&a[P_KEY], "\"", 1);
        sbuf_printf(&a[P_SCOPE], "%s%d", sep, (int)t->scope);
        sbuf_printf(&a[P_CODE], "%s%u", sep, t->scope_code);
        sbuf_puts(&a[P_PERIOD], sep);
        fapprovals__text(&a[P_PERIOD], t->period);
        sbuf_printf(&a[P_KIND], "%s%d", sep, (int)kind);
        /* The months of each calendar the target's period holds, flattened with its index. */
        for (int cal = 0; cal < 2; cal++) {
            const char *lit = cal ? bs : ad;
            for (const char *s = lit + 1; *s && *s != '}';) {
                char *end = NULL;
                long ym = strtol(s, &end, 10);
                if (end == s)
                    break;
                sbuf_printf(&a[P_TI], "%s%zu", nm ? "," : "", j->n);
                sbuf_printf(&a[P_TBS], "%s%s", nm ? "," : "", cal ? "true" : "false");
                sbuf_printf(&a[P_TYM], "%s%ld", nm ? "," : "", ym);
                nm++;
                s = *end == ',' ? end + 1 : end;
            }
        }
    }
    const char *v[FAUDIT_READ_PARAMS + P_N + 1];
    faudit_read_params(f, v);
    int failed = 0;
    for (int k = 0; k < P_N; k++) {
        sbuf_puts(&a[k], "}");
        failed |= a[k].failed;
        v[FAUDIT_READ_PARAMS + k] = a[k].p;
    }
    v[FAUDIT_READ_PARAMS + P_N] = f->q.approved ? "true" : "false";
    int rc = failed ? REINT_ENOMEM
                    : db_query(f->env->db, fapprovals__progress_sql, FAUDIT_READ_PARAMS + P_N + 1,
                               v, fapprovals__on_actuals, f);
    for (int k = 0; k < P_N; k++)
        sbuf_free(&a[k]);
    if (rc == REINT_ENOMEM)
        faudit_error(f, 500, "out of memory");
    else if (rc != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}

void fapprovals_progress(freq *f)
{
    char serial[24];
    snprintf(serial, sizeof(serial), "%" PRIu64, f->serial);
    const char *v[1] = {serial};
    if (db_query(f->env->db, "SELECT encode(body, 'hex') FROM directives WHERE serial = $1::bigint",
                 1, v, fapprovals__on_directive, f) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}
