/* The hub's rollup engine (issue 4): computes the v1 indicator catalogue (common/catalogue.h)
 * for every (municipality, period) of the six period kinds (common/period.h) and every
 * declared grouping, from the records the hub holds in hub.db, and queues each changed
 * snapshot for the uplink to the federal tier.
 *
 * Storage (all in hub.db, beside the ingest's tables):
 *   rollup_person, rollup_service, rollup_enterprise, rollup_availability, rollup_close:
 *     a decoded, indexed shadow of the live (not tombstoned) records, maintained by
 *     rollup_note_stored() (or rollup_note()) and rebuilt by rollup_full(); like the
 *     records, each row is keyed by (municipality, id): the same id in two municipalities is
 *     two records; a person, service or enterprise row holds its event's month pair (ad, bs:
 *     YYYYMM), never a day;
 *   rollup_snapshots(municipality, period, revision, dirty, digest, ncells): one row per
 *     snapshot that exists or is waiting to be recomputed (dirty = 1);
 *   rollup_blobs(municipality, period, cells): the cells of each snapshot, packed as the
 *     cells field of a RollupSnapshot, read as rows through the virtual table
 *     rollup_cells(municipality, period, indicator, grouping, key, numerator, denominator,
 *     cell_key, contributors, top1, top2, numerator_key); key holds the grouping's values joined by
 * ',' ("FEMALE,25_39";
 *     "" for the total);
 *   rollup_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, municipality, period, revision):
 *     compacted, one entry per (municipality, period), the newest only; seq never repeats;
 *   rollup_enrolled(municipality, first_day, bs): the enrolment (first day seen, calendar due
 *     in) the engine last computed with;
 *   meta keys rollup_hlc (the revision clock) and rollup_today (the as-of day).
 *
 * Incremental work: the hub notes each record after the commit of its upsert, in a
 * transaction of its own (rollup_note_stored(); rollup_note() does the same before the upsert,
 * inside its transaction), which marks dirty only the (municipality, period) pairs whose
 * cells can change: the periods of the old and the new state's own month pair, and those of
 * dependent records (a person's services and enterprises; for a delivered service, the same
 * person's referrals of that type whose window it falls in; for a delivered loan that moves
 * its owner's first loan, the owner's enterprises with a period whose last month lies between
 * the first loan's old and new months; for an availability row, the periods of the
 * municipality's referrals of that service type).
 * rollup_refresh() recomputes only dirty snapshots: the dirty periods of a municipality that
 * overlap are computed together in one range scan of each shadow table (clustered by
 * municipality, Gregorian month and BS month; services and enterprises carry copies of their
 * person's sex and category and of the owner's first loan months, kept current by the
 * noting, so the scan needs no join), each row contributing to every period holding
 * its pair; distinct counts are kept per cell.
 * A snapshot whose cells did not change (a 64-bit digest of them) keeps its revision.
 *
 * Decisions (DESIGN.md leaves them open):
 *   - What places a record in a period: its event's month pair (protocol version 2 carries
 *     no day of a person's event): a person's (registered_month, registered_bs_month), a
 *     service's or an enterprise's (month, bs_month). A Gregorian period (year, quarter,
 *     month) holds the record when it holds the pair's Gregorian month; a BS period (BS
 *     month, fiscal trimester, fiscal year) when it holds the pair's BS month. Every period
 *     kind therefore counts each record in exactly one period, as the day did, and the
 *     totals of every kind equal the day-level ones. Age band is the one the person record
 *     carries (age on the registration date, computed by the node, which alone knows the
 *     birth date).
 *   - Tombstoned records contribute nothing. A service's person and an enterprise's owner
 *     are the person of that id in the same municipality. A service or enterprise whose
 *     person is tombstoned or absent there (an orphan) still counts, with UNKNOWN person
 *     attributes (sex, category); its person-based contributor is still the person id it
 *     names.
 *   - Every enterprise record is an enterprise supported in the period of its day; its
 *     action (STARTED, EXPANDED, or UNKNOWN when missing or unknown to this build) is a
 *     dimension. enterprises_active: records carry no status history, so "ACTIVE at the
 *     period's end" is the status the hub holds now. enterprises_with_loan: the owner has a
 *     DELIVERED LOAN service whose month in the period's calendar is the period's last month
 *     or earlier (month-level: a loan of the period's last month counts, whatever its day).
 *   - Amounts and employee counts of -1 (unknown) are left out of sums and their contributor
 *     counts. Enumeration values unknown to this build are counted as UNKNOWN.
 *   - referrals_pending (month-level, since days stay at the node) counts, in the periods of
 *     the referral's pair, REFERRED services of BS month B whose window B .. B + 3 (B and the
 *     three full BS months after it) has ended, at midnight Nepal time, by the as-of day (a
 *     day in Nepal: the as-of day's BS month is after B + 3), and for which no DELIVERED
 *     service of the same type for the same person (and municipality) has its BS month in
 *     B .. B + 3. A delivery in B itself counts, whatever the days. A referral corrected to
 *     DELIVERED is no longer a referral. The window's last month is kept with each service
 *     (rollup_service.due), so that moving the as-of day marks exactly the referrals whose
 *     window end it crosses; the hub moves it once a day (rollup_daily).
 *   - services_unavailable counts, per period, the known service types with at least one
 *     REFERRED service placed in it for which no availability row of the municipality offers
 *     the service locally, taking per (service, provider) the row with the latest as_of_day
 *     (ties: the larger record id). Its contributors are service types, not records: cell_key
 *     0, contributors = numerator.
 *   - reporting_completeness and reporting_timeliness (a separate indicator code, ratio,
 *     grouping "" only) exist for every period kind, for enrolled municipalities (a row in
 *     nodes) only. A municipality is due in the calendar it closes months in: its node's
 *     calendar (nodes.calendar: 2 AD; 1 BS, and 0, unknown, counted as BS); only its closes
 *     (month_close records) of that calendar count. A month of that own calendar is due when
 *     it ended before today and on or after the day the hub first saw the node (the day in
 *     Nepal of first_seen_ms, as today is a day in Nepal); it counts when due or closed (a
 *     close of a month
 *     that ended before the node was first seen still counts: a node enrolled late may close
 *     its old months); it is complete when closed, and timely when its last close was on or
 *     before its last day + 15 (a clerk closes a month once; closing it again, after a
 *     reviewer returned it, replaces the close). A month a reviewer returned counts, as not
 *     closed, until its clerk closes it again (rollup_set_returned), however old it is. A month of
 * the other calendar counts, is complete, or is timely when every own-calendar month overlapping it
 * does, is, or is. A period is judged by its unit months (Gregorian months for a Gregorian year,
 * quarter or month; BS months for a BS month, fiscal trimester or fiscal year), each by the rules
 * above: the denominator is the number of unit months that count, the numerators how many of those
 * are complete (timely). No cell when no unit month counts. cell_key 0, contributors 1. Dirty marks
 * follow: a close marks every period holding a day of its month; a move of the as-of day or of the
 * first-seen day marks every period holding a day of each own-calendar month whose end it crosses;
 * a calendar change marks those of both calendars, and of every month the municipality closed.
 *   - Contributors and cell keys: a contributor's key is the first 4 bytes (big-endian) of
 *     SHA-256 of its 16-byte id; a cell's key is the sum mod 2^32 over its distinct
 *     contributors. Contributors are the person (registrations, persons_served,
 *     bank_accounts_opened, seed_funding_npr, no_remigration_intention), the service record
 *     (services_delivered, referrals_pending), the enterprise (enterprise indicators) or its
 *     owner (jobs_created: one owner of several enterprises is one contributor).
 *   - What the federal tier's disclosure control needs (docs/PRIVACY.md) travels with the
 *     cells, as aggregates: a sum's contribution of a contributor is all it adds to the cell;
 *     only contributions above 0 make contributors; the cell carries its two largest (top1,
 *     top2), and its key is the sum mod 2^32 of the contributions' keys (the first 4 bytes of
 *     SHA-256 of the contributor's id followed by the amount, 8 bytes big-endian), so that it
 *     changes when a contribution does. A ratio's cell carries the key of its numerator's
 *     contributors alone (numerator_key) beside that of its denominator's (cell_key).
 *
 * Threading: one rollup per sqlite3 connection, used from one thread. The engine registers
 * the connection's rollback hook (to forget marks a rolled-back transaction undid).
 *
 * The engine's files and their jobs are listed in rollup_internal.h. */
#ifndef PROVINCIAL_HUB_ROLLUP_H
#define PROVINCIAL_HUB_ROLLUP_H

#include "error.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"
#include "sbuf.h"

/* The as-of days "today" accepted by rollup_set_today(), as days since 1970-01-01. */
#define ROLLUP_MIN_TODAY (-9759)
#define ROLLUP_MAX_TODAY 2932896
/* Largest packed snapshot (header and cells) the engine builds. */
#define ROLLUP_SNAPSHOT_MAX (64u << 20)

typedef struct rollup rollup;

typedef struct rollup_stats {
    uint64_t recomputed; /* snapshots recomputed */
    uint64_t changed;    /* of those, snapshots whose cells changed (new revision, queued) */
    uint64_t cells;      /* cells written */
} rollup_stats;

/* Opens the engine on db (an open hub store holding the ingest's records and nodes tables;
 * not owned, must outlive the engine), creating its tables. On a store whose shadow has
 * never been built it runs rollup_full(). The as-of day starts at the one persisted by the
 * last rollup_set_today(), or the wall clock's day in Nepal. Returns 0 or a REINT_E* code with
 * err set. */
int rollup_open(rollup **out, sqlite3 *db, char *err, size_t errlen);
/* Frees the engine (not the database). NULL is accepted. */
void rollup_close(rollup *r);

/* The hook of an ingest that notes before it writes (the hub notes after its commit,
 * rollup_note_stored below): call it for a record about to be upserted into records, inside
 * the same transaction and before the upsert (body is the packed Record, len bytes; only
 * read during the call). Applies the upsert's rule (the newest version of (municipality, id)
 * wins), updates the shadow and marks dirty the (municipality, period) pairs the change can
 * affect. Returns 0 or a REINT_E* code; on failure the caller must roll the transaction back. */
int rollup_note(rollup *r, uint32_t municipality, const uint8_t id[16], uint64_t version,
                const uint8_t *body, size_t len);
/* The same for a record already upserted (the hub notes records after their group commit,
 * to keep the engine's work off it): body is the record as the records table now holds it
 * (the newest version), and the engine's shadow still holds the state before it, looked for
 * in each shadow table. fresh: the upsert inserted (hubstore_put's *inserted), so the records
 * table held nothing of (municipality, id) before it and the shadow, which only holds live
 * records (rollup_sweep drops those the records table loses, in the same transaction), holds
 * nothing either: nothing is looked for (five index probes that all miss, a tenth of the
 * hub's CPU in a resync). */
int rollup_note_stored(rollup *r, uint32_t municipality, const uint8_t id[16], const uint8_t *body,
                       size_t len, int fresh);
/* Call after records of a municipality were deleted behind the engine's back (the sweep of
 * older incarnations), inside the same transaction: drops their shadow rows and marks every
 * snapshot of the municipality dirty. Returns 0 or REINT_EDB. */
int rollup_sweep(rollup *r, uint32_t municipality);
/* Marks every existing snapshot of the municipality dirty. Returns 0 or REINT_EDB. */
int rollup_mark(rollup *r, uint32_t municipality);

/* Sets the as-of day (days since 1970-01-01: the day in Nepal, clock_today_nepal(), on which
 * the hub decides what is due) of referrals_pending and of the months due for
 * reporting_completeness, persists it, and marks dirty what the move changes (referrals
 * whose window end it crosses; for every enrolled municipality, the periods of every kind
 * that hold a month of its calendar whose end it crosses). Does not recompute. Returns 0,
 * REINT_EINVAL or REINT_EDB. */
int rollup_set_today(rollup *r, int32_t today);
int32_t rollup_today(const rollup *r);

/* Recomputes every dirty snapshot (and those that new or changed enrolments make due) in
 * one transaction (its own, or a savepoint in the caller's: a failure rolls back all of it,
 * storing and queueing nothing, and every snapshot stays dirty). A snapshot whose cells
 * changed gets a new revision from the hub's hybrid logical clock (persisted, so a restarted
 * hub issues revisions above its old ones) and replaces its entry in rollup_outbox. *stats
 * (may be NULL) is overwritten with this call's counts. Returns 0 or a REINT_E* code. */
int rollup_refresh(rollup *r, rollup_stats *stats);
/* rollup_set_today(r, today), then a slice of rollup_refresh(r, stats): the entry point for
 * the hub's timer. The slice recomputes dirty snapshots municipality by municipality for
 * about ROLLUP_REFRESH_BUDGET ms and leaves the rest dirty (rollup_more() is then 1, and the
 * next call within as long again returns 0 with *stats zeroed), so that the event loop keeps
 * serving sessions while a bulk resend is rolled up. */
int rollup_daily(rollup *r, int32_t today, rollup_stats *stats);
/* rollup_refresh() that stops after the municipality group during which the wall clock
 * (ms since the epoch) passes deadline_ms (0: never), leaving the rest dirty. */
int rollup_refresh_slice(rollup *r, uint64_t deadline_ms, rollup_stats *stats);
/* 1 when the last refresh stopped at its deadline and left dirty snapshots. */
int rollup_more(const rollup *r);
/* Eager (the hub has no node sending): dirt left by a slice of rollup_daily() does not make
 * the next call wait as long again (and a pause already set by such a slice is lifted); the
 * caller paces the slices. A failed refresh still waits. Off by default. */
void rollup_set_eager(rollup *r, int eager);
/* Rebuilds the shadow from the records table and recomputes every snapshot from scratch.
 * Snapshots whose cells come out unchanged keep their revision. Returns 0 or a REINT_E* code. */
int rollup_full(rollup *r, rollup_stats *stats);

/* The months a change can move (the monthly review, provincial-hub/reviews.h): with tracking
 * on, every record noted (rollup_note, rollup_note_stored, and the rebuild of rollup_full)
 * leaves the months of its municipality whose figures it can change: the months of both
 * calendars that hold the periods it marks dirty (for a close, the closed month itself), each
 * with the highest version of such records. Off by default (nothing is kept). */
void rollup_track_months(rollup *r, int on);
/* Called once per month kept: (municipality, bs non-zero for a BS month, YYYYMM, version).
 * A non-zero return stops the walk and is returned. */
typedef int (*rollup_month_cb)(void *ud, uint32_t municipality, int bs, int32_t ym,
                               uint64_t version);
/* Walks the months kept since the last call and forgets them (also when cb fails: call it in
 * the transaction that noted them, which then rolls back). Returns 0 or cb's code. */
int rollup_touched_months(rollup *r, rollup_month_cb cb, void *ud);
/* A month (year, month of calendar bs) of a municipality's own calendar that a reviewer
 * returned counts as not closed for reporting_completeness and reporting_timeliness until it
 * is closed again: returned 1 sets that, 0 clears it; what it changes is marked dirty. In the
 * caller's transaction. Returns 0 or REINT_EDB. */
int rollup_set_returned(rollup *r, uint32_t municipality, int bs, int year, int month,
                        int returned);

/* Number of snapshots waiting to be recomputed. */
int64_t rollup_dirty_count(rollup *r);

/* Builds the stored snapshot of (municipality, period) as it was last refreshed, cells
 * ordered by indicator, grouping and key. The caller frees *out with
 * reint__v1__rollup_snapshot__free_unpacked(*out, NULL). Returns 0, REINT_ENOTFOUND,
 * REINT_ENOMEM or REINT_EDB. */
int rollup_snapshot(rollup *r, uint32_t municipality, const char *period,
                    Reint__V1__RollupSnapshot **out);

/* The same snapshot as the bytes of a packed RollupSnapshot, written into out (reset first):
 * its three header fields followed by the cells as stored, with no decoding. *revision is
 * set. Returns 0, REINT_ENOTFOUND, REINT_ENOMEM or REINT_EDB (stored cells that do not
 * parse or disagree with their header). */
int rollup_snapshot_packed(rollup *r, uint32_t municipality, const char *period, uint64_t *revision,
                           sbuf *out);

/* Registers the eponymous virtual table rollup_cells(municipality, period, indicator,
 * grouping, key, numerator, denominator, cell_key, contributors) on db: one row per stored
 * cell, read from the snapshots' blobs (rollup_cells.c). Equality on municipality and period
 * is used to find the blobs; any other condition is checked by SQLite. rollup_open()
 * registers it. Returns an SQLite result code. */
int rollup_cells_register(sqlite3 *db);

/* A contributor's key: the first 4 bytes, big-endian, of SHA-256 of the 16-byte id. */
uint32_t rollup_contributor_key(const uint8_t id[16]);

#endif
