/* The limiter of failed token attempts of the HTTPS APIs (the federal API and the hub
 * officers' API). It runs after the token is read, never before: a valid token is never
 * limited. Failures are counted per (client address, token prefix) in a window; past
 * max_failures the pair is blocked, and is answered 429 at once (no connection is held)
 * with a Retry-After that doubles each time the pair trips again. Keying on the prefix as
 * well as the address means that behind a load balancer (every client one address) a
 * client that keeps sending a bad token blocks only that token's prefix, not every user.
 *
 * The address is http_req_peer()'s (the PROXY protocol address when the server takes it
 * from a trusted load balancer); its port is ignored. The counts of failed and refused
 * attempts wait in memory until limiter_drain() hands them to the audit in one batch, so
 * that an unauthenticated request costs no database write of its own.
 *
 * Memory is bounded: LIMITER_SLOTS pairs (the least recently seen is reused; its unwritten
 * counts move to one overflow entry) and LIMITER_KNOWN_MAX known-valid token hashes. Not
 * thread-safe: one loop uses it. */
#ifndef COMMON_LIMITER_H
#define COMMON_LIMITER_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define LIMITER_SLOTS       1024
#define LIMITER_KNOWN_MAX   65536
#define LIMITER_ADDR_MAX    48 /* bytes of an address, NUL included */
#define LIMITER_PREFIX_LEN  8  /* characters of a token kept as its prefix */
#define LIMITER_PREFIX_MAX  (LIMITER_PREFIX_LEN + 1)
#define LIMITER_WHAT_MAX    96 /* bytes of the path kept with a pair's counts, NUL included */
#define LIMITER_BLOCK_MAX_S 86400

typedef struct limiter limiter;

/* max_failures per window_s before a pair is blocked; its first block lasts window_s and
 * each later one twice the one before, up to LIMITER_BLOCK_MAX_S. A pair that fails nothing
 * for LIMITER_BLOCK_MAX_S starts again from the first. 0 for either picks 20 and 60.
 * Returns NULL when out of memory. */
limiter *limiter_new(unsigned max_failures, unsigned window_s);
void limiter_free(limiter *l);

/* The prefix of the token an Authorization header value carries, as the limiter keys it:
 * the first LIMITER_PREFIX_LEN characters after "Bearer " and after skip (a fixed text
 * every token of the API starts with, e.g. "fed_"; may be NULL), with characters other
 * than A-Z a-z 0-9 _ - written as '?'; "none" when the header is missing or not Bearer. */
void limiter_prefix(const char *authorization, const char *skip, char out[LIMITER_PREFIX_MAX]);

/* The address part of a peer "host:port" (or "[v6]:port") into out. */
void limiter_addr(const char *peer, char out[LIMITER_ADDR_MAX]);

/* Whether (addr, prefix) is blocked at now_ms. hash (32 bytes of the token's SHA-256, or
 * NULL when none was given) of a token known valid (limiter_known_*) is never blocked. When
 * blocked, the refusal is counted for the audit (what: the path asked) and *retry_after_s
 * is set to the seconds left (at least 1). */
int limiter_blocked(limiter *l, const char *addr, const char *prefix, const uint8_t *hash,
                    const char *what, uint64_t now_ms, unsigned *retry_after_s);

/* Counts a failed attempt of (addr, prefix) at now_ms (what: the path asked), which may
 * block the pair. Returns 1 when the pair is blocked now (the next attempt is answered 429),
 * else 0. */
int limiter_fail(limiter *l, const char *addr, const char *prefix, const char *what,
                 uint64_t now_ms);

/* Token hashes known valid: a request carrying one is never blocked, whatever its pair.
 * _add notes one (a token that just authenticated); _replace sets the whole list (n hashes
 * of 32 bytes; those past LIMITER_KNOWN_MAX are left out, and REINT_ETOOBIG returned).
 * Return 0, REINT_ENOMEM or REINT_ETOOBIG. */
int limiter_known_add(limiter *l, const uint8_t hash[32]);
int limiter_known_replace(limiter *l, const uint8_t *hashes, size_t n);

/* One pair's counts since the last drain, for the audit. addr is "*" and prefix "*" for the
 * counts of pairs whose slots were reused before they were written. */
typedef struct limiter_count {
    char addr[LIMITER_ADDR_MAX];
    char prefix[LIMITER_PREFIX_MAX];
    char what[LIMITER_WHAT_MAX];
    uint64_t first_ms, last_ms; /* of the attempts counted */
    unsigned failed;            /* answered 401 */
    unsigned refused;           /* answered 429 */
} limiter_count;

/* Moves up to max pairs' counts into out (zeroing them in the limiter). Returns how many
 * were written; call again while it returns max. */
size_t limiter_drain(limiter *l, limiter_count *out, size_t max);

/* Whether any counts wait for limiter_drain(). */
int limiter_pending(const limiter *l);

#endif
