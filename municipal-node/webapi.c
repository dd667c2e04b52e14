#include "webapi.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bscal.h"
#include "clock.h"
#include "directives.h"
#include "export.h"
#include "fiscal.h"
#include "geo.h"
#include "log.h"
#include "lookup.h"
#include "passwords.h"
#include "record.h"
#include "session.h"

/* Password checks running on worker threads now. */
static int webapi__checking;

/* {"error": msg, "code": code} with status. */
static void webapi__fail(http_req *r, int status, const char *code, const char *msg)
{
    api_respond_json(r, status, json_pack("{s:s,s:s}", "error", msg, "code", code));
}

/* ---- sessions --------------------------------------------------------------------------- */

/* What a page needs to know about the node and the clerk: GET /v1/session. */
static json_t *webapi__session_json(api_ctx *ctx, const char *clerk, const char *csrf,
                                    uint64_t expires_ms)
{
    const geo_local_level *g = geo_find((uint32_t)ctx->municipality);
    int bs = intake_calendar_bs(ctx->in);
    int32_t today = intake_today(ctx->in);
    char t[16], ad[16];
    field_format_day(bs, today, t);
    field_format_day(0, today, ad);
    return json_pack("{s:s,s:s?,s:I,s:I,s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "clerk", clerk, "csrf",
                     csrf, "expires_ms", (json_int_t)expires_ms, "idle_ms",
                     (json_int_t)SESSION_IDLE_MS, "municipality", (json_int_t)ctx->municipality,
                     "municipality_name", g ? g->name : "", "district", g ? g->district_name : "",
                     "district_code", (json_int_t)(g ? g->district : 0), "province",
                     g ? g->province_name : "", "calendar", bs ? "BS" : "AD", "today", t,
                     "today_ad", ad);
}

static void webapi__signed_in(http_req *r, api_ctx *ctx, const char *clerk, const char *how)
{
    session_info si;
    if (session_create(ctx->sessions, r, clerk, &si) != 0) {
        api_respond_error(r, 500, "no session could be made (no random bytes)");
        return;
    }
    log_info("web: %s signed in with a %s from %s", clerk, how, http_req_peer(r));
    api_respond_json(r, 200, webapi__session_json(ctx, si.clerk, si.csrf, si.expires_ms));
}

/* A failed sign-in: 401, or 429 once the pair is blocked. */
static void webapi__signin_failed(http_req *r, api_ctx *ctx, const char *addr, const char *prefix,
                                  const uint8_t *hash)
{
    unsigned retry = 0;
    char ra[16], msg[160];
    switch (limiter_fail(ctx->signin_limits, addr, prefix, hash, "POST /v1/session", clock_now_ms(),
                         &retry)) {
    case LIMITER_BLOCKED:
        snprintf(ra, sizeof(ra), "%u", retry);
        snprintf(msg, sizeof(msg), "too many failed sign-ins; try again in %u seconds", retry);
        http_add_header(r, "Retry-After", ra);
        api_respond_json(r, 429,
                         json_pack("{s:s,s:s,s:I}", "error", msg, "code", "signin_limited",
                                   "retry_after", (json_int_t)retry));
        return;
    case LIMITER_TRIPPED:
        log_security("web: sign-ins from %s as %s blocked after %d failures", addr, prefix,
                     WEBAPI_SIGNIN_FAILURES);
        break;
    case LIMITER_FAILED:
        break;
    }
    log_warn("web: failed sign-in from %s (%s)", addr, prefix);
    webapi__fail(r, 401, "signin_failed", "the token, or the clerk's name and password, are wrong");
}

typedef struct webapi__pwcheck {
    uv_work_t work;
    http_req *r;
    api_ctx *ctx;
    char clerk[TOKENS_NAME_MAX];
    char stored[PASSWORDS_HASH_MAX];
    char password[PASSWORDS_MAX_LEN + 1];
    char addr[LIMITER_ADDR_MAX], prefix[LIMITER_PREFIX_MAX];
    int has_password; /* the clerk has a stored password (else the dummy is checked) */
    int rc;
} webapi__pwcheck;

static void webapi__pw_work(uv_work_t *w)
{
    webapi__pwcheck *c = w->data;
    c->rc = passwords_verify(c->stored, c->password);
}

static void webapi__pw_after(uv_work_t *w, int status)
{
    webapi__pwcheck *c = w->data;
    webapi__checking--;
    OPENSSL_cleanse(c->password, sizeof(c->password));
    if (status == 0 && c->rc == 0 && c->has_password)
        webapi__signed_in(c->r, c->ctx, c->clerk, "password");
    else if (status == 0 && c->rc == REINT_ENOMEM)
        api_respond_error(c->r, 503, "the password could not be checked (out of memory)");
    else
        webapi__signin_failed(c->r, c->ctx, c->addr, c->prefix, NULL);
    free(c);
}

void webapi_signin(http_req *r, api_ctx *ctx)
{
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    char addr[LIMITER_ADDR_MAX], prefix[LIMITER_PREFIX_MAX], bearer[300];
    uint8_t hash[32];
    unsigned int hl = 0;
    unsigned retry = 0;
    if (ctx->sessions == NULL) {
        api_respond_error(r, 404, "this node serves no workspace");
        return;
    }
    /* Another site's form (enctype text/plain needs no preflight) could otherwise sign the
     * clerk's browser in as someone else, whose name the clerk's entries would then carry. */
    if (!session_same_site(r, 0)) {
        log_security("web: a sign-in from %s refused: it came from another site", http_req_peer(r));
        webapi__fail(r, 403, "signin_cross_site", "sign in from the node's own pages");
        return;
    }
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
    const char *token = json_string_value(json_object_get(o, "token"));
    const char *clerk = json_string_value(json_object_get(o, "clerk"));
    const char *password = json_string_value(json_object_get(o, "password"));
    /* One way of signing in or the other, never a mix: a token sent with a name would
     * otherwise be checked as a token while the name's failures went uncounted. */
    if (!json_is_object(o) || (token && (clerk || password)) || (!token && (!clerk || !password)) ||
        (token && strlen(token) > 256) || (clerk && strlen(clerk) >= TOKENS_NAME_MAX) ||
        (password && strlen(password) > PASSWORDS_MAX_LEN)) {
        json_decref(o);
        webapi__fail(r, 400, "signin_malformed",
                     "sign in with {\"token\": ...} or {\"clerk\": ..., \"password\": ...}");
        return;
    }
    limiter_addr(http_req_peer(r), addr);
    /* A token is keyed by its prefix, as the other APIs do; a password by the clerk's name
     * (its first characters) in lower case, as a name is found whatever its case (so that
     * "ASHA", "Asha", ... are one name's guesses), and with no hash, so that a blocked name
     * takes no guess. */
    snprintf(bearer, sizeof(bearer), "Bearer %s", token ? token : clerk);
    for (char *p = bearer + 7; !token && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    limiter_prefix(bearer, NULL, prefix);
    if (token && EVP_Digest(token, strlen(token), hash, &hl, EVP_sha256(), NULL) != 1) {
        json_decref(o);
        api_respond_error(r, 500, "out of memory");
        return;
    }
    if (limiter_blocked(ctx->signin_limits, addr, prefix, token ? hash : NULL, "POST /v1/session",
                        clock_now_ms(), &retry)) {
        json_decref(o);
        webapi__signin_failed(r, ctx, addr, prefix, token ? hash : NULL);
        return;
    }
    if (token) {
        const char *who = api_token_clerk(ctx, bearer);
        if (who)
            webapi__signed_in(r, ctx, who, "token");
        else
            webapi__signin_failed(r, ctx, addr, prefix, hash);
        OPENSSL_cleanse(bearer, sizeof(bearer));
        json_decref(o);
        return;
    }
    if (webapi__checking >= WEBAPI_PASSWORD_CHECKS) {
        json_decref(o);
        http_add_header(r, "Retry-After", "1");
        webapi__fail(r, 503, "signin_busy", "other sign-ins are being checked; try again");
        return;
    }
    webapi__pwcheck *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_decref(o);
        api_respond_error(r, 503, "out of memory");
        return;
    }
    c->r = r;
    c->ctx = ctx;
    snprintf(c->clerk, sizeof(c->clerk), "%s", clerk);
    snprintf(c->password, sizeof(c->password), "%s", password);
    memcpy(c->addr, addr, sizeof(addr));
    memcpy(c->prefix, prefix, sizeof(prefix));
    json_decref(o);
    char name[TOKENS_NAME_MAX];
    int rc = passwords_get(outbox_db(ctx->ob), c->clerk, c->stored, name);
    if (rc != 0 && rc != REINT_ENOTFOUND) {
        free(c);
        api_respond_error(r, 500, "the store could not be read");
        return;
    }
    /* A clerk without a password costs the same check, so that the time of an answer does
     * not tell which names have one. */
    c->has_password = rc == 0;
    if (c->has_password) /* the name as stored: the session is hers, whatever case was typed */
        snprintf(c->clerk, sizeof(c->clerk), "%s", name);
    if (!c->has_password)
        snprintf(c->stored, sizeof(c->stored), "%s", passwords_dummy());
    c->work.data = c;
    if (uv_queue_work(ctx->loop, &c->work, webapi__pw_work, webapi__pw_after) != 0) {
        OPENSSL_cleanse(c->password, sizeof(c->password));
        free(c);
        api_respond_error(r, 503, "the password could not be checked; try again");
        return;
    }
    webapi__checking++;
}

static void webapi__session(http_req *r, api_ctx *ctx, const char *clerk)
{
    const char *m = http_req_method(r);
    session_info si = {clerk, NULL, 0};
    int has_session = ctx->sessions && session_has_cookie(ctx->sessions, r) &&
                      http_req_header(r, "Authorization") == NULL;
    if (!strcmp(m, "GET")) {
        if (has_session && session_check(ctx->sessions, r, &si) != SESSION_OK)
            si.csrf = NULL;
        api_respond_json(r, 200, webapi__session_json(ctx, clerk, si.csrf, si.expires_ms));
    } else if (!strcmp(m, "DELETE")) {
        if (!has_session) {
            api_respond_error(r, 400, "a bearer token has no session to end");
            return;
        }
        log_info("web: %s signed out", clerk);
        session_end(ctx->sessions, r);
        http_respond(r, 204, NULL, "", 0);
    } else {
        http_add_header(r, "Allow", "GET, POST, DELETE");
        api_respond_error(r, 405, "a session is read with GET, begun with POST, ended with DELETE");
    }
}

/* ---- schema and checks ------------------------------------------------------------------ */

static json_t *webapi__column(int kind, size_t i)
{
    field_info fi;
    if (field_describe(kind, i, &fi) != 0)
        return NULL;
    json_t *o = json_pack("{s:s,s:s,s:b,s:I}", "name", fi.name, "type", fi.type, "required",
                          fi.required, "max_len", (json_int_t)fi.maxlen);
    if (o == NULL)
        return NULL;
    int bad = 0;
    if (!strcmp(fi.type, "int"))
        bad |= json_object_set_new(o, "min", json_integer(fi.min)) != 0 ||
               json_object_set_new(o, "max", json_integer(fi.max)) != 0;
    if (fi.en) {
        json_t *vals = json_array();
        for (unsigned v = 0; vals && v < fi.en->n_values; v++)
            if (fi.en->values[v].value != 0 &&
                json_array_append_new(
                    vals, json_string(record_enum_name(fi.en, fi.en->values[v].value))) != 0)
                bad = 1;
        bad |= vals == NULL || json_object_set_new(o, "values", vals) != 0;
    }
    if (!strcmp(fi.type, "country")) { /* for the pages' list of countries, named in Intl */
        json_t *vals = json_array();
        for (const char *cc = field_countries(); vals && *cc; cc += 2)
            bad |= json_array_append_new(vals, json_stringn(cc, 2)) != 0;
        bad |= vals == NULL || json_object_set_new(o, "values", vals) != 0;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void webapi__schema(http_req *r, api_ctx *ctx)
{
    json_t *kinds = json_object();
    int bad = kinds == NULL;
    for (int k = INTAKE_PERSON; k <= INTAKE_AVAILABILITY && !bad; k++) {
        json_t *cols = json_array();
        for (size_t i = 0; cols && i < field_count(k); i++)
            if (json_array_append_new(cols, webapi__column(k, i)) != 0)
                bad = 1;
        if (cols == NULL || json_object_set_new(kinds, field_kind_name(k), cols) != 0)
            bad = 1;
    }
    if (bad) {
        json_decref(kinds);
        api_respond_json(r, 500, NULL);
        return;
    }
    api_respond_json(r, 200,
                     json_pack("{s:s,s:o}", "calendar", intake_calendar_bs(ctx->in) ? "BS" : "AD",
                               "kinds", kinds));
}

static void webapi__check(http_req *r, api_ctx *ctx, const char *tail)
{
    char kname[32], jerr[256];
    const char *slash = strchr(tail, '/');
    size_t kl = slash ? (size_t)(slash - tail) : strlen(tail);
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    field_errors errs;
    if (kl >= sizeof(kname)) {
        api_respond_error(r, 404, "no such kind of row");
        return;
    }
    memcpy(kname, tail, kl);
    kname[kl] = '\0';
    int kind = intake_kind_parse(kname);
    if (kind == 0 || kind == INTAKE_MONTH_CLOSE) {
        api_respond_error(r, 404, "no such kind of row");
        return;
    }
    const char *lid = slash && slash[1] ? slash + 1 : NULL;
    /* A new row without a local_id gets one when stored (api.h): check it as if it had. */
    if (lid == NULL && kind != INTAKE_AVAILABILITY && !api_body_has_local_id(body, len))
        lid = "NEW";
    int rc = api_check_json(ctx->in, kind, body, len, lid, &errs, jerr, sizeof(jerr));
    if (rc == REINT_EMALFORMED) {
        api_respond_error(r, 400, jerr);
        return;
    }
    if (rc != 0 && rc != REINT_EINVAL) {
        api_respond_error(r, 500, "the store could not be read");
        return;
    }
    if (rc == 0)
        errs.n = errs.dropped = 0;
    json_t *arr = api_field_errors_json(&errs);
    api_respond_json(r, 200, arr ? json_pack("{s:o}", "errors", arr) : NULL);
}

/* ---- months ----------------------------------------------------------------------------- */

static void webapi__fiscal(http_req *r, api_ctx *ctx)
{
    const char *y = http_req_param(r, "year");
    long year = 0;
    json_t *o = NULL;
    if (y) {
        char *end = NULL;
        year = strtol(y, &end, 10);
        if (end == y || *end != '\0' || year < 1943 || year > BSCAL_LAST_YEAR) {
            api_respond_error(r, 400, "year must be the year a fiscal year starts in");
            return;
        }
    }
    int rc = fiscal_year_json(ctx->in, (int)year, &o);
    if (rc == REINT_ERANGE)
        api_respond_error(r, 404, "that fiscal year is outside the calendar table");
    else if (rc != 0)
        api_respond_error(r, 500, "the store could not be read");
    else
        api_respond_json(r, 200, o);
}

static void webapi__close(http_req *r, api_ctx *ctx, const char *month, const char *clerk)
{
    int y = 0, m = 0, changed = 0, bs = intake_calendar_bs(ctx->in);
    int32_t first, last;
    char extra, err[256], t[16];
    if (sscanf(month, "%4d-%2d%c", &y, &m, &extra) != 2 || strlen(month) != 7 ||
        bscal_month_span(bs, y * 100 + m, &first, &last) != 0) {
        webapi__fail(r, 404, "month_unknown", "no such month (YYYY-MM in the node's calendar)");
        return;
    }
    if (intake_today(ctx->in) <= last) {
        field_format_day(bs, last, t);
        snprintf(err, sizeof(err), "%s has not ended yet (its last day is %s)", month, t);
        api_respond_json(
            r, 422, json_pack("{s:s,s:s,s:s}", "error", err, "code", "month_not_ended", "arg", t));
        return;
    }
    if (outbox_begin(ctx->ob) != 0) {
        http_add_header(r, "Retry-After", "1");
        api_respond_error(r, 503, "the store is busy (an import may be running); try again");
        return;
    }
    int rc = intake_close_month(ctx->in, y, m, clerk, &changed, err, sizeof(err));
    if (rc == 0 && (rc = outbox_commit(ctx->ob)) != 0)
        outbox_rollback(ctx->ob);
    else if (rc != 0)
        outbox_rollback(ctx->ob);
    if (rc == REINT_EINVAL) {
        api_respond_json(r, 422, json_pack("{s:s,s:s}", "error", err, "code", "month_refused"));
        return;
    }
    if (rc != 0) {
        api_respond_error(r, 500, "the close could not be stored (database error)");
        return;
    }
    if (changed && ctx->on_commit)
        ctx->on_commit(ctx->ud);
    log_info("web: %s closed %s %s%s", clerk, bs ? "BS" : "AD", month,
             changed ? "" : " (already closed)");
    api_respond_json(r, 200, json_pack("{s:s,s:b}", "month", month, "changed", changed));
}

/* ---- imports and exports ---------------------------------------------------------------- */

static void webapi__import_start(http_req *r, api_ctx *ctx, const char *kname, const char *clerk)
{
    char id[WEBIMPORT_ID_LEN + 1], url[64];
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    int kind = intake_kind_parse(kname);
    if (kind == 0 || kind == INTAKE_MONTH_CLOSE || ctx->imports == NULL) {
        api_respond_error(r, 404, "imports are of persons, services, enterprises or availability");
        return;
    }
    const char *name = http_req_param(r, "name");
    int rc = webimport_start(ctx->imports, kind, name ? name : "upload.csv", body, len, clerk, id);
    if (rc == REINT_EEXIST) {
        webapi__fail(r, 409, "import_running", "another import is running; try when it has ended");
        return;
    }
    if (rc != 0) {
        api_respond_error(r, 500, "the import could not be started");
        return;
    }
    snprintf(url, sizeof(url), "/v1/imports/%s", id);
    http_add_header(r, "Location", url);
    api_respond_json(r, 202, json_pack("{s:s,s:s}", "id", id, "url", url));
}

static void webapi__import_get(http_req *r, api_ctx *ctx, const char *tail)
{
    char id[WEBIMPORT_ID_LEN + 1];
    const char *slash = strchr(tail, '/');
    size_t n = slash ? (size_t)(slash - tail) : strlen(tail);
    if (ctx->imports == NULL || n != WEBIMPORT_ID_LEN ||
        (slash && strcmp(slash, "/errors.csv") != 0)) {
        api_respond_error(r, 404, "no such import");
        return;
    }
    memcpy(id, tail, n);
    id[n] = '\0';
    if (slash == NULL) {
        json_t *o = NULL;
        int rc = webimport_json(ctx->imports, id, &o);
        if (rc == REINT_ENOTFOUND)
            api_respond_error(r, 404, "no such import (the node remembers the last few)");
        else
            api_respond_json(r, 200, o);
        return;
    }
    sbuf b;
    sbuf_init(&b, 16 * 1024 * 1024);
    int rc = webimport_errors_csv(ctx->imports, id, &b);
    if (rc == 0) {
        char cd[128];
        snprintf(cd, sizeof(cd), "attachment; filename=\"refused-rows-%.8s.csv\"", id);
        http_add_header(r, "Content-Disposition", cd);
        http_respond(r, 200, "text/csv; charset=utf-8", b.p, b.len);
    } else if (rc == REINT_ENOTFOUND) {
        api_respond_error(r, 404, "no such import");
    } else if (rc == REINT_EEXIST) {
        api_respond_error(r, 409, "the import is still running");
    } else {
        api_respond_error(r, 500, "out of memory");
    }
    sbuf_free(&b);
}

static void webapi__export(http_req *r, api_ctx *ctx, const char *kname)
{
    int kind = intake_kind_parse(kname);
    char *buf = NULL, cd[128], day[16];
    size_t len = 0;
    if (kind == 0 || kind == INTAKE_MONTH_CLOSE) {
        api_respond_error(r, 404, "exports are of persons, services, enterprises or availability");
        return;
    }
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) {
        api_respond_error(r, 500, "out of memory");
        return;
    }
    int rc = export_csv(ctx->in, kind, f);
    if (fclose(f) != 0 && rc == 0)
        rc = REINT_ENOMEM;
    if (rc != 0) {
        api_respond_error(r, 500, "the export could not be made");
    } else {
        field_format_day(intake_calendar_bs(ctx->in), intake_today(ctx->in), day);
        snprintf(cd, sizeof(cd), "attachment; filename=\"%s-%s.csv\"", field_kind_name(kind), day);
        http_add_header(r, "Content-Disposition", cd);
        http_respond(r, 200, "text/csv; charset=utf-8", buf, len);
    }
    free(buf);
}

/* ---- routing ---------------------------------------------------------------------------- */

/* Answers 405 unless r's method is want; returns 1 when it answered. */
static int webapi__only(http_req *r, const char *want)
{
    if (strcmp(http_req_method(r), want) == 0)
        return 0;
    http_add_header(r, "Allow", want);
    api_respond_error(r, 405, "method not allowed here");
    return 1;
}

int webapi_handle(http_req *r, api_ctx *ctx, const char *rest, const char *clerk)
{
    json_t *o = NULL;
    int rc;
    if (!strcmp(rest, "session")) {
        webapi__session(r, ctx, clerk);
    } else if (!strcmp(rest, "schema")) {
        if (!webapi__only(r, "GET"))
            webapi__schema(r, ctx);
    } else if (!strncmp(rest, "check/", 6)) {
        if (!webapi__only(r, "POST"))
            webapi__check(r, ctx, rest + 6);
    } else if (!strcmp(rest, "directives")) {
        if (webapi__only(r, "GET"))
            return 1;
        rc = directives_json(outbox_db(ctx->ob), intake_calendar_bs(ctx->in), intake_today(ctx->in),
                             &o);
        if (rc != 0)
            api_respond_error(r, 500, "the directives could not be read");
        else
            api_respond_json(r, 200, o);
    } else if (!strcmp(rest, "dead-letters")) {
        if (webapi__only(r, "GET"))
            return 1;
        if (lookup_dead_letters(ctx->in, 100, &o) != 0)
            api_respond_error(r, 500, "the dead letters could not be read");
        else
            api_respond_json(r, 200, o);
    } else if (!strcmp(rest, "fiscal-year")) {
        if (!webapi__only(r, "GET"))
            webapi__fiscal(r, ctx);
    } else if (!strncmp(rest, "closes/", 7)) {
        if (!webapi__only(r, "POST"))
            webapi__close(r, ctx, rest + 7, clerk);
    } else if (!strcmp(rest, "imports")) {
        if (webapi__only(r, "GET"))
            return 1;
        if (ctx->imports == NULL)
            api_respond_json(r, 200, json_pack("{s:[]}", "imports"));
        else if (webimport_list_json(ctx->imports, &o) != 0)
            api_respond_error(r, 500, "out of memory");
        else
            api_respond_json(r, 200, o);
    } else if (!strncmp(rest, "imports/", 8)) {
        if (!strcmp(http_req_method(r), "POST"))
            webapi__import_start(r, ctx, rest + 8, clerk);
        else if (!webapi__only(r, "GET"))
            webapi__import_get(r, ctx, rest + 8);
    } else if (!strncmp(rest, "export/", 7)) {
        if (!webapi__only(r, "GET"))
            webapi__export(r, ctx, rest + 7);
    } else {
        return 0;
    }
    return 1;
}
