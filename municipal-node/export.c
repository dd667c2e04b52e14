#include "export.h"

#include <string.h>

#include "csv.h"
#include "localrow.h"
#include "log.h"
#include "store.h"

int export_csv(intake *in, int kind, FILE *out)
{
    const char *const *cols = field_columns(kind);
    size_t ncols = field_count(kind);
    sqlite3 *db = outbox_db(intake_outbox(in));
    sqlite3_stmt *st = NULL;
    char val[FIELD_SCRATCH_MAX];
    int rc = 0;
    if (cols == NULL)
        return REINT_EINVAL;
    st = store_prepare(db, "SELECT fields FROM records WHERE kind=?1 AND live=1"
                           " ORDER BY local_id");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int(st, 1, kind);
    fputs("\xEF\xBB\xBF", out);
    for (size_t i = 0; i < ncols; i++)
        fprintf(out, "%s%s", i ? "," : "", cols[i]);
    fputs("\r\n", out);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *row = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        for (size_t i = 0; i < ncols; i++) {
            const char *v;
            size_t n;
            if (i)
                fputc(',', out);
            if (!localrow_get(row, len, i, &v, &n))
                continue;
            if (n >= sizeof(val))
                n = sizeof(val) - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            csv_write_field(out, val);
        }
        fputs("\r\n", out);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_error("intake export: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    return ferror(out) ? REINT_EIO : 0;
}
