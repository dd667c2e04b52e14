/* The audit log of the hub officers' HTTPS API: every answer to a request that carried a
 * valid token (who, role, from where, the whole normalised target, the status) is written
 * before it is sent, and a read that cannot be audited is not served; requests without a
 * valid token are counted by the limiter (common/limiter.h) and written in batches, one row
 * per (address, token prefix, status) with the number of attempts it stands for. A decision on
 * a month is audited in the transaction that stores it (haudit_insert).
 *
 * The table, officer_audit in hub.db, is this module's own (hubstore.c owns the others):
 *   officer_audit(id INTEGER PRIMARY KEY, at_ms, first_ms, who, role, peer, method, target,
 *                 status, attempts, token_prefix)
 * at_ms is the time of the answer (of the last attempt for a batched row), first_ms that of
 * the first attempt a batched row counts (NULL otherwise), token_prefix the first characters
 * of the token presented on a batched row ("none" without one; NULL otherwise).
 *
 * Each function takes the connection it runs on (one read-write connection per thread). */
#ifndef PROVINCIAL_HUB_HAUDIT_H
#define PROVINCIAL_HUB_HAUDIT_H

#include "error.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define HAUDIT_LIST_MAX 10000 /* rows GET /v1/audit returns at most */

typedef struct haudit_row {
    uint64_t at_ms;
    uint64_t first_ms;        /* 0: not a batched row (stored as NULL) */
    const char *who;          /* the token's name; "-" without a valid token */
    const char *role;         /* "officer", "reviewer", "admin"; "none" without */
    const char *peer;         /* the client's address */
    const char *method;       /* "GET", ... */
    const char *target;       /* path?query: normalised when accepted, as received if not */
    int status;               /* the answer's HTTP status */
    unsigned attempts;        /* requests the row stands for (1 but for batched rows) */
    const char *token_prefix; /* batched rows only; NULL otherwise */
} haudit_row;

/* Creates the table on db when absent. Returns 0 or REINT_EDB with err set. */
int haudit_open(sqlite3 *db, char *err, size_t errlen);

/* Writes n rows in one transaction (durable when it returns 0). Returns 0 or REINT_EDB
 * (logged; nothing written). */
int haudit_write(sqlite3 *db, const haudit_row *rows, size_t n);
/* The same in the caller's transaction: a decision on a month is audited in the transaction
 * that stores it, so that no decision is ever stored unaudited. Returns 0 or REINT_EDB. */
int haudit_insert(sqlite3 *db, const haudit_row *rows, size_t n);

/* The newest limit rows (1..HAUDIT_LIST_MAX), newest first, as {"audit": [{id, at (ISO 8601
 * UTC), who, role, peer, method, target, status, attempts, first_at (or null), token_prefix
 * (or null)}]} into *out (the caller's reference). Returns 0, REINT_ENOMEM or REINT_EDB. */
int haudit_list(sqlite3 *db, long limit, json_t **out);

#endif
