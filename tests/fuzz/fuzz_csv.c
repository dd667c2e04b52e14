/* libFuzzer target for the CSV reader: the input is read as a file until the reader reports
 * the end, and every returned field must lie within the record it came from. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer */
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "r");
    if (f == NULL)
        return 0;
    csv_reader *r = csv_open(f);
    if (r == NULL) {
        fclose(f);
        return 0;
    }
    long last_line = 0;
    for (;;) {
        char **fields;
        size_t n;
        int rc = csv_next(r, &fields, &n);
        if (rc == 0 || rc == REINT_EQUOTE || rc == REINT_EIO || rc == REINT_ENOMEM)
            break;
        /* Records begin on strictly increasing lines and never past the bytes read. */
        if (csv_line(r) <= last_line || csv_offset(r) > (long long)size)
            abort();
        last_line = csv_line(r);
        if (rc == REINT_ETOOLONG)
            continue;
        if (rc != 1 || n == 0 || n > CSV_MAX_FIELDS)
            abort();
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += strlen(fields[i]) + 1;
        if (total > CSV_MAX_RECORD + 1)
            abort();
    }
    csv_close(r);
    fclose(f);
    return 0;
}
