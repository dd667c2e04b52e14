/* CSV imports started from the workspace (POST /v1/imports/<kind>): the uploaded file is
 * written to the node's data directory and imported by import.h on a libuv worker thread,
 * through a connection of its own to the store, while the loop keeps serving; a page polls
 * the job for its progress (the bytes the import has read) and, at the end, for the refused
 * rows by line, field and reason. One import runs at a time (an import holds the store's
 * write lock in batches anyway); the last WEBIMPORT_JOBS jobs are remembered, in memory. */
#ifndef MUNICIPAL_NODE_WEBIMPORT_H
#define MUNICIPAL_NODE_WEBIMPORT_H

#include "error.h"

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "sbuf.h"

#define WEBIMPORT_JOBS 8
/* Refused-row errors kept per job (the counts go on beyond). */
#define WEBIMPORT_MAX_ERRORS 10000
#define WEBIMPORT_ID_LEN     32

typedef struct webimport webimport;

typedef struct webimport_opts {
    uv_loop_t *loop;
    const char *db_path; /* the node's store (copied) */
    const char *dir;     /* where uploads wait while imported (copied): the data directory */
    int bs;              /* the node's calendar */
    int32_t earliest;    /* the earliest day of an event (intake_set_earliest) */
    /* Called on the loop's thread when an import has ended (the lead wires it to sync_kick,
     * so that the rows go upstream at once). */
    void (*on_done)(void *ud);
    void *ud;
} webimport_opts;

/* Returns 0 or REINT_ENOMEM. */
int webimport_new(webimport **out, const webimport_opts *o);
/* Frees everything; call when no import runs (after the loop has ended). */
void webimport_free(webimport *w);

/* Starts importing the len bytes at csv as rows of kind (intake.h), recorded under clerk;
 * name is the file's name as the clerk chose it (for messages; sanitised). *id gets the job's
 * id (WEBIMPORT_ID_LEN hex digits and a NUL). Returns 0, REINT_EEXIST while another import
 * runs, REINT_EINVAL for a kind without columns, REINT_EIO when the upload cannot be written
 * (logged) or REINT_ENOMEM. */
int webimport_start(webimport *w, int kind, const char *name, const char *csv, size_t len,
                    const char *clerk, char id[WEBIMPORT_ID_LEN + 1]);

/* The job as JSON into *out (owned by the caller): its summary {"id", "kind", "name",
 * "clerk", "state": "running" | "done" | "failed", "started", "ended" (Unix ms; ended null
 * while it runs), "done_bytes", "total_bytes", "rows", "inserted", "updated", "unchanged",
 * "refused", "months": [{"period", "rows"}], "months_left_out"} (months: those of the rows
 * stored, import_stats.months, named as /v1/months names them) and "errors": [{"line",
 * "field", "code", "arg", "reason"}], "errors_left_out", "messages": [text, ...] (the errors
 * only once it has ended). Returns 0, REINT_ENOTFOUND or REINT_ENOMEM. */
int webimport_json(webimport *w, const char *id, json_t **out);

/* The remembered jobs' summaries, newest first: {"imports": [summary, ...]} into *out (the
 * caller's). Returns 0 or REINT_ENOMEM. */
int webimport_list_json(webimport *w, json_t **out);

/* The refused rows' errors as CSV ("line,field,code,reason", a header first) appended to out.
 * Returns 0, REINT_ENOTFOUND, REINT_EEXIST while the job runs, or REINT_ENOMEM. */
int webimport_errors_csv(webimport *w, const char *id, sbuf *out);

#endif
