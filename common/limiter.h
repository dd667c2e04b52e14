/* The limiter of failed token attempts of the HTTPS APIs (the federal API and the hub
 * officers' API). It runs after the token is read, never before, and never refuses a valid
 * token. Failures are counted per (client address, token prefix) in a window; past
 * max_failures the pair is blocked: its failures are answered 429 (no connection is held)
 * with a Retry-After that doubles each time the pair trips again. Keying on the prefix as
 * well as the address means that behind a load balancer (every client one address) a
 * client that keeps sending a bad token blocks only that token's prefix, not every user.
 * A blocked pair's request is refused before its token is looked up only when it carries no
 * token or one the pair already failed with (the last LIMITER_HASHES are kept): any other
 * token is looked up first, so a valid one that happens to share the pair is served.
 *
 * The address is http_req_peer()'s (the PROXY protocol address when the server takes it
 * from a trusted load balancer); its port is ignored. The counts of failed and refused
 * attempts wait in memory until limiter_drain() hands them to the audit in one batch, so
 * that an unauthenticated request costs no database write of its own.
 *
 * Memory is bounded: LIMITER_SLOTS pairs (an unblocked one, least recently seen, is reused
 * first; its unwritten counts move to one overflow entry). Not thread-safe: one loop uses
 * it. */
#ifndef COMMON_LIMITER_H
#define COMMON_LIMITER_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define LIMITER_SLOTS       1024
#define LIMITER_HASHES      4  /* failed tokens remembered per pair */
#define LIMITER_ADDR_MAX    48 /* bytes of an address, NUL included */
#define LIMITER_PREFIX_LEN  8  /* characters of a token kept as its prefix */
#define LIMITER_PREFIX_MAX  (LIMITER_PREFIX_LEN + 1)
#define LIMITER_WHAT_MAX    96 /* bytes of "METHOD path" kept with a pair's counts */
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

/* Whether a request of (addr, prefix) carrying the token whose SHA-256 is hash (NULL when
 * it carries none, or none of the API's shape) is refused at now_ms without looking the token
 * up: the pair is blocked and the token is none, or one the pair already failed with. When
 * refused, the refusal is counted for the audit (what: "METHOD path") and *retry_after_s is
 * set to the seconds left (at least 1). A token that could be valid is never refused here. */
int limiter_blocked(limiter *l, const char *addr, const char *prefix, const uint8_t *hash,
                    const char *what, uint64_t now_ms, unsigned *retry_after_s);

enum limiter_verdict {
    LIMITER_FAILED,  /* answer 401 */
    LIMITER_TRIPPED, /* answer 401; this failure blocked the pair (worth a log line) */
    LIMITER_BLOCKED, /* answer 429 with *retry_after_s: the pair was blocked already */
};

/* Counts a failed attempt of (addr, prefix) with the token hash (NULL: none or malformed)
 * at now_ms (what: "METHOD path"); the pair remembers the token, so that its next attempts
 * during a block are refused without a look-up. Returns the verdict; *retry_after_s is set
 * for LIMITER_BLOCKED. */
enum limiter_verdict limiter_fail(limiter *l, const char *addr, const char *prefix,
                                  const uint8_t *hash, const char *what, uint64_t now_ms,
                                  unsigned *retry_after_s);

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
