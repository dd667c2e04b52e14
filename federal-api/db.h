/* A pool of asynchronous libpq connections driven by the libuv loop: PQconnectStart and
 * PQconnectPoll to connect, PQsendQueryParams, PQflush, PQconsumeInput and PQgetResult to
 * run one statement at a time per connection, each socket watched by one uv_poll handle.
 * Nothing here blocks the loop. A connection that breaks (the database restarted) fails its
 * statement and reconnects with exponential backoff; queued statements wait for it, up to
 * a deadline. */
#ifndef FEDERAL_API_DB_H
#define FEDERAL_API_DB_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct db_pool db_pool;

typedef struct db_opts {
    uv_loop_t *loop;
    const char *conninfo;      /* libpq connection string; copied */
    int size;                  /* connections (default 4) */
    size_t max_queue;          /* statements waiting for a connection (default 10000) */
    uint64_t queue_timeout_ms; /* a statement queued longer fails (default 10000) */
    /* With listen set, every connection LISTENs on that channel before its first statement,
     * and on_notify(notify_ud, channel, payload) is called for each notification any of them
     * receives (the same notification once per connection). With channel NULL, payload "+"
     * says that a connection has just begun listening (notifications sent while it did not,
     * being down, were not heard by it), "-" that one which listened has broken, "!" that a
     * connection's LISTEN was refused (a hot standby, to which notifications are not
     * replicated): it works on without listening, and what it reads may be older than what the
     * others have heard of. */
    const char *listen;
    void (*on_notify)(void *ud, const char *channel, const char *payload);
    void *notify_ud;
} db_opts;

/* Called once per statement. On success res is the statement's result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK) and err is NULL; on failure res is NULL and err says why. res belongs
 * to the pool and is cleared after the callback returns. The callback may queue more
 * statements. */
typedef void (*db_cb)(void *ud, const PGresult *res, const char *err);

/* Starts size connections (connecting in the background). Returns 0, REINT_ENOMEM, or
 * REINT_EINVAL when the loop refuses a timer. */
int db_pool_start(db_pool **out, const db_opts *opts);

/* Queues one statement with n text parameters ($1..$n; NULL values are SQL NULL). The
 * statement and the parameters are copied. Returns 0 (cb will be called exactly once,
 * never from inside this call), REINT_EQUEUE, REINT_ENOMEM or REINT_ESTOP (cb is then never
 * called). */
int db_query(db_pool *p, const char *sql, int n, const char *const *values, db_cb cb, void *ud);

/* As db_query, for bulk work (a province's ingest): queued statements of db_query go first,
 * and with a pool of n > 1 connections at most n - 1 bulk statements run at once, so that
 * one connection is always left for reads (a national query does not wait behind commits). */
int db_query_bulk(db_pool *p, const char *sql, int n, const char *const *values, db_cb cb,
                  void *ud);

/* Fails queued and running statements (their callbacks run with an error), closes every
 * connection, and frees the pool once its handles have closed. */
void db_pool_stop(db_pool *p);

typedef struct db_metrics {
    uint64_t queries, errors, connects, disconnects, timeouts;
    int connected, size;
    size_t queued;
} db_metrics;
void db_get_metrics(const db_pool *p, db_metrics *m);

#endif
