/* The provincial officers' HTTPS API: GET /v1/gaps, /v1/indicators, /v1/indicators/<code>
 * (by=district or by=municipality, alone or with a grouping, and series=bs_month, trimester or
 * month: a table by area and over time, gaps.h)
 * (its province only, JSON or ?format=csv), GET /v1/reviews?period= (the monthly review,
 * reviews.h: every municipality's state of the month with the figures to decide on), and for
 * the reviewer role POST /v1/reviews/<municipality>/<period> with {"decision": "approve" |
 * "return", "comment": "...", "seen_version": N}; for the admin role GET /v1/audit, GET
 * /v1/sweeps and POST /v1/sweeps/<id>/confirm or /undo (sweeps.h); token-protected.
 *
 * Every request is authenticated by itself against the tokens file (common/tokens.h), so a
 * token removed from the file is refused from the next request on once the file is reloaded
 * (officers_reload_tokens, when the file changes or on SIGHUP), kept-alive connection or not. A
 * request without a valid token is counted by the failed-attempt limiter (common/limiter.h: per
 * client address and token prefix, 429 with a growing Retry-After; a valid token is never limited)
 * and written to the audit in batches. Queries are parsed strictly (common/query.h: no empty
 * segment, each name once, known names only); every answer to a request with a valid token
 * is written to the audit (haudit.h) with its normalised target before it is sent.
 *
 * The reports never run on the ingest's loop or connection: each request's work (the report,
 * the audit row) runs in libuv's thread pool, on one of a few lanes, each a read-only
 * connection for the reports (gaps_reader_open) and a read-write one for the audit; the
 * answer is sent on the loop. Requests beyond the lanes wait in a bounded queue (503 past
 * it). */
#ifndef PROVINCIAL_HUB_OFFICERS_H
#define PROVINCIAL_HUB_OFFICERS_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "haudit.h"
#include "reviews.h"

typedef struct officers officers;

typedef struct officers_opts {
    uv_loop_t *loop;
    const char *db_path; /* hub.db, created by the ingest before this starts; copied */
    unsigned province;
    const char *tokens; /* the officers' tokens file ("" or absent: every request refused) */
    unsigned max_failures, window_s; /* the limiter's (common/limiter.h); 0 picks 20 and 60 */
    /* An admin's decision on a pending sweep (provincial-hub/sweeps.h), run on the loop:
     * ingest_sweep_decide. NULL: decisions answer 503. */
    int (*sweep_decide)(void *ud, int64_t id, int undo, const char *who, uint32_t *municipality);
    /* A reviewer's decision on a month, run on the loop: ingest_review_decide. NULL:
     * decisions answer 503. */
    int (*review_decide)(void *ud, uint32_t municipality, int bs, int32_t ym, int approve,
                         const reviews_seen *seen, const char *who, const char *comment,
                         const haudit_row *audit, reviews_month *out);
    void *ud;
} officers_opts;

/* Opens the lanes' connections, creates the audit table when absent and loads the tokens.
 * Returns 0 or a REINT_E* code with err set (a tokens file that does not parse is one). */
int officers_start(officers **out, const officers_opts *opts, char *err, size_t errlen);

/* The HTTPS server's on_head (http_head_cb): a request without a valid token is refused (401,
 * or 429 from the limiter) before anything of it is read further. */
int officers_on_head(http_req *r, void *ud);

/* The HTTPS server's handler (http_handler); ud is the officers. */
void officers_handle(http_req *r, void *ud);

/* Reads the tokens file again (after SIGHUP: signalled; or after a change its watch saw).
 * When it is absent, or does not parse, every request is refused until it is fixed (logged):
 * a failed reload never keeps a removed token valid. Every session then ends, unless the
 * file's change only added tokens (not signalled), as `provincial-hub token` does. From the
 * watch, a file that is absent, does not parse, or is empty when tokens were loaded may be
 * one being rewritten: nothing changes, and 1 asks for another look (filewatch_cb), unless
 * last_try. Returns 0 otherwise. */
/* last_try: 0 from the watch (a file that does not parse, or emptied, may be one being
 * rewritten: 1 asks for another look), 1 its last look (taken as it is), 2 a file renamed
 * into place (emptied is taken; one that does not parse waits, as 0). */
int officers_reload_tokens(officers *o, int signalled, int last_try);

/* Call after the HTTPS server is stopped: writes the last counted failures, and frees o once
 * the work in the thread pool has finished (the loop must keep running until then). */
void officers_stop(officers *o);

#endif
