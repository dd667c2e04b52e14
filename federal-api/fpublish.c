#include "fpublish.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "directive.h"
#include "faudit.h"
#include "fdirectives.h"
#include "hex.h"
#include "log.h"

#define FPUBLISH_MAX_BODY (64u * 1024 * 1024)
/* A publication whose serial another one took first reads the next serial again. */
#define FPUBLISH_ATTEMPTS 16

/* A publication across its round trips: the validated draft, then its signed form. */
typedef struct fpublish_job {
    fdir_draft *draft;
    int attempts;
    Reint__V1__SignedDirective sd;
} fpublish_job;

static void fpublish__job_free(void *state)
{
    fpublish_job *j = state;
    if (j == NULL)
        return;
    fdir_draft_free(j->draft);
    directive_signed_free(&j->sd);
    free(j);
}

static void fpublish__on_list(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("directives read failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 4) {
        log_error("directives read: %d columns instead of 4", PQnfields(res));
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    f->env->m->audit_rows++;
    /* Nepal's day, as at the hubs and nodes: a directive effective from a date is in force
     * from its midnight in Nepal, 18:15 UTC the day before. */
    int32_t today = clock_today_nepal();
    sbuf b;
    sbuf_init(&b, FPUBLISH_MAX_BODY);
    sbuf_puts(&b, "{\"directives\":[");
    int first = 1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *hex = PQgetvalue(res, i, 1);
        uint8_t *body = NULL;
        size_t len = 0;
        Reint__V1__Directive *d = NULL;
        int rc = hex_decode_alloc(hex, strlen(hex), &body, &len);
        if (rc == 0)
            d = reint__v1__directive__unpack(NULL, len, body);
        free(body);
        if (rc == REINT_ENOMEM) {
            sbuf_free(&b);
            freq_error(f, 500, "out of memory");
            return;
        }
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
    freq_finish_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

void fpublish_list(freq *f)
{
    char limit[24];
    const char *v[FAUDIT_READ_PARAMS + 1];
    snprintf(limit, sizeof(limit), "%ld", f->q.limit ? f->q.limit : 100);
    faudit_read_params(f, v);
    v[FAUDIT_READ_PARAMS] = limit;
    if (db_query(f->env->db,
                 FAUDIT_READ_SQL
                 " SELECT serial, encode(body, 'hex'), published_by,"
                 " to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                 " FROM directives ORDER BY serial DESC LIMIT $5::integer",
                 FAUDIT_READ_PARAMS + 1, v, fpublish__on_list, f) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}

static void fpublish__next(freq *f);

static uint64_t fpublish__serial(const freq *f)
{
    const fpublish_job *j = f->state;
    return fdir_directive(j->draft)->serial;
}

static void fpublish__on_stored(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    fpublish_job *j = f->state;
    if (err) {
        /* A connection lost after the COMMIT was sent leaves it unknown whether the row is
         * stored: saying "not published" would have a retry publish the text twice, under
         * two serials, to every node. */
        char msg[200];
        log_error("directive %" PRIu64 " may not be stored: %s", fpublish__serial(f), err);
        snprintf(msg, sizeof(msg),
                 "the federal store failed while publishing: look for directive %" PRIu64
                 " in GET /v1/directives before publishing it again",
                 fpublish__serial(f));
        faudit_error(f, 503, msg);
        return;
    }
    if (PQntuples(res) == 0) {
        /* Another publication committed this serial first: number and sign again. */
        log_info("directive serial %" PRIu64 " was taken by a concurrent publication; "
                 "numbering again",
                 fpublish__serial(f));
        fpublish__next(f);
        return;
    }
    uint64_t serial = fpublish__serial(f);
    f->env->m->directives_published++;
    f->env->m->audit_rows++;
    log_info("directive %" PRIu64 " published by %s (key %s, %zu bytes signed)", serial, f->who,
             f->env->dir_key_id, j->sd.body.len);
    fingest_directives_published(f->env->ingest);
    /* The key id is 1..63 of A-Z a-z 0-9 _ . - (fapi_start refuses others), so it needs no
     * escaping and the answer fits: a fixed buffer cannot fail after the directive is
     * stored. */
    char out[FDIR_KEY_ID_MAX + 64];
    int n = snprintf(out, sizeof(out), "{\"serial\":%" PRIu64 ",\"key_id\":\"%s\"}\n", serial,
                     f->env->dir_key_id);
    if (n < 0 || (size_t)n >= sizeof(out))
        freq_finish(f, 201, NULL, "{}\n", 3);
    else
        freq_finish(f, 201, NULL, out, (size_t)n);
}

/* A decimal serial in 1..INT64_MAX (the column is a bigint) and nothing else. */
static int fpublish__parse_serial(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || s[0] == '-' || v == 0 || v > INT64_MAX)
        return REINT_EMALFORMED;
    *out = v;
    return 0;
}

static void fpublish__on_next_serial(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    fpublish_job *j = f->state;
    char why[300];
    uint64_t serial = 0;
    if (err || PQntuples(res) != 1 || PQnfields(res) != 1 ||
        fpublish__parse_serial(PQgetvalue(res, 0, 0), &serial) != 0) {
        log_error("cannot read the next directive serial: %s", err ? err : "no number");
        faudit_error(f, 503,
                     "the federal store is unavailable; the directive was not "
                     "published; try again");
        return;
    }
    Reint__V1__Directive *d = fdir_directive(j->draft);
    d->serial = serial;
    /* protobuf-c's field is a char *; the directive is only read through it. */
    d->key_id = (char *)f->env->dir_key_id;
    d->issued_at = clock_now_ms();
    directive_signed_free(&j->sd);
    if (directive_sign(d, f->env->dir_key_id, f->env->dir_key, &j->sd, why, sizeof(why)) != 0) {
        log_error("directive %" PRIu64 " cannot be signed: %s", d->serial, why);
        faudit_error(f, 500,
                     "the directive cannot be signed (see the server log); "
                     "nothing was published");
        return;
    }
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, d->serial);
    char *body = malloc(2 * j->sd.body.len + 1);
    char *sig = malloc(2 * j->sd.signature.len + 1);
    if (body == NULL || sig == NULL) {
        free(body);
        free(sig);
        faudit_error(f, 503, "out of memory; the directive was not published; try again");
        return;
    }
    hex_encode(j->sd.body.data, j->sd.body.len, body);
    hex_encode(j->sd.signature.data, j->sd.signature.len, sig);
    const char *v[8] = {num,    f->env->dir_key_id, body,    sig,
                        f->who, f->role_label,      f->peer, f->target};
    /* The serial is stored only while it is still max + 1; a concurrent publication that
     * took it makes this insert do nothing (ON CONFLICT waits for its commit) and we retry.
     * The audit row is written by the same statement, only when the directive is. */
    int rc = db_query(f->env->db,
                      "WITH ins AS (INSERT INTO directives(serial, key_id, body, signature,"
                      " published_at, published_by)"
                      " SELECT $1::bigint, $2, decode($3, 'hex'), decode($4, 'hex'), now(), $5"
                      " WHERE $1::bigint = (SELECT coalesce(max(serial), 0) + 1 FROM directives)"
                      " ON CONFLICT (serial) DO NOTHING RETURNING serial),"
                      " a AS (INSERT INTO audit(who, role, peer, method, target, status)"
                      " SELECT $5, $6, $7, 'POST', $8, 201 FROM ins)"
                      " SELECT serial FROM ins",
                      8, v, fpublish__on_stored, f);
    free(body);
    free(sig);
    if (rc != 0)
        faudit_error(f, 503,
                     "the federal store is busy; the directive was not published; "
                     "try again");
}

static void fpublish__next(freq *f)
{
    fpublish_job *j = f->state;
    if (++j->attempts > FPUBLISH_ATTEMPTS) {
        faudit_error(f, 503,
                     "too many concurrent publications; the directive was not "
                     "published; try again");
        return;
    }
    if (db_query(f->env->db, "SELECT coalesce(max(serial), 0) + 1 FROM directives", 0, NULL,
                 fpublish__on_next_serial, f) != 0)
        faudit_error(f, 503, "the federal store is busy; try again");
}

/* The 422 answer: each field refused and why. */
static void fpublish__refused(freq *f, const fdir_errors *errs)
{
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
    faudit_respond_sbuf(f, 422, NULL, &b);
    sbuf_free(&b);
}

void fpublish_post(freq *f)
{
    if (f->role != AUTH_ADMIN) {
        faudit_error(f, 403, "publishing directives is for the admin role");
        return;
    }
    if (f->env->dir_key[0] == '\0' || f->env->dir_key_id[0] == '\0') {
        faudit_error(f, 503,
                     "directives cannot be published: this server has no signing key "
                     "(set [directives] key_id and private_key)");
        return;
    }
    fpublish_job *j = calloc(1, sizeof(*j));
    fdir_errors *errs = malloc(sizeof(*errs));
    if (j == NULL || errs == NULL) {
        free(j);
        free(errs);
        freq_error(f, 503, "out of memory");
        return;
    }
    f->state = j;
    f->state_free = fpublish__job_free;
    size_t len = 0;
    const char *body = http_req_body(f->r, &len);
    int rc = fdir_parse(body, len, &j->draft, errs);
    if (rc == REINT_ENOMEM)
        faudit_error(f, 503, "out of memory; the directive was not published; try again");
    else if (rc == REINT_EMALFORMED)
        faudit_error(f, 400, errs->message);
    else if (rc != 0)
        fpublish__refused(f, errs);
    else
        fpublish__next(f);
    free(errs);
}
