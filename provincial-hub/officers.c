#include "officers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "catalogue.h"
#include "bscal.h"
#include "clock.h"
#include "gaps.h"
#include "geo.h"
#include "haudit.h"
#include "hubweb.h"
#include "webassets.h"
#include "limiter.h"
#include "log.h"
#include "openapi.h"
#include "period.h"
#include "query.h"
#include "review.h"
#include "reviews.h"
#include "session.h"
#include "store.h"
#include "sweeps.h"
#include "testhook.h"
#include "tokens.h"
#include "utf8.h"

/* Lanes of work in the thread pool: libuv's pool has 4 threads, shared with file system
 * calls, so the reports take at most two of them. */
#define OFFICERS_LANES     2
#define OFFICERS_QUEUE_MAX 256
#define OFFICERS_FLUSH_MS  5000
/* The audit's connection waits this long for the store's write lock (an ingest commit). */
#define OFFICERS_AUDIT_BUSY_MS 30000
/* A target as received holds the whole request-target, so that a refused one is audited
 * whole; an accepted one is its path and normalised query, never longer. */
#define OFFICERS_TARGET_MAX   (HTTP_MAX_URL + 1)
#define OFFICERS_CODE_MAX     64
#define OFFICERS_LIST_DEFAULT 100

typedef struct officers_lane {
    sqlite3 *ro; /* the reports' read-only connection */
    sqlite3 *rw; /* the audit's */
    int busy;
} officers_lane;

enum officers_kind {
    JOB_ANSWER,    /* status and body decided on the loop: only the audit row is written */
    JOB_GAPS,      /* GET /v1/gaps */
    JOB_CATALOGUE, /* GET /v1/indicators */
    JOB_INDICATOR, /* GET /v1/indicators/<code> */
    JOB_AUDIT,     /* GET /v1/audit */
    JOB_SWEEPS,    /* GET /v1/sweeps */
    JOB_REVIEWS,   /* GET /v1/reviews */
    JOB_OPENAPI,   /* GET /v1/openapi.json */
    JOB_FAILURES,  /* a batch of counted failed attempts; no request */
};

/* One request's work. Everything the worker needs is copied from the request on the loop:
 * the worker never touches r. */
typedef struct officers_job {
    uv_work_t work;
    officers *o;
    officers_lane *lane;
    struct officers_job *next; /* in the queue */
    enum officers_kind kind;
    http_req *r;
    uint64_t at_ms;
    char who[TOKENS_NAME_MAX];
    const char *role;
    char peer[64];
    char method[16];
    char target[OFFICERS_TARGET_MAX];
    /* the query */
    char period[QUERY_MAX_VALUE + 1], sort[QUERY_MAX_VALUE + 1], by[QUERY_MAX_VALUE + 1];
    char series[QUERY_MAX_VALUE + 1];
    int has_period, has_by, has_series, csv;
    char code[OFFICERS_CODE_MAX + 1];
    uint32_t municipality;
    unsigned district;
    long limit;
    int32_t today;
    /* the answer, or the batch */
    int status;
    const char *ctype;
    char *body;
    size_t len;
    limiter_count *counts;
    size_t n_counts;
    int failed;  /* JOB_FAILURES: the batch was not written */
    int audited; /* the audit row went with the decision it answers (haudit_insert) */
} officers_job;

struct officers {
    uv_loop_t *loop;
    unsigned province;
    officers_opts opts;
    char tokens_path[1024];
    tokens_table *tokens;
    session_table *sessions; /* the dashboard's (hubweb.h) */
    limiter *lim;
    officers_lane lanes[OFFICERS_LANES];
    officers_job *qhead, *qtail;
    size_t qlen, running;
    uv_timer_t timer;
    int timer_open, flushing, stopping;
};

/* Printable ASCII only, so that whatever a client sends is valid text for the audit. */
static void officers__printable(char *dst, size_t dstlen, const char *src)
{
    size_t o = 0;
    for (; *src && o + 1 < dstlen; src++)
        dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[o] = '\0';
}

static void officers__set_target(officers_job *j, const char *path, const char *query)
{
    char t[OFFICERS_TARGET_MAX];
    snprintf(t, sizeof(t), "%s%s%s", path, query[0] ? "?" : "", query);
    officers__printable(j->target, sizeof(j->target), t);
}

/* Sets j's answer to {"error": msg}. Runs on either side. */
static void officers__error(officers_job *j, int status, const char *msg)
{
    static const char fallback[] = "{\"error\":\"error\"}";
    json_t *e = json_pack("{s:s}", "error", msg);
    free(j->body);
    j->body = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (j->body == NULL)
        j->body = strdup(fallback);
    j->len = j->body ? strlen(j->body) : 0;
    j->ctype = NULL;
    j->status = j->body ? status : 500;
}

/* Sets j's answer to o as JSON, or as the CSV of its array when j asked for it; takes o. */
static void officers__report(officers_job *j, json_t *o, const char *array)
{
    free(j->body);
    j->body = NULL;
    if (j->csv) {
        if (gaps_csv(o, array, &j->body, &j->len) != 0) {
            officers__error(j, 500, "the CSV could not be built");
        } else {
            j->status = 200;
            j->ctype = "text/csv; charset=utf-8";
        }
    } else if ((j->body = json_dumps(o, JSON_COMPACT)) == NULL) {
        officers__error(j, 500, "out of memory");
    } else {
        j->status = 200;
        j->ctype = NULL;
        j->len = strlen(j->body);
    }
    json_decref(o);
}

static json_t *officers__catalogue(void)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        json_t *g = json_array();
        for (int k = 0; g && all[i].groupings[k]; k++)
            json_array_append_new(g, json_string(all[i].groupings[k]));
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "code", all[i].code,
                                                  "title", all[i].title, "sdg", all[i].sdg,
                                                  "groupings", g)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list ? json_pack("{s:o}", "indicators", list) : NULL;
}

/* A report on the lane's read-only connection, in one read transaction: every statement of
 * it sees the same committed state of the store, whatever the ingest commits meanwhile. */
static void officers__run_report(officers_job *j)
{
    sqlite3 *db = j->lane->ro;
    char err[700];
    json_t *out = NULL;
    int rc;
    if (store_exec(db, "BEGIN") != 0) {
        officers__error(j, 500, "the store could not be read");
        return;
    }
    /* A test fault stands for a report that takes long (a province's report on a large
     * store): the ingest's sessions must not wait for it. */
    if (testhook_fire("report_slow")) {
        struct timespec ts = {8, 0};
        nanosleep(&ts, NULL);
    }
    if (j->kind == JOB_GAPS)
        rc = gaps_report(db, j->o->province, j->has_period ? j->period : NULL,
                         j->sort[0] ? j->sort : NULL, j->today, &out, err, sizeof(err));
    else if (j->kind == JOB_REVIEWS)
        rc = reviews_report(db, j->o->province, j->has_period ? j->period : NULL, &out, err,
                            sizeof(err));
    else
        rc = gaps_indicator(db, j->o->province, j->code, j->has_period ? j->period : NULL,
                            j->has_by ? j->by : NULL, j->has_series ? j->series : NULL,
                            j->municipality, j->district, &out, err, sizeof(err));
    store_exec(db, "COMMIT");
    if (rc == REINT_EINVAL)
        officers__error(j, 400, err);
    else if (rc != 0)
        officers__error(j, 500,
                        j->kind == JOB_GAPS      ? "the gap report could not be computed"
                        : j->kind == JOB_REVIEWS ? "the reviews could not be read"
                                                 : "the indicator could not be computed");
    else if (j->kind == JOB_INDICATOR && j->csv && json_object_get(out, "answers")) {
        /* A table by area or over time is downloaded as one row per area, period and cell. */
        json_t *rows = gaps_answers_rows(out);
        json_decref(out);
        out = rows ? json_pack("{s:o}", "rows", rows) : NULL;
        if (out == NULL)
            officers__error(j, 500, "out of memory");
        else
            officers__report(j, out, "rows");
    } else
        officers__report(j, out, j->kind == JOB_INDICATOR ? "cells" : "rows");
}

/* One row per (pair, status) of the batch. */
static void officers__write_failures(officers_job *j)
{
    haudit_row *rows = calloc(2 * j->n_counts + 1, sizeof(*rows));
    char(*methods)[16] = calloc(j->n_counts + 1, sizeof(*methods));
    size_t n = 0;
    j->failed = 1;
    if (rows == NULL || methods == NULL)
        goto out;
    for (size_t i = 0; i < j->n_counts; i++) {
        const limiter_count *c = &j->counts[i];
        const char *target = c->what, *sp = strchr(c->what, ' ');
        snprintf(methods[i], sizeof(methods[i]), "GET");
        if (sp != NULL && (size_t)(sp - c->what) < sizeof(methods[i])) {
            memcpy(methods[i], c->what, (size_t)(sp - c->what));
            methods[i][sp - c->what] = '\0';
            target = sp + 1;
        }
        haudit_row base = {.at_ms = c->last_ms,
                           .first_ms = c->first_ms ? c->first_ms : 1,
                           .who = "-",
                           .role = "none",
                           .peer = c->addr,
                           .method = methods[i],
                           .target = target,
                           .token_prefix = c->prefix};
        if (c->failed) {
            rows[n] = base;
            rows[n].status = 401;
            rows[n++].attempts = c->failed;
        }
        if (c->refused) {
            rows[n] = base;
            rows[n].status = 429;
            rows[n++].attempts = c->refused;
        }
    }
    j->failed = haudit_write(j->lane->rw, rows, n) != 0;
out:
    free(rows);
    free(methods);
}

static void officers__work(uv_work_t *w)
{
    officers_job *j = w->data;
    switch (j->kind) {
    case JOB_FAILURES:
        officers__write_failures(j);
        return;
    case JOB_GAPS:
    case JOB_INDICATOR:
    case JOB_REVIEWS:
        officers__run_report(j);
        break;
    case JOB_CATALOGUE: {
        json_t *c = officers__catalogue();
        if (c == NULL)
            officers__error(j, 500, "out of memory");
        else
            officers__report(j, c, "indicators");
        break;
    }
    case JOB_SWEEPS: {
        json_t *a = NULL;
        if (sweeps_list(j->lane->ro, j->limit ? j->limit : OFFICERS_LIST_DEFAULT, &a) != 0)
            officers__error(j, 503, "the sweeps could not be read; try again");
        else
            officers__report(j, a, "sweeps");
        break;
    }
    case JOB_AUDIT: {
        json_t *a = NULL;
        if (haudit_list(j->lane->rw, j->limit ? j->limit : OFFICERS_LIST_DEFAULT, &a) != 0)
            officers__error(j, 503, "the audit log is unavailable; try again");
        else
            officers__report(j, a, "audit");
        break;
    }
    case JOB_OPENAPI:
        /* The description compiled in from docs/openapi/hub.json, copied: a body is freed. */
        if ((j->body = malloc(openapi_hub_len)) == NULL) {
            officers__error(j, 500, "out of memory");
        } else {
            memcpy(j->body, openapi_hub, openapi_hub_len);
            j->len = openapi_hub_len;
            j->status = 200;
            j->ctype = NULL;
        }
        break;
    case JOB_ANSWER:
        break;
    }
    haudit_row row = {.at_ms = clock_now_ms(),
                      .who = j->who,
                      .role = j->role,
                      .peer = j->peer,
                      .method = j->method,
                      .target = j->target,
                      .status = j->status,
                      .attempts = 1};
    /* A read that cannot be audited is not served; a refusal is sent anyway. */
    if (!j->audited && haudit_write(j->lane->rw, &row, 1) != 0 && j->status < 300)
        officers__error(j, 503, "the audit log is unavailable; try again");
}

static void officers__maybe_free(officers *o);
static void officers__run(officers *o, officers_job *j, officers_lane *lane);

static void officers__job_free(officers_job *j)
{
    free(j->body);
    free(j->counts);
    free(j);
}

/* Sends j's answer (on the loop) and frees j. */
static void officers__finish(officers_job *j)
{
    officers *o = j->o;
    if (j->kind == JOB_FAILURES) {
        o->flushing = 0;
        if (j->failed) {
            unsigned n = 0;
            for (size_t i = 0; i < j->n_counts; i++)
                n += j->counts[i].failed + j->counts[i].refused;
            /* The log line is then the only record of them. */
            log_error("%u failed token attempts of %zu (address, token prefix) pairs were not "
                      "written to the audit",
                      n, j->n_counts);
        }
    } else {
        http_respond(j->r, j->status, j->ctype, j->body, j->len);
    }
    officers__job_free(j);
}

static void officers__after(uv_work_t *w, int status)
{
    officers_job *j = w->data;
    officers *o = j->o;
    officers_lane *lane = j->lane;
    lane->busy = 0;
    o->running--;
    if (status != 0) {
        if (j->kind == JOB_FAILURES)
            j->failed = 1;
        else
            officers__error(j, 503, "the hub is stopping; try again");
    }
    officers__finish(j);
    officers_job *next = o->qhead;
    if (next != NULL) {
        o->qhead = next->next;
        if (o->qhead == NULL)
            o->qtail = NULL;
        o->qlen--;
        officers__run(o, next, lane);
    }
    officers__maybe_free(o);
}

static void officers__run(officers *o, officers_job *j, officers_lane *lane)
{
    j->lane = lane;
    j->work.data = j;
    lane->busy = 1;
    o->running++;
    int rc = uv_queue_work(o->loop, &j->work, officers__work, officers__after);
    if (rc != 0) {
        log_error("officers: cannot queue work: %s", uv_strerror(rc));
        lane->busy = 0;
        o->running--;
        if (j->kind == JOB_FAILURES)
            j->failed = 1;
        else
            officers__error(j, 503, "the hub is busy; try again");
        officers__finish(j);
    }
}

/* Runs j on a free lane, or queues it. */
static void officers__submit(officers *o, officers_job *j)
{
    for (int i = 0; i < OFFICERS_LANES; i++) {
        if (!o->lanes[i].busy) {
            officers__run(o, j, &o->lanes[i]);
            return;
        }
    }
    if (o->qlen >= OFFICERS_QUEUE_MAX) {
        if (j->kind == JOB_FAILURES)
            j->failed = 1;
        else
            officers__error(j, 503, "the hub is busy; try again");
        officers__finish(j);
        return;
    }
    j->next = NULL;
    if (o->qtail)
        o->qtail->next = j;
    else
        o->qhead = j;
    o->qtail = j;
    o->qlen++;
}

/* Writes the failures counted since the last batch, in one transaction. */
static void officers__flush(officers *o)
{
    if (o->flushing || !limiter_pending(o->lim))
        return;
    officers_job *j = calloc(1, sizeof(*j));
    limiter_count *c = calloc(LIMITER_SLOTS + 1, sizeof(*c));
    if (j == NULL || c == NULL) {
        free(j);
        free(c);
        return; /* the counts stay in the limiter for the next try */
    }
    j->o = o;
    j->kind = JOB_FAILURES;
    j->counts = c;
    j->n_counts = limiter_drain(o->lim, c, LIMITER_SLOTS + 1);
    o->flushing = 1;
    officers__submit(o, j);
}

static void officers__on_timer(uv_timer_t *t)
{
    officers__flush(t->data);
}

/* The limiter's answer to a request without a valid token: 401, or 429 with Retry-After
 * while its (address, token prefix) pair is blocked; counted for the audit's next batch. */
static void officers__refuse_as(officers *o, http_req *r, const char *authorization);

static void officers__refuse(officers *o, http_req *r)
{
    officers__refuse_as(o, r, http_req_header(r, "Authorization"));
}

/* The same for a token given otherwise than in the Authorization header (a sign-in's). */
static void officers__refuse_as(officers *o, http_req *r, const char *authorization)
{
    char peer[64], addr[LIMITER_ADDR_MAX], prefix[LIMITER_PREFIX_MAX], what[LIMITER_WHAT_MAX];
    char path[LIMITER_WHAT_MAX], ra[16];
    unsigned retry = 0;
    officers__printable(peer, sizeof(peer), http_req_peer(r));
    officers__printable(path, sizeof(path), http_req_path(r));
    limiter_addr(peer, addr);
    limiter_prefix(authorization, NULL, prefix);
    snprintf(what, sizeof(what), "%.15s %s", http_req_method(r), path);
    static const char too_many[] = "{\"error\":\"too many failed attempts with this token; "
                                   "retry after the time given\"}";
    static const char unauthorised[] = "{\"error\":\"a valid bearer token is required\"}";
    switch (limiter_fail(o->lim, addr, prefix, NULL, what, clock_now_ms(), &retry)) {
    case LIMITER_BLOCKED:
        snprintf(ra, sizeof(ra), "%u", retry);
        http_add_header(r, "Retry-After", ra);
        http_respond(r, 429, NULL, too_many, sizeof(too_many) - 1);
        return;
    case LIMITER_TRIPPED:
        log_warn("officers: %s: token prefix %s blocked after repeated failures (last: %s)", addr,
                 prefix, what);
        break;
    case LIMITER_FAILED:
        break;
    }
    http_add_header(r, "WWW-Authenticate", "Bearer");
    http_respond(r, 401, NULL, unauthorised, sizeof(unauthorised) - 1);
}

/* The parameters each route takes. */
static const char *const officers__gaps_params[] = {"period", "sort", "format", NULL};
static const char *const officers__indicator_params[] = {
    "period", "by", "series", "municipality", "district", "format", NULL};
static const char *const officers__audit_params[] = {"limit", NULL};
static const char *const officers__sweeps_params[] = {"limit", "format", NULL};
static const char *const officers__reviews_params[] = {"period", "format", NULL};
static const char *const officers__no_params[] = {NULL};

/* Refuses a parameter the route does not take. Returns 0 or -1 with err. */
static int officers__params_ok(const query_pairs *q, const char *const *names, char *err,
                               size_t errlen)
{
    for (size_t i = 0; i < q->n; i++) {
        int ok = 0;
        for (int k = 0; names[k]; k++)
            ok |= strcmp(names[k], q->p[i].name) == 0;
        if (!ok) {
            snprintf(err, errlen, "parameter \"%s\" is not accepted here", q->p[i].name);
            return -1;
        }
    }
    const char *fmt = query_get(q, "format");
    if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0) {
        snprintf(err, errlen, "format \"%s\" is not json or csv", fmt);
        return -1;
    }
    return 0;
}

/* A code of 1..6 decimal digits, at most limit, written as the geography writes it (no sign,
 * no leading 0: one code, one spelling). */
static int officers__number(const char *v, unsigned long limit, unsigned long *out)
{
    char *end = NULL;
    if (v[0] < '1' || v[0] > '9' || strlen(v) > 6)
        return -1;
    unsigned long x = strtoul(v, &end, 10);
    if (*end != '\0' || x == 0 || x > limit)
        return -1;
    *out = x;
    return 0;
}

/* Fills j's route and query from r. Returns 0, or -1 with j's answer set (a refusal). */
static int officers__route(officers_job *j, http_req *r, enum tokens_role role)
{
    const char *path = http_req_path(r);
    char err[700];
    query_pairs q;
    const char *const *names = NULL;
    if (strcmp(http_req_method(r), "GET") != 0) {
        http_add_header(r, "Allow", "GET");
        officers__error(j, 405, "only GET is served here");
        return -1;
    }
    if (strcmp(path, "/v1/sweeps") == 0) {
        j->kind = JOB_SWEEPS;
        names = officers__sweeps_params;
    } else if (strcmp(path, "/v1/reviews") == 0) {
        j->kind = JOB_REVIEWS;
        names = officers__reviews_params;
    } else if (strcmp(path, "/v1/gaps") == 0) {
        j->kind = JOB_GAPS;
        names = officers__gaps_params;
    } else if (strcmp(path, "/v1/indicators") == 0) {
        j->kind = JOB_CATALOGUE;
        names = officers__no_params;
    } else if (strncmp(path, "/v1/indicators/", 15) == 0 &&
               strlen(path + 15) <= OFFICERS_CODE_MAX) {
        j->kind = JOB_INDICATOR;
        names = officers__indicator_params;
        snprintf(j->code, sizeof(j->code), "%s", path + 15);
    } else if (strcmp(path, "/v1/audit") == 0) {
        j->kind = JOB_AUDIT;
        names = officers__audit_params;
    } else if (strcmp(path, "/v1/openapi.json") == 0) {
        /* Any valid token reads it, like the federal API's: /healthz stays the one route
         * answered without one, and every read of the hub is audited. */
        j->kind = JOB_OPENAPI;
        names = officers__no_params;
    } else {
        officers__error(j, 404, "not found");
        return -1;
    }
    if (query_parse(http_req_query(r), &q, err, sizeof(err)) != 0 ||
        officers__params_ok(&q, names, err, sizeof(err)) != 0) {
        officers__error(j, 400, err);
        return -1;
    }
    char norm[QUERY_NORM_MAX];
    if (query_format(&q, norm, sizeof(norm)) != 0) {
        officers__error(j, 400, "query string is too long");
        return -1;
    }
    /* What is read is audited in its one spelling (a refused query stays as received). */
    officers__set_target(j, path, norm);
    const char *v;
    if ((v = query_get(&q, "period")) != NULL) {
        j->has_period = 1;
        snprintf(j->period, sizeof(j->period), "%s", v);
    }
    if ((v = query_get(&q, "sort")) != NULL)
        snprintf(j->sort, sizeof(j->sort), "%s", v);
    if ((v = query_get(&q, "by")) != NULL) {
        j->has_by = 1;
        snprintf(j->by, sizeof(j->by), "%s", v);
    }
    if ((v = query_get(&q, "series")) != NULL) {
        j->has_series = 1;
        snprintf(j->series, sizeof(j->series), "%s", v);
    }
    j->csv = (v = query_get(&q, "format")) != NULL && strcmp(v, "csv") == 0;
    unsigned long x = 0;
    if ((v = query_get(&q, "municipality")) != NULL) {
        if (officers__number(v, 99999, &x) != 0) {
            officers__error(j, 400, "municipality must be a local level code");
            return -1;
        }
        j->municipality = (uint32_t)x;
    }
    if ((v = query_get(&q, "district")) != NULL) {
        if (officers__number(v, 77, &x) != 0) {
            officers__error(j, 400, "district must be a district code 1..77");
            return -1;
        }
        j->district = (unsigned)x;
    }
    if ((v = query_get(&q, "limit")) != NULL) {
        if (officers__number(v, HAUDIT_LIST_MAX, &x) != 0) {
            officers__error(j, 400, "limit must be a number from 1 to 10000");
            return -1;
        }
        j->limit = (long)x;
    }
    if (j->kind == JOB_REVIEWS && !j->has_period) {
        officers__error(j, 400, "period is required: one month, e.g. period=BS2083-04");
        return -1;
    }
    if ((j->kind == JOB_AUDIT || j->kind == JOB_SWEEPS) && role != TOKENS_ADMIN) {
        officers__error(j, 403,
                        j->kind == JOB_AUDIT ? "the audit log is for the admin role"
                                             : "sweeps are for the admin role");
        return -1;
    }
    return 0;
}

/* POST /v1/sweeps/<id>/confirm or /undo (admin): decided on the loop by the ingest, which
 * owns the records; the answer is audited like a read. Returns 1 when path is such a route
 * (j's answer set), 0 when not. */
static int officers__sweep_decision(officers *o, officers_job *j, http_req *r,
                                    enum tokens_role role)
{
    const char *path = http_req_path(r);
    char verb[16] = "";
    long long id = 0;
    int n = 0;
    if (strncmp(path, "/v1/sweeps/", 11) != 0)
        return 0;
    if (path[11] < '1' || path[11] > '9' ||
        sscanf(path + 11, "%18lld/%15[a-z]%n", &id, verb, &n) != 2 || path[11 + n] != '\0' ||
        id <= 0 || (strcmp(verb, "confirm") != 0 && strcmp(verb, "undo") != 0)) {
        officers__error(j, 404, "not found (POST /v1/sweeps/<id>/confirm or /undo)");
        return 1;
    }
    if (strcmp(http_req_method(r), "POST") != 0) {
        http_add_header(r, "Allow", "POST");
        officers__error(j, 405, "a decision on a sweep is a POST");
        return 1;
    }
    if (http_req_query(r)[0] != '\0') {
        officers__error(j, 400, "a decision on a sweep takes no parameters");
        return 1;
    }
    if (role != TOKENS_ADMIN) {
        officers__error(j, 403, "sweeps are decided by the admin role");
        return 1;
    }
    if (o->opts.sweep_decide == NULL) {
        officers__error(j, 503, "sweeps cannot be decided on this hub");
        return 1;
    }
    uint32_t mun = 0;
    int undo = strcmp(verb, "undo") == 0;
    int rc = o->opts.sweep_decide(o->opts.ud, (int64_t)id, undo, j->who, &mun);
    char msg[200];
    if (rc == REINT_ENOTFOUND) {
        officers__error(j, 404, "no such sweep");
    } else if (rc == REINT_ESTALE) {
        officers__error(j, 409, "this sweep was already decided (GET /v1/sweeps shows how)");
    } else if (rc != 0) {
        officers__error(j, 503, "the decision could not be stored; try again");
    } else {
        json_t *a = json_pack("{s:I, s:I, s:s}", "sweep", (json_int_t)id, "municipality",
                              (json_int_t)mun, "state", undo ? "undone" : "confirmed");
        snprintf(msg, sizeof(msg), "sweep %lld %s", id, undo ? "undone" : "confirmed");
        if (a == NULL)
            officers__error(j, 500, "out of memory");
        else
            officers__report(j, a, "sweep");
        log_info("%s %s: %s", j->role, j->who, msg);
    }
    return 1;
}

/* Sets j's answer to {"error": msg, "review": m} (the month as it stands). */
static void officers__review_refused(officers_job *j, int status, const char *msg,
                                     const reviews_month *m)
{
    json_t *o = json_pack("{s:s, s:o*}", "error", msg, "review", reviews_month_json(m));
    if (o == NULL) {
        officers__error(j, 500, "out of memory");
        return;
    }
    officers__report(j, o, "review");
    j->status = status;
}

/* A version or a clock of the body: a non-negative integer, or a decimal string of one (a
 * node's versions are above 2^53, which JavaScript's numbers do not hold exactly). A decimal
 * above 2^64 - 1 gives ERANGE: it is refused, not taken as 2^64 - 1. Returns 0 or -1. */
static int officers__u64(const json_t *v, uint64_t *out)
{
    const char *s = json_string_value(v);
    char *end = NULL;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (s && s[0] >= '0' && s[0] <= '9' && strlen(s) <= 20) {
        errno = 0;
        *out = strtoull(s, &end, 10);
        if (*end == '\0' && errno == 0)
            return 0;
    }
    return -1;
}

/* The decision's JSON body: {"decision": "approve" | "return", "comment": "...",
 * "seen_version": N, "seen_clock": N} (seen_clock optional: the month's clock as shown, which
 * returning an approved month asks). Returns 0, or -1 with j's answer set (400 or 422). */
static int officers__decision_body(officers_job *j, http_req *r, int *approve, reviews_seen *seen,
                                   char *comment, size_t commentlen)
{
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    json_error_t je;
    char why[200];
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        /* A comment that is not UTF-8 is a refused field, not a malformed request. */
        enum json_error_code code = json_error_code(&je);
        if (code == json_error_invalid_utf8) {
            officers__error(j, 422, "comment is not valid UTF-8");
        } else if (code == json_error_duplicate_key) {
            /* jansson's text does not name the key; its position does. */
            snprintf(why, sizeof(why),
                     "the body gives a field twice (the second ends at character %d): each of "
                     "decision, comment and seen_version is given once",
                     je.position);
            officers__error(j, 422, why);
        } else if (code == json_error_null_character) {
            officers__error(j, 422, "a string of the body holds a NUL character (\\u0000)");
        } else {
            officers__error(j, 400,
                            "the body is not JSON: {\"decision\": \"approve\" | "
                            "\"return\", \"comment\": \"...\", \"seen_version\": N}");
        }
        return -1;
    }
    int rc = -1;
    const char *key;
    json_t *v;
    if (!json_is_object(o)) {
        officers__error(j, 400, "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "decision") != 0 && strcmp(key, "comment") != 0 &&
            strcmp(key, "seen_version") != 0 && strcmp(key, "seen_clock") != 0) {
            snprintf(why, sizeof(why),
                     "field \"%.40s\" is not one of decision, comment, "
                     "seen_version, seen_clock",
                     key);
            officers__error(j, 422, why);
            goto out;
        }
    }
    const char *d = json_string_value(json_object_get(o, "decision"));
    if (d == NULL || (strcmp(d, "approve") != 0 && strcmp(d, "return") != 0)) {
        officers__error(j, 422, "decision must be \"approve\" or \"return\"");
        goto out;
    }
    *approve = strcmp(d, "approve") == 0;
    if (officers__u64(json_object_get(o, "seen_version"), &seen->version) != 0) {
        officers__error(j, 422,
                        "seen_version must be the version of the month shown by GET "
                        "/v1/reviews (an integer)");
        goto out;
    }
    json_t *sc = json_object_get(o, "seen_clock");
    seen->clock = 0;
    if (sc && (officers__u64(sc, &seen->clock) != 0 || seen->clock == 0)) {
        officers__error(j, 422,
                        "seen_clock must be the clock of the month shown by GET /v1/reviews "
                        "(an integer)");
        goto out;
    }
    json_t *c = json_object_get(o, "comment");
    const char *cs = c ? json_string_value(c) : "";
    size_t clen = c ? json_string_length(c) : 0;
    if (cs == NULL) {
        officers__error(j, 422, "comment must be a string");
        goto out;
    }
    if (review_comment_ok(cs, clen, why, sizeof(why)) != 0 || strlen(cs) != clen) {
        officers__error(j, 422, strlen(cs) != clen ? "comment holds a NUL character" : why);
        goto out;
    }
    if (!*approve && utf8_blank(cs, clen)) {
        officers__error(j, 422, "a month is returned with a comment saying what to correct");
        goto out;
    }
    snprintf(comment, commentlen, "%s", cs);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* POST /v1/reviews/<municipality>/<period> (reviewer): decided on the loop by the ingest,
 * which owns the store; the answer is audited like a read. Returns 1 when path is such a
 * route (j's answer set), 0 when not. */
static int officers__review_decision(officers *o, officers_job *j, http_req *r,
                                     enum tokens_role role)
{
    const char *path = http_req_path(r);
    char period[32] = "", why[300];
    unsigned long code = 0;
    int n = 0, bs = 0, approve = 0;
    int32_t ym = 0;
    if (strncmp(path, "/v1/reviews/", 12) != 0)
        return 0;
    /* The code as the geography writes it: digits, the first not 0 (sscanf's %lu also took
     * +10703, 010703 and -..., other addresses of one month). */
    if (path[12] < '1' || path[12] > '9' ||
        sscanf(path + 12, "%6lu/%20[A-Za-z0-9-]%n", &code, period, &n) != 2 ||
        path[12 + n] != '\0') {
        officers__error(j, 404, "not found (POST /v1/reviews/<municipality>/<period>)");
        return 1;
    }
    if (strcmp(http_req_method(r), "POST") != 0) {
        http_add_header(r, "Allow", "POST");
        officers__error(j, 405, "a decision on a month is a POST");
        return 1;
    }
    if (http_req_query(r)[0] != '\0') {
        officers__error(j, 400, "a decision takes its fields in the body, not the query");
        return 1;
    }
    if (role != TOKENS_REVIEWER) {
        officers__error(j, 403, "months are approved or returned by the reviewer role");
        return 1;
    }
    const geo_local_level *g = geo_find((uint32_t)code);
    if (g == NULL) {
        officers__error(j, 404, "no such municipality (an official local level code)");
        return 1;
    }
    if (g->province != o->province) {
        snprintf(why, sizeof(why),
                 "municipality %lu is in province %u: this hub's reviewers decide for province %u "
                 "only",
                 code, g->province, o->province);
        officers__error(j, 403, why);
        return 1;
    }
    int prc = review_parse_month(period, &bs, &ym);
    if (prc != 0) {
        officers__error(j, 400,
                        prc == REINT_ERANGE
                            ? "that BS month is outside the calendar table (BS2000-01..BS2099-12)"
                            : "the period of a decision is one month: BS2083-04 or 2026-07");
        return 1;
    }
    reviews_seen seen = {0, 0};
    char *comment = malloc(REVIEW_COMMENT_MAX + 1);
    reviews_month *m = calloc(1, sizeof(*m));
    if (comment == NULL || m == NULL) {
        officers__error(j, 503, "out of memory");
        goto out;
    }
    if (officers__decision_body(j, r, &approve, &seen, comment, REVIEW_COMMENT_MAX + 1) != 0)
        goto out;
    if (o->opts.review_decide == NULL) {
        officers__error(j, 503, "months cannot be decided on this hub");
        goto out;
    }
    /* A decision taken is audited in its own transaction, as answered 200 now. */
    haudit_row audit = {.at_ms = clock_now_ms(),
                        .who = j->who,
                        .role = j->role,
                        .peer = j->peer,
                        .method = j->method,
                        .target = j->target,
                        .status = 200,
                        .attempts = 1};
    int rc = o->opts.review_decide(o->opts.ud, (uint32_t)code, bs, ym, approve, &seen, j->who,
                                   comment, &audit, m);
    j->audited = rc == 0;
    switch (rc) {
    case 0: {
        json_t *a = reviews_month_json(m);
        if (a == NULL) {
            officers__error(j, 500, "out of memory");
        } else {
            officers__report(j, json_pack("{s:o}", "review", a), "review");
            log_info("%s %s: municipality:%lu %s %s at version %llu", j->role, j->who, code, period,
                     approve ? "approved" : "returned", (unsigned long long)seen.version);
        }
        break;
    }
    case REINT_ERANGE:
        snprintf(why, sizeof(why),
                 "municipality %lu closes %s months: decide on a period of "
                 "that calendar",
                 code, m->bs ? "BS" : "Gregorian (AD)");
        officers__error(j, 400, why);
        break;
    case REINT_ESTALE:
        if (seen.version == m->version)
            snprintf(why, sizeof(why),
                     "the month was decided since you saw it (clock %llu, now %llu): look at "
                     "it again",
                     (unsigned long long)seen.clock, (unsigned long long)m->clock);
        else
            snprintf(why, sizeof(why),
                     "the month changed since you saw it (version %llu, now %llu): look at it "
                     "again",
                     (unsigned long long)seen.version, (unsigned long long)m->version);
        officers__review_refused(j, 409, why, m);
        break;
    case REINT_EEXIST:
        snprintf(why, sizeof(why),
                 approve ? "the month is already approved at this version (by %s)"
                         : "the month is already approved at this version (by %s): to return "
                           "it, give the seen_clock of the approval you saw",
                 m->decided_by);
        officers__review_refused(j, 409, why, m);
        break;
    case REINT_EINVAL:
        officers__review_refused(j, 409,
                                 m->state == REINT__V1__MONTH_STATE__MONTH_STATE_RETURNED
                                     ? "the month was returned and is open at the node until its "
                                       "clerk closes it again"
                                     : "the month is open: its clerk has not closed it",
                                 m);
        break;
    default:
        officers__error(j, 503, "the decision could not be stored; try again");
    }
out:
    free(comment);
    free(m);
    return 1;
}

/* The officer a session stands for: its subject is "role:name" (set at sign-in). Returns
 * the name (owned by the table, valid until its next call) with *role, or NULL. */
static const char *officers__session_who(const session_info *si, enum tokens_role *role)
{
    const char *colon = strchr(si->clerk, ':');
    char rn[16];
    if (colon == NULL || (size_t)(colon - si->clerk) >= sizeof(rn))
        return NULL;
    memcpy(rn, si->clerk, (size_t)(colon - si->clerk));
    rn[colon - si->clerk] = '\0';
    return tokens_role_parse(rn, role) == 0 ? colon + 1 : NULL;
}

/* GET /v1/session's answer: who is signed in, and what the pages need to know about the
 * province (its local levels with their districts, for the tables and the map) and today. */
static json_t *officers__session_json(const officers *o, const session_info *si)
{
    enum tokens_role role = TOKENS_OFFICER;
    const char *who = officers__session_who(si, &role);
    char periods[PERIOD_KINDS][PERIOD_MAX], today[16];
    int32_t day = clock_today_nepal();
    if (period_of_day(day, periods) != 0)
        memset(periods, 0, sizeof(periods));
    bscal_format(day, 1, today, sizeof(today));
    json_t *levels = json_array();
    unsigned n;
    const geo_local_level *all = geo_all(&n);
    for (unsigned i = 0; levels && i < n; i++) {
        if (all[i].province != o->province)
            continue;
        if (json_array_append_new(
                levels, json_pack("{s:I, s:s, s:I, s:s, s:s}", "code", (json_int_t)all[i].code,
                                  "name", all[i].name, "district", (json_int_t)all[i].district,
                                  "district_name", all[i].district_name, "type", all[i].type)) !=
            0) {
            json_decref(levels);
            return NULL;
        }
    }
    if (levels == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:o}", "who",
                     who ? who : "", "role", tokens_role_name(role), "csrf", si->csrf, "expires_ms",
                     (json_int_t)si->expires_ms, "idle_ms", (json_int_t)SESSION_IDLE_MS, "province",
                     (json_int_t)o->province, "province_name", geo_province_name(o->province),
                     "today_bs", today, "bs_month", periods[PERIOD_BS_MONTH], "fiscal_year",
                     periods[PERIOD_FISCAL_YEAR], "local_levels", levels);
}

static void officers__respond_json(http_req *r, int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        http_respond(r, 500, NULL, "{\"error\":\"out of memory\"}", 25);
        return;
    }
    http_respond(r, status, "application/json", text, strlen(text));
    free(text);
}

static const char *officers__token(officers *o, const char *authorization, enum tokens_role *role);

/* /v1/session: POST {"token"} signs in (a session for the token's officer and role; a wrong
 * token is counted by the limiter like any request without a valid one), GET shows the
 * session, DELETE signs out. Sign-ins are logged, not audited: a session's every read is. */
static void officers__session(officers *o, http_req *r)
{
    const char *m = http_req_method(r);
    session_info si;
    if (strcmp(m, "POST") == 0) {
        size_t len = 0;
        const char *body = http_req_body(r, &len);
        char bearer[300], subject[TOKENS_NAME_MAX + 16];
        /* Another site's form could otherwise sign the officer's browser in as someone else,
         * whose name the officer's decisions would then carry. */
        if (!session_same_site(r, 0)) {
            log_security("a dashboard sign-in from %s refused: it came from another site",
                         http_req_peer(r));
            officers__respond_json(
                r, 403, json_pack("{s:s}", "error", "sign in from the dashboard's own page"));
            return;
        }
        enum tokens_role role = TOKENS_OFFICER;
        json_t *b = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
        const char *token = json_string_value(json_object_get(b, "token"));
        if (!json_is_object(b) || token == NULL || json_object_size(b) != 1 ||
            strlen(token) > 256) {
            json_decref(b);
            officers__respond_json(r, 400,
                                   json_pack("{s:s}", "error", "sign in with {\"token\": ...}"));
            return;
        }
        snprintf(bearer, sizeof(bearer), "Bearer %s", token);
        json_decref(b);
        const char *who = officers__token(o, bearer, &role);
        if (who == NULL) {
            officers__refuse_as(o, r, bearer);
            return;
        }
        snprintf(subject, sizeof(subject), "%s:%s", tokens_role_name(role), who);
        if (session_create(o->sessions, r, subject, &si) != 0) {
            officers__respond_json(r, 500, json_pack("{s:s}", "error", "no session could be made"));
            return;
        }
        log_info("%s %s: signed in to the dashboard from %s", tokens_role_name(role), who,
                 http_req_peer(r));
        officers__respond_json(r, 200, officers__session_json(o, &si));
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        /* Signing out is a change like any other: another site may not do it for the officer
         * (a live session's CSRF token is asked; a dead one is simply forgotten). */
        if (session_check(o->sessions, r, &si) == SESSION_OK && !session_csrf_ok(&si, r)) {
            log_security("a dashboard sign-out from %s refused: no CSRF token, or another site",
                         http_req_peer(r));
            officers__respond_json(
                r, 403, json_pack("{s:s}", "error", "sign out from the dashboard's own page"));
            return;
        }
        session_end(o->sessions, r);
        http_respond(r, 204, NULL, NULL, 0);
        return;
    }
    if (strcmp(m, "GET") != 0) {
        http_add_header(r, "Allow", "GET, POST, DELETE");
        officers__respond_json(r, 405, json_pack("{s:s}", "error", "GET, POST or DELETE"));
        return;
    }
    if (session_check(o->sessions, r, &si) != SESSION_OK) {
        session_forget_cookie(o->sessions, r);
        officers__respond_json(r, 401, json_pack("{s:s}", "error", "not signed in"));
        return;
    }
    officers__respond_json(r, 200, officers__session_json(o, &si));
}

/* The officer of r's session cookie (when r carries no Authorization header): the name with
 * *role, or NULL with *status the refusal (401: no live session; 403: a request from another
 * site, or a change without the session's CSRF token). */
static const char *officers__cookie_who(officers *o, http_req *r, enum tokens_role *role,
                                        int *status)
{
    session_info si;
    *status = 401;
    if (http_req_header(r, "Authorization") != NULL || !session_has_cookie(o->sessions, r))
        return NULL;
    if (session_check(o->sessions, r, &si) != SESSION_OK)
        return NULL;
    if (!session_csrf_ok(&si, r)) {
        *status = 403;
        return NULL;
    }
    return officers__session_who(&si, role);
}

int officers_on_head(http_req *r, void *ud)
{
    officers *o = ud;
    const char *path = http_req_path(r);
    enum tokens_role role;
    int status;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/v1/session") == 0 ||
        hubweb_is_public(path) || webassets_wants_page(r))
        return 0;
    if (officers__token(o, http_req_header(r, "Authorization"), NULL) != NULL)
        return 0;
    /* A session's request is let through to the handler, which checks it again (and its CSRF
     * token, which a body may follow). */
    if (officers__cookie_who(o, r, &role, &status) != NULL || status == 403)
        return 0;
    officers__refuse(o, r);
    return 1;
}

void officers_handle(http_req *r, void *ud)
{
    officers *o = ud;
    enum tokens_role role = TOKENS_OFFICER;
    int status = 401;
    if (strcmp(http_req_path(r), "/healthz") == 0) {
        if (!webassets_refuse_method(r))
            http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    if (hubweb_handle(r))
        return;
    if (strcmp(http_req_path(r), "/v1/session") == 0) {
        officers__session(o, r);
        return;
    }
    /* Each request is checked against the tokens as they are now: a token removed from the
     * file and reloaded is refused from the next request on, on any connection (and every
     * session ends with the reload). The limiter comes after the check, so a valid token is
     * never limited. */
    const char *who = officers__token(o, http_req_header(r, "Authorization"), &role);
    if (who == NULL)
        who = officers__cookie_who(o, r, &role, &status);
    if (who == NULL && status == 403) {
        officers__respond_json(r, 403,
                               json_pack("{s:s}", "error",
                                         "a change needs the session's X-CSRF-Token, from this "
                                         "site's own pages"));
        return;
    }
    if (who == NULL) {
        if (session_has_cookie(o->sessions, r))
            session_forget_cookie(o->sessions, r);
        officers__refuse(o, r);
        return;
    }
    officers_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        http_respond(r, 503, NULL, "{\"error\":\"out of memory\"}", 25);
        return;
    }
    j->o = o;
    j->r = r;
    j->at_ms = clock_now_ms();
    /* Nepal's day, like the rollups' referral rule: a BS month ends at midnight in Nepal, so
     * the report's last month and its timeliness turn then, not 5 h 45 min later at UTC's. */
    j->today = clock_today_nepal();
    j->role = tokens_role_name(role);
    snprintf(j->who, sizeof(j->who), "%s", who);
    officers__printable(j->peer, sizeof(j->peer), http_req_peer(r));
    officers__printable(j->method, sizeof(j->method), http_req_method(r));
    officers__set_target(j, http_req_path(r), http_req_query(r));
    if (officers__sweep_decision(o, j, r, role) || officers__review_decision(o, j, r, role))
        j->kind = JOB_ANSWER;
    else if (officers__route(j, r, role) != 0)
        j->kind = JOB_ANSWER;
    else
        log_info("%s %s: GET %s", j->role, j->who, j->target);
    officers__submit(o, j);
}

int officers_reload_tokens(officers *o, int signalled, int last_try)
{
    char err[512];
    tokens_table *t = NULL;
    /* last_try 2: a file renamed into place, whole by its writer's word: emptied is taken (the
     * last token withdrawn), but one that does not parse is looked at again, as from the
     * watch (an editor writing a new file in several steps is caught between them). */
    int whole = last_try == 2, wait = !signalled && last_try != 1;
    if (o->tokens_path[0] == '\0')
        return 0;
    int gone = access(o->tokens_path, F_OK) != 0 && errno == ENOENT;
    int failed = gone || tokens_load(&t, o->tokens_path, err, sizeof(err)) != 0;
    /* From the watch, a file gone, unparsable or emptied may be one being rewritten. */
    if (wait && (failed || (!whole && tokens_count(t) == 0 && tokens_count(o->tokens) > 0))) {
        tokens_free(t);
        return 1;
    }
    if (gone)
        log_warn("tokens file %s is gone: every officer's request is refused", o->tokens_path);
    else if (failed)
        log_error("tokens not reloaded: %s; every officer's request is refused until the file "
                  "is fixed",
                  err);
    else
        log_info("tokens reloaded from %s", o->tokens_path);
    /* A session stands for a token: unless tokens were only added, everyone signs in again. */
    int keep = !signalled && tokens_only_added(o->tokens, t);
    tokens_free(o->tokens);
    o->tokens = t;
    if (!keep)
        session_clear(o->sessions);
    return 0;
}

/* The officer whose token an Authorization value carries, or NULL, against the tokens file as
 * it is now: a token made or withdrawn a moment ago (`provincial-hub token` returns before the
 * file's watch fires) counts from the next request on, the file read again when it changed
 * (a stat a request; a file that does not parse yet keeps what is loaded). */
static const char *officers__token(officers *o, const char *authorization, enum tokens_role *role)
{
    int changed =
        authorization && o->tokens_path[0] ? tokens_changed(o->tokens, o->tokens_path) : 0;
    /* A file renamed into place is whole: taken as it is, even emptied (the last token
     * revoked); one written in place may be half-written, and waits for the watch. */
    if (changed)
        (void)officers_reload_tokens(o, 0, changed == 2 ? 2 : 0);
    return tokens_check_role(o->tokens, authorization, role);
}

static void officers__free(officers *o)
{
    for (int i = 0; i < OFFICERS_LANES; i++) {
        store_close(o->lanes[i].ro);
        store_close(o->lanes[i].rw);
    }
    tokens_free(o->tokens);
    session_table_free(o->sessions);
    limiter_free(o->lim);
    free(o);
}

static void officers__maybe_free(officers *o)
{
    if (o->stopping && o->running == 0 && o->qhead == NULL && !o->timer_open)
        officers__free(o);
}

static void officers__on_timer_closed(uv_handle_t *h)
{
    officers *o = h->data;
    o->timer_open = 0;
    officers__maybe_free(o);
}

int officers_start(officers **out, const officers_opts *opts, char *err, size_t errlen)
{
    int rc = REINT_ENOMEM;
    officers *o = calloc(1, sizeof(*o));
    *out = NULL;
    if (o == NULL || (o->lim = limiter_new(opts->max_failures, opts->window_s)) == NULL ||
        (o->sessions = session_table_new(1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    o->loop = opts->loop;
    o->province = opts->province;
    o->opts = *opts;
    o->opts.db_path = o->opts.tokens = NULL; /* not kept: copied below where needed */
    snprintf(o->tokens_path, sizeof(o->tokens_path), "%s", opts->tokens ? opts->tokens : "");
    if (o->tokens_path[0] && access(o->tokens_path, F_OK) == 0 &&
        (rc = tokens_load(&o->tokens, o->tokens_path, err, errlen)) != 0)
        goto fail;
    /* As a node says: without it, every officer's 401 would be the only sign. */
    if (o->tokens_path[0] && tokens_count(o->tokens) == 0)
        log_warn("no officers' tokens in %s yet (create one with `provincial-hub --config FILE "
                 "token NAME`): every officer's request is refused until then",
                 o->tokens_path);
    for (int i = 0; i < OFFICERS_LANES; i++) {
        officers_lane *l = &o->lanes[i];
        if ((rc = gaps_reader_open(opts->db_path, &l->ro, err, errlen)) != 0 ||
            (rc = store_open(opts->db_path, 0, NULL, &l->rw, err, errlen)) != 0)
            goto fail;
        sqlite3_busy_timeout(l->rw, OFFICERS_AUDIT_BUSY_MS);
        if (i == 0 && (rc = haudit_open(l->rw, err, errlen)) != 0)
            goto fail;
    }
    if ((rc = uv_timer_init(o->loop, &o->timer)) != 0) {
        snprintf(err, errlen, "timer: %s", uv_strerror(rc));
        goto fail;
    }
    o->timer.data = o;
    o->timer_open = 1;
    if ((rc = uv_timer_start(&o->timer, officers__on_timer, OFFICERS_FLUSH_MS,
                             OFFICERS_FLUSH_MS)) != 0) {
        snprintf(err, errlen, "timer: %s", uv_strerror(rc));
        o->stopping = 1;
        uv_close((uv_handle_t *)&o->timer, officers__on_timer_closed);
        return rc;
    }
    *out = o;
    return 0;
fail:
    if (o != NULL)
        officers__free(o);
    return rc;
}

void officers_stop(officers *o)
{
    if (o == NULL || o->stopping)
        return;
    officers__flush(o);
    o->stopping = 1;
    if (o->timer_open) {
        uv_timer_stop(&o->timer);
        uv_close((uv_handle_t *)&o->timer, officers__on_timer_closed);
    }
}
