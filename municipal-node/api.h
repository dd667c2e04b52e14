/* The node's HTTP/JSON intake API for clerks, on top of common/http.h:
 *
 *   POST   /v1/persons|services|enterprises          201 {"id", "local_id", "version"}; a
 *                                                    body without local_id gets a new one
 *                                                    (the day and a random suffix)
 *   PUT    /v1/persons|services|enterprises/<local_id> 200 (a correction: the whole row)
 *   DELETE /v1/persons|services|enterprises/<local_id> 204, 404 when not live
 *   GET    /v1/persons?q=TEXT&limit=N                 search (lookup.h; personal data)
 *   GET    /v1/persons/<local_id>                     the person, services, enterprises
 *   GET    /v1/services|enterprises/<local_id>        {"row": ...}
 *   GET    /v1/availability                           every availability row
 *   PUT    /v1/availability/<service>/<provider>       200 {"available": true, "as_of": ...}
 *   GET    /v1/followups                               pending referrals (local data)
 *   GET    /v1/months                                  each month's review (months.h)
 *   GET    /v1/status                                  backlog, last sync, dead letters,
 *                                                      returned months, ...
 *   ...and the workspace's endpoints of webapi.h (session, schema, check, imports, ...).
 *
 * Bodies are JSON objects keyed by the CSV column names; values may be strings, numbers,
 * booleans or null (unknown). Every /v1/ request but signing in needs "Authorization:
 * Bearer <token>" of a clerk, or the workspace's session cookie together with its CSRF token
 * (session.h) (401 otherwise, 403 for a session request from another site); bad rows get
 * 422 {"errors": [{"field", "reason", "code", "arg"}]} (code and arg as field.h's), malformed
 * JSON 400 with jansson's line and column. Each change is one transaction, committed (and
 * so durable) before the response, and records the clerk. GET /healthz and /metrics are
 * not served here. */
#ifndef MUNICIPAL_NODE_API_H
#define MUNICIPAL_NODE_API_H

#include "error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "field.h"
#include "http.h"
#include "intake.h"
#include "outbox.h"
#include "limiter.h"
#include "session.h"
#include "tokens.h"
#include "webimport.h"

#define API_MAX_BODY_KEYS 64
/* The largest body of a request (a JSON row); an uploaded CSV may have API_MAX_UPLOAD, and
 * a sign-in API_MAX_SIGNIN_BODY. */
#define API_MAX_BODY        (1024 * 1024)
#define API_MAX_UPLOAD      (32 * 1024 * 1024)
#define API_MAX_SIGNIN_BODY 4096
/* Bytes of a local_id the node makes, NUL included ("2083-07-15-7K3QF2ZD"). */
#define API_LOCAL_ID_MAX 32

/* The caller fills in, owns and keeps alive in and ob; the hooks are optional. */
typedef struct api_ctx {
    intake *in;
    outbox *ob;
    /* Called after each successful commit (the lead wires it to sync_kick). */
    void (*on_commit)(void *ud);
    /* Lets the caller add its own keys (sync state) to the GET /v1/status object. */
    void (*status_json)(void *ud, json_t *obj);
    void *ud;
    tokens_table *tokens; /* the clerks' tokens (common/tokens.h); owned by the caller */
    /* Reads the tokens file again when it changed since tokens was loaded (tokens_changed):
     * 1 when it did and was read, 0 otherwise. NULL: never. */
    int (*tokens_refresh)(void);
    /* The workspace's (web.h), owned by the caller; sessions NULL: no session is accepted. */
    session_table *sessions;
    limiter *signin_limits; /* failed sign-ins (webapi.h) */
    webimport *imports;     /* CSV uploads */
    uv_loop_t *loop;        /* where password checks are queued off the loop's thread */
    int municipality;       /* the node's local level code */
} api_ctx;

/* Handles one request under /v1/ (responds 404 to anything else); always responds. */
/* The server's on_head: a /v1/ request without a valid clerk token is answered 401 before
 * its body is read (returns 1); others return 0. */
int api_on_head(http_req *r, api_ctx *ctx);
void api_handle(http_req *r, api_ctx *ctx);
/* The clerk whose token an Authorization value carries, or NULL, against the tokens file as
 * it is now: a token made or withdrawn a moment ago (`municipal-node token` returns before the
 * file's watch fires) counts from the next request on, the file read again when it changed
 * (a stat a request). */
const char *api_token_clerk(api_ctx *ctx, const char *authorization);
/* The same with the signature of http_handler (ud is the api_ctx). */
void api_http_handler(http_req *r, void *ud);

/* Answers r with o (taken; NULL answers 500) or with {"error": msg}. */
void api_respond_json(http_req *r, int status, json_t *o);
void api_respond_error(http_req *r, int status, const char *msg);
/* The errors as the API's JSON array (owned by the caller), NULL when out of memory. */
json_t *api_field_errors_json(const field_errors *e);

/* Whether body is a JSON object with a "local_id" key. */
int api_body_has_local_id(const char *body, size_t len);
/* A local_id for a new record: the day in the node's calendar and eight random characters of
 * Crockford's base32 ("2083-07-15-7K3QF2ZD"), one that no record of the store, live or
 * deleted, has had. Returns 0, REINT_ENOMEM (no random bytes), REINT_EEXIST (every attempt
 * taken: never in practice) or a store code. */
int api_new_local_id(api_ctx *ctx, char out[API_LOCAL_ID_MAX]);

/* Parses body as the JSON object of a row and applies it like api_handle does, inside the
 * caller's transaction. path_local_id, when non-NULL, is the local_id named by the URL
 * (the body's local_id must then match it or be absent); for availability it is
 * "<service>/<provider>" from the URL, added to the body's {"available", "as_of"}. Returns 0
 * with res set; REINT_EINVAL for a row refused field by field (errs filled: the API answers
 * 422); REINT_EMALFORMED for malformed JSON, a body that is not an object of at most
 * API_MAX_BODY_KEYS keys, or an availability URL without a provider (message in jerr: the API
 * answers 400); or a store code. */
int api_apply_json(intake *in, int kind, const char *body, size_t len, const char *path_local_id,
                   const char *clerk, field_errors *errs, intake_result *res, char *jerr,
                   size_t jerrlen);
/* The same checks without writing (intake_check): for a form checked as the clerk types. */
int api_check_json(intake *in, int kind, const char *body, size_t len, const char *path_local_id,
                   field_errors *errs, char *jerr, size_t jerrlen);

#endif
