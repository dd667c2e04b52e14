/* Tokens recently found valid, kept in memory until the tokens table changes (issue 17: the
 * national query p99 under ingest).
 *
 * Every request with a bearer token looked its token up in PostgreSQL before anything else:
 * one round trip of a handful of microseconds of work that, under ingest, waits for a core
 * like any other. A token found valid is kept here with what the lookup said (name, role,
 * province) and served instead of the lookup while nothing has changed the tokens table since
 * the lookup was sent: every statement on it (a token created, revoked, deleted) notifies
 * FTOKCACHE_PAYLOAD on the pool's channel (fcovcache.h's, trigger of migration 14), delivered
 * on commit to every federal-api process listening on the database, and each notification
 * drops every kept token. A revocation therefore holds for every request that reaches a
 * process after the revoke's notification (milliseconds after its commit), as for a request
 * that was already past its lookup when the revoke committed.
 *
 * As for the coverage cache, nothing is kept or served while no connection of the pool
 * listens, nor ever after a LISTEN was refused (a standby), and a connection that begins
 * listening drops everything (what was notified while it did not listen is unknown). A kept
 * token is also dropped FTOKCACHE_TTL_MS after its lookup whatever happens. Tokens that were
 * not found are never kept: a wrong token always costs a lookup and counts as a failure.
 *
 * Single-threaded (the loop's thread). Bounded: FTOKCACHE_ENTRIES tokens, direct-mapped by
 * their hash. */
#ifndef FEDERAL_API_FTOKCACHE_H
#define FEDERAL_API_FTOKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define FTOKCACHE_PAYLOAD "tokens"
#define FTOKCACHE_ENTRIES 256
#define FTOKCACHE_TTL_MS  60000

typedef struct ftokcache ftokcache;

/* What a token's lookup said. */
typedef struct ftokcache_who {
    char name[AUTH_NAME_MAX + 1];
    enum auth_role role;
    int province; /* 1..7 for a province token, else 0 */
} ftokcache_who;

ftokcache *ftokcache_new(void);
void ftokcache_free(ftokcache *c);

/* db_opts.on_notify's events for the cache (as fcovcache_notify: channel NULL with "+", "-"
 * or "!"); a notification drops everything when its payload is FTOKCACHE_PAYLOAD. */
void ftokcache_notify(ftokcache *c, const char *channel, const char *payload);

/* The clock to give ftokcache_put for a lookup about to be sent. */
uint64_t ftokcache_clock(const ftokcache *c);

/* What the lookup of the token of SHA-256 hash said, when it is kept and nothing dropped it
 * since: returns 1 and fills out, else 0. now_ms: clock_now_ms(). */
int ftokcache_get(ftokcache *c, const uint8_t hash[32], uint64_t now_ms, ftokcache_who *out);

/* Keeps what the lookup of hash, sent at clock since (ftokcache_clock), found, unless the
 * cache was dropped since. */
void ftokcache_put(ftokcache *c, const uint8_t hash[32], uint64_t since, uint64_t now_ms,
                   const ftokcache_who *who);

typedef struct ftokcache_metrics {
    uint64_t hits, misses, drops;
} ftokcache_metrics;
void ftokcache_get_metrics(const ftokcache *c, ftokcache_metrics *m);

#endif
