/* Tests for provincial-hub/hubstore's upsert: what it tells of an insert. The hub's ingest
 * passes hubstore_put's *inserted to rollup_note_stored() as fresh, which then does not look
 * for an old state of the record in the rollup shadow; an update reported as an insert would
 * leave the old state counted beside the new one. So: a first record is an insert; a newer
 * version, an older one (a stale replay) and the same version again are not; the same id in
 * another municipality is; a record deleted from the store (as a sweep does) and sent again
 * is; an insert into another rowid table between two upserts changes nothing of this. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hubstore.h"
#include "store.h"

typedef struct fx {
    char dir[64], path[128];
    hubstore hs;
} fx;

static int setup(void **state)
{
    char err[256];
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_hubstore.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    assert_int_equal(hubstore_open(&f->hs, f->path, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    hubstore_close(&f->hs);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Upserts record n of municipality mun at version v; returns what hubstore_put said. */
static int put(fx *f, uint32_t mun, int n, uint64_t v)
{
    static const uint8_t inc[16] = {3};
    uint8_t id[16] = {0x01}, body[4] = {0x08, (uint8_t)n, 0x10, (uint8_t)v};
    id[15] = (uint8_t)n;
    hubstore_record rec = {.municipality = mun,
                           .id = id,
                           .kind = 1,
                           .version = v,
                           .deleted = 0,
                           .incarnation = inc,
                           .body = body,
                           .len = sizeof(body)};
    int inserted = -1;
    assert_int_equal(hubstore_put(&f->hs, &rec, &inserted), 0);
    return inserted;
}

static void test_hubstore_put_tells_an_insert_from_an_update(void **state)
{
    fx *f = *state;
    assert_int_equal(store_exec(f->hs.db, "BEGIN"), 0);
    assert_int_equal(put(f, 10703, 1, 5), 1);
    assert_int_equal(put(f, 10703, 1, 6), 0); /* newer */
    assert_int_equal(put(f, 10703, 1, 2), 0); /* a stale replay */
    assert_int_equal(put(f, 10703, 1, 6), 0); /* the same again */
    assert_int_equal(put(f, 10704, 1, 1), 1); /* the same id elsewhere */
    assert_int_equal(put(f, 10703, 2, 1), 1);
    /* Another rowid table written between two upserts: the second is still an update. */
    assert_int_equal(store_exec(f->hs.db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)"), 0);
    assert_int_equal(put(f, 10703, 2, 2), 0);
    /* Deleted from the store, as a sweep of an older incarnation does: new again. */
    assert_int_equal(store_exec(f->hs.db, "DELETE FROM records WHERE municipality=10703"), 0);
    assert_int_equal(put(f, 10703, 1, 7), 1);
    assert_int_equal(put(f, 10703, 1, 8), 0);
    assert_int_equal(store_exec(f->hs.db, "COMMIT"), 0);
    /* A NULL *inserted is accepted. */
    static const uint8_t id[16] = {0x02}, inc[16] = {3}, body[2] = {0x08, 1};
    hubstore_record rec = {10703, id, 1, 1, 0, inc, body, sizeof(body)};
    assert_int_equal(hubstore_put(&f->hs, &rec, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hubstore_put_tells_an_insert_from_an_update, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
