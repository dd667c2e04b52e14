/* The approval coverage of recent indicator answers (fapprovals.h), kept in memory until a
 * commit touches one of its months (issue 17: the national query p99 under ingest).
 *
 * An answer's coverage (its area's municipality-months of the period: those holding data,
 * closed, approved) costs a statement over every municipality of the area, about 6 ms for a
 * national month with 150,000 records and 18 ms under ingest, most of the answer's time; it
 * changes only when a municipality-month's data appears or goes (a snapshot of the month
 * stored with cells where there were none, or without cells where there were some: a
 * replacement of its cells changes nothing), a month's review state changes, or a
 * municipality's calendar changes. fed_ingest_batch (migration 13) announces the first kind
 * itself, comparing the month rows it deletes with those it inserts.
 *
 * Every statement that can change those says so with pg_notify on FCOVCACHE_CHANNEL in its own
 * transaction (delivered on commit, to every federal-api process listening on the database,
 * so that stateless processes behind a load balancer stay exact): the payload is a
 * comma-separated list of the months touched ("2025-06,BS2082-03"), or "*" for anything. Each
 * month has a stamp, raised by every notification naming it; a coverage computed by a
 * statement sent at clock value `since` is served only while no stamp of its months (nor the
 * "*" stamp) is above `since`. A notification that arrives before or after the answer's
 * statement therefore always outdates it; one that arrives in between outdates it too
 * (conservatively). A connection that begins listening raises the "*" stamp: whatever was
 * notified while it did not listen is unknown. Nothing is kept or served while no connection
 * of the pool listens (all down), nor ever after one's LISTEN was refused (a hot standby, to
 * which notifications are not replicated: what it reads may be older than a commit the other
 * connections have heard of): every answer then reads its coverage.
 *
 * Single-threaded (the loop's thread). Bounded: FCOVCACHE_ENTRIES answers in sets of
 * FCOVCACHE_WAYS chosen by their key's hash, the least recently used of a full set replaced
 * (direct-mapped, 24 of the 120 national months' keys shared a slot in 12 pairs that
 * evicted each other: 11-15 % of the bench's answers; in sets of eight, at most 3 share one). */
#ifndef FEDERAL_API_FCOVCACHE_H
#define FEDERAL_API_FCOVCACHE_H

#include <stddef.h>
#include <stdint.h>

#define FCOVCACHE_CHANNEL "fed_coverage"
#define FCOVCACHE_ENTRIES 1024
#define FCOVCACHE_WAYS    8
#define FCOVCACHE_VALUES  6    /* the numbers of one coverage */
#define FCOVCACHE_MONTHS  96   /* months (both calendars) of one cached answer, at most */
#define FCOVCACHE_KEY     64   /* an answer's key with its NUL */
#define FCOVCACHE_SLOTS   4800 /* months of 1900-2099 in each calendar */
#define FCOVCACHE_PAYLOAD 7900 /* longest notification payload (PostgreSQL's limit is 8000) */

typedef struct fcovcache fcovcache;

fcovcache *fcovcache_new(void);
void fcovcache_free(fcovcache *c);

/* The month's slot: bs (1: Bikram Sambat, 0: Gregorian), ym = year * 100 + month; -1 outside
 * the years 1900-2099 (such an answer is not kept). */
int fcovcache_slot(int bs, int ym);
/* The slot of a month's period text ("2025-06", "BS2082-03"); -1 for anything else. */
int fcovcache_slot_of_period(const char *period);
/* The period text of slot (at most 10 characters and the NUL). */
void fcovcache_slot_period(int slot, char out[12]);

/* Sets slot's bit in bits (FCOVCACHE_SLOTS bits); nothing for -1, a month no answer kept can
 * hold. */
void fcovcache_mark(uint8_t *bits, int slot);

/* Appends the comma-separated period texts of the slots set in bits (FCOVCACHE_SLOTS bits) to
 * out (outlen bytes with the NUL); "*" when they do not fit. Returns the length. */
size_t fcovcache_payload(const uint8_t *bits, char *out, size_t outlen);

/* db_opts.on_notify for the pool (ud: the cache): raises the stamps the payload names; with
 * channel NULL, "+" counts a connection that began listening (and raises the "*" stamp), "-"
 * one that stopped, "!" turns the cache off for good (a refused LISTEN). */
void fcovcache_notify(void *ud, const char *channel, const char *payload);

/* The clock to give fcovcache_put for a statement about to be sent. */
uint64_t fcovcache_clock(const fcovcache *c);

/* The coverage kept for key, when no commit has touched its months since it was read:
 * returns 1 and fills out, else 0. */
int fcovcache_get(fcovcache *c, const char *key, int64_t out[FCOVCACHE_VALUES]);

/* Keeps the coverage of key over the months' slots, read by a statement sent at clock since
 * (fcovcache_clock), unless one of them was touched since, a slot is -1, or there are more
 * than FCOVCACHE_MONTHS or the key is too long. */
void fcovcache_put(fcovcache *c, const char *key, uint64_t since, const int *slots, size_t n,
                   const int64_t values[FCOVCACHE_VALUES]);

typedef struct fcovcache_metrics {
    uint64_t hits, misses, notifications, resets;
    int listening; /* connections listening now */
    int refused;   /* a LISTEN was refused: nothing is kept */
} fcovcache_metrics;
void fcovcache_get_metrics(const fcovcache *c, fcovcache_metrics *m);

#endif
