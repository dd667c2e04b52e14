#include "fapi.h"

#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "catalogue.h"
#include "directive.h"
#include "disclosure.h"
#include "fdirectives.h"
#include "geo.h"
#include "hlc.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "params.h"
#include "record.h"
#include "sbuf.h"

#define FAPI_MAX_BODY   (64u * 1024 * 1024)
#define FAPI_MAX_CRL    (1024 * 1024)
#define FAPI_TARGET_MAX 512
/* A publication whose serial another one took first reads the next serial again. */
#define FAPI_PUBLISH_ATTEMPTS 16

enum fapi_route { R_CATALOGUE, R_INDICATOR, R_DVS, R_AUDIT, R_DIRECTIVES };

struct fapi {
    fapi_opts o;
    char crl_file[512];
    char dir_key_id[FDIR_KEY_ID_MAX + 1];
    char dir_key[512];
    http_server *https, *http;
    auth_limiter *limiter;
    struct {
        uint64_t requests, ok, bad_request, unauthorized, forbidden, not_found, rate_limited,
            unavailable, audit_rows, directives_published;
    } m;
};

typedef struct freq {
    fapi *a;
    http_req *r;
    enum fapi_route route;
    char who[AUTH_NAME_MAX + 1];
    char role_label[16]; /* "ministry", "province:3", ... */
    enum auth_role role;
    int province;
    char peer[64];
    char target[FAPI_TARGET_MAX];
    char code[65];
    const catalogue_indicator *ind;
    params_query q;
    /* a response waiting for its audit row */
    int status;
    char *body;
    size_t body_len;
    const char *ctype;
    /* POST /v1/directives */
    int post;
    fdir_draft *draft;
    int attempts;
    Reint__V1__SignedDirective sd;
} freq;

static const char *fapi__kind_names[PERIOD_KINDS] = {"year",     "quarter",          "month",
                                                     "bs_month", "fiscal_trimester", "fiscal_year"};

static const char *fapi__agg_name(enum catalogue_agg agg)
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

/* Printable ASCII only, so that whatever a client sends is valid UTF-8 text for the
 * audit table. */
static void fapi__printable(char *dst, size_t dstlen, const char *src)
{
    size_t o = 0;
    for (; *src && o + 1 < dstlen; src++)
        dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[o] = '\0';
}

static void fapi__count_status(fapi *a, int status)
{
    switch (status) {
    case 200:
    case 201:
        a->m.ok++;
        break;
    case 400:
    case 422:
        a->m.bad_request++;
        break;
    case 401:
        a->m.unauthorized++;
        break;
    case 403:
        a->m.forbidden++;
        break;
    case 404:
        a->m.not_found++;
        break;
    case 429:
        a->m.rate_limited++;
        break;
    default:
        if (status >= 500)
            a->m.unavailable++;
    }
}

static void fapi__finish(freq *f, int status, const char *ctype, const char *body, size_t len)
{
    fapi__count_status(f->a, status);
    http_respond(f->r, status, ctype, body, len);
    free(f->body);
    fdir_draft_free(f->draft);
    directive_signed_free(&f->sd);
    free(f);
}

static void fapi__error(freq *f, int status, const char *msg)
{
    sbuf b;
    sbuf_init(&b, 4096);
    sbuf_puts(&b, "{\"error\":");
    sbuf_json_str(&b, msg);
    sbuf_puts(&b, "}\n");
    if (status == 401)
        http_add_header(f->r, "WWW-Authenticate", "Bearer");
    if (b.failed)
        fapi__finish(f, status, NULL, "{\"error\":\"error\"}\n", 18);
    else
        fapi__finish(f, status, NULL, b.p, b.len);
    sbuf_free(&b);
}

/* Responds once the audit row is written (a read that cannot be audited is not served). */
static void fapi__on_audited(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    freq *f = ud;
    if (err) {
        log_error("audit insert failed: %s", err);
        if (f->status == 200) {
            fapi__error(f, 503, "the audit log is unavailable; try again");
            return;
        }
    } else {
        f->a->m.audit_rows++;
    }
    fapi__finish(f, f->status, f->ctype, f->body ? f->body : "", f->body_len);
}

/* Writes the audit row for f with status, then responds with body (taken over). */
static void fapi__respond_audited(freq *f, int status, const char *ctype, char *body, size_t len)
{
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    const char *v[6] = {
        f->who[0] ? f->who : "-", f->role_label[0] ? f->role_label : "none", f->peer, f->target, st,
        f->post ? "POST" : "GET"};
    f->status = status;
    f->ctype = ctype;
    f->body = body;
    f->body_len = len;
    if (db_query(f->a->o.db,
                 "INSERT INTO audit(who, role, peer, method, target, status)"
                 " VALUES ($1, $2, $3, $6, $4, $5::integer)",
                 6, v, fapi__on_audited, f) != 0)
        fapi__on_audited(f, NULL, "queue full");
}

static void fapi__error_audited(freq *f, int status, const char *msg)
{
    sbuf b;
    sbuf_init(&b, 4096);
    sbuf_puts(&b, "{\"error\":");
    sbuf_json_str(&b, msg);
    sbuf_puts(&b, "}\n");
    if (b.failed) {
        sbuf_free(&b);
        fapi__error(f, status, "error");
        return;
    }
    if (status == 401)
        http_add_header(f->r, "WWW-Authenticate", "Bearer");
    fapi__respond_audited(f, status, NULL, b.p, b.len);
}

/* ---- results ------------------------------------------------------------------------------ */

typedef struct fcell {
    const char *indicator, *grouping, *key;
    int64_t nu, de, co;
    uint32_t ck;
} fcell;

typedef struct fresult {
    fcell *cells;
    size_t n;
    const char *as_of[8]; /* by province; NULL when that province never sent data */
} fresult;

static int fapi__result(const PGresult *res, fresult *out)
{
    int rows = PQntuples(res);
    memset(out, 0, sizeof(*out));
    out->cells = rows ? calloc((size_t)rows, sizeof(fcell)) : NULL;
    if (rows && out->cells == NULL)
        return -1;
    for (int i = 0; i < rows; i++) {
        if (PQgetvalue(res, i, 0)[0] == '1') {
            long p = strtol(PQgetvalue(res, i, 1), NULL, 10);
            if (p >= 1 && p <= 7)
                out->as_of[p] = PQgetvalue(res, i, 2);
            continue;
        }
        fcell *c = &out->cells[out->n++];
        c->indicator = PQgetvalue(res, i, 1);
        c->grouping = PQgetvalue(res, i, 2);
        c->key = PQgetvalue(res, i, 3);
        c->nu = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        c->de = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        c->ck = (uint32_t)strtoull(PQgetvalue(res, i, 6), NULL, 10);
        c->co = strtoll(PQgetvalue(res, i, 7), NULL, 10);
    }
    return 0;
}

/* The value a role sees, as JSON (or CSV) text: exact, or cell-key perturbed for the
 * public. Returns 0 when suppressed or undefined (then out is "null"). */
static int fapi__value(const catalogue_indicator *ind, const fcell *c, int perturbed, char *out,
                       size_t outlen)
{
    int64_t v = 0;
    if (ind->agg == CATALOGUE_RATIO) {
        int64_t nu = c ? c->nu : 0, de = c ? c->de : 0;
        if (perturbed && c) {
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

static void fapi__json_cell(sbuf *b, const catalogue_indicator *ind, const fcell *c, int perturbed)
{
    char v[64];
    int shown = fapi__value(ind, c, perturbed, v, sizeof(v));
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

/* The dimensions of a grouping ("sex,age_band") into d[2]; returns their number. */
static int fapi__split(const char *s, char d[2][40])
{
    if (s[0] == '\0')
        return 0;
    const char *comma = strchr(s, ',');
    if (comma == NULL) {
        snprintf(d[0], 40, "%s", s);
        return 1;
    }
    snprintf(d[0], 40, "%.*s", (int)(comma - s), s);
    snprintf(d[1], 40, "%s", comma + 1);
    return 2;
}

static void fapi__area_json(sbuf *b, const params_query *q)
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

static void fapi__as_of_json(sbuf *b, const params_query *q, const fresult *r)
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

static void fapi__as_of_header(freq *f, const fresult *r)
{
    char h[512];
    size_t o = 0;
    h[0] = '\0';
    for (int p = 1; p <= 7; p++) {
        if (f->q.area_province && f->q.area_province != p)
            continue;
        int w = snprintf(h + o, sizeof(h) - o, "%s%d=%s", o ? "; " : "", p,
                         r->as_of[p] ? r->as_of[p] : "none");
        if (w < 0 || (size_t)w >= sizeof(h) - o)
            break;
        o += (size_t)w;
    }
    http_add_header(f->r, "X-Data-As-Of", h);
}

static void fapi__render_indicator(freq *f, const fresult *r)
{
    const catalogue_indicator *ind = f->ind;
    int perturbed = f->role == AUTH_PUBLIC;
    char dims[2][40];
    int nd = fapi__split(f->q.by, dims);
    const fcell *total = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->cells[i].grouping[0] == '\0')
            total = &r->cells[i];
    sbuf b;
    sbuf_init(&b, FAPI_MAX_BODY);
    if (f->q.csv) {
        sbuf_puts(&b, "indicator,period,area");
        for (int d = 0; d < nd; d++)
            sbuf_printf(&b, ",%s", dims[d]);
        sbuf_puts(&b, perturbed ? ",value\n" : ",value,numerator,denominator,contributors\n");
        char area[64];
        if (f->q.municipality)
            snprintf(area, sizeof(area), "municipality:%u", f->q.municipality);
        else if (f->q.district)
            snprintf(area, sizeof(area), "district:%d", f->q.district);
        else if (f->q.province)
            snprintf(area, sizeof(area), "province:%d", f->q.province);
        else
            snprintf(area, sizeof(area), "national");
        for (size_t i = 0; i <= r->n; i++) {
            const fcell *c = i < r->n ? &r->cells[i] : total;
            if (i < r->n && (nd == 0 || strcmp(c->grouping, f->q.by) != 0))
                continue;
            char v[64];
            int shown = fapi__value(ind, c, perturbed, v, sizeof(v));
            sbuf_printf(&b, "%s,%s,%s", ind->code, f->q.period, area);
            if (i < r->n) {
                char kv[2][40];
                int nk = fapi__split(c->key, kv);
                for (int d = 0; d < nd; d++) {
                    sbuf_puts(&b, ",");
                    sbuf_csv_str(&b, d < nk ? kv[d] : "");
                }
            } else {
                for (int d = 0; d < nd; d++)
                    sbuf_puts(&b, ",TOTAL");
            }
            sbuf_printf(&b, ",%s", shown ? v : "");
            if (!perturbed)
                sbuf_printf(&b, ",%" PRId64 ",%" PRId64 ",%" PRId64, c ? c->nu : 0, c ? c->de : 0,
                            c ? c->co : 0);
            sbuf_puts(&b, "\n");
        }
        fapi__as_of_header(f, r);
    } else {
        sbuf_puts(&b, "{\"indicator\":");
        sbuf_json_str(&b, ind->code);
        sbuf_puts(&b, ",\"title\":");
        sbuf_json_str(&b, ind->title);
        sbuf_printf(&b,
                    ",\"sdg\":\"%s\",\"aggregation\":\"%s\",\"period\":\"%s\","
                    "\"period_kind\":\"%s\",\"area\":",
                    ind->sdg, fapi__agg_name(ind->agg), f->q.period, fapi__kind_names[f->q.kind]);
        fapi__area_json(&b, &f->q);
        sbuf_printf(&b, ",\"by\":\"%s\",\"dimensions\":[", f->q.by);
        for (int d = 0; d < nd; d++)
            sbuf_printf(&b, "%s\"%s\"", d ? "," : "", dims[d]);
        sbuf_printf(
            &b, "],\"disclosure\":\"%s\",\"as_of\":", perturbed ? "cell-key perturbed" : "exact");
        fapi__as_of_json(&b, &f->q, r);
        sbuf_puts(&b, ",\"total\":{");
        fapi__json_cell(&b, ind, total, perturbed);
        sbuf_puts(&b, "},\"rows\":[");
        int first = 1;
        for (size_t i = 0; i < r->n && nd > 0; i++) {
            const fcell *c = &r->cells[i];
            if (strcmp(c->grouping, f->q.by) != 0)
                continue;
            char kv[2][40];
            int nk = fapi__split(c->key, kv);
            sbuf_puts(&b, first ? "{" : ",{");
            for (int d = 0; d < nd; d++) {
                sbuf_printf(&b, "\"%s\":", dims[d]);
                sbuf_json_str(&b, d < nk ? kv[d] : "");
                sbuf_puts(&b, ",");
            }
            fapi__json_cell(&b, ind, c, perturbed);
            sbuf_puts(&b, "}");
            first = 0;
        }
        sbuf_puts(&b, "]}\n");
    }
    if (b.failed) {
        sbuf_free(&b);
        fapi__error(f, 500, "answer too large");
        return;
    }
    fapi__finish(f, 200, f->q.csv ? "text/csv; charset=utf-8" : NULL, b.p, b.len);
    sbuf_free(&b);
}

static void fapi__render_dvs(freq *f, const fresult *r)
{
    int perturbed = f->role == AUTH_PUBLIC;
    char ou[32];
    if (f->q.municipality)
        snprintf(ou, sizeof(ou), "%u", f->q.municipality);
    else if (f->q.district)
        snprintf(ou, sizeof(ou), "D%02d", f->q.district);
    else if (f->q.province)
        snprintf(ou, sizeof(ou), "P%d", f->q.province);
    else
        snprintf(ou, sizeof(ou), "NP");
    sbuf b;
    sbuf_init(&b, FAPI_MAX_BODY);
    sbuf_printf(&b,
                "{\"dataSet\":\"reintegration_v1\",\"period\":\"%s\",\"orgUnit\":\"%s\","
                "\"disclosure\":\"%s\",\"asOf\":",
                f->q.period, ou, perturbed ? "cell-key perturbed" : "exact");
    fapi__as_of_json(&b, &f->q, r);
    sbuf_puts(&b, ",\"dataValues\":[");
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        const fcell *c = &r->cells[i];
        const catalogue_indicator *ind = catalogue_find(c->indicator);
        char v[64], dims[2][40], kv[2][40], coc[200];
        if (ind == NULL || !fapi__value(ind, c, perturbed, v, sizeof(v)))
            continue;
        int nd = fapi__split(c->grouping, dims), nk = fapi__split(c->key, kv);
        if (nd == 0 || nk != nd)
            snprintf(coc, sizeof(coc), "default");
        else if (nd == 1)
            snprintf(coc, sizeof(coc), "%s:%s", dims[0], kv[0]);
        else
            snprintf(coc, sizeof(coc), "%s:%s,%s:%s", dims[0], kv[0], dims[1], kv[1]);
        sbuf_puts(&b, first ? "{\"dataElement\":" : ",{\"dataElement\":");
        sbuf_json_str(&b, c->indicator);
        sbuf_printf(
            &b, ",\"period\":\"%s\",\"orgUnit\":\"%s\",\"categoryOptionCombo\":", f->q.period, ou);
        sbuf_json_str(&b, coc);
        sbuf_printf(&b, ",\"value\":\"%s\"}", v);
        first = 0;
    }
    sbuf_puts(&b, "]}\n");
    if (b.failed) {
        sbuf_free(&b);
        fapi__error(f, 500, "answer too large");
        return;
    }
    fapi__finish(f, 200, NULL, b.p, b.len);
    sbuf_free(&b);
}

static void fapi__on_data(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    fresult r;
    if (err) {
        log_error("query failed: %s", err);
        fapi__error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (fapi__result(res, &r) != 0) {
        fapi__error(f, 503, "out of memory");
        return;
    }
    f->a->m.audit_rows++;
    if (f->route == R_INDICATOR)
        fapi__render_indicator(f, &r);
    else
        fapi__render_dvs(f, &r);
    free(r.cells);
}

static const char *fapi__sql_provinces =
    "WITH a AS (INSERT INTO audit(who, role, peer, method, target, status)"
    " VALUES ($1, $2, $3, 'GET', $4, 200))"
    " SELECT 0 AS k, indicator, grouping, key, sum(numerator)::bigint,"
    " sum(denominator)::bigint, (sum(cell_key) % 4294967296)::bigint, sum(contributors)::bigint"
    " FROM province_cells WHERE province = ANY($5::smallint[]) AND period = $6"
    " AND indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR grouping = ANY($8::text[]))"
    " GROUP BY indicator, grouping, key"
    " UNION ALL SELECT 1, province::text, to_char(last_commit AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), NULL, NULL, NULL, NULL, NULL"
    " FROM province_status WHERE province = ANY($5::smallint[])"
    " ORDER BY 1, 2, 3, 4";

static const char *fapi__sql_cells =
    "WITH a AS (INSERT INTO audit(who, role, peer, method, target, status)"
    " VALUES ($1, $2, $3, 'GET', $4, 200))"
    " SELECT 0 AS k, c.indicator, c.grouping, c.key, sum(c.numerator)::bigint,"
    " sum(c.denominator)::bigint, (sum(c.cell_key) % 4294967296)::bigint,"
    " sum(c.contributors)::bigint"
    " FROM cells c WHERE c.period_kind = $9::smallint AND c.period = $6"
    " AND c.municipality IN (SELECT g.municipality FROM geo g"
    " WHERE g.district = $10::smallint OR g.municipality = $11::integer)"
    " AND c.indicator = ANY($7::text[]) AND ($8::text[] IS NULL OR c.grouping = ANY($8::text[]))"
    " GROUP BY c.indicator, c.grouping, c.key"
    " UNION ALL SELECT 1, province::text, to_char(last_commit AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), NULL, NULL, NULL, NULL, NULL"
    " FROM province_status WHERE province = ANY($5::smallint[])"
    " ORDER BY 1, 2, 3, 4";

static void fapi__query_data(freq *f)
{
    char provs[32], kind[8], dist[8], muni[12], groupings[160];
    sbuf inds;
    sbuf_init(&inds, 4096);
    if (f->q.area_province)
        snprintf(provs, sizeof(provs), "{%d}", f->q.area_province);
    else
        snprintf(provs, sizeof(provs), "{1,2,3,4,5,6,7}");
    sbuf_puts(&inds, "{");
    if (f->route == R_INDICATOR) {
        sbuf_printf(&inds, "\"%s\"", f->ind->code);
        snprintf(groupings, sizeof(groupings), "{\"\",\"%s\"}", f->q.by);
    } else {
        size_t n;
        const catalogue_indicator *all = catalogue_all(&n);
        for (size_t i = 0; i < n; i++)
            sbuf_printf(&inds, "%s\"%s\"", i ? "," : "", all[i].code);
    }
    sbuf_puts(&inds, "}");
    snprintf(kind, sizeof(kind), "%d", (int)f->q.kind);
    snprintf(dist, sizeof(dist), "%d", f->q.district);
    snprintf(muni, sizeof(muni), "%u", f->q.municipality);
    const char *v[11] = {f->who,
                         f->role_label,
                         f->peer,
                         f->target,
                         provs,
                         f->q.period,
                         inds.p,
                         f->route == R_INDICATOR ? groupings : NULL,
                         kind,
                         f->q.district ? dist : NULL,
                         f->q.municipality ? muni : NULL};
    int cells = f->q.district || f->q.municipality;
    int rc = db_query(f->a->o.db, cells ? fapi__sql_cells : fapi__sql_provinces, cells ? 11 : 8, v,
                      fapi__on_data, f);
    sbuf_free(&inds);
    if (rc != 0)
        fapi__error(f, 503, "the federal store is busy; try again");
}

static void fapi__catalogue(freq *f)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    sbuf b;
    sbuf_init(&b, 1024 * 1024);
    sbuf_puts(&b, "{\"indicators\":[");
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(&b, i ? ",{\"code\":" : "{\"code\":");
        sbuf_json_str(&b, all[i].code);
        sbuf_puts(&b, ",\"title\":");
        sbuf_json_str(&b, all[i].title);
        sbuf_printf(&b, ",\"sdg\":\"%s\",\"aggregation\":\"%s\",\"dimensions\":[", all[i].sdg,
                    fapi__agg_name(all[i].agg));
        for (int d = 0; all[i].dims[d]; d++)
            sbuf_printf(&b, "%s\"%s\"", d ? "," : "", all[i].dims[d]);
        sbuf_puts(&b, "],\"groupings\":[");
        for (int g = 0; all[i].groupings[g]; g++)
            sbuf_printf(&b, "%s\"%s\"", g ? "," : "", all[i].groupings[g]);
        sbuf_puts(&b, "]}");
    }
    sbuf_puts(&b, "],\"periods\":[\"2026\",\"2026-Q3\",\"2026-07\",\"BS2083-04\","
                  "\"FY2083/84-T1\",\"FY2083/84\"]}\n");
    if (b.failed) {
        sbuf_free(&b);
        fapi__error(f, 500, "out of memory");
        return;
    }
    fapi__respond_audited(f, 200, NULL, b.p, b.len); /* takes b.p */
}

static void fapi__on_audit_rows(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("audit read failed: %s", err);
        fapi__error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    sbuf b;
    sbuf_init(&b, FAPI_MAX_BODY);
    sbuf_puts(&b, "{\"audit\":[");
    for (int i = 0; i < PQntuples(res); i++) {
        sbuf_printf(&b, "%s{\"id\":%s,\"at\":", i ? "," : "", PQgetvalue(res, i, 0));
        sbuf_json_str(&b, PQgetvalue(res, i, 1));
        sbuf_puts(&b, ",\"who\":");
        sbuf_json_str(&b, PQgetvalue(res, i, 2));
        sbuf_puts(&b, ",\"role\":");
        sbuf_json_str(&b, PQgetvalue(res, i, 3));
        sbuf_puts(&b, ",\"peer\":");
        sbuf_json_str(&b, PQgetvalue(res, i, 4));
        sbuf_puts(&b, ",\"method\":");
        sbuf_json_str(&b, PQgetvalue(res, i, 5));
        sbuf_puts(&b, ",\"target\":");
        sbuf_json_str(&b, PQgetvalue(res, i, 6));
        sbuf_printf(&b, ",\"status\":%s}", PQgetvalue(res, i, 7));
    }
    sbuf_puts(&b, "]}\n");
    f->a->m.audit_rows++;
    if (b.failed)
        fapi__error(f, 500, "answer too large");
    else
        fapi__finish(f, 200, NULL, b.p, b.len);
    sbuf_free(&b);
}

static void fapi__audit(freq *f)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%ld", f->q.limit ? f->q.limit : 100);
    const char *v[5] = {f->who, f->role_label, f->peer, f->target, limit};
    if (db_query(f->a->o.db,
                 "WITH a AS (INSERT INTO audit(who, role, peer, method, target, status)"
                 " VALUES ($1, $2, $3, 'GET', $4, 200))"
                 " SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                 " who, role, peer, method, target, status FROM audit"
                 " ORDER BY id DESC LIMIT $5::integer",
                 5, v, fapi__on_audit_rows, f) != 0)
        fapi__error(f, 503, "the federal store is busy; try again");
}

/* ---- directives ---------------------------------------------------------------------------- */

static void fapi__on_directives(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("directives read failed: %s", err);
        fapi__error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    int32_t today = clock_today_utc();
    sbuf b;
    sbuf_init(&b, FAPI_MAX_BODY);
    sbuf_puts(&b, "{\"directives\":[");
    int first = 1;
    for (int i = 0; i < PQntuples(res); i++) {
        uint8_t *body = NULL;
        size_t len = 0;
        Reint__V1__Directive *d = NULL;
        if (fdir_unhex(PQgetvalue(res, i, 1), &body, &len) == 0)
            d = reint__v1__directive__unpack(NULL, len, body);
        free(body);
        if (d == NULL) {
            log_error("directive %s: stored body does not decode; left out of the answer",
                      PQgetvalue(res, i, 0));
            continue;
        }
        if (!first)
            sbuf_puts(&b, ",");
        first = 0;
        fdir_json_open(&b, d, today);
        sbuf_puts(&b, ",\"published_at\":");
        sbuf_json_str(&b, PQgetvalue(res, i, 3));
        if (f->role == AUTH_ADMIN) {
            sbuf_puts(&b, ",\"published_by\":");
            sbuf_json_str(&b, PQgetvalue(res, i, 2));
        }
        sbuf_puts(&b, "}");
        reint__v1__directive__free_unpacked(d, NULL);
    }
    sbuf_puts(&b, "]}\n");
    f->a->m.audit_rows++;
    if (b.failed)
        fapi__error(f, 500, "answer too large");
    else
        fapi__finish(f, 200, NULL, b.p, b.len);
    sbuf_free(&b);
}

/* GET /v1/directives: newest first, every role; the read is audited in the same statement. */
static void fapi__directives_list(freq *f)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%ld", f->q.limit ? f->q.limit : 100);
    const char *v[5] = {f->who, f->role_label, f->peer, f->target, limit};
    if (db_query(f->a->o.db,
                 "WITH a AS (INSERT INTO audit(who, role, peer, method, target, status)"
                 " VALUES ($1, $2, $3, 'GET', $4, 200))"
                 " SELECT serial, encode(body, 'hex'), published_by,"
                 " to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                 " FROM directives ORDER BY serial DESC LIMIT $5::integer",
                 5, v, fapi__on_directives, f) != 0)
        fapi__error(f, 503, "the federal store is busy; try again");
}

static void fapi__publish_next(freq *f);

static uint64_t fapi__draft_serial(freq *f)
{
    return fdir_directive(f->draft)->serial;
}

static void fapi__on_published(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("directive %" PRIu64 " not stored: %s", fapi__draft_serial(f), err);
        fapi__error_audited(f, 503,
                            "the federal store is unavailable; the directive was not "
                            "published; try again");
        return;
    }
    if (PQntuples(res) != 1) {
        /* Another publication committed this serial first: number and sign again. */
        log_info("directive serial %" PRIu64 " was taken by a concurrent publication; "
                 "numbering again",
                 fapi__draft_serial(f));
        fapi__publish_next(f);
        return;
    }
    uint64_t serial = fapi__draft_serial(f);
    f->a->m.directives_published++;
    f->a->m.audit_rows++;
    log_info("directive %" PRIu64 " published by %s (key %s, %zu bytes signed)", serial, f->who,
             f->a->dir_key_id, f->sd.body.len);
    fingest_directives_published(f->a->o.ingest);
    sbuf b;
    sbuf_init(&b, 1024);
    sbuf_printf(&b, "{\"serial\":%" PRIu64 ",\"key_id\":", serial);
    sbuf_json_str(&b, f->a->dir_key_id);
    sbuf_puts(&b, "}\n");
    if (b.failed)
        fapi__finish(f, 201, NULL, "{}\n", 3);
    else
        fapi__finish(f, 201, NULL, b.p, b.len);
    sbuf_free(&b);
}

static void fapi__on_next_serial(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    char why[300];
    if (err || PQntuples(res) != 1) {
        log_error("cannot read the next directive serial: %s", err ? err : "no row");
        fapi__error_audited(f, 503,
                            "the federal store is unavailable; the directive was not "
                            "published; try again");
        return;
    }
    Reint__V1__Directive *d = fdir_directive(f->draft);
    d->serial = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    d->key_id = f->a->dir_key_id;
    d->issued_at = clock_now_ms();
    directive_signed_free(&f->sd);
    if (directive_sign(d, f->a->dir_key_id, f->a->dir_key, &f->sd, why, sizeof(why)) != 0) {
        log_error("directive %" PRIu64 " cannot be signed: %s", d->serial, why);
        fapi__error_audited(f, 500,
                            "the directive cannot be signed (see the server log); "
                            "nothing was published");
        return;
    }
    char serial[24];
    snprintf(serial, sizeof(serial), "%" PRIu64, d->serial);
    char *body = fdir_hex(f->sd.body.data, f->sd.body.len);
    char *sig = fdir_hex(f->sd.signature.data, f->sd.signature.len);
    const char *v[8] = {serial, f->a->dir_key_id, body,    sig,
                        f->who, f->role_label,    f->peer, f->target};
    /* The serial is stored only while it is still max + 1; a concurrent publication that
     * took it makes this insert do nothing (ON CONFLICT waits for its commit) and we retry.
     * The audit row is written by the same statement, only when the directive is. */
    int rc =
        body && sig
            ? db_query(f->a->o.db,
                       "WITH ins AS (INSERT INTO directives(serial, key_id, body, signature,"
                       " published_at, published_by)"
                       " SELECT $1::bigint, $2, decode($3, 'hex'), decode($4, 'hex'), now(), $5"
                       " WHERE $1::bigint = (SELECT coalesce(max(serial), 0) + 1 FROM directives)"
                       " ON CONFLICT (serial) DO NOTHING RETURNING serial),"
                       " a AS (INSERT INTO audit(who, role, peer, method, target, status)"
                       " SELECT $5, $6, $7, 'POST', $8, 201 FROM ins)"
                       " SELECT serial FROM ins",
                       8, v, fapi__on_published, f)
            : -1;
    free(body);
    free(sig);
    if (rc != 0)
        fapi__error_audited(f, 503,
                            "the federal store is busy; the directive was not published; "
                            "try again");
}

static void fapi__publish_next(freq *f)
{
    if (++f->attempts > FAPI_PUBLISH_ATTEMPTS) {
        fapi__error_audited(f, 503,
                            "too many concurrent publications; the directive was not "
                            "published; try again");
        return;
    }
    if (db_query(f->a->o.db, "SELECT coalesce(max(serial), 0) + 1 FROM directives", 0, NULL,
                 fapi__on_next_serial, f) != 0)
        fapi__error_audited(f, 503, "the federal store is busy; try again");
}

/* POST /v1/directives: admin only; the body validated (422 naming each field), then
 * numbered, signed and stored with its audit row, then pushed to connected hubs. */
static void fapi__publish(freq *f)
{
    if (f->role != AUTH_ADMIN) {
        fapi__error_audited(f, 403, "publishing directives is for the admin role");
        return;
    }
    if (f->a->dir_key[0] == '\0' || f->a->dir_key_id[0] == '\0') {
        fapi__error_audited(f, 503,
                            "directives cannot be published: this server has no signing key "
                            "(set [directives] key_id and private_key)");
        return;
    }
    size_t len = 0;
    const char *body = http_req_body(f->r, &len);
    fdir_errors *errs = malloc(sizeof(*errs));
    if (errs == NULL) {
        fapi__error(f, 503, "out of memory");
        return;
    }
    int rc = fdir_parse(body, len, &f->draft, errs);
    if (rc == REINT_EMALFORMED) {
        fapi__error_audited(f, 400, errs->message);
    } else if (rc != 0) {
        sbuf b;
        sbuf_init(&b, 64 * 1024);
        sbuf_puts(&b, "{\"error\":\"the directive was refused; see errors\",\"errors\":[");
        for (size_t i = 0; i < errs->n; i++) {
            sbuf_puts(&b, i ? ",{\"field\":" : "{\"field\":");
            sbuf_json_str(&b, errs->e[i].field);
            sbuf_puts(&b, ",\"reason\":");
            sbuf_json_str(&b, errs->e[i].reason);
            sbuf_puts(&b, "}");
        }
        if (errs->dropped)
            sbuf_puts(&b, ",{\"field\":\"\",\"reason\":\"more errors were left out\"}");
        sbuf_puts(&b, "]}\n");
        if (b.failed) {
            sbuf_free(&b);
            fapi__error_audited(f, 422, "the directive was refused");
        } else {
            fapi__respond_audited(f, 422, NULL, b.p, b.len); /* takes b.p */
        }
    } else {
        fapi__publish_next(f);
    }
    free(errs);
}

/* Runs an authenticated request: parameters, then the role's permission, then the data. */
static void fapi__authorised(freq *f)
{
    char err[700];
    unsigned allowed = 0;
    switch (f->route) {
    case R_CATALOGUE:
        allowed = 0;
        break;
    case R_INDICATOR:
        if (!params_code_ok(f->code)) {
            fapi__error_audited(f, 400, "indicator code must be 1..64 of a-z and _");
            return;
        }
        if ((f->ind = catalogue_find(f->code)) == NULL) {
            fapi__error_audited(f, 404, "no such indicator (see GET /v1/indicators)");
            return;
        }
        allowed = PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_BY |
                  PARAM_FORMAT | PARAM_EXACT;
        break;
    case R_DVS:
        allowed = PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_EXACT;
        break;
    case R_AUDIT:
        allowed = PARAM_LIMIT;
        break;
    case R_DIRECTIVES:
        allowed = f->post ? 0 : PARAM_LIMIT;
        break;
    }
    if (params_parse(http_req_query(f->r), allowed, f->ind, &f->q, err, sizeof(err)) != 0) {
        fapi__error_audited(f, 400, err);
        return;
    }
    if (f->route == R_CATALOGUE) {
        fapi__catalogue(f);
        return;
    }
    if (f->route == R_DIRECTIVES) {
        if (f->post)
            fapi__publish(f);
        else
            fapi__directives_list(f);
        return;
    }
    if (f->route == R_AUDIT) {
        if (f->role != AUTH_ADMIN) {
            fapi__error_audited(f, 403, "the audit log is for the admin role");
            return;
        }
        fapi__audit(f);
        return;
    }
    switch (f->role) {
    case AUTH_MINISTRY:
        break;
    case AUTH_PROVINCE:
        if (f->q.area_province != f->province) {
            snprintf(err, sizeof(err),
                     "role province:%d reads only its own province: add province=%d, or a "
                     "district or municipality of it",
                     f->province, f->province);
            fapi__error_audited(f, 403, err);
            return;
        }
        break;
    case AUTH_PUBLIC:
        if (f->q.exact == 1) {
            fapi__error_audited(f, 403, "role public sees cell-key perturbed values only");
            return;
        }
        break;
    default:
        fapi__error_audited(f, 403, "this role does not read indicators");
        return;
    }
    fapi__query_data(f);
}

static void fapi__on_token(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("token lookup failed: %s", err);
        fapi__error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQntuples(res) != 1) {
        auth_limiter_fail(f->a->limiter, f->peer, clock_now_ms());
        log_warn("%s: unknown or revoked token for %s", f->peer, f->target);
        fapi__error_audited(f, 401, "unknown or revoked token");
        return;
    }
    snprintf(f->who, sizeof(f->who), "%s", PQgetvalue(res, 0, 0));
    f->role = auth_role_from_db(PQgetvalue(res, 0, 1));
    f->province = PQgetisnull(res, 0, 2) ? 0 : (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
    if (f->role == AUTH_PROVINCE)
        snprintf(f->role_label, sizeof(f->role_label), "province:%d", f->province);
    else
        snprintf(f->role_label, sizeof(f->role_label), "%s", auth_role_name(f->role));
    fapi__authorised(f);
}

static int fapi__load_crl(const char *path, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    char *buf = malloc(FAPI_MAX_CRL + 1);
    size_t n = buf ? fread(buf, 1, FAPI_MAX_CRL + 1, fp) : 0;
    fclose(fp);
    if (buf == NULL || n > FAPI_MAX_CRL) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static void fapi__metrics(fapi *a, http_req *r)
{
    db_metrics dm;
    fingest_metrics im;
    memset(&im, 0, sizeof(im));
    db_get_metrics(a->o.db, &dm);
    if (a->o.ingest)
        fingest_get_metrics(a->o.ingest, &im);
    metric rows[] = {
        METRIC_C("federal_http_requests_total", "HTTP requests received.", a->m.requests),
        METRIC_C("federal_http_ok_total", "Requests answered 200.", a->m.ok),
        METRIC_C("federal_http_bad_request_total", "Requests refused 400.", a->m.bad_request),
        METRIC_C("federal_http_unauthorized_total", "Requests refused 401.", a->m.unauthorized),
        METRIC_C("federal_http_forbidden_total", "Requests refused 403.", a->m.forbidden),
        METRIC_C("federal_http_rate_limited_total", "Requests refused 429.", a->m.rate_limited),
        METRIC_C("federal_http_unavailable_total", "Requests answered 5xx.", a->m.unavailable),
        METRIC_C("federal_audit_rows_total", "Audit rows written.", a->m.audit_rows),
        METRIC_C("federal_db_queries_total", "Statements sent to PostgreSQL.", dm.queries),
        METRIC_C("federal_db_errors_total", "Statements that failed.", dm.errors),
        METRIC_C("federal_db_connects_total", "Connections established.", dm.connects),
        METRIC_C("federal_db_disconnects_total", "Connections lost.", dm.disconnects),
        METRIC_G("federal_db_connected", "Pool connections up now.", dm.connected),
        METRIC_G("federal_db_queued", "Statements waiting for a connection.", dm.queued),
        METRIC_C("federal_ingest_connections_total", "Hub connections accepted.", im.connections),
        METRIC_G("federal_ingest_connected", "Hub connections open.", im.connected),
        METRIC_C("federal_ingest_batches_total", "Rollup batches received.", im.batches),
        METRIC_C("federal_ingest_batches_committed_total", "Rollup batches committed.",
                 im.batches_committed),
        METRIC_C("federal_ingest_snapshots_received_total", "Snapshots received.",
                 im.snapshots_received),
        METRIC_C("federal_ingest_snapshots_applied_total",
                 "Snapshots that replaced an older revision.", im.snapshots_applied),
        METRIC_C("federal_ingest_snapshots_refused_total", "Snapshots refused by validation.",
                 im.snapshots_refused),
        METRIC_C("federal_ingest_cells_received_total", "Cells received.", im.cells_received),
        METRIC_C("federal_ingest_security_events_total",
                 "Batches refused for another province's snapshot.", im.security_events),
        METRIC_C("federal_ingest_db_errors_total", "Batches the store failed.", im.db_errors),
        METRIC_C("federal_directives_published_total", "Directives published here.",
                 a->m.directives_published),
        METRIC_C("federal_ingest_directives_sent_total", "Directives sent to hubs.",
                 im.directives_sent),
        METRIC_C("federal_ingest_directive_acks_total", "DirectiveAcks received from hubs.",
                 im.directive_acks),
    };
    metrics_respond(r, rows, sizeof(rows) / sizeof(rows[0]),
                    a->o.sync_tls ? tls_ctx_crl_next_update(a->o.sync_tls) : 0);
}

static void fapi__handle(http_req *r, void *ud, int https)
{
    fapi *a = ud;
    const char *path = http_req_path(r);
    a->m.requests++;
    int post = strcmp(http_req_method(r), "POST") == 0;
    if (strcmp(http_req_method(r), "GET") != 0 && !(post && strcmp(path, "/v1/directives") == 0)) {
        http_add_header(r, "Allow", strcmp(path, "/v1/directives") == 0 ? "GET, POST" : "GET");
        http_respond(r, 405, NULL, "{\"error\":\"method not allowed\"}\n", 31);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    if (strcmp(path, "/metrics") == 0 && !https) {
        fapi__metrics(a, r);
        return;
    }
    if (strcmp(path, "/crl") == 0) {
        char *crl = NULL;
        size_t len = 0;
        if (a->crl_file[0] == '\0' || fapi__load_crl(a->crl_file, &crl, &len) != 0) {
            http_respond(r, 404, NULL, "{\"error\":\"no CRL configured\"}\n", 30);
            return;
        }
        http_respond(r, 200, "application/pkix-crl", crl, len);
        free(crl);
        return;
    }
    if (!https || strncmp(path, "/v1/", 4) != 0) {
        http_respond(r, 404, NULL, "{\"error\":\"not found\"}\n", 22);
        return;
    }
    freq *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        http_respond(r, 503, NULL, "{\"error\":\"out of memory\"}\n", 26);
        return;
    }
    f->a = a;
    f->r = r;
    f->post = post;
    fapi__printable(f->peer, sizeof(f->peer), http_req_peer(r));
    {
        char t[FAPI_TARGET_MAX];
        const char *q = http_req_query(r);
        snprintf(t, sizeof(t), "%s%s%s", path, q[0] ? "?" : "", q);
        fapi__printable(f->target, sizeof(f->target), t);
    }
    if (strcmp(path, "/v1/indicators") == 0) {
        f->route = R_CATALOGUE;
    } else if (strncmp(path, "/v1/indicators/", 15) == 0) {
        f->route = R_INDICATOR;
        if (strlen(path + 15) >= sizeof(f->code)) {
            fapi__error(f, 400, "indicator code must be 1..64 of a-z and _");
            return;
        }
        snprintf(f->code, sizeof(f->code), "%s", path + 15);
    } else if (strcmp(path, "/v1/dataValueSets") == 0) {
        f->route = R_DVS;
    } else if (strcmp(path, "/v1/audit") == 0) {
        f->route = R_AUDIT;
    } else if (strcmp(path, "/v1/directives") == 0) {
        f->route = R_DIRECTIVES;
    } else {
        fapi__error(f, 404, "not found");
        return;
    }
    uint64_t now = clock_now_ms();
    if (auth_limiter_blocked(a->limiter, f->peer, now)) {
        http_add_header(r, "Retry-After", "60");
        fapi__error(f, 429, "too many failed authentication attempts; wait and retry");
        return;
    }
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_HEX + 1];
    if (auth_parse_bearer(http_req_header(r, "Authorization"), token, sizeof(token)) != 0) {
        auth_limiter_fail(a->limiter, f->peer, now);
        fapi__error_audited(f, 401, "a bearer token is required (Authorization: Bearer fed_...)");
        return;
    }
    if (auth_hash_hex(token, hash, sizeof(hash)) != 0) {
        fapi__error(f, 500, "cannot hash the token");
        return;
    }
    const char *v[1] = {hash};
    if (db_query(a->o.db,
                 "SELECT name, role, province FROM tokens WHERE hash = decode($1, 'hex')"
                 " AND revoked_at IS NULL",
                 1, v, fapi__on_token, f) != 0)
        fapi__error(f, 503, "the federal store is busy; try again");
}

static void fapi__on_https(http_req *r, void *ud)
{
    fapi__handle(r, ud, 1);
}

static void fapi__on_http(http_req *r, void *ud)
{
    fapi__handle(r, ud, 0);
}

int fapi_start(fapi **out, const fapi_opts *opts, char *err, size_t errlen)
{
    char host[128];
    int port = 0, rc;
    fapi *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return UV_ENOMEM;
    a->o = *opts;
    snprintf(a->crl_file, sizeof(a->crl_file), "%s", opts->crl_file ? opts->crl_file : "");
    snprintf(a->dir_key_id, sizeof(a->dir_key_id), "%s",
             opts->directive_key_id ? opts->directive_key_id : "");
    snprintf(a->dir_key, sizeof(a->dir_key), "%s", opts->directive_key ? opts->directive_key : "");
    a->limiter = auth_limiter_new(opts->auth_max_failures, opts->auth_window_s);
    if (a->limiter == NULL) {
        free(a);
        return UV_ENOMEM;
    }
    if (netaddr_split(opts->https_listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "https_listen \"%s\" is not HOST:PORT", opts->https_listen);
        return UV_EINVAL;
    }
    http_server_opts ho = {.host = host,
                           .port = port,
                           .tls = opts->https_tls,
                           .handler = fapi__on_https,
                           .ud = a,
                           .max_body = 64 * 1024};
    if ((rc = http_server_start(&a->https, opts->loop, &ho)) != 0) {
        snprintf(err, errlen, "cannot listen for HTTPS on %s: %s", opts->https_listen,
                 uv_strerror(rc));
        return rc;
    }
    if (opts->http_listen && opts->http_listen[0]) {
        if (netaddr_split(opts->http_listen, host, sizeof(host), &port) != 0) {
            snprintf(err, errlen, "http_listen \"%s\" is not HOST:PORT", opts->http_listen);
            return UV_EINVAL;
        }
        http_server_opts po = {
            .host = host, .port = port, .handler = fapi__on_http, .ud = a, .max_body = 1024};
        if ((rc = http_server_start(&a->http, opts->loop, &po)) != 0) {
            snprintf(err, errlen, "cannot listen for HTTP on %s: %s", opts->http_listen,
                     uv_strerror(rc));
            return rc;
        }
    }
    *out = a;
    return 0;
}

int fapi_https_port(const fapi *a)
{
    return http_server_port(a->https);
}

int fapi_http_port(const fapi *a)
{
    return a->http ? http_server_port(a->http) : 0;
}

void fapi_stop(fapi *a)
{
    if (a == NULL)
        return;
    if (a->https)
        http_server_stop(a->https);
    if (a->http)
        http_server_stop(a->http);
    a->https = a->http = NULL;
}
