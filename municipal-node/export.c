#include "export.h"

#include <errno.h>
#include <string.h>

#include "csv.h"
#include "localrow.h"
#include "log.h"
#include "store.h"

/* Writes one stored row as a CSV line. Returns 0, or REINT_EMALFORMED when a value is longer
 * than any field may be (the row was not written by intake). */
static int export__row(FILE *out, const uint8_t *row, size_t len, size_t ncols)
{
    char val[FIELD_SCRATCH_MAX];
    for (size_t i = 0; i < ncols; i++) {
        const char *v;
        size_t n;
        if (i)
            fputc(',', out);
        if (!localrow_get(row, len, i, &v, &n))
            continue;
        if (n >= sizeof(val))
            return REINT_EMALFORMED;
        memcpy(val, v, n);
        val[n] = '\0';
        csv_write_field(out, val);
    }
    fputs("\r\n", out);
    return 0;
}

int export_csv(intake *in, int kind, FILE *out)
{
    const char *const *cols = field_columns(kind);
    size_t ncols = field_count(kind);
    sqlite3 *db = outbox_db(intake_outbox(in));
    sqlite3_stmt *st = NULL;
    long long rows = 0;
    int rc = 0, src;
    if (cols == NULL) {
        log_error("export: %d is not a kind of row", kind);
        return REINT_EINVAL;
    }
    st = store_prepare(db, "SELECT fields FROM records WHERE kind=?1 AND live=1"
                           " ORDER BY local_id");
    if (st == NULL) {
        rc = REINT_EDB;
        goto fail;
    }
    if (sqlite3_bind_int(st, 1, kind) != SQLITE_OK) {
        rc = REINT_EDB;
        goto fail;
    }
    fputs("\xEF\xBB\xBF", out);
    for (size_t i = 0; i < ncols; i++)
        fprintf(out, "%s%s", i ? "," : "", cols[i]);
    fputs("\r\n", out);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *row = sqlite3_column_blob(st, 0);
        /* A NULL blob is an empty row, or SQLite out of memory (SQLite's advice is to ask
         * sqlite3_errcode at once). */
        if (row == NULL && sqlite3_errcode(db) == SQLITE_NOMEM) {
            rc = REINT_EDB;
            goto fail;
        }
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if ((rc = export__row(out, row, len, ncols)) != 0)
            goto fail;
        rows++;
        if (ferror(out)) {
            rc = REINT_EIO;
            goto fail;
        }
    }
    if (src != SQLITE_DONE) {
        rc = REINT_EDB;
        goto fail;
    }
    sqlite3_finalize(st);
    if (fflush(out) != 0 || ferror(out)) {
        log_error("export of %s: cannot write the output: %s", field_kind_name(kind),
                  strerror(errno));
        return REINT_EIO;
    }
    return 0;
fail:
    if (rc == REINT_EDB)
        log_error("export of %s stopped after %lld rows: the store failed: %s; the output is "
                  "incomplete",
                  field_kind_name(kind), rows, sqlite3_errmsg(db));
    else if (rc == REINT_EIO)
        log_error("export of %s stopped after %lld rows: cannot write the output: %s",
                  field_kind_name(kind), rows, strerror(errno));
    else
        log_error("export of %s stopped after %lld rows: a stored row cannot be read; the "
                  "output is incomplete",
                  field_kind_name(kind), rows);
    sqlite3_finalize(st);
    return rc;
}
