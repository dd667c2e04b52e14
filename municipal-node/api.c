#include "api.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "bscal.h"
#include "clock.h"
#include "followups.h"
#include "log.h"
#include "lookup.h"
#include "months.h"
#include "openapi.h"
#include "record.h"
#include "rid.h"
#include "webapi.h"

/* ---- responses --------------------------------------------------------------------------- */

static void api__json(http_req *r, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s == NULL) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        http_respond(r, 500, NULL, oom, sizeof(oom) - 1);
    } else {
        http_respond(r, status, NULL, s, strlen(s));
    }
    free(s);
    json_decref(o);
}

/* msg as a JSON string; NULL only when out of memory. */
static json_t *api__string(const char *msg)
{
    json_t *s = json_string(msg);
    if (s == NULL) {
        /* A message quoting a value cut inside a UTF-8 character: keep its ASCII only. */
        char buf[512];
        size_t i = 0;
        for (; msg[i] && i + 1 < sizeof(buf); i++)
            buf[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
        buf[i] = '\0';
        s = json_string(buf);
    }
    return s;
}

static void api__error(http_req *r, int status, const char *msg)
{
    json_t *s = api__string(msg);
    api__json(r, status, s ? json_pack("{s:o}", "error", s) : NULL);
}

static void api__not_allowed(http_req *r, const char *allow)
{
    char msg[128];
    http_add_header(r, "Allow", allow);
    snprintf(msg, sizeof(msg), "method %s is not allowed here (allowed: %s)", http_req_method(r),
             allow);
    api__error(r, 405, msg);
}

/* 422 with every field error; a list that cannot be built whole is answered 500 rather than
 * cut short. */
json_t *api_field_errors_json(const field_errors *e)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < e->n; i++) {
        const field_error *x = &e->e[i];
        /* "code" and "arg" let a page word the error in the clerk's language. */
        json_t *o = json_pack("{s:s,s:s,s:s}", "field", x->field, "reason", x->reason, "code",
                              x->code[0] ? x->code : "other");
        if (o && x->arg[0] && json_object_set_new(o, "arg", json_string(x->arg)) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (arr && e->dropped) {
        json_t *x = json_pack("{s:s,s:s,s:s}", "field", "", "reason", "more errors were left out",
                              "code", "more");
        if (x == NULL || json_array_append_new(arr, x) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static void api__field_errors(http_req *r, const field_errors *e)
{
    json_t *arr = api_field_errors_json(e);
    api__json(r, 422, arr ? json_pack("{s:o}", "errors", arr) : NULL);
}

/* ---- JSON rows --------------------------------------------------------------------------- */

/* Copies valid UTF-8 text s into out, cut at a character boundary to fit. */
static void api__copy_utf8(char *out, size_t outlen, const char *s)
{
    size_t n = strlen(s);
    if (n >= outlen) {
        n = outlen - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Adds an error naming a key of the body as it is (cut at a character boundary), counting it
 * in dropped when errs is full. */
static void api__field_error(field_errors *errs, const char *key, const char *reason)
{
    if (errs->n >= FIELD_MAX_ERRORS) {
        errs->dropped++;
        return;
    }
    field_error *e = &errs->e[errs->n++];
    api__copy_utf8(e->field, sizeof(e->field), key);
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    /* No code of FIELD_CODES fits (the page shows the reason): none, rather than the code and
     * value an earlier error left in this slot. */
    e->code[0] = '\0';
    e->arg[0] = '\0';
}

static int api__apply(intake *in, int kind, const char *body, size_t len, const char *path_local_id,
                      const char *clerk, field_errors *errs, intake_result *res, char *jerr,
                      size_t jerrlen, int check_only)
{
    const char *names[API_MAX_BODY_KEYS + 2], *values[API_MAX_BODY_KEYS + 2];
    char nums[API_MAX_BODY_KEYS][40];
    char service[64] = "", provider[64] = "";
    size_t n = 0, nnum = 0;
    json_error_t je;
    const char *key;
    json_t *val;
    int rc = REINT_EMALFORMED;

    errs->n = errs->dropped = 0;
    jerr[0] = '\0';
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        snprintf(jerr, jerrlen, "malformed JSON at line %d column %d: %s", je.line, je.column,
                 je.text);
        return REINT_EMALFORMED;
    }
    if (!json_is_object(o)) {
        snprintf(jerr, jerrlen, "the body must be a JSON object of column names and values");
        goto out;
    }
    if (json_object_size(o) > API_MAX_BODY_KEYS) {
        snprintf(jerr, jerrlen, "the body has more than %d keys", API_MAX_BODY_KEYS);
        goto out;
    }
    if (kind == INTAKE_AVAILABILITY && path_local_id) {
        const char *slash = strchr(path_local_id, '/');
        size_t sl = slash ? (size_t)(slash - path_local_id) : 0;
        if (slash == NULL || sl >= sizeof(service) || strlen(slash + 1) >= sizeof(provider)) {
            snprintf(jerr, jerrlen, "the URL must name /v1/availability/<service>/<provider>");
            goto out;
        }
        memcpy(service, path_local_id, sl);
        service[sl] = '\0';
        snprintf(provider, sizeof(provider), "%s", slash + 1);
    }
    rc = 0;
    json_object_foreach(o, key, val)
    {
        const char *v = NULL;
        if (json_is_string(val)) {
            v = json_string_value(val);
        } else if (json_is_integer(val)) {
            snprintf(nums[nnum], sizeof(nums[nnum]), "%lld", (long long)json_integer_value(val));
            v = nums[nnum++];
        } else if (json_is_real(val)) {
            double d = json_real_value(val);
            if (d == floor(d) && fabs(d) < 1e15) {
                snprintf(nums[nnum], sizeof(nums[nnum]), "%.0f", d);
            } else {
                /* The shortest text that reads back as d, so that an error quotes the value as
                 * sent: 100000000000.4, not 100000000000.39999. */
                for (int prec = 15; prec <= 17; prec++) {
                    snprintf(nums[nnum], sizeof(nums[nnum]), "%.*g", prec, d);
                    if (strtod(nums[nnum], NULL) == d)
                        break;
                }
            }
            v = nums[nnum++];
        } else if (json_is_true(val)) {
            v = "true";
        } else if (json_is_false(val)) {
            v = "false";
        } else if (json_is_null(val)) {
            v = "";
        } else {
            api__field_error(errs, key, "must be a string, a number, true, false or null");
            rc = REINT_EINVAL;
            continue;
        }
        const char *want = NULL;
        if (kind == INTAKE_AVAILABILITY && path_local_id && !strcmp(key, "service"))
            want = service;
        else if (kind == INTAKE_AVAILABILITY && path_local_id && !strcmp(key, "provider"))
            want = provider;
        else if (kind != INTAKE_AVAILABILITY && path_local_id && !strcmp(key, "local_id"))
            want = path_local_id;
        if (want) {
            int differs = kind == INTAKE_AVAILABILITY ? strcasecmp(v, want) : strcmp(v, want);
            if (differs) {
                char reason[96];
                snprintf(reason, sizeof(reason), "does not match the %s named in the URL", key);
                api__field_error(errs, key, reason);
                rc = REINT_EINVAL;
            }
            continue; /* the URL's value is added below */
        }
        names[n] = key;
        values[n++] = v;
    }
    if (rc != 0)
        goto out;
    if (kind == INTAKE_AVAILABILITY && path_local_id) {
        names[n] = "service";
        values[n++] = service;
        names[n] = "provider";
        values[n++] = provider;
    } else if (path_local_id) {
        names[n] = "local_id";
        values[n++] = path_local_id;
    }
    rc = check_only ? intake_check(in, kind, names, values, n, errs)
                    : intake_apply_ex(in, kind, names, values, n, clerk, errs, res);
out:
    json_decref(o);
    return rc;
}

int api_apply_json(intake *in, int kind, const char *body, size_t len, const char *path_local_id,
                   const char *clerk, field_errors *errs, intake_result *res, char *jerr,
                   size_t jerrlen)
{
    return api__apply(in, kind, body, len, path_local_id, clerk, errs, res, jerr, jerrlen, 0);
}

int api_check_json(intake *in, int kind, const char *body, size_t len, const char *path_local_id,
                   field_errors *errs, char *jerr, size_t jerrlen)
{
    return api__apply(in, kind, body, len, path_local_id, "", errs, NULL, jerr, jerrlen, 1);
}

int api_body_has_local_id(const char *body, size_t len)
{
    json_t *o = json_loadb(body ? body : "", len, 0, NULL);
    int has = json_is_object(o) && json_object_get(o, "local_id") != NULL;
    json_decref(o);
    return has;
}

int api_new_local_id(api_ctx *ctx, char out[API_LOCAL_ID_MAX])
{
    /* Crockford's base32: no I, L, O or U, so that a clerk who reads the id aloud or copies it
     * by hand cannot confuse two letters. */
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    char day[16];
    uint8_t rnd[8];
    for (int attempt = 0; attempt < 8; attempt++) {
        outbox_row row;
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return REINT_ENOMEM;
        field_format_day(intake_calendar_bs(ctx->in), intake_today(ctx->in), day);
        size_t o = (size_t)snprintf(out, API_LOCAL_ID_MAX, "%s-", day);
        for (size_t i = 0; i < sizeof(rnd) && o + 1 < API_LOCAL_ID_MAX; i++)
            out[o++] = b32[rnd[i] & 31];
        out[o] = '\0';
        /* Any kind, live or deleted: an id once used is never handed out again. */
        int used = 0;
        for (int k = INTAKE_PERSON; k <= INTAKE_ENTERPRISE && !used; k++) {
            int rc = outbox_find(ctx->ob, k, out, &row);
            if (rc < 0)
                return rc;
            used = rc == 1;
        }
        if (!used)
            return 0;
    }
    return REINT_EEXIST;
}

/* ---- routes ------------------------------------------------------------------------------ */

static void api__committed(api_ctx *ctx)
{
    if (ctx->on_commit)
        ctx->on_commit(ctx->ud);
}

static int api__begin(http_req *r, api_ctx *ctx)
{
    if (outbox_begin(ctx->ob) != 0) {
        http_add_header(r, "Retry-After", "1");
        api__error(r, 503, "the store is busy (an import may be running); try again");
        return -1;
    }
    return 0;
}

/* The version of an If-Match value: "123" (an entity tag, as RFC 9110 writes it) or 123.
 * Returns 0 or -1. */
static int api__if_match(const char *v, uint64_t *out)
{
    char digits[24];
    size_t n = strlen(v);
    if (v[0] == 'W' && v[1] == '/') {
        *out = UINT64_MAX; /* a weak tag never matches (RFC 9110, 13.1.1): 412 */
        return 0;
    }
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(digits) || strspn(v, "0123456789") < n)
        return -1;
    memcpy(digits, v, n);
    digits[n] = '\0';
    errno = 0;
    *out = strtoull(digits, NULL, 10);
    return errno == 0 ? 0 : -1;
}

static void api__write(http_req *r, api_ctx *ctx, int kind, const char *local_id, const char *clerk)
{
    int create = local_id == NULL && kind != INTAKE_AVAILABILITY;
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    field_errors errs;
    intake_result res;
    char jerr[256], msg[320], hex[RID_HEX_LEN + 1];
    uint8_t id[16];
    int rc;

    char new_id[API_LOCAL_ID_MAX];
    if (api__begin(r, ctx) != 0)
        return;
    /* A new record whose body names no local_id gets one from the node: its day and a random
     * suffix, never a counter (a store restored from a backup would count again from where
     * the backup was, and hand out ids that the hub already holds for other people). */
    if (create && !api_body_has_local_id(body, len)) {
        if ((rc = api_new_local_id(ctx, new_id)) != 0) {
            outbox_rollback(ctx->ob);
            api__error(r, 500, "a new local_id could not be made");
            return;
        }
        local_id = new_id;
    }
    uint64_t current = 0;
    if (local_id && !create && kind != INTAKE_AVAILABILITY &&
        (rc = intake_lookup(ctx->in, kind, local_id, id, &current)) != 0) {
        outbox_rollback(ctx->ob);
        if (rc != REINT_ENOTFOUND) {
            api__error(r, 500, "the row could not be read (database error)");
            return;
        }
        snprintf(msg, sizeof(msg), "no %s with local_id \"%.100s\"; create it with POST /v1/%s",
                 intake_kind_name(kind), local_id, intake_kind_name(kind));
        api__error(r, 404, msg);
        return;
    }
    /* A correction may say which version it was made from (If-Match, the row's _version):
     * two clerks correcting the same row from the same copy would otherwise each overwrite
     * the other's change unseen. */
    const char *match = http_req_header(r, "If-Match");
    if (match && local_id && !create && kind != INTAKE_AVAILABILITY && strcmp(match, "*") != 0) {
        uint64_t seen = 0;
        if (api__if_match(match, &seen) != 0) {
            outbox_rollback(ctx->ob);
            api__error(r, 400,
                       "If-Match must be the row's _version in quotes, as GET gave it: \"123\"");
            return;
        }
        if (seen != current) {
            outbox_rollback(ctx->ob);
            snprintf(msg, sizeof(msg),
                     "the %s \"%.100s\" was changed since you opened it (version %llu, now "
                     "%llu): open it again, then correct it",
                     intake_kind_name(kind), local_id, (unsigned long long)seen,
                     (unsigned long long)current);
            json_t *m = api__string(msg);
            api__json(r, 412,
                      m ? json_pack("{s:o,s:s}", "error", m, "code", "changed_since") : NULL);
            return;
        }
    }
    rc = api_apply_json(ctx->in, kind, body, len, local_id, clerk, &errs, &res, jerr, sizeof(jerr));
    if (rc == REINT_EMALFORMED) {
        outbox_rollback(ctx->ob);
        api__error(r, 400, jerr);
        return;
    }
    if (rc == REINT_EINVAL) {
        outbox_rollback(ctx->ob);
        api__field_errors(r, &errs);
        return;
    }
    if (rc != 0) {
        outbox_rollback(ctx->ob);
        api__error(r, 500, "the row could not be stored (database error)");
        return;
    }
    if (create && res.changed == INTAKE_UPDATED) {
        outbox_rollback(ctx->ob);
        snprintf(
            msg, sizeof(msg),
            "a %s with local_id \"%.100s\" already exists; correct it with PUT /v1/%s/<local_id>",
            intake_kind_name(kind), res.local_id, intake_kind_name(kind));
        api__error(r, 409, msg);
        return;
    }
    if (outbox_commit(ctx->ob) != 0) {
        /* A failed COMMIT can leave the transaction open; the next request must not find it. */
        outbox_rollback(ctx->ob);
        api__error(r, 500, "the change could not be committed (database error)");
        return;
    }
    if (res.changed != INTAKE_UNCHANGED)
        api__committed(ctx);
    rid_format(res.id, hex);
    json_t *o = json_pack("{s:s,s:s,s:I,s:b}", "id", hex, "local_id", res.local_id, "version",
                          (json_int_t)res.version, "changed", res.changed != INTAKE_UNCHANGED);
    /* A person registered who looks like one registered before (the clerk's attack: the same
     * citizenship number, posted twice, was taken without a word): said, not refused (two
     * records may have a reason). The row is stored whatever this lookup does. */
    json_t *dups = NULL;
    if (o && kind == INTAKE_PERSON && res.changed == INTAKE_INSERTED &&
        lookup_duplicates(ctx->in, res.local_id, &dups) == 0)
        json_object_set_new(o, "duplicates", dups);
    api__json(r, create && res.changed == INTAKE_INSERTED ? 201 : 200, o);
}

static void api__delete(http_req *r, api_ctx *ctx, int kind, const char *local_id,
                        const char *clerk)
{
    char msg[400];
    if (api__begin(r, ctx) != 0)
        return;
    int rc = intake_delete(ctx->in, kind, local_id, clerk, msg, sizeof(msg));
    if (rc != 0) {
        outbox_rollback(ctx->ob);
        if (rc == REINT_EEXIST) {
            json_t *m = api__string(msg);
            api__json(r, 409, m ? json_pack("{s:o,s:s}", "error", m, "code", "has_records") : NULL);
        } else if (rc == REINT_ENOTFOUND) {
            snprintf(msg, sizeof(msg), "no %s with local_id \"%.100s\"", intake_kind_name(kind),
                     local_id);
            api__error(r, 404, msg);
        } else {
            api__error(r, 500, "the deletion could not be stored (database error)");
        }
        return;
    }
    if (outbox_commit(ctx->ob) != 0) {
        outbox_rollback(ctx->ob);
        api__error(r, 500, "the deletion could not be committed (database error)");
        return;
    }
    api__committed(ctx);
    http_respond(r, 204, NULL, "", 0);
}

/* Canonical "SERVICE/PROVIDER" from the URL's two segments, or -1 when a name is unknown. */
static int api__availability_id(const char *tail, char *out, size_t outlen)
{
    char buf[128];
    int s = 0, p = 0;
    const char *slash = strchr(tail, '/');
    if (slash == NULL || (size_t)(slash - tail) >= sizeof(buf))
        return -1;
    memcpy(buf, tail, (size_t)(slash - tail));
    buf[slash - tail] = '\0';
    if (record_enum_parse(&reint__v1__service_type__descriptor, buf, &s) != 0 ||
        record_enum_parse(&reint__v1__provider__descriptor, slash + 1, &p) != 0)
        return -1;
    snprintf(out, outlen, "%s/%s", record_enum_name(&reint__v1__service_type__descriptor, s),
             record_enum_name(&reint__v1__provider__descriptor, p));
    return 0;
}

/* Sets key of o to v (taking v's reference) and notes a failure in *bad. */
static void api__set(json_t *o, const char *key, json_t *v, int *bad)
{
    if (json_object_set_new(o, key, v) != 0)
        *bad = 1;
}

static void api__status(http_req *r, api_ctx *ctx)
{
    outbox_stats s;
    int64_t now = (int64_t)clock_now_ms();
    int bad = 0;
    if (outbox_stats_get(ctx->ob, &s) != 0) {
        api__error(r, 500, "the store could not be read");
        return;
    }
    json_t *o = json_object();
    api__set(o, "backlog", json_integer(s.backlog), &bad);
    api__set(o, "oldest_unsynced_ms",
             s.oldest_unsynced_ms ? json_integer(s.oldest_unsynced_ms) : json_null(), &bad);
    api__set(o, "oldest_unsynced_age_s",
             s.oldest_unsynced_ms ? json_integer((now - s.oldest_unsynced_ms) / 1000) : json_null(),
             &bad);
    api__set(o, "last_sync_ms", s.last_sync_ms ? json_integer(s.last_sync_ms) : json_null(), &bad);
    api__set(o, "last_sync_age_s",
             s.last_sync_ms ? json_integer((now - s.last_sync_ms) / 1000) : json_null(), &bad);
    api__set(o, "clock_skew_ms", json_integer(s.skew_ms), &bad);
    api__set(o, "dead_letters", json_integer(s.dead_letters), &bad);
    api__set(o, "records", json_integer(s.records), &bad);
    api__set(o, "tombstones", json_integer(s.tombstones), &bad);
    api__set(o, "last_seq", json_integer((json_int_t)s.last_seq), &bad);
    api__set(o, "acked_seq", json_integer((json_int_t)s.acked_seq), &bad);
    api__set(o, "last_error", s.last_error[0] ? api__string(s.last_error) : json_null(), &bad);
    /* Months the reviewer returned: the clerk's work to do, with the reviewer's comment. */
    json_t *ret = NULL;
    if (months_json(outbox_db(ctx->ob), intake_calendar_bs(ctx->in), 1, &ret) != 0)
        bad = 1;
    api__set(o, "returned_months", json_incref(json_object_get(ret, "months")), &bad);
    json_decref(ret);
    if (bad) {
        /* Never a status with keys missing: a reader would take an absent key for "none". */
        json_decref(o);
        o = NULL;
    } else if (ctx->status_json) {
        ctx->status_json(ctx->ud, o);
    }
    api__json(r, 200, o);
}

/* GET /v1/months: each month's review in the node's calendar, returned ones first. */
static void api__months(http_req *r, api_ctx *ctx)
{
    json_t *o = NULL;
    if (months_json(outbox_db(ctx->ob), intake_calendar_bs(ctx->in), 0, &o) != 0) {
        api__error(r, 500, "the months could not be read");
        return;
    }
    api__json(r, 200, o);
}

static void api__followups(http_req *r, api_ctx *ctx)
{
    json_t *o = NULL;
    if (followups_json(ctx->in, 0, &o) != 0) {
        api__error(r, 500, "the follow-ups could not be read");
        return;
    }
    api__json(r, 200, o);
}

void api_respond_json(http_req *r, int status, json_t *o)
{
    api__json(r, status, o);
}

void api_respond_error(http_req *r, int status, const char *msg)
{
    api__error(r, status, msg);
}

/* Answers a lookup's result: 200 with o, 404 naming local_id, or 500. */
static void api__lookup(http_req *r, int rc, json_t *o, const char *local_id)
{
    char msg[200];
    if (rc == 0) {
        api__json(r, 200, o);
    } else if (rc == REINT_ENOTFOUND) {
        snprintf(msg, sizeof(msg), "no live record with local_id \"%.100s\"",
                 local_id ? local_id : "");
        api__error(r, 404, msg);
    } else {
        api__error(r, 500, "the store could not be read");
    }
}

/* GET /v1/persons/<local_id> (with services and enterprises) or /v1/<kind>/<local_id>. */
static void api__get_row(http_req *r, api_ctx *ctx, int kind, const char *local_id)
{
    json_t *o = NULL;
    int rc = kind == INTAKE_PERSON ? lookup_person(ctx->in, local_id, &o)
                                   : lookup_row(ctx->in, kind, local_id, &o);
    api__lookup(r, rc, o, local_id);
}

/* GET /v1/persons?q=...&limit=N: the search of lookup.h. */
static void api__search(http_req *r, api_ctx *ctx)
{
    const char *q = http_req_param(r, "q"), *lim = http_req_param(r, "limit");
    long limit = 50;
    json_t *o = NULL;
    if (lim) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (end == lim || *end != '\0' || limit < 1 || limit > LOOKUP_SEARCH_MAX) {
            char msg[96];
            snprintf(msg, sizeof(msg), "limit must be a whole number 1..%d", LOOKUP_SEARCH_MAX);
            api__error(r, 400, msg);
            return;
        }
    }
    if (q && strlen(q) > 200) {
        api__error(r, 400, "q is longer than 200 bytes");
        return;
    }
    int rc = lookup_search(ctx->in, q ? q : "", (size_t)limit, &o);
    api__lookup(r, rc, o, NULL);
}

/* The clerk of a request signed in with the workspace's session cookie (session.h), which
 * must also come from the workspace's own pages; or NULL after answering 401 or 403. */
static const char *api__session_clerk(http_req *r, api_ctx *ctx)
{
    session_info si;
    if (session_check(ctx->sessions, r, &si) != SESSION_OK) {
        log_info("api: %s %s from %s refused: the session has ended", http_req_method(r),
                 http_req_path(r), http_req_peer(r));
        session_forget_cookie(ctx->sessions, r);
        api__error(r, 401, "the session has ended; sign in again");
        return NULL;
    }
    if (!session_csrf_ok(&si, r)) {
        log_security("api: %s %s from %s refused: a request with %s's session cookie but without "
                     "the session's CSRF token, or from another site",
                     http_req_method(r), http_req_path(r), http_req_peer(r), si.clerk);
        api__error(r, 403,
                   "this request did not come from the node's own pages (another site, or no "
                   "CSRF token)");
        return NULL;
    }
    return si.clerk;
}

const char *api_token_clerk(api_ctx *ctx, const char *authorization)
{
    if (authorization && ctx->tokens_refresh)
        (void)ctx->tokens_refresh();
    return tokens_check(ctx->tokens, authorization);
}

/* The clerk whose token r carries, or whose session its cookie is; or NULL after answering
 * 401 (or 403 for a session request from elsewhere). A bearer token wins over a cookie. */
static const char *api__clerk(http_req *r, api_ctx *ctx)
{
    const char *auth = http_req_header(r, "Authorization");
    if (auth == NULL && ctx->sessions && session_has_cookie(ctx->sessions, r))
        return api__session_clerk(r, ctx);
    const char *clerk = api_token_clerk(ctx, auth);
    if (clerk == NULL) {
        log_warn("api: %s %s from %s refused: no valid bearer token", http_req_method(r),
                 http_req_path(r), http_req_peer(r));
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"municipal-node\"");
        api__error(r, 401, "a clerk's bearer token is required (Authorization: Bearer ...)");
    }
    return clerk;
}

/* GET /v1/openapi.json: the API's description (docs/openapi/node.json, compiled in). It is
 * open, as the pages are: it holds no data, and a program that reads it to learn the API has
 * no token yet. */
static void api__openapi(http_req *r)
{
    if (strcmp(http_req_method(r), "GET") != 0 && strcmp(http_req_method(r), "HEAD") != 0) {
        api__not_allowed(r, "GET, HEAD");
        return;
    }
    http_respond(r, 200, "application/json", openapi_node, openapi_node_len);
}

int api_on_head(http_req *r, api_ctx *ctx)
{
    const char *path = http_req_path(r), *method = http_req_method(r);
    if (strncmp(path, "/v1/", 4) != 0)
        return 0;
    if (!strcmp(path, "/v1/openapi.json")) {
        /* It takes no body: another method is answered from the head, body unread. */
        http_req_limit_body(r, 0);
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            api__not_allowed(r, "GET, HEAD");
        return 0;
    }
    /* Signing in is the one request without a clerk yet: its body is small. */
    if (!strcmp(path, "/v1/session") && !strcmp(method, "POST")) {
        http_req_limit_body(r, API_MAX_SIGNIN_BODY);
        return 0;
    }
    if (api__clerk(r, ctx) == NULL)
        return 1;
    /* Only an uploaded CSV may be larger than an ordinary body. */
    if (!(strncmp(path, "/v1/imports/", 12) == 0 && !strcmp(method, "POST")))
        http_req_limit_body(r, API_MAX_BODY);
    return 0;
}

void api_handle(http_req *r, api_ctx *ctx)
{
    const char *path = http_req_path(r), *method = http_req_method(r);
    if (strncmp(path, "/v1/", 4) != 0) {
        api__error(r, 404, "no such resource");
        return;
    }
    const char *rest = path + 4;
    if (!strcmp(rest, "openapi.json")) {
        api__openapi(r);
        return;
    }
    if (!strcmp(rest, "session") && !strcmp(method, "POST")) {
        webapi_signin(r, ctx);
        return;
    }
    const char *clerk = api__clerk(r, ctx);
    if (clerk == NULL)
        return;
    if (webapi_handle(r, ctx, rest, clerk))
        return;
    if (!strcmp(rest, "status")) {
        if (strcmp(method, "GET") != 0)
            api__not_allowed(r, "GET");
        else
            api__status(r, ctx);
        return;
    }
    if (!strcmp(rest, "months")) {
        if (strcmp(method, "GET") != 0)
            api__not_allowed(r, "GET");
        else
            api__months(r, ctx);
        return;
    }
    if (!strcmp(rest, "followups")) {
        if (strcmp(method, "GET") != 0)
            api__not_allowed(r, "GET");
        else
            api__followups(r, ctx);
        return;
    }
    const char *slash = strchr(rest, '/');
    size_t seg = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *tail = slash ? slash + 1 : NULL;
    int kind = 0;
    json_t *o = NULL;
    static const char *const segs[] = {NULL, "persons", "services", "enterprises", "availability"};
    for (int k = INTAKE_PERSON; k <= INTAKE_AVAILABILITY; k++)
        if (strlen(segs[k]) == seg && !strncmp(rest, segs[k], seg))
            kind = k;
    if (kind == 0 || (tail && tail[0] == '\0')) {
        api__error(r, 404, "no such resource");
        return;
    }
    if (kind == INTAKE_AVAILABILITY) {
        char lid[128];
        if (tail == NULL && !strcmp(method, "GET")) {
            int rc = lookup_availability(ctx->in, &o);
            api__lookup(r, rc, o, NULL);
            return;
        }
        if (tail == NULL || strchr(tail, '/') == NULL) {
            api__error(r, 404, "availability is set at /v1/availability/<service>/<provider>");
            return;
        }
        if (!strcmp(method, "PUT")) {
            api__write(r, ctx, kind, tail, clerk);
        } else if (!strcmp(method, "DELETE")) {
            if (api__availability_id(tail, lid, sizeof(lid)) != 0)
                api__error(r, 404, "no such service and provider");
            else
                api__delete(r, ctx, kind, lid, clerk);
        } else {
            api__not_allowed(r, "PUT, DELETE");
        }
        return;
    }
    if (tail == NULL) {
        if (!strcmp(method, "POST"))
            api__write(r, ctx, kind, NULL, clerk);
        else if (!strcmp(method, "GET") && kind == INTAKE_PERSON)
            api__search(r, ctx);
        else
            api__not_allowed(r, kind == INTAKE_PERSON ? "GET, POST" : "POST");
        return;
    }
    if (!strcmp(method, "PUT"))
        api__write(r, ctx, kind, tail, clerk);
    else if (!strcmp(method, "DELETE"))
        api__delete(r, ctx, kind, tail, clerk);
    else if (!strcmp(method, "GET"))
        api__get_row(r, ctx, kind, tail);
    else
        api__not_allowed(r, "GET, PUT, DELETE");
}

void api_http_handler(http_req *r, void *ud)
{
    api_handle(r, ud);
}
