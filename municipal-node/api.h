/* The node's HTTP/JSON intake API for clerks, on top of common/http.h:
 *
 *   POST   /v1/persons|services|enterprises          201 {"id", "local_id", "version"}
 *   PUT    /v1/persons|services|enterprises/<local_id> 200 (a correction: the whole row)
 *   DELETE /v1/persons|services|enterprises/<local_id> 204, 404 when not live
 *   PUT    /v1/availability/<service>/<provider>       200 {"available": true, "as_of": ...}
 *   GET    /v1/followups                               pending referrals (local data)
 *   GET    /v1/months                                  each month's review (months.h)
 *   GET    /v1/status                                  backlog, last sync, dead letters,
 *                                                      returned months, ...
 *
 * Bodies are JSON objects keyed by the CSV column names; values may be strings, numbers,
 * booleans or null (unknown). Every /v1/ request needs "Authorization: Bearer <token>" of
 * a clerk (401 otherwise); bad rows get 422 {"errors": [{"field", "reason"}]}, malformed
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
#include "tokens.h"

#define API_MAX_BODY_KEYS 64

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
} api_ctx;

/* Handles one request under /v1/ (responds 404 to anything else); always responds. */
/* The server's on_head: a /v1/ request without a valid clerk token is answered 401 before
 * its body is read (returns 1); others return 0. */
int api_on_head(http_req *r, api_ctx *ctx);
void api_handle(http_req *r, api_ctx *ctx);
/* The same with the signature of http_handler (ud is the api_ctx). */
void api_http_handler(http_req *r, void *ud);

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

#endif
