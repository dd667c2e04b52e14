/* libFuzzer target for the JSON intake: the first byte picks the kind of row (and whether
 * the URL names the row, as a PUT does), the rest is the request body, parsed and applied
 * exactly as api.c does into a store made once per process; each input's transaction is
 * rolled back. A row that is accepted must give a record that passes record_validate and
 * that does not carry the person's name. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

#include "clock.h"
#include "record.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[64];
static outbox *fuzz_ob;
static intake *fuzz_in;

static void fuzz_cleanup(void)
{
    char path[128];
    intake_close(fuzz_in);
    outbox_close(fuzz_ob);
    static const char *const files[] = {"node.db", "node.db-wal", "node.db-shm"};
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
    snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/fuzz_intake_json.XXXXXX");
    if (mkdtemp(fuzz_dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/node.db", fuzz_dir);
    if (outbox_create(path, 10703, err, sizeof(err)) != 0 ||
        outbox_open(path, &fuzz_ob, err, sizeof(err)) != 0 ||
        intake_open(&fuzz_in, fuzz_ob, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_intake_json: %s\n", err);
        abort();
    }
    atexit(fuzz_cleanup);
    /* A committed person, so that services and enterprises can refer to P-1. */
    static const char person[] = "{\"local_id\":\"P-1\",\"category\":\"returnee\","
                                 "\"sex\":\"female\",\"registered_on\":\"2081-04-01\"}";
    field_errors errs;
    intake_result res;
    if (outbox_begin(fuzz_ob) != 0 ||
        api_apply_json(fuzz_in, INTAKE_PERSON, person, sizeof(person) - 1, NULL, "fuzz", &errs,
                       &res, err, sizeof(err)) != 0 ||
        outbox_commit(fuzz_ob) != 0)
        abort();
    return 0;
}

typedef struct newest {
    uint8_t buf[4096];
    size_t len;
} newest;

static int fuzz_read_cb(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec, size_t len)
{
    newest *n = ud;
    (void)seq;
    (void)version;
    if (len > sizeof(n->buf))
        abort();
    memcpy(n->buf, rec, len);
    n->len = len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const lids[] = {NULL, "P-1", "S-1", "E-1", "LOAN/BANK"};
    field_errors errs;
    intake_result res;
    char jerr[256];
    if (size < 1 || size > 64 * 1024)
        return 0;
    int kind = (data[0] & 3) + 1;
    const char *path_lid = (data[0] & 4) || kind == INTAKE_AVAILABILITY ? lids[kind] : NULL;
    uint64_t before = outbox_last_seq(fuzz_ob);
    if (outbox_begin(fuzz_ob) != 0)
        abort();
    int rc = api_apply_json(fuzz_in, kind, (const char *)data + 1, size - 1, path_lid, "fuzz",
                            &errs, &res, jerr, sizeof(jerr));
    if (rc == 0 && res.changed != INTAKE_UNCHANGED) {
        newest n = {.len = 0};
        if (outbox_read(fuzz_ob, before, 1, fuzz_read_cb, &n) != 1)
            abort();
        Reint__V1__Record *r = reint__v1__record__unpack(NULL, n.len, n.buf);
        record_error re;
        if (r == NULL || record_validate(r, clock_today_utc() + 1, &re) != 0)
            abort();
        reint__v1__record__free_unpacked(r, NULL);
        /* The person's name never reaches the record. */
        json_t *o = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        const char *name = json_string_value(json_object_get(o, "full_name"));
        if (name && strlen(name) >= 8 && memmem(n.buf, n.len, name, strlen(name)) != NULL)
            abort();
        json_decref(o);
    } else if (rc != 0 && rc != REINT_EINVAL && rc != REINT_EMALFORMED) {
        abort();
    }
    if (rc == REINT_EINVAL && errs.n == 0)
        abort(); /* a refusal always says why */
    outbox_rollback(fuzz_ob);
    return 0;
}
