/* libFuzzer target for the CSV reader and the CSV import built on it.
 *
 * Every input is read as a file until the reader reports the end, and every returned field
 * must lie within the record it came from. An input whose first byte is below 4 is also
 * imported (the rest of it, as a file of the kind that byte picks) into a store made once per
 * process: the import's header mapping, reader thread, chunk ring and field checks see
 * arbitrary text. The import must read the file to its end or refuse it, its counts must add
 * up, and each refused row must be reported. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv.h"
#include "import.h"
#include "intake.h"
#include "outbox.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[64], fuzz_csv_path[96];
static outbox *fuzz_ob;
static intake *fuzz_in;

static void fuzz_cleanup(void)
{
    char path[128];
    intake_close(fuzz_in);
    outbox_close(fuzz_ob);
    static const char *const files[] = {"node.db", "node.db-wal", "node.db-shm", "rows.csv"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, files[i]);
        unlink(path);
    }
    rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[128], err[256];
    (void)argc;
    (void)argv;
    /* A memory file system when there is one: each import commits, and fsync there is free. */
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz_csv.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(fuzz_dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/node.db", fuzz_dir);
    snprintf(fuzz_csv_path, sizeof(fuzz_csv_path), "%s/rows.csv", fuzz_dir);
    if (outbox_create(path, 10703, err, sizeof(err)) != 0 ||
        outbox_open(path, &fuzz_ob, err, sizeof(err)) != 0 ||
        intake_open(&fuzz_in, fuzz_ob, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_csv: %s\n", err);
        abort();
    }
    atexit(fuzz_cleanup);
    return 0;
}

static void fuzz_reader(const uint8_t *data, size_t size)
{
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "r");
    if (f == NULL)
        return;
    csv_reader *r = csv_open(f);
    if (r == NULL) {
        fclose(f);
        return;
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
}

static void fuzz_import(int kind, const uint8_t *data, size_t size)
{
    FILE *f = fopen(fuzz_csv_path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    char *report = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&report, &len);
    if (errs == NULL)
        abort();
    import_stats st;
    int rc = import_csv(fuzz_in, kind, fuzz_csv_path, errs, 0, &st);
    if (fclose(errs) != 0)
        abort();
    if (rc == 0) {
        if (st.rows != st.inserted + st.updated + st.unchanged + st.refused)
            abort();
        /* At least one line of the report names each refused row. */
        long long lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += report[i] == '\n';
        if (lines < st.refused)
            abort();
    } else if (rc == REINT_EINVAL) {
        if (st.rows != 0 || len == 0) /* a refused header imports nothing and says why */
            abort();
    } else {
        abort(); /* no read, memory or store error is expected from a file in memory */
    }
    free(report);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer */
    fuzz_reader(data, size);
    if (data[0] < 4)
        fuzz_import(data[0] + 1, data + 1, size - 1);
    return 0;
}
