#include "faudit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FAUDIT_MAX_BODY (64u * 1024 * 1024)

void faudit_read_params(const freq *f, const char *v[FAUDIT_READ_PARAMS])
{
    v[0] = f->who;
    v[1] = f->role_label;
    v[2] = f->peer;
    v[3] = f->target;
}

/* Sends the answer kept in f once its audit row is written. */
static void faudit__on_written(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    freq *f = ud;
    if (err) {
        log_error("audit insert failed: %s", err);
        if (f->status == 200) {
            freq_error(f, 503, "the audit log is unavailable; try again");
            return;
        }
    } else {
        f->env->m->audit_rows++;
    }
    freq_finish(f, f->status, f->ctype, f->body ? f->body : "", f->body_len);
}

void faudit_respond(freq *f, int status, const char *ctype, char *body, size_t len)
{
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    const char *v[6] = {
        f->who[0] ? f->who : "-", f->role_label[0] ? f->role_label : "none", f->peer, f->target, st,
        http_req_method(f->r)};
    f->status = status;
    f->ctype = ctype;
    f->body = body;
    f->body_len = len;
    if (f->open) {
        /* Counted by fapi.c per route and day, never one row each. */
        freq_finish(f, status, ctype, body ? body : "", len);
        return;
    }
    if (db_query(f->env->db,
                 "INSERT INTO audit(who, role, peer, method, target, status)"
                 " VALUES ($1, $2, $3, $6, $4, $5::integer)",
                 6, v, faudit__on_written, f) != 0)
        faudit__on_written(f, NULL, "queue full");
}

void faudit_error(freq *f, int status, const char *msg)
{
    static const char fallback[] = "{\"error\":\"error\"}\n";
    sbuf b;
    sbuf_init(&b, 4096);
    sbuf_puts(&b, "{\"error\":");
    sbuf_json_str(&b, msg);
    sbuf_puts(&b, "}\n");
    if (status == 401)
        http_add_header(f->r, "WWW-Authenticate", "Bearer");
    if (!b.failed) {
        faudit_respond(f, status, NULL, b.p, b.len); /* takes b.p */
        return;
    }
    sbuf_free(&b);
    /* Out of memory: the row is still written, with the fixed body. */
    char *copy = malloc(sizeof(fallback));
    if (copy == NULL) {
        freq_finish(f, status, NULL, fallback, sizeof(fallback) - 1);
        return;
    }
    memcpy(copy, fallback, sizeof(fallback));
    faudit_respond(f, status, NULL, copy, sizeof(fallback) - 1);
}

void faudit_respond_sbuf(freq *f, int status, const char *ctype, sbuf *b)
{
    if (b->failed) {
        sbuf_free(b);
        faudit_error(f, 500, "answer too large");
        return;
    }
    char *body = b->p;
    size_t len = b->len;
    sbuf_init(b, b->max); /* the buffer now belongs to f */
    faudit_respond(f, status, ctype, body, len);
}

static void faudit__on_rows(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("audit read failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 11) {
        log_error("audit read: %d columns instead of 11", PQnfields(res));
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    f->env->m->audit_rows++;
    sbuf b;
    sbuf_init(&b, FAUDIT_MAX_BODY);
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
        sbuf_printf(&b, ",\"status\":%s,\"attempts\":%s,\"first_at\":", PQgetvalue(res, i, 7),
                    PQgetvalue(res, i, 8));
        if (PQgetisnull(res, i, 9))
            sbuf_puts(&b, "null");
        else
            sbuf_json_str(&b, PQgetvalue(res, i, 9));
        sbuf_puts(&b, ",\"token_prefix\":");
        if (PQgetisnull(res, i, 10))
            sbuf_puts(&b, "null");
        else
            sbuf_json_str(&b, PQgetvalue(res, i, 10));
        sbuf_puts(&b, "}");
    }
    sbuf_puts(&b, "]}\n");
    freq_finish_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

/* One row of the batch: the method and path are the limiter's "what" ("GET /v1/x"). */
static void faudit__failure_json(sbuf *b, const limiter_count *c, int status, unsigned attempts)
{
    char method[8] = "GET";
    const char *path = c->what, *sp = strchr(c->what, ' ');
    if (sp != NULL && (size_t)(sp - c->what) < sizeof(method)) {
        memcpy(method, c->what, (size_t)(sp - c->what));
        method[sp - c->what] = '\0';
        path = sp + 1;
    }
    sbuf_printf(b, "%s{\"first_ms\":%llu,\"last_ms\":%llu,\"status\":%d,\"attempts\":%u,",
                b->len > 1 ? "," : "", (unsigned long long)c->first_ms,
                (unsigned long long)c->last_ms, status, attempts);
    sbuf_puts(b, "\"peer\":");
    sbuf_json_str(b, c->addr);
    sbuf_puts(b, ",\"prefix\":");
    sbuf_json_str(b, c->prefix);
    sbuf_puts(b, ",\"method\":");
    sbuf_json_str(b, method);
    sbuf_puts(b, ",\"target\":");
    sbuf_json_str(b, path);
    sbuf_puts(b, "}");
}

int faudit_failures(db_pool *db, const limiter_count *c, size_t n, db_cb cb, void *ud)
{
    sbuf b;
    sbuf_init(&b, FAUDIT_MAX_BODY);
    sbuf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (c[i].failed)
            faudit__failure_json(&b, &c[i], 401, c[i].failed);
        if (c[i].refused)
            faudit__failure_json(&b, &c[i], 429, c[i].refused);
    }
    sbuf_puts(&b, "]");
    if (b.failed) {
        sbuf_free(&b);
        return REINT_ENOMEM;
    }
    const char *v[1] = {b.p};
    int rc = db_query(db,
                      "INSERT INTO audit(at, first_at, who, role, peer, method, target, status,"
                      " attempts, token_prefix) SELECT to_timestamp(x.last_ms / 1000.0),"
                      " to_timestamp(x.first_ms / 1000.0), '-', 'none', x.peer, x.method, x.target,"
                      " x.status, x.attempts, x.prefix FROM json_to_recordset($1::json) AS"
                      " x(first_ms bigint, last_ms bigint, status integer, attempts integer,"
                      " peer text, prefix text, method text, target text)",
                      1, v, cb, ud);
    sbuf_free(&b);
    return rc;
}

void faudit_list(freq *f)
{
    char limit[24];
    const char *v[FAUDIT_READ_PARAMS + 1];
    snprintf(limit, sizeof(limit), "%ld", f->q.limit ? f->q.limit : 100);
    faudit_read_params(f, v);
    v[FAUDIT_READ_PARAMS] = limit;
    if (db_query(f->env->db,
                 FAUDIT_READ_SQL
                 " SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                 " who, role, peer, method, target, status, attempts,"
                 " to_char(first_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                 " token_prefix FROM audit"
                 " ORDER BY id DESC LIMIT $5::integer",
                 FAUDIT_READ_PARAMS + 1, v, faudit__on_rows, f) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}
