/* Intake: the one place where a row of fields typed by a clerk (a CSV line or a JSON body)
 * becomes a validated upstream Record plus the personal data that stays on the node.
 *
 * Rows use the CSV column names of DESIGN.md; values are raw text in the node's calendar
 * (BS by default), an empty value meaning "unknown". The upstream Record carries coarse
 * attributes only (age band at registration, Gregorian return month, ...); full_name,
 * phone, citizenship_no, ward, address, local_id and exact dates are kept only in the
 * table local_records(id, kind, local_id, deleted, clerk, updated_ms, version, fields) of
 * the outbox database, where fields is the normalised row as canonical JSON.
 *
 * Every write (intake_apply, intake_delete, intake_close_month) runs inside the caller's
 * outbox transaction (outbox_begin .. outbox_commit), so a request or a batch of rows is
 * durable as one unit; intake_import_csv runs its own transactions and must be called
 * outside one. An intake is used from one thread. */
#ifndef MUNICIPAL_NODE_INTAKE_H
#define MUNICIPAL_NODE_INTAKE_H

#include "error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox.h"

/* Row kinds: the values of the proto's RecordKind. */
#define INTAKE_PERSON       1 /* RECORD_KIND_PERSON */
#define INTAKE_SERVICE      2 /* RECORD_KIND_SERVICE */
#define INTAKE_ENTERPRISE   3 /* RECORD_KIND_ENTERPRISE */
#define INTAKE_AVAILABILITY 4 /* RECORD_KIND_AVAILABILITY */
#define INTAKE_MONTH_CLOSE  5 /* RECORD_KIND_MONTH_CLOSE */

#define INTAKE_ENOTFOUND REINT_ENOTFOUND

/* What intake_apply did (its *changed). */
#define INTAKE_UNCHANGED 0 /* same content as the live version: nothing queued */
#define INTAKE_INSERTED  1 /* a new record (or one re-created after its deletion) */
#define INTAKE_UPDATED   2 /* a new version of a live record */

#define INTAKE_MAX_ERRORS 32

typedef struct intake_error {
    char field[48];   /* column name, e.g. "sex" */
    char reason[224]; /* in a clerk's words: "\"F?\" is not one of FEMALE, MALE, OTHER" */
} intake_error;

/* Field errors of one row; printed as "<field> <reason>". Errors past INTAKE_MAX_ERRORS are
 * counted in dropped. */
typedef struct intake_errors {
    size_t n, dropped;
    intake_error e[INTAKE_MAX_ERRORS];
} intake_errors;

/* What the last successful intake_apply wrote or found (for the API's response). */
typedef struct intake_result {
    uint8_t id[16];
    char local_id[100]; /* as stored; "SERVICE/PROVIDER" for availability */
    uint64_t version;
    int changed; /* INTAKE_UNCHANGED / INTAKE_INSERTED / INTAKE_UPDATED */
} intake_result;

typedef struct intake intake;

/* Creates the intake tables in outbox_db(ob) when missing and prepares its statements.
 * bs_calendar non-zero: dates and birth years are Bikram Sambat, else Gregorian. The
 * outbox stays owned by the caller and must outlive the intake. Returns 0 or a negative
 * code with a message in err. */
int intake_open(intake **out, outbox *ob, int bs_calendar, char *err, size_t errlen);
void intake_close(intake *in);

/* Fixes "today" (Gregorian days since 1970-01-01) for future-date checks, for tests and
 * replays; 0 returns to the wall clock in the machine's local time zone. */
void intake_set_today(intake *in, int32_t today);

/* Column names of a kind in CSV order (NULL-terminated, static), or NULL. */
const char *const *intake_columns(int kind);
/* "persons", "services", "enterprises", "availability", or NULL. */
/* Position of column name among intake_columns(kind), or -1. */
int intake_column_index(int kind, const char *name);
const char *intake_kind_name(int kind);
/* Kind from "persons"/"person"/"services"/..., or 0. */
int intake_kind_parse(const char *name);

/* Validates one row (n column names and raw values; NULL or "" = unknown) and queues the
 * record: a new version when the normalised row (local fields included) differs from the
 * live one, nothing when it is the same. Must run inside an outbox transaction. On field
 * errors nothing is written and every error is collected in errs (REINT_EINVAL). res
 * and changed may be NULL. Returns 0 or a negative code. */
int intake_apply(intake *in, int kind, const char *const *names, const char *const *values,
                 size_t n, const char *clerk, intake_errors *errs, int *changed);
int intake_apply_ex(intake *in, int kind, const char *const *names, const char *const *values,
                    size_t n, const char *clerk, intake_errors *errs, intake_result *res);

/* Finds the live record of (kind, local_id): 0 with id and version set, or
 * INTAKE_ENOTFOUND (never created, or deleted). For availability local_id is
 * "SERVICE/PROVIDER" (canonical names). */
int intake_lookup(intake *in, int kind, const char *local_id, uint8_t id[16], uint64_t *version);

/* Deletes a record: queues a tombstone and erases its local personal data (the local_id
 * stays mapped to its record id, so re-creating it later reuses the id). Deleting a person
 * who still has live services or enterprises is allowed: those stay, the hub treats them
 * as orphans, and follow-ups no longer list them. Must run inside an outbox transaction.
 * Returns 0, INTAKE_ENOTFOUND when the record is not live, or a negative code. */
int intake_delete(intake *in, int kind, const char *local_id, const char *clerk);

/* Closes a reporting month (year and month in the node's calendar; local_id "YYYY-MM").
 * Refuses (REINT_EINVAL, message in err) a month that has not ended by today. Closing a
 * month again changes nothing (*changed 0). Must run inside an outbox transaction. */
int intake_close_month(intake *in, int year, int month, const char *clerk, int *changed, char *err,
                       size_t errlen);

typedef struct intake_import_stats {
    long long rows; /* data rows read (the header excluded) */
    long long inserted, updated, unchanged, refused;
} intake_import_stats;

/* Imports a CSV file of one kind: a header row naming the columns (any order), then rows.
 * Each refused row is reported to errors_out (may be NULL) as
 * "persons.csv line 17: sex \"F?\" is not one of FEMALE, MALE, OTHER", one line per field
 * error; good rows are committed in transactions of INTAKE_IMPORT_BATCH rows. Memory stays
 * bounded by the longest row. With progress set, a progress bar is drawn on stderr. The
 * change is recorded under the clerk "import:<file name>" plus $USER when set. Must be
 * called outside a transaction. Returns 0 when the file was read to its end (refused rows
 * included: see st->refused), REINT_EINVAL for a bad header (nothing imported),
 * REINT_EIO when the file cannot be read (rows committed before that stay), or a negative
 * store code. */
#define INTAKE_IMPORT_BATCH 10000
int intake_import_csv(intake *in, int kind, const char *path, FILE *errors_out, int progress,
                      intake_import_stats *st);

/* Writes the live records of a kind as CSV (UTF-8 BOM, CRLF, header row, the columns of
 * DESIGN.md) with all local data and dates in the node's calendar; importing the export
 * again changes nothing. Returns 0 or a negative code. */
int intake_export(intake *in, int kind, FILE *out);

/* Pending referrals on day today (0 = the local date): services with status REFERRED
 * whose live person has no DELIVERED service of the same type dated on or after the
 * referral, grouped by person, the longest-waiting person first. *out (owned by the caller,
 * json_decref) is {"today": "...", "persons": [{"local_id", "full_name", "phone",
 * "days_waiting", "referrals": [{"local_id", "service", "date", "days_waiting",
 * "provider"}]}]}. Local data only: never sent upstream. Returns 0 or a negative code. */
int intake_followups(intake *in, int32_t today, json_t **out);
/* The same as text for the CLI. */
int intake_followups_print(intake *in, int32_t today, FILE *f);

#endif
