/* The CSV import (`municipal-node import --kind KIND FILE.csv`): a header row naming the
 * columns (any order, any case), then rows, read in two threads. A reader thread parses the
 * CSV and checks each field on its own (field.h: the half of the work that needs no store)
 * into a ring of chunks of rows; the caller's thread takes the chunks in file order for the
 * checks against the store and the writes (intake_apply_checked), in transactions of
 * IMPORT_BATCH rows. Memory stays bounded by the ring, whatever the file's size. */
#ifndef MUNICIPAL_NODE_IMPORT_H
#define MUNICIPAL_NODE_IMPORT_H

#include "error.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "intake.h"

#define IMPORT_BATCH 10000

/* Months of the node's calendar an import's stored rows are dated in (IMPORT_MONTHS: twenty
 * years of months; past them, rows of further months are counted in months_left_out). */
#define IMPORT_MONTHS 240

typedef struct import_month {
    int32_t ym;     /* YYYYMM in the node's calendar */
    long long rows; /* rows stored (new or changed) dated in it */
    int state;      /* its state when the import began (a MonthState): what the rows changed */
} import_month;

typedef struct import_stats {
    long long rows; /* data rows read (the header excluded) */
    long long inserted, updated, unchanged, refused;
    /* The months of the rows stored (new or changed), by the row's own date (a person's
     * registered_on, a service's or an enterprise's date; availability has none), in
     * ascending order: what a clerk is told when they are months already closed. */
    import_month months[IMPORT_MONTHS];
    int n_months;
    long long months_left_out;
} import_stats;

/* Imports the CSV file at path, of one kind, through in (owned by the caller; nothing else
 * may use it or its outbox until this returns). Each refused row is reported to errors_out
 * (may be NULL) as "persons.csv line 17: sex \"F?\" is not one of FEMALE, MALE, OTHER", one
 * line per field error; good rows are committed. With progress set, a progress bar is drawn
 * on stderr. The change is recorded under the clerk "import:<file name>" plus ":$USER" when
 * set. Must be called outside a transaction. st (may be NULL) gets the counts, also when the
 * import stops early (then the counts are those of the last commit). Returns 0
 * when the file was read to its end (refused rows included: see st->refused), REINT_EINVAL for a
 * bad header or kind (nothing imported), REINT_EIO when the file cannot be read (rows committed
 * before that stay), REINT_ENOMEM, or a store code (rows committed before the failing batch stay);
 * every failure is also reported to errors_out. */
int import_csv(intake *in, int kind, const char *path, FILE *errors_out, int progress,
               import_stats *st);

/* How import_csv_opts reports, beyond import_csv's arguments. */
typedef struct import_opts {
    FILE *errors_out; /* as import_csv's; may be NULL */
    int progress;     /* as import_csv's */
    /* Who the change is recorded under; NULL for import_csv's "import:<file>[:$USER]". */
    const char *clerk;
    /* The file's name in messages; NULL for the base name of path. */
    const char *name;
    /* Called on the importing thread after each chunk of rows and once at the end, with the
     * bytes read of the file's total and the counts so far; may be NULL. */
    void (*on_progress)(void *ud, long long done, long long total, const import_stats *st);
    /* Called on the importing thread for each refused row, with its line in the file and its
     * errors (valid during the call only), instead of writing them to errors_out; may be
     * NULL. */
    void (*on_refused)(void *ud, long line, const field_errors *errs);
    void *ud;
} import_opts;

/* import_csv with its reports as o says (o may not be NULL). */
int import_csv_opts(intake *in, int kind, const char *path, const import_opts *o, import_stats *st);

/* What a clerk is told of the months of st (import_stats.months) that were closed, approved,
 * or approved and changed since (months.h) when the import began (calendar bs): one line
 * each, "note: 12 rows stored are dated in BS2083-07, which is approved: ...", into out
 * (empty when none; lines that do not fit are left out whole). */
void import_closed_months(int bs, const import_stats *st, char *out, size_t outlen);

#endif
