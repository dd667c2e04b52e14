/* National directives at the federal tier, the pure part: the JSON body of
 * POST /v1/directives validated into a Directive (catalogue codes and groupings, key values,
 * periods, geography, category names, dates), a stored Directive rendered as JSON for
 * GET /v1/directives. No I/O; the signing, the serial and the storage are fpublish.c's,
 * the delivery to hubs fingest.c's.
 *
 * POST body (UTF-8 JSON object; unknown fields are refused):
 *   title            string, 1..200 characters, no control characters (required)
 *   text             string, 1..8000 characters (required)
 *   effective_from   "YYYY-MM-DD", Gregorian, years 2000..2099 (required)
 *   expires_at       "YYYY-MM-DD", not before effective_from (optional: no expiry)
 *   eligibility      object (optional: everyone):
 *     categories       [names of the domain model: "RETURNEE", ...] (case-insensitive)
 *     min_age, max_age integers 0..120 (0: no bound); min_age <= max_age when both set
 *     registered_after "YYYY-MM-DD"
 *     priority_rules   [strings, 1..500 characters each], at most 16
 *   targets          array, at most 64, each:
 *     indicator        a catalogue code
 *     grouping         a declared grouping ("" or absent: the total; any dimension order)
 *     key              [one value per dimension of the grouping, in the grouping's order]
 *     scope            "national" (default) | "province" | "municipality"
 *     scope_code       province 1..7 or an official municipality code (not for national)
 *     period           a period ("2026", "2026-Q3", "2026-07", "BS2083-04",
 *                      "FY2083/84-T1", "FY2083/84")
 *     value            an integer 0..10^12, for count and sum indicators, or
 *     share            a number in [0, 1], for ratio indicators */
#ifndef FEDERAL_API_FDIRECTIVES_H
#define FEDERAL_API_FDIRECTIVES_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"
#include "sbuf.h"

/* The largest body POST /v1/directives takes: room for the longest valid directive with
 * every character sent as a \u-escaped surrogate pair (12 bytes), (200 + 8000 + 16 x 500) x
 * 12 = 194,400 bytes, with its targets and keys. */
#define FDIR_MAX_BODY    (256 * 1024)
#define FDIR_MAX_ERRORS  16
#define FDIR_MAX_TARGETS 64
#define FDIR_MAX_RULES   16
#define FDIR_TITLE_MAX   200
#define FDIR_TEXT_MAX    8000
#define FDIR_RULE_MAX    500
#define FDIR_KEY_ID_MAX  63

typedef struct fdir_error {
    char field[64];   /* "targets[2].key[1]" */
    char reason[240]; /* what is wrong, never quoting more than 40 bytes of the value */
} fdir_error;

typedef struct fdir_errors {
    size_t n;
    int dropped;       /* more errors than FDIR_MAX_ERRORS were found */
    char message[256]; /* for REINT_EMALFORMED */
    fdir_error e[FDIR_MAX_ERRORS];
} fdir_errors;

/* A validated directive and the storage its strings live in. */
typedef struct fdir_draft fdir_draft;

/* Parses and validates a POST body of len bytes. On success *out is a draft whose
 * directive has serial 0, key_id "" and issued_at 0 (the caller sets them before signing);
 * free it with fdir_draft_free. Returns 0, REINT_EMALFORMED (errs->message says why),
 * REINT_EINVAL (errs lists each field refused) or REINT_ENOMEM. */
int fdir_parse(const char *body, size_t len, fdir_draft **out, fdir_errors *errs);
/* The directive of a draft; valid until fdir_draft_free. The caller may set serial,
 * key_id (a string that outlives the draft's use) and issued_at. */
Reint__V1__Directive *fdir_directive(fdir_draft *d);
void fdir_draft_free(fdir_draft *d);

/* Appends d as one JSON object (serial, key_id, issued_at, effective_from, expires_at,
 * in_force on day today, title, text, eligibility, targets) without the closing brace, so
 * that the caller may add fields; the caller appends "}". */
void fdir_json_open(sbuf *b, const Reint__V1__Directive *d, int32_t today);

/* Whether s is an acceptable key id: 1..63 of A-Z a-z 0-9 _ . - */
int fdir_key_id_ok(const char *s);

#endif
