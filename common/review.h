/* The monthly review's shared vocabulary (issue 14; DESIGN.md, Approval): the states of a
 * municipality-month, their names, the months of a review as periods ("BS2083-04", "2026-07"),
 * and the check every tier makes of a MonthReview it receives (the hub from the federal tier,
 * the node from its hub, the federal tier from a hub). Pure: no I/O. */
#ifndef COMMON_REVIEW_H
#define COMMON_REVIEW_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"

/* A reviewer's comment: UTF-8 text of at most this many bytes, shown as text (no markup). */
#define REVIEW_COMMENT_MAX 1000
/* Who decided: a hub token's name (common/tokens.h). */
#define REVIEW_WHO_MAX 64
/* Changes sent in one Reviews message at most. */
#define REVIEW_PAGE 64
/* Clocks stay below 2^63, so that every value survives SQLite and PostgreSQL. */
#define REVIEW_CLOCK_MAX ((UINT64_C(1) << 63) - 1)
/* How far ahead of a receiver's clock a change's clock may be (a day, the tiers' default for
 * record versions): one from further ahead would hold the sender's log there. */
#define REVIEW_AHEAD_MS UINT64_C(86400000)

/* The state's name in the APIs: "open", "closed", "approved", "returned", "changed" (changed
 * since approval); "unknown" for any other value. */
const char *review_state_name(int state);

/* The period string of month ym (YYYYMM) of calendar bs: "BS2083-04" or "2026-07", into out
 * (at least 10 bytes). Returns 0 or REINT_EINVAL (not a month). */
int review_period(int bs, int32_t ym, char *out, size_t outlen);

/* Parses a period that is one month, "BS2083-04" or "2026-07": *bs and *ym. Returns 0,
 * REINT_ERANGE (a BS month outside the calendar table, BS2000-01..BS2099-12) or REINT_EINVAL
 * (another kind of period, or not a period). */
int review_parse_month(const char *period, int *bs, int32_t *ym);

/* Whether text (len bytes) is an acceptable comment: at most REVIEW_COMMENT_MAX bytes of
 * well-formed UTF-8 without NUL or any character utf8_unsafe names but tab and line breaks.
 * Returns 0, or REINT_ETOOBIG / REINT_EINVAL with why set. */
int review_comment_ok(const char *text, size_t len, char *why, size_t whylen);

/* Checks a received change: municipality a local level code (its province is the caller's
 * check), calendar BS or AD and month a month of it, a known state, clock 1..REVIEW_CLOCK_MAX,
 * version below 2^63, decided_by at most REVIEW_WHO_MAX bytes of A-Z a-z 0-9 _ . - and the
 * comment as review_comment_ok; a decision is APPROVED or RETURNED. Returns 0 or
 * REINT_EINVAL with why set. */
int review_check(const Reint__V1__MonthReview *m, char *why, size_t whylen);

#endif
