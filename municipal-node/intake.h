/* Intake: the one place where a row of fields typed by a clerk (a CSV line or a JSON body)
 * becomes a validated upstream Record plus the personal data that stays on the node.
 *
 * Rows use the CSV column names of DESIGN.md; values are raw text in the node's calendar
 * (BS by default), an empty value meaning "unknown". Each field is checked on its own by
 * field.h; this module adds the checks across fields and against the store (a service's
 * person must be registered, ...), builds the Record with coarse attributes only (age band
 * at registration, Gregorian return month, ...) and queues it with outbox_put together with
 * the local row (localrow.h): full_name, phone, citizenship_no, ward, address, local_id and
 * exact dates are kept only in the outbox database and never sent upstream. It also keeps
 * the table local_services (each service's person, type, status and day by local_id), which
 * followups.h reads.
 *
 * Every write (intake_apply, intake_apply_checked, intake_delete, intake_close_month) runs
 * inside the caller's outbox transaction (outbox_begin .. outbox_commit), so a request or a
 * batch of rows is durable as one unit. An intake is used from one thread, except that
 * intake_today and intake_calendar_bs may be called from another while it works (the CSV
 * import's reader thread does). */
#ifndef MUNICIPAL_NODE_INTAKE_H
#define MUNICIPAL_NODE_INTAKE_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "field.h"
#include "outbox.h"

/* Row kinds: the values of the proto's RecordKind. */
#define INTAKE_PERSON       REINT__V1__RECORD_KIND__RECORD_KIND_PERSON
#define INTAKE_SERVICE      REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE
#define INTAKE_ENTERPRISE   REINT__V1__RECORD_KIND__RECORD_KIND_ENTERPRISE
#define INTAKE_AVAILABILITY REINT__V1__RECORD_KIND__RECORD_KIND_AVAILABILITY
#define INTAKE_MONTH_CLOSE  REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE

/* What an apply did (intake_result.changed). */
#define INTAKE_UNCHANGED 0 /* same content as the live version: nothing queued */
#define INTAKE_INSERTED  1 /* a new record (or one re-created after its deletion) */
#define INTAKE_UPDATED   2 /* a new version of a live record */

/* What the last successful apply wrote or found (for the API's response). */
typedef struct intake_result {
    uint8_t id[16];
    char local_id[4 * 64 + 1]; /* as stored (64 characters); "SERVICE/PROVIDER" for availability */
    uint64_t version;
    int changed; /* INTAKE_UNCHANGED / INTAKE_INSERTED / INTAKE_UPDATED */
} intake_result;

typedef struct intake intake;

/* Creates the intake's table in outbox_db(ob) when missing and prepares its statements.
 * bs_calendar non-zero: dates and birth years are Bikram Sambat, else Gregorian. The
 * outbox stays owned by the caller and must outlive the intake. Returns 0 or a negative
 * code with a message in err. */
int intake_open(intake **out, outbox *ob, int bs_calendar, char *err, size_t errlen);
void intake_close(intake *in);

/* The outbox given to intake_open (owned by the caller), for the transactions of the
 * modules that work through an intake (import, export, follow-ups). */
outbox *intake_outbox(const intake *in);
/* 1 when the node's calendar is Bikram Sambat, 0 for Gregorian. */
int intake_calendar_bs(const intake *in);

/* Fixes "today" (Gregorian days since 1970-01-01) for future-date checks, for tests and
 * replays; 0 returns to the wall clock (Nepal's day). Not to be called while an import runs. */
void intake_set_today(intake *in, int32_t today);
/* Today for the checks: the day fixed by intake_set_today, else Nepal's day now. */
int32_t intake_today(const intake *in);

/* The earliest day (Gregorian days since 1970-01-01) of an event the node takes: a
 * registration, a service, an enterprise's action, an offer, the last day of a month closed.
 * INTAKE_EARLIEST_DEFAULT (BS 2064-01-01, AD 2007-04-14: the year of Nepal's Foreign
 * Employment Act, before any of the programmes recorded here) unless set; INT32_MIN: none
 * (days before 1970 are negative). It stops a
 * Gregorian year typed on a BS node (2026-11 is BS, 1969 AD) and a slip of the year. Not to
 * be called while an import runs. */
#define INTAKE_EARLIEST_DEFAULT 13617
void intake_set_earliest(intake *in, int32_t day);
int32_t intake_earliest(const intake *in);

/* The kinds' names and columns, defined with their rules in field.h: the same as
 * field_columns, field_column_index, field_kind_name and field_kind_parse, for the node's
 * CLI, API and directives. */
const char *const *intake_columns(int kind);
int intake_column_index(int kind, const char *name);
const char *intake_kind_name(int kind);
int intake_kind_parse(const char *name);

/* Validates one row (n column names and raw values; NULL or "" = unknown) and queues the
 * record: a new version when the normalised row (local fields included) differs from the
 * live one, nothing when it is the same. Must run inside an outbox transaction. On field
 * errors nothing is written and every error is collected in errs (REINT_EINVAL). errs and
 * res may be NULL. Returns 0 or a negative code (a store code when the store failed). */
int intake_apply_ex(intake *in, int kind, const char *const *names, const char *const *values,
                    size_t n, const char *clerk, field_errors *errs, intake_result *res);
/* Every check intake_apply_ex makes (each field, across fields, against the store: a
 * service's person must be registered, and the upstream record's rules), writing nothing and
 * needing no transaction: for a form checked as the clerk types. Returns 0, REINT_EINVAL with
 * errs filled, or a store code. */
int intake_check(intake *in, int kind, const char *const *names, const char *const *values,
                 size_t n, field_errors *errs);
/* The same, telling only what changed (INTAKE_UNCHANGED on failure); changed may be NULL. */
int intake_apply(intake *in, int kind, const char *const *names, const char *const *values,
                 size_t n, const char *clerk, field_errors *errs, int *changed);

/* The second half of intake_apply, for a row whose fields field_check_row already checked
 * (the CSV import checks them in its reader thread): v are its values; row and rowlen the
 * local row field_check_row encoded, or NULL when it found field errors, which errs must
 * then hold. The checks across fields and against the store run either way, so that the
 * clerk sees every problem of the row at once; then the record is queued. Must run inside
 * an outbox transaction; "today" is the one the last intake_refresh_today() read (the import
 * reads it once per chunk, as its reader thread does); id, when not NULL, is the row's record
 * id computed beforehand (outbox_idkey_id). Returns 0 with res set (res may be
 * NULL), REINT_EINVAL with errs filled, REINT_ENOMEM when row is NULL without errors, or a
 * store code. */
int intake_apply_checked(intake *in, int kind, const field_value *v, const uint8_t *row,
                         size_t rowlen, const uint8_t *id, const char *clerk, field_errors *errs,
                         intake_result *res);

/* Reads the clock for the rows intake_apply_checked takes next. */
void intake_refresh_today(intake *in);

/* Finds the live record of (kind, local_id): 0 with id and version (may be NULL) set,
 * REINT_ENOTFOUND (never created, or deleted), or a store code. For availability local_id
 * is "SERVICE/PROVIDER" (canonical names). */
int intake_lookup(intake *in, int kind, const char *local_id, uint8_t id[16], uint64_t *version);

/* Deletes a record: queues a tombstone and erases its local personal data (the local_id
 * stays mapped to its record id, so re-creating it later reuses the id). A person who still
 * has live services or enterprises is not deleted: REINT_EEXIST, why naming them (they are
 * deleted, or given another person, first). Must run inside an outbox transaction. Returns
 * 0, REINT_ENOTFOUND when the record is not live, REINT_EEXIST, or a negative code. */
int intake_delete(intake *in, int kind, const char *local_id, const char *clerk, char *why,
                  size_t whylen);

/* Closes a reporting month (year and month in the node's calendar; local_id "YYYY-MM").
 * Refuses (REINT_EINVAL, message in err) a month that has not ended by today. Closing a
 * month again changes nothing (*changed 0), unless the province's reviewer returned it since
 * (months.h): that close is a new one. Must run inside an outbox transaction. */
int intake_close_month(intake *in, int year, int month, const char *clerk, int *changed, char *err,
                       size_t errlen);

#endif
