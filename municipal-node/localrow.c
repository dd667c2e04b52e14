#include "localrow.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

void localrow_init(localrow_buf *b)
{
    sbuf_init(b, LOCALROW_MAX);
}

void localrow_reset(localrow_buf *b)
{
    sbuf_reset(b);
}

void localrow_free(localrow_buf *b)
{
    sbuf_free(b);
}

void localrow_put(localrow_buf *b, const char *s, size_t n)
{
    char len[10];
    size_t k = 0;
    uint64_t v = s ? (uint64_t)n + 1 : 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        len[k++] = (char)(c | (v ? 0x80 : 0));
    } while (v);
    sbuf_add(b, len, k);
    if (s && n)
        sbuf_add(b, s, n);
}

/* Reads one varint at *off; -1 when malformed. */
static int localrow__varint(const uint8_t *row, size_t len, size_t *off, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 63; shift += 7) {
        if (*off >= len)
            return -1;
        uint8_t c = row[(*off)++];
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

int localrow_get(const uint8_t *row, size_t len, size_t i, const char **s, size_t *n)
{
    size_t off = 0;
    if (row == NULL)
        return 0;
    for (size_t k = 0;; k++) {
        uint64_t v;
        if (localrow__varint(row, len, &off, &v) != 0)
            return 0;
        size_t vl = v ? (size_t)(v - 1) : 0;
        if (vl > len - off)
            return 0;
        if (k == i) {
            if (v == 0)
                return 0;
            *s = (const char *)row + off;
            *n = vl;
            return 1;
        }
        off += vl;
    }
}

static void localrow__sql_field(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *s;
    size_t n;
    (void)argc;
    const uint8_t *row = sqlite3_value_blob(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    sqlite3_int64 i = sqlite3_value_int64(argv[1]);
    if (i < 0 || !localrow_get(row, len, (size_t)i, &s, &n))
        sqlite3_result_null(ctx);
    else
        sqlite3_result_text(ctx, s, (int)n, SQLITE_TRANSIENT);
}

int localrow_register(sqlite3 *db)
{
    return sqlite3_create_function(db, "local_field", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   localrow__sql_field, NULL, NULL) == SQLITE_OK
               ? 0
               : REINT_EDB;
}
