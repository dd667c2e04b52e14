/* The audit log of the federal HTTPS API (DESIGN.md, Security: every federal read by a token
 * audited). Every answer to a request that carried a valid token is written to the audit
 * table before it is sent; a read that cannot be audited is not served. A read of data writes
 * its row in the same statement as the data (FAUDIT_READ_SQL), so that no data leaves
 * unaudited and no second round trip is spent. Requests without a valid token are counted by
 * the limiter (common/limiter.h) and written in batches (faudit_failures): one row per
 * (address, token prefix, status) with the number of attempts it stands for. GET /v1/audit
 * lists the log for admins. */
#ifndef FEDERAL_API_FAUDIT_H
#define FEDERAL_API_FAUDIT_H

#include <stddef.h>

#include "freq.h"
#include "limiter.h"
#include "sbuf.h"

/* The head of a statement that reads data and writes its audit row (status 200) at once:
 * "FAUDIT_READ_SQL SELECT ...", with $1..$4 bound to faudit_read_params and the statement's
 * own parameters from $5. An anonymous read of the open-data routes (role label "open",
 * which no token has) writes no row: those reads are counted per route and day instead. */
#define FAUDIT_READ_SQL                                                                            \
    "WITH a AS (INSERT INTO audit(who, role, peer, method, target, status)"                        \
    " SELECT $1::text, $2::text, $3::text, 'GET', $4::text, 200 WHERE $2::text <> 'open')"
#define FAUDIT_READ_PARAMS 4

/* The values of FAUDIT_READ_SQL's $1..$4 for f into v; they live as long as f. */
void faudit_read_params(const freq *f, const char *v[FAUDIT_READ_PARAMS]);

/* Writes f's audit row with status, then answers with body (taken over, freed with f). When
 * the row cannot be written a 200 becomes 503 (the read is not served); other statuses are
 * sent anyway. An anonymous read (f->open) is answered without a row. Frees f. */
void faudit_respond(freq *f, int status, const char *ctype, char *body, size_t len);

/* faudit_respond with {"error": msg} (and WWW-Authenticate for 401). */
void faudit_error(freq *f, int status, const char *msg);

/* faudit_respond with b's content (its buffer taken over, b left empty), or an audited 500
 * when b failed: an answer is never cut short. */
void faudit_respond_sbuf(freq *f, int status, const char *ctype, sbuf *b);

/* Writes n pairs' counts of failed (401) and refused (429) token attempts as audit rows in
 * one statement (who "-", role "none", attempts the count). cb and ud as db_query's. Returns
 * 0, REINT_ENOMEM or db_query's code (cb is then never called). */
int faudit_failures(db_pool *db, const limiter_count *c, size_t n, db_cb cb, void *ud);

/* GET /v1/audit (admins; the caller checks the role): the newest f->q.limit rows (100 when
 * not given), audited in the same statement. Answers and frees f. */
void faudit_list(freq *f);

#endif
