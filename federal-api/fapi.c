#include "fapi.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "catalogue.h"
#include "fapprovals.h"
#include "clock.h"
#include "dhis2.h"
#include "faudit.h"
#include "fcoverage.h"
#include "fdirectives.h"
#include "findicators.h"
#include "fmetrics.h"
#include "fpublish.h"
#include "freq.h"
#include "fsession.h"
#include "fweb.h"
#include "hex.h"
#include "frender.h"
#include "http.h"
#include "limiter.h"
#include "log.h"
#include "netaddr.h"
#include "openapi.h"
#include "params.h"
#include "sbuf.h"

#define FAPI_MAX_CRL (1024 * 1024)
/* The largest request body but a directive's (a session's token, an approval). */
#define FAPI_MAX_BODY (64 * 1024)
/* Counted failed token attempts are written to the audit this often, in one statement. */
#define FAPI_FAILURES_FLUSH_MS 5000
#define FAPI_DRAIN_MAX         (LIMITER_SLOTS + 1)
/* Routes of the open-data counts kept between two writes (the catalogue's codes fit); a
 * route past them is counted as "other". */
#define FAPI_OPEN_ROUTES    128
#define FAPI_OPEN_ROUTE_MAX 96
#define FAPI_OPEN_DRAIN     64

/* Anonymous reads of one open-data route on one day (UTC), not yet written. */
typedef struct fapi_open_count {
    int32_t day; /* days since 1970-01-01 */
    char route[FAPI_OPEN_ROUTE_MAX];
    uint64_t reads, limited;
} fapi_open_count;

struct fapi {
    fapi_opts o;
    char crl_file[512];
    char dir_key_id[FDIR_KEY_ID_MAX + 1];
    char dir_key[512];
    http_server *https, *http;
    limiter *limiter;
    uv_timer_t timer; /* writes the failures counted to the audit */
    int timer_started;
    int flushing;      /* a batch is being written */
    size_t flushing_n; /* pairs in drained being written */
    limiter_count drained[FAPI_DRAIN_MAX];
    limiter *open_limiter; /* anonymous reads per client address */
    fapi_open_count open[FAPI_OPEN_ROUTES], open_writing[FAPI_OPEN_ROUTES];
    size_t open_n, open_writing_n;
    int open_flushing;
    limiter_count drained_open[FAPI_OPEN_DRAIN];
    fmetrics m;
    freq_env env;
};

/* GET /v1/indicators: the same for every role. */
static void fapi__catalogue(freq *f)
{
    sbuf b;
    sbuf_init(&b, 1024 * 1024);
    frender_catalogue(&b); /* a failure leaves b failed, which is answered 500 */
    faudit_respond_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

/* The parameters each route accepts. */
static unsigned fapi__allowed(const freq *f)
{
    switch (f->route) {
    case FREQ_INDICATOR:
        return PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_BY |
               PARAM_FORMAT | PARAM_EXACT | PARAM_APPROVAL | PARAM_SERIES;
    case FREQ_DVS:
        return PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_EXACT |
               PARAM_APPROVAL | PARAM_PAGE | PARAM_PAGE_SIZE | PARAM_ID_SCHEME;
    case FREQ_ADX:
        return PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_EXACT |
               PARAM_APPROVAL | PARAM_PAGE | PARAM_PAGE_SIZE;
    case FREQ_APPROVALS:
        return PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_BY_AREA;
    case FREQ_PROGRESS:
        return PARAM_PERIOD_OPTIONAL | PARAM_PROVINCE | PARAM_MUNICIPALITY | PARAM_BY_AREA |
               PARAM_APPROVAL;
    case FREQ_AUDIT:
        return PARAM_LIMIT;
    case FREQ_COVERAGE:
        return PARAM_PROVINCE;
    case FREQ_DIRECTIVES:
        return f->post ? 0 : PARAM_LIMIT;
    default:
        return 0;
    }
}

/* GET /v1/metadata: DHIS2's metadata export, the same for every role. */
static void fapi__metadata(freq *f)
{
    sbuf b;
    sbuf_init(&b, 16 * 1024 * 1024);
    dhis2_metadata(&b); /* a failure leaves b failed, which is answered 500 */
    faudit_respond_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

/* GET /v1/openapi.json: the API's description, compiled in from docs/openapi/federal.json. */
static void fapi__openapi(freq *f)
{
    sbuf b;
    sbuf_init(&b, openapi_federal_len + 1);
    sbuf_add(&b, openapi_federal, openapi_federal_len);
    faudit_respond_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

/* The answer about a session: who it stands for and its CSRF token (the page keeps it in
 * memory only; the cookie itself is HttpOnly). */
static void fapi__session_answer(freq *f, int status, const char *csrf, uint64_t expires_ms)
{
    sbuf b;
    sbuf_init(&b, 4096);
    sbuf_puts(&b, "{\"who\":");
    sbuf_json_str(&b, f->who);
    sbuf_puts(&b, ",\"role\":");
    sbuf_json_str(&b, f->role_label);
    sbuf_puts(&b, ",\"csrf\":");
    sbuf_json_str(&b, csrf);
    if (expires_ms)
        sbuf_printf(&b, ",\"expires_ms\":%llu", (unsigned long long)expires_ms);
    sbuf_puts(&b, "}\n");
    faudit_respond_sbuf(f, status, NULL, &b);
}

static void fapi__session_state_free(void *p)
{
    if (p)
        OPENSSL_cleanse(p, sizeof(fsession_new));
    free(p);
}

static void fapi__on_session_created(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    freq *f = ud;
    fsession_new *n = f->state;
    if (err) {
        log_error("session insert failed: %s", err);
        faudit_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    f->env->m->sessions_created++;
    fsession_set_cookie(f->r, n->id);
    fapi__session_answer(f, 200, n->csrf, n->expires_ms);
}

static void fapi__on_session_ended(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    freq *f = ud;
    if (err) {
        log_error("session delete failed: %s", err);
        faudit_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    fsession_set_cookie(f->r, "");
    fapi__session_answer(f, 200, "", 0);
}

/* /v1/session once f is authenticated: POST (by the token in its body) starts a session for
 * a ministry token; GET (by the cookie) says whose it is; DELETE (by the cookie) ends it. */
static void fapi__session(freq *f)
{
    const char *m = http_req_method(f->r);
    if (strcmp(m, "POST") == 0) {
        if (f->role != AUTH_MINISTRY) {
            faudit_error(f, 403, "the national dashboard is for ministry tokens");
            return;
        }
        fsession_new *n = calloc(1, sizeof(*n));
        if (n == NULL) {
            faudit_error(f, 503, "out of memory");
            return;
        }
        f->state = n;
        f->state_free = fapi__session_state_free;
        int rc =
            fsession_create(f->env->db, f->who, clock_now_ms(), n, fapi__on_session_created, f);
        if (rc != 0)
            faudit_error(f, 503,
                         rc == REINT_ENOMEM ? "no random bytes for a session"
                                            : "the federal store is busy; try again");
        return;
    }
    if (f->csrf[0] == '\0') {
        faudit_error(f, 400, "GET and DELETE /v1/session take the session's cookie, not a token");
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        char hash[FSESSION_HASH_HEX + 1];
        if (fsession_cookie_hash(f->r, hash) != 0 ||
            fsession_end(f->env->db, hash, fapi__on_session_ended, f) != 0)
            faudit_error(f, 503, "the federal store is busy; try again");
        return;
    }
    fapi__session_answer(f, 200, f->csrf, 0);
}

/* Runs an authenticated request: parameters, then the role's permission, then the data. */
static void fapi__authorised(freq *f)
{
    char err[700];
    if (f->route == FREQ_INDICATOR) {
        if (!params_code_ok(f->code)) {
            faudit_error(f, 400, "indicator code must be 1..64 of a-z and _");
            return;
        }
        if ((f->ind = catalogue_find(f->code)) == NULL) {
            faudit_error(f, 404, "no such indicator (see GET /v1/indicators)");
            return;
        }
    }
    if (params_parse(http_req_query(f->r), fapi__allowed(f), f->ind, &f->q, err, sizeof(err)) !=
        0) {
        faudit_error(f, 400, err);
        return;
    }
    /* What was read is audited in its one spelling (a refused query stays as received). */
    freq_set_target(f, http_req_path(f->r), f->q.normalised);
    switch (f->route) {
    case FREQ_CATALOGUE:
        fapi__catalogue(f);
        return;
    case FREQ_METADATA:
        fapi__metadata(f);
        return;
    case FREQ_OPENAPI:
        fapi__openapi(f);
        return;
    case FREQ_DIRECTIVES:
        if (f->post)
            fpublish_post(f);
        else
            fpublish_list(f);
        return;
    case FREQ_AUDIT:
        if (f->role != AUTH_ADMIN)
            faudit_error(f, 403, "the audit log is for the admin role");
        else
            faudit_list(f);
        return;
    case FREQ_COVERAGE:
        if (f->role == AUTH_MINISTRY || f->role == AUTH_ADMIN ||
            (f->role == AUTH_PROVINCE && f->q.area_province == f->province && f->province))
            fcoverage_answer(f);
        else
            faudit_error(f, 403,
                         f->role == AUTH_PROVINCE
                             ? "role province reads the coverage of its own province: add "
                               "province=<its code>"
                             : "the coverage is for the ministry, admin and province roles");
        return;
    case FREQ_APPROVALS:
        /* The coverage is for every role; each month's decision only for the ministry and
         * admins (fapprovals.c). */
        fapprovals_answer(f);
        return;
    case FREQ_PROGRESS:
        if (f->role == AUTH_MINISTRY || f->role == AUTH_ADMIN ||
            (f->role == AUTH_PROVINCE && f->province))
            fapprovals_progress(f);
        else
            faudit_error(f, 403,
                         "directive progress is for the ministry, admin and province "
                         "roles");
        return;
    case FREQ_DVS:
    case FREQ_ADX:
        if (f->q.kind == PERIOD_FISCAL_TRIMESTER) {
            faudit_error(f, 400,
                         "DHIS2 has no four-month period type: ask the fiscal year or its BS "
                         "months (docs/DHIS2.md)");
            return;
        }
        break;
    case FREQ_SESSION:
        fapi__session(f);
        return;
    case FREQ_INDICATOR:
        break;
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
            faudit_error(f, 403, err);
            return;
        }
        break;
    case AUTH_PUBLIC:
        if (f->q.exact == 1) {
            faudit_error(f, 403, "role public sees cell-key perturbed values only");
            return;
        }
        /* One version of each figure, not two: an approved and a provisional answer of the
         * same cell differ by the unapproved municipality-months, a relation an attacker
         * could use (docs/PRIVACY.md). */
        if (f->q.approved) {
            faudit_error(f, 403,
                         "role public sees the provisional figures (all data received): "
                         "approval=approved is for the ministry and province roles");
            return;
        }
        break;
    default:
        faudit_error(f, 403, "this role does not read indicators");
        return;
    }
    findicators_answer(f);
}

/* "METHOD path" of f for the limiter's audit rows: printable ASCII (the target as received
 * is), so that no cut can leave a broken UTF-8 sequence in the batch. */
static void fapi__what(const freq *f, char what[LIMITER_WHAT_MAX])
{
    snprintf(what, LIMITER_WHAT_MAX, "%s %.*s", f->post ? "POST" : "GET",
             (int)strcspn(f->target, "?"), f->target);
}

/* Answers f 429 at once, with the seconds left in Retry-After (an attempt of a blocked
 * (address, token prefix) pair), and frees it. */
static void fapi__too_many(freq *f, unsigned retry_after_s)
{
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", retry_after_s);
    http_add_header(f->r, "Retry-After", ra);
    freq_error(f, 429, "too many failed attempts with this token; retry after the time given");
}

/* A request without a valid token (hash: of the token presented, NULL for none): counted
 * for the audit's next batch (no row of its own, no database write now) and answered 401,
 * or 429 while its (address, token prefix) pair is blocked. */
static void fapi__failed(freq *f, const uint8_t *hash, const char *msg)
{
    char what[LIMITER_WHAT_MAX];
    unsigned retry = 0;
    fapi__what(f, what);
    switch (limiter_fail(f->env->limiter, f->addr, f->prefix, hash, what, clock_now_ms(), &retry)) {
    case LIMITER_BLOCKED:
        fapi__too_many(f, retry);
        return;
    case LIMITER_TRIPPED:
        log_warn("%s: token prefix %s blocked after repeated failures (last: %s)", f->addr,
                 f->prefix, what);
        break;
    case LIMITER_FAILED:
        break;
    }
    freq_error(f, 401, msg);
}

/* Whether f is refused before its token is looked up: its pair is blocked and it carries no
 * token or one that already failed (hash NULL: none). If so f is answered 429 and freed. */
static int fapi__blocked(freq *f, const uint8_t *hash)
{
    char what[LIMITER_WHAT_MAX];
    unsigned retry = 0;
    fapi__what(f, what);
    if (!limiter_blocked(f->env->limiter, f->addr, f->prefix, hash, what, clock_now_ms(), &retry))
        return 0;
    fapi__too_many(f, retry);
    return 1;
}

/* What row 0 of res (name, role, province) says of its token. */
static void fapi__who_of(const PGresult *res, ftokcache_who *w)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->name, sizeof(w->name), "%s", PQgetvalue(res, 0, 0));
    w->role = auth_role_from_db(PQgetvalue(res, 0, 1));
    if (w->role == AUTH_PROVINCE) {
        char *end = NULL;
        const char *p = PQgetvalue(res, 0, 2);
        long prov = PQgetisnull(res, 0, 2) ? 0 : strtol(p, &end, 10);
        /* A province token without a province 1..7 reads nothing (every area check fails). */
        w->province = end && end != p && *end == '\0' && prov >= 1 && prov <= 7 ? (int)prov : 0;
    }
}

/* Fills f's who, role, province and role label from w. */
static void fapi__set_who(freq *f, const ftokcache_who *w)
{
    snprintf(f->who, sizeof(f->who), "%s", w->name);
    f->role = w->role;
    f->province = w->role == AUTH_PROVINCE ? w->province : 0;
    if (f->role == AUTH_PROVINCE)
        snprintf(f->role_label, sizeof(f->role_label), "province:%d", f->province);
    else
        snprintf(f->role_label, sizeof(f->role_label), "%s", auth_role_name(f->role));
}

static void fapi__on_token(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("token lookup failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 3) {
        log_error("token lookup: %d columns instead of 3", PQnfields(res));
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    if (PQntuples(res) != 1) {
        fapi__failed(f, f->hash, "unknown or revoked token");
        return;
    }
    ftokcache_who w;
    fapi__who_of(res, &w);
    if (f->env->tokcache)
        ftokcache_put(f->env->tokcache, f->hash, f->tok_since, clock_now_ms(), &w);
    fapi__set_who(f, &w);
    OPENSSL_cleanse(&w, sizeof(w));
    fapi__authorised(f);
}

/* The answer to a session cookie's look-up (fsession_check): its token's name, role and
 * province, and its CSRF token, which a request that changes anything must carry. */
static void fapi__on_session(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("session lookup failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 5) {
        log_error("session lookup: %d columns instead of 5", PQnfields(res));
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    if (PQntuples(res) != 1) {
        fsession_set_cookie(f->r, "");
        fapi__failed(f, NULL, "the session has ended: sign in again");
        return;
    }
    ftokcache_who w;
    fapi__who_of(res, &w);
    fapi__set_who(f, &w);
    snprintf(f->csrf, sizeof(f->csrf), "%s", PQgetvalue(res, 0, 3));
    if (f->csrf[0] == '\0' || !fsession_csrf_ok(f->r, f->csrf)) {
        faudit_error(f, 403,
                     "a request of the dashboard must come from its own pages and carry the "
                     "session's X-CSRF-Token");
        return;
    }
    fapi__authorised(f);
}

static void fapi__on_flushed(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    fapi *a = ud;
    a->flushing = 0;
    unsigned attempts = 0, rows = 0;
    for (size_t i = 0; i < a->flushing_n; i++) {
        attempts += a->drained[i].failed + a->drained[i].refused;
        rows += (unsigned)((a->drained[i].failed > 0) + (a->drained[i].refused > 0));
    }
    if (err) {
        /* The log line is then the only record of them. */
        log_error("%u failed token attempts of %zu (address, token prefix) pairs were not "
                  "written to the audit: %s",
                  attempts, a->flushing_n, err);
        return;
    }
    a->m.audit_rows += rows;
}

/* Writes the failures counted since the last batch, one statement for all of them. */
static void fapi__flush_failures(fapi *a)
{
    if (a->flushing || !limiter_pending(a->limiter))
        return;
    size_t n = limiter_drain(a->limiter, a->drained, FAPI_DRAIN_MAX);
    a->flushing_n = n;
    a->flushing = 1;
    if (faudit_failures(a->o.db, a->drained, n, fapi__on_flushed, a) != 0)
        fapi__on_flushed(a, NULL, "the database queue is full");
}

static void fapi__on_open_written(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    fapi *a = ud;
    a->open_flushing = 0;
    if (err) {
        /* The metrics still have them; the log says which day's counts are short. */
        uint64_t reads = 0;
        for (size_t i = 0; i < a->open_writing_n; i++)
            reads += a->open_writing[i].reads + a->open_writing[i].limited;
        log_error("%llu anonymous reads were not added to open_reads: %s",
                  (unsigned long long)reads, err);
    }
}

/* Adds the open-data counts since the last write to open_reads, one statement for all. */
static void fapi__flush_open(fapi *a)
{
    if (a->open_flushing || a->open_n == 0)
        return;
    sbuf days, routes, reads, limited;
    sbuf_init(&days, 64 * 1024);
    sbuf_init(&routes, 64 * 1024);
    sbuf_init(&reads, 64 * 1024);
    sbuf_init(&limited, 64 * 1024);
    sbuf_puts(&days, "{");
    sbuf_puts(&routes, "{");
    sbuf_puts(&reads, "{");
    sbuf_puts(&limited, "{");
    for (size_t i = 0; i < a->open_n; i++) {
        const char *sep = i ? "," : "";
        sbuf_printf(&days, "%s%d", sep, (int)a->open[i].day);
        /* Routes are "/v1/indicators[/<code>]" or "other": no quote or comma to escape. */
        sbuf_printf(&routes, "%s\"%s\"", sep, a->open[i].route);
        sbuf_printf(&reads, "%s%llu", sep, (unsigned long long)a->open[i].reads);
        sbuf_printf(&limited, "%s%llu", sep, (unsigned long long)a->open[i].limited);
    }
    sbuf_puts(&days, "}");
    sbuf_puts(&routes, "}");
    sbuf_puts(&reads, "}");
    sbuf_puts(&limited, "}");
    sbuf_add(&days, "", 1);
    sbuf_add(&routes, "", 1);
    sbuf_add(&reads, "", 1);
    sbuf_add(&limited, "", 1);
    int failed = days.failed || routes.failed || reads.failed || limited.failed;
    if (!failed) {
        memcpy(a->open_writing, a->open, a->open_n * sizeof(a->open[0]));
        a->open_writing_n = a->open_n;
        a->open_n = 0;
        a->open_flushing = 1;
        const char *v[4] = {days.p, routes.p, reads.p, limited.p};
        if (db_query(a->o.db,
                     "INSERT INTO open_reads(day, route, reads, limited)"
                     " SELECT DATE '1970-01-01' + d, r, n, l"
                     " FROM unnest($1::integer[], $2::text[], $3::bigint[], $4::bigint[])"
                     " AS u(d, r, n, l)"
                     " ON CONFLICT (day, route) DO UPDATE SET"
                     " reads = open_reads.reads + EXCLUDED.reads,"
                     " limited = open_reads.limited + EXCLUDED.limited",
                     4, v, fapi__on_open_written, a) != 0)
            fapi__on_open_written(a, NULL, "the database queue is full");
    } else {
        log_error("open_reads: out of memory writing the counts; they wait for the next try");
    }
    sbuf_free(&days);
    sbuf_free(&routes);
    sbuf_free(&reads);
    sbuf_free(&limited);
}

static void fapi__on_timer(uv_timer_t *t)
{
    fapi *a = t->data;
    fapi__flush_failures(a);
    fapi__flush_open(a);
    /* The open-data limiter's counts are its own bookkeeping, already counted per route:
     * drained so that its slots' counts never wait. */
    while (limiter_drain(a->open_limiter, a->drained_open, FAPI_OPEN_DRAIN) == FAPI_OPEN_DRAIN)
        ;
}

static int fapi__load_crl(const char *path, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return REINT_EIO;
    char *buf = malloc(FAPI_MAX_CRL + 1);
    size_t n = buf ? fread(buf, 1, FAPI_MAX_CRL + 1, fp) : 0;
    int failed = ferror(fp);
    fclose(fp);
    if (buf == NULL || failed || n > FAPI_MAX_CRL) {
        free(buf);
        return buf == NULL ? REINT_ENOMEM : REINT_EIO;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The route of a /v1 path into f (and the indicator code); 0, or -1 after answering f. */
static int fapi__route(freq *f, const char *path)
{
    if (strcmp(path, "/v1/indicators") == 0) {
        f->route = FREQ_CATALOGUE;
    } else if (strncmp(path, "/v1/indicators/", 15) == 0) {
        f->route = FREQ_INDICATOR;
        if (strlen(path + 15) >= sizeof(f->code)) {
            freq_error(f, 400, "indicator code must be 1..64 of a-z and _");
            return -1;
        }
        snprintf(f->code, sizeof(f->code), "%s", path + 15);
    } else if (strcmp(path, "/v1/dataValueSets") == 0) {
        f->route = FREQ_DVS;
    } else if (strcmp(path, "/v1/adx") == 0) {
        f->route = FREQ_ADX;
    } else if (strcmp(path, "/v1/metadata") == 0) {
        f->route = FREQ_METADATA;
    } else if (strcmp(path, "/v1/openapi.json") == 0) {
        f->route = FREQ_OPENAPI;
    } else if (strcmp(path, "/v1/audit") == 0) {
        f->route = FREQ_AUDIT;
    } else if (strcmp(path, "/v1/coverage") == 0) {
        f->route = FREQ_COVERAGE;
    } else if (strcmp(path, "/v1/directives") == 0) {
        f->route = FREQ_DIRECTIVES;
    } else if (strcmp(path, "/v1/approvals") == 0) {
        f->route = FREQ_APPROVALS;
    } else if (strcmp(path, "/v1/session") == 0) {
        f->route = FREQ_SESSION;
    } else if (strncmp(path, "/v1/directives/", 15) == 0) {
        unsigned long long serial = 0;
        int n = 0;
        if (path[15] < '1' || path[15] > '9' ||
            sscanf(path + 15, "%18llu/progress%n", &serial, &n) != 1 || path[15 + n] != '\0' ||
            n == 0) {
            freq_error(f, 404, "not found (GET /v1/directives/<serial>/progress)");
            return -1;
        }
        f->route = FREQ_PROGRESS;
        f->serial = serial;
    } else {
        freq_error(f, 404, "not found");
        return -1;
    }
    return 0;
}

/* Looks up token (as presented: a bearer header's or a sign-in's) for f, through the failed-
 * attempt limiter; the answer continues in fapi__on_token. authz is the Authorization form
 * ("Bearer fed_...") the limiter keys its prefix on. */
static void fapi__lookup_token(fapi *a, freq *f, const char *authz)
{
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_HEX + 1];
    limiter_prefix(authz, AUTH_TOKEN_PREFIX, f->prefix);
    if (auth_parse_bearer(authz, token, sizeof(token)) != 0) {
        fapi__failed(f, NULL, "a bearer token is required (Authorization: Bearer fed_...)");
        return;
    }
    if (auth_hash_hex(token, hash, sizeof(hash)) != 0 || hex_decode(hash, 64, f->hash) != 0) {
        OPENSSL_cleanse(token, sizeof(token));
        freq_error(f, 500, "cannot hash the token");
        return;
    }
    OPENSSL_cleanse(token, sizeof(token));
    if (fapi__blocked(f, f->hash))
        return;
    /* Found valid earlier, and the tokens table unchanged since (ftokcache.h). */
    ftokcache_who w;
    if (a->o.tokcache && ftokcache_get(a->o.tokcache, f->hash, clock_now_ms(), &w)) {
        fapi__set_who(f, &w);
        OPENSSL_cleanse(&w, sizeof(w));
        fapi__authorised(f);
        return;
    }
    f->tok_since = a->o.tokcache ? ftokcache_clock(a->o.tokcache) : 0;
    const char *v[1] = {hash};
    if (db_query(a->o.db,
                 "SELECT name, role, province FROM tokens WHERE hash = decode($1, 'hex')"
                 " AND revoked_at IS NULL",
                 1, v, fapi__on_token, f) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}

/* POST /v1/session: the token comes in the JSON body ({"token": "fed_..."}) rather than a
 * header, as a sign-in form sends it, and only from the dashboard's own pages. */
static void fapi__sign_in(fapi *a, freq *f)
{
    size_t len = 0;
    const char *body = http_req_body(f->r, &len);
    char authz[AUTH_TOKEN_LEN + 16] = "";
    if (!fsession_same_site(f->r)) {
        freq_error(f, 403, "sign in from the dashboard's own page");
        return;
    }
    json_error_t je;
    json_t *j = body && len ? json_loadb(body, len, 0, &je) : NULL;
    const char *tok = j ? json_string_value(json_object_get(j, "token")) : NULL;
    if (tok && strlen(tok) <= AUTH_TOKEN_LEN)
        snprintf(authz, sizeof(authz), "Bearer %s", tok);
    json_decref(j);
    if (authz[0] == '\0') {
        freq_error(f, 400, "the body must be {\"token\": \"fed_...\"}");
        return;
    }
    fapi__lookup_token(a, f, authz);
    OPENSSL_cleanse(authz, sizeof(authz));
}

/* Counts one anonymous read (limited: refused 429) of route at today's date, to be written
 * with the next batch. */
static void fapi__open_count(fapi *a, const char *route, int limited)
{
    int32_t day = clock_today_utc();
    size_t i;
    for (i = 0; i < a->open_n; i++)
        if (a->open[i].day == day && strcmp(a->open[i].route, route) == 0)
            break;
    if (i == a->open_n) {
        if (a->open_n == FAPI_OPEN_ROUTES) {
            /* Full until the next write: the last slot takes the rest as "other". */
            i = FAPI_OPEN_ROUTES - 1;
            snprintf(a->open[i].route, sizeof(a->open[i].route), "other");
        } else {
            a->open_n++;
            a->open[i] = (fapi_open_count){.day = day};
            snprintf(a->open[i].route, sizeof(a->open[i].route), "%s", route);
        }
    }
    if (limited) {
        a->open[i].limited++;
        a->m.open_limited++;
    } else {
        a->open[i].reads++;
        a->m.open_reads++;
    }
}

/* An anonymous read of the open-data routes: GET /open/v1/indicators[/<code>], answered as
 * the public role (perturbed values only) with no token, limited per client address and
 * counted per route and day instead of audited one by one. */
static void fapi__open(fapi *a, http_req *r, const char *path)
{
    char what[LIMITER_WHAT_MAX];
    unsigned retry = 0;
    freq *f = freq_new(&a->env, r, 0);
    if (f == NULL) {
        http_respond(r, 503, NULL, "{\"error\":\"out of memory\"}\n", 26);
        return;
    }
    f->open = 1;
    f->role = AUTH_PUBLIC;
    snprintf(f->who, sizeof(f->who), "-");
    snprintf(f->role_label, sizeof(f->role_label), "open");
    snprintf(f->prefix, sizeof(f->prefix), "open");
    if (strcmp(path, "/v1/indicators") != 0 && strncmp(path, "/v1/indicators/", 15) != 0) {
        freq_error(f, 404, "not found (the open data are GET /open/v1/indicators[/<code>])");
        return;
    }
    if (fapi__route(f, path) != 0)
        return;
    /* Per route: the catalogue, or one indicator of it (an unknown code counts as "other",
     * so that made-up paths cannot grow the counts). */
    const char *route = f->route == FREQ_CATALOGUE        ? "/v1/indicators"
                        : catalogue_find(f->code) != NULL ? path
                                                          : "other";
    snprintf(what, sizeof(what), "GET %s", route);
    uint64_t now = clock_now_ms();
    if (limiter_blocked(a->open_limiter, f->addr, f->prefix, NULL, what, now, &retry) ||
        limiter_fail(a->open_limiter, f->addr, f->prefix, NULL, what, now, &retry) ==
            LIMITER_BLOCKED) {
        fapi__open_count(a, route, 1);
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry ? retry : 1);
        http_add_header(r, "Retry-After", ra);
        freq_error(f, 429, "too many reads from this address; retry after the time given");
        return;
    }
    fapi__open_count(a, route, 0);
    fapi__authorised(f);
}

static void fapi__handle(http_req *r, void *ud, int https)
{
    fapi *a = ud;
    const char *path = http_req_path(r), *method = http_req_method(r);
    a->m.requests++;
    int post = strcmp(method, "POST") == 0;
    int session_path = strcmp(path, "/v1/session") == 0;
    int get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
    if (https && (get || head) && fweb_handle(r))
        return;
    /* A monitor's HEAD of the plain paths is a GET without the body, as at hubs and nodes. */
    int plain =
        strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0 || strcmp(path, "/crl") == 0;
    if (head && plain)
        get = 1;
    if (!get && !(post && strcmp(path, "/v1/directives") == 0) &&
        !(session_path && (post || strcmp(method, "DELETE") == 0))) {
        http_add_header(r, "Allow",
                        session_path                          ? "GET, POST, DELETE"
                        : strcmp(path, "/v1/directives") == 0 ? "GET, POST"
                        : plain                               ? "GET, HEAD"
                                                              : "GET");
        http_respond(r, 405, NULL, "{\"error\":\"method not allowed\"}\n", 31);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    if (strcmp(path, "/metrics") == 0 && !https) {
        http_server_stats hs, ps;
        memset(&hs, 0, sizeof(hs));
        memset(&ps, 0, sizeof(ps));
        if (a->https)
            http_server_get_stats(a->https, &hs);
        if (a->http)
            http_server_get_stats(a->http, &ps);
        fmetrics_sources src = {a->o.db,       a->o.ingest, a->o.covcache, a->o.tokcache,
                                a->o.sync_tls, &hs,         &ps,           a->o.loopwatch};
        fmetrics_respond(r, &a->m, &src);
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
    if (https && strncmp(path, "/open/v1/", 9) == 0) {
        fapi__open(a, r, path + 5);
        return;
    }
    if (!https || strncmp(path, "/v1/", 4) != 0) {
        http_respond(r, 404, NULL, "{\"error\":\"not found\"}\n", 22);
        return;
    }
    freq *f = freq_new(&a->env, r, post);
    if (f == NULL) {
        http_respond(r, 503, NULL, "{\"error\":\"out of memory\"}\n", 26);
        return;
    }
    if (fapi__route(f, path) != 0)
        return;
    if (session_path && post) {
        fapi__sign_in(a, f);
        return;
    }
    /* The limiter runs once the token is read, never before: a valid token is never held
     * back by others' failures, even behind a load balancer that gives every client the
     * same address. A request without a token may come from the dashboard's pages, with
     * their session cookie instead. */
    const char *authz = http_req_header(r, "Authorization");
    char sess[FSESSION_HASH_HEX + 1];
    int src = authz ? REINT_ENOTFOUND : fsession_cookie_hash(r, sess);
    if (src == REINT_ENOTFOUND && session_path) {
        /* The pages ask whether a session is open before they draw: no cookie is no
         * session, not a failed attempt for the limiter. */
        freq_error(f, 401, "no session: sign in with POST /v1/session");
        return;
    }
    if (src != REINT_ENOTFOUND) {
        snprintf(f->prefix, sizeof(f->prefix), "session");
        if (src != 0) {
            fsession_set_cookie(r, "");
            fapi__failed(f, NULL, "the session has ended: sign in again");
        } else if (fapi__blocked(f, NULL)) {
            return;
        } else if (fsession_check(a->o.db, sess, clock_now_ms(), fapi__on_session, f) != 0) {
            freq_error(f, 503, "the federal store is busy; try again");
        }
        return;
    }
    fapi__lookup_token(a, f, authz);
}

static void fapi__on_https(http_req *r, void *ud)
{
    fapi__handle(r, ud, 1);
}

/* Every body but a directive's is held to FAPI_MAX_BODY before it is read; the server's own
 * limit is a directive's, FDIR_MAX_BODY. A directive's body comes with a credential of the
 * right shape (a bearer token "fed_" + 64 hex digits, or a session's cookie), so a client
 * without one cannot make the server hold more than FAPI_MAX_BODY. Whether the credential is
 * valid takes a look-up in the store, which the handler makes before it acts on the body. */
static int fapi__on_head(http_req *r, void *ud)
{
    char token[AUTH_TOKEN_LEN + 1], sess[FSESSION_HASH_HEX + 1];
    (void)ud;
    if (strcmp(http_req_method(r), "POST") != 0 ||
        strcmp(http_req_path(r), "/v1/directives") != 0) {
        http_req_limit_body(r, FAPI_MAX_BODY);
        return 0;
    }
    int shaped =
        auth_parse_bearer(http_req_header(r, "Authorization"), token, sizeof(token)) == 0 ||
        fsession_cookie_hash(r, sess) == 0;
    OPENSSL_cleanse(token, sizeof(token));
    if (!shaped)
        http_req_limit_body(r, FAPI_MAX_BODY);
    return 0;
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
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return REINT_ENOMEM;
    }
    a->o = *opts;
    /* fpublish writes the key id into JSON unescaped: only the characters fdir_key_id_ok
     * allows may reach it. */
    if (opts->directive_key_id && opts->directive_key_id[0] &&
        !fdir_key_id_ok(opts->directive_key_id)) {
        snprintf(err, errlen, "directive key id \"%.64s\" is not 1..%d of A-Z a-z 0-9 _ . -",
                 opts->directive_key_id, FDIR_KEY_ID_MAX);
        rc = REINT_EINVAL;
        goto fail;
    }
    snprintf(a->crl_file, sizeof(a->crl_file), "%s", opts->crl_file ? opts->crl_file : "");
    snprintf(a->dir_key_id, sizeof(a->dir_key_id), "%s",
             opts->directive_key_id ? opts->directive_key_id : "");
    snprintf(a->dir_key, sizeof(a->dir_key), "%s", opts->directive_key ? opts->directive_key : "");
    a->limiter = limiter_new(opts->auth_max_failures, opts->auth_window_s);
    a->open_limiter = limiter_new(opts->open_max_reads ? opts->open_max_reads : 600,
                                  opts->open_window_s ? opts->open_window_s : 60);
    if (a->limiter == NULL || a->open_limiter == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = REINT_ENOMEM;
        goto fail;
    }
    if ((rc = uv_timer_init(opts->loop, &a->timer)) != 0) {
        snprintf(err, errlen, "timer: %s", uv_strerror(rc));
        goto fail;
    }
    a->timer.data = a;
    a->timer_started = 1;
    if ((rc = uv_timer_start(&a->timer, fapi__on_timer, FAPI_FAILURES_FLUSH_MS,
                             FAPI_FAILURES_FLUSH_MS)) != 0) {
        snprintf(err, errlen, "timer: %s", uv_strerror(rc));
        goto fail;
    }
    a->env = (freq_env){.db = opts->db,
                        .ingest = opts->ingest,
                        .m = &a->m,
                        .covcache = opts->covcache,
                        .tokcache = opts->tokcache,
                        .limiter = a->limiter,
                        .dir_key_id = a->dir_key_id,
                        .dir_key = a->dir_key};
    if (netaddr_split(opts->https_listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "https_listen \"%s\" is not HOST:PORT", opts->https_listen);
        rc = REINT_EINVAL;
        goto fail;
    }
    http_server_opts ho = {.host = host,
                           .port = port,
                           .tls = opts->https_tls,
                           .handler = fapi__on_https,
                           .on_head = fapi__on_head,
                           .ud = a,
                           .max_body = FDIR_MAX_BODY,
                           .proxy_from = opts->proxy_from};
    if ((rc = http_server_start(&a->https, opts->loop, &ho)) != 0) {
        snprintf(err, errlen, "cannot listen for HTTPS on %s: %s", opts->https_listen,
                 uv_strerror(rc));
        goto fail;
    }
    if (opts->http_listen && opts->http_listen[0]) {
        if (netaddr_split(opts->http_listen, host, sizeof(host), &port) != 0) {
            snprintf(err, errlen, "http_listen \"%s\" is not HOST:PORT", opts->http_listen);
            rc = REINT_EINVAL;
            goto fail;
        }
        http_server_opts po = {.host = host,
                               .port = port,
                               .handler = fapi__on_http,
                               .ud = a,
                               .max_body = HTTP_MAX_BODY_NONE};
        if ((rc = http_server_start(&a->http, opts->loop, &po)) != 0) {
            snprintf(err, errlen, "cannot listen for HTTP on %s: %s", opts->http_listen,
                     uv_strerror(rc));
            goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    /* A started HTTPS server frees itself once its handle closes; it has no requests yet. */
    if (a->https)
        http_server_stop(a->https);
    /* The timer's memory is a's: a closed timer leaves a to the loop (a small leak at a
     * failed start, which ends the process). */
    limiter_free(a->limiter);
    limiter_free(a->open_limiter);
    if (a->timer_started) {
        uv_close((uv_handle_t *)&a->timer, NULL);
        return rc;
    }
    free(a);
    return rc;
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
    /* The last counts are queued before the pool stops; if it fails them, the log names
     * how many were lost. */
    fapi__flush_failures(a);
    fapi__flush_open(a);
    if (a->timer_started) {
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, NULL);
        a->timer_started = 0;
    }
}
