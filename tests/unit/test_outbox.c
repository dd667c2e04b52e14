/* Tests for municipal-node/outbox: the sequence counter that numbers outbox entries, and
 * outbox_resume_point, where a sync session resumes given the hub's Hello reply (its
 * position: the highest contiguous sequence it stored, and the newest version it holds).
 *
 * The hub is played by the test: its reply is worked out from what the test says the hub
 * stored, never read from the product. Only outbox.h's public API is used (record ids are
 * whatever outbox_put says they are). Each test gets a fresh store in a temporary directory
 * under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "clock.h"
#include "outbox.h"

#define KIND_PERSON REINT__V1__RECORD_KIND__RECORD_KIND_PERSON
#define MAX_ENTRIES 64

typedef struct fx {
    char dir[64];
    char path[128];
    outbox *ob;
} fx;

static int setup(void **state)
{
    char err[256];
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_outbox.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
    assert_int_equal(outbox_create(f->path, 10703, err, sizeof(err)), 0);
    assert_int_equal(outbox_open(f->path, &f->ob, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[160];
    outbox_close(f->ob);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void reopen(fx *f)
{
    char err[256];
    outbox_close(f->ob);
    f->ob = NULL;
    assert_int_equal(outbox_open(f->path, &f->ob, err, sizeof(err)), 0);
}

/* Queues person local_id with the given sex (its content; the hash follows it) in a
 * transaction of its own, the way one import row would. */
static outbox_put_result put_person(outbox *ob, const char *local_id, int sex)
{
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    outbox_put_result res;
    p.sex = (Reint__V1__Sex)sex;
    p.registered_month = 202305;
    p.registered_bs_month = 208002;
    r.body_case = REINT__V1__RECORD__BODY_PERSON;
    r.person = &p;
    assert_int_equal(outbox_begin(ob), 0);
    assert_int_equal(outbox_put(ob, KIND_PERSON, local_id, NULL, &r, 1000u + (uint64_t)sex,
                                "clerk1", NULL, 0, &res),
                     0);
    assert_int_equal(outbox_commit(ob), 0);
    return res;
}

/* Queues persons P1..Pn, all new. */
static void put_persons(outbox *ob, int n)
{
    char lid[32];
    for (int i = 1; i <= n; i++) {
        snprintf(lid, sizeof(lid), "P%d", i);
        assert_int_equal(put_person(ob, lid, 1).change, OUTBOX_INSERTED);
    }
}

typedef struct entry {
    uint64_t seq, version;
    uint8_t id[16];
} entry;

typedef struct entries {
    entry e[MAX_ENTRIES];
    size_t n;
} entries;

static int collect(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec, size_t len)
{
    entries *es = ud;
    assert_true(es->n < MAX_ENTRIES);
    Reint__V1__Record *r = reint__v1__record__unpack(NULL, len, rec);
    assert_non_null(r);
    assert_int_equal(r->id.len, 16);
    es->e[es->n].seq = seq;
    es->e[es->n].version = version;
    memcpy(es->e[es->n].id, r->id.data, 16);
    es->n++;
    reint__v1__record__free_unpacked(r, NULL);
    return 0;
}

/* The entries a session resuming after `after` sends, oldest first. */
static entries read_after(outbox *ob, uint64_t after)
{
    entries es;
    memset(&es, 0, sizeof(es));
    int n = outbox_read(ob, after, MAX_ENTRIES, collect, &es);
    assert_int_equal(n, (int)es.n);
    return es;
}

static int sends_id(const entries *es, const uint8_t id[16])
{
    for (size_t i = 0; i < es->n; i++)
        if (memcmp(es->e[i].id, id, 16) == 0)
            return 1;
    return 0;
}

/* The hub's reply after it stored every entry up to seq: that position and the newest
 * version among what it stored. */
typedef struct hub_reply {
    uint64_t seq, version;
} hub_reply;

static hub_reply hub_stored_up_to(outbox *ob, uint64_t seq)
{
    entries all = read_after(ob, 0);
    hub_reply h = {seq, 0};
    for (size_t i = 0; i < all.n; i++)
        if (all.e[i].seq <= seq && all.e[i].version > h.version)
            h.version = all.e[i].version;
    return h;
}

static uint64_t resume(outbox *ob, hub_reply h)
{
    uint64_t after = UINT64_MAX;
    assert_int_equal(outbox_resume_point(ob, h.seq, h.version, &after), 0);
    return after;
}

static void ack(outbox *ob, uint64_t seq)
{
    assert_int_equal(outbox_acked(ob, seq, NULL, 0), 0);
}

/* Sequence counter ------------------------------------------------------------------------ */

static void test_new_entries_are_numbered_from_one_upwards(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 3);
    entries es = read_after(f->ob, 0);
    assert_int_equal(es.n, 3);
    assert_int_equal(es.e[0].seq, 1);
    assert_int_equal(es.e[1].seq, 2);
    assert_int_equal(es.e[2].seq, 3);
    assert_int_equal(outbox_last_seq(f->ob), 3);
}

static void test_an_unchanged_row_takes_no_sequence_number(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 3);
    assert_int_equal(put_person(f->ob, "P2", 1).change, OUTBOX_UNCHANGED);
    assert_int_equal(outbox_last_seq(f->ob), 3);
    assert_int_equal(read_after(f->ob, 0).n, 3);
}

static void test_a_changed_record_moves_to_the_next_sequence_number(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 3);
    outbox_put_result p2 = put_person(f->ob, "P2", 2);
    assert_int_equal(p2.change, OUTBOX_UPDATED);
    /* The outbox keeps only the newest entry of P2, now the last one. */
    entries es = read_after(f->ob, 0);
    assert_int_equal(es.n, 3);
    assert_int_equal(es.e[0].seq, 1);
    assert_int_equal(es.e[1].seq, 3);
    assert_int_equal(es.e[2].seq, 4);
    assert_memory_equal(es.e[2].id, p2.id, 16);
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The store's log is copied back by its checkpoint thread, not by the commit that crosses
 * the threshold (a clerk's save would wait for 16 MiB to be copied and synced). */
static void test_the_store_checkpoints_on_its_own_thread(void **state)
{
    fx *f = *state;
    sqlite3 *db = outbox_db(f->ob);
    outbox_stats st;
    /* The writer's own automatic checkpoint is off while the store is open. */
    assert_int_equal(pragma_int(db, "PRAGMA wal_autocheckpoint"), 0);
    put_persons(f->ob, 3);
    /* One commit of more frames than the threshold, the way a large import's would be. */
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE pad(b);"
                                  "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c"
                                  " WHERE i<1200) INSERT INTO pad SELECT randomblob(15000) FROM c",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(outbox_stats_get(f->ob, &st), 0);
        if (st.ckpt.runs > 0)
            break;
        usleep(10 * 1000);
    }
    assert_true(st.ckpt.runs > 0);
    assert_true(st.ckpt.last_log >= OUTBOX_CKPT_FRAMES);
    assert_int_equal(st.ckpt.inline_runs, 0);
    assert_int_equal(st.ckpt.failures, 0);
    assert_int_equal(st.records, 3);
    /* Reopened, the store holds every row. */
    reopen(f);
    db = outbox_db(f->ob);
    assert_int_equal(pragma_int(db, "SELECT count(*) FROM pad"), 1200);
    assert_int_equal(outbox_stats_get(f->ob, &st), 0);
    assert_int_equal(st.records, 3);
}

static void test_the_counter_survives_reopening_the_store(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 3);
    reopen(f);
    assert_int_equal(outbox_last_seq(f->ob), 3);
    put_person(f->ob, "P9", 1);
    entries es = read_after(f->ob, 3);
    assert_int_equal(es.n, 1);
    assert_int_equal(es.e[0].seq, 4);
}

/* Resume point ----------------------------------------------------------------------------- */

static void test_hub_behind_the_node_resumes_at_the_hub(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 10);
    ack(f->ob, 4);
    assert_int_equal(resume(f->ob, hub_stored_up_to(f->ob, 4)), 4);
    entries es = read_after(f->ob, 4);
    assert_int_equal(es.n, 6);
    assert_int_equal(es.e[0].seq, 5);
}

static void test_hub_behind_what_it_acknowledged_gets_the_rest_again(void **state)
{
    fx *f = *state;
    /* The hub acknowledged all ten, then was restored from a copy holding four. */
    put_persons(f->ob, 10);
    ack(f->ob, 10);
    assert_int_equal(resume(f->ob, hub_stored_up_to(f->ob, 4)), 4);
}

static void test_hub_level_with_the_node_resumes_where_both_stand(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 10);
    ack(f->ob, 10);
    assert_int_equal(resume(f->ob, hub_stored_up_to(f->ob, 10)), 10);
    assert_int_equal(read_after(f->ob, 10).n, 0);
}

static void test_hub_ahead_after_a_lost_ack_resumes_after_the_hub(void **state)
{
    fx *f = *state;
    /* All ten reached the hub; the ack past four never came back. */
    put_persons(f->ob, 10);
    ack(f->ob, 4);
    assert_int_equal(resume(f->ob, hub_stored_up_to(f->ob, 10)), 10);
}

static void test_hub_that_lost_its_store_gets_everything(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 10);
    ack(f->ob, 10);
    hub_reply empty = {0, 0};
    uint64_t after = resume(f->ob, empty);
    assert_int_equal(after, 0);
    assert_int_equal(read_after(f->ob, after).n, 10);
}

static void test_new_incarnation_sends_its_store_from_the_first_entry(void **state)
{
    fx *f = *state;
    char err[256], path[160];
    outbox *fresh = NULL;
    /* The old store reached the hub; the node is then initialised again, and the hub,
     * which knows nothing of the new incarnation, answers from zero. */
    put_persons(f->ob, 10);
    ack(f->ob, 10);
    snprintf(path, sizeof(path), "%s/node2.db", f->dir);
    assert_int_equal(outbox_create(path, 10703, err, sizeof(err)), 0);
    assert_int_equal(outbox_open(path, &fresh, err, sizeof(err)), 0);
    assert_memory_not_equal(outbox_incarnation(fresh), outbox_incarnation(f->ob), 16);
    put_persons(fresh, 3);
    hub_reply empty = {0, 0};
    uint64_t after = resume(fresh, empty);
    assert_int_equal(after, 0);
    entries es = read_after(fresh, after);
    assert_int_equal(es.n, 3);
    assert_int_equal(es.e[0].seq, 1);
    outbox_close(fresh);
}

/* Restore from an older copy ---------------------------------------------------------------- */

/* SQLite's online backup of the open store into path. */
static void backup_to(outbox *ob, const char *path)
{
    sqlite3 *dst = NULL;
    assert_int_equal(sqlite3_open(path, &dst), SQLITE_OK);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", outbox_db(ob), "main");
    assert_non_null(b);
    assert_int_equal(sqlite3_backup_step(b, -1), SQLITE_DONE);
    assert_int_equal(sqlite3_backup_finish(b), SQLITE_OK);
    assert_int_equal(sqlite3_close(dst), SQLITE_OK);
}

/* Replaces the store by the copy at path, as an operator restoring a backup would. */
static void restore_from(fx *f, const char *path)
{
    char err[256], side[160];
    outbox_close(f->ob);
    f->ob = NULL;
    snprintf(side, sizeof(side), "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", f->path);
    unlink(side);
    assert_int_equal(rename(path, f->path), 0);
    assert_int_equal(outbox_open(f->path, &f->ob, err, sizeof(err)), 0);
}

/* A restore happens after the work it undoes: waits until the wall clock has passed the
 * millisecond of version, so that what the restored store makes is newer (the DESIGN's
 * condition for a restored node's versions to rise). */
static void wait_past(uint64_t version)
{
    const struct timespec ms = {0, 1000000};
    while (clock_now_ms() <= (version >> 16))
        nanosleep(&ms, NULL);
}

/* Six persons synced, a copy taken, four more synced (the hub holds ten), the store restored
 * from the copy. Returns the hub's reply. */
static hub_reply restored_store(fx *f)
{
    char copy[160];
    snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
    put_persons(f->ob, 6);
    ack(f->ob, 6);
    backup_to(f->ob, copy);
    put_person(f->ob, "P7", 1);
    put_person(f->ob, "P8", 1);
    put_person(f->ob, "P9", 1);
    put_person(f->ob, "P10", 1);
    ack(f->ob, 10);
    hub_reply hub = hub_stored_up_to(f->ob, 10);
    restore_from(f, copy);
    wait_past(hub.version);
    return hub;
}

static void test_restored_store_sends_everything_it_made_since(void **state)
{
    fx *f = *state;
    hub_reply hub = restored_store(f);
    /* The clerk keeps working offline: two new persons and a correction of one the copy
     * holds, numbered 7..9 again, below the hub's position. */
    outbox_put_result made[3] = {put_person(f->ob, "P11", 1), put_person(f->ob, "P12", 1),
                                 put_person(f->ob, "P2", 2)};
    assert_int_equal(outbox_last_seq(f->ob), 9);
    uint64_t after = resume(f->ob, hub);
    entries es = read_after(f->ob, after);
    for (int i = 0; i < 3; i++)
        if (!sends_id(&es, made[i].id))
            fail_msg("entry %d made after the restore is skipped (resuming after %llu)", i,
                     (unsigned long long)after);
}

static void test_restored_store_with_nothing_new_resends_nothing(void **state)
{
    fx *f = *state;
    hub_reply hub = restored_store(f);
    /* Everything the copy holds is older than what the hub holds. */
    assert_int_equal(resume(f->ob, hub), 10);
}

static void test_restored_store_never_reissues_a_sequence_the_hub_counted(void **state)
{
    fx *f = *state;
    hub_reply hub = restored_store(f);
    (void)resume(f->ob, hub);
    /* An entry made during the session must land above the hub's position, where the
     * session's reads will find it. */
    put_person(f->ob, "P11", 1);
    entries es = read_after(f->ob, hub.seq);
    assert_int_equal(es.n, 1);
    assert_int_equal(es.e[0].seq, hub.seq + 1);
}

static void test_the_counter_moved_past_the_hub_survives_a_restart(void **state)
{
    fx *f = *state;
    hub_reply hub = restored_store(f);
    (void)resume(f->ob, hub);
    /* The session ends (crash, stop) before anything new is made; the next process must
     * not number below the hub's position either. */
    reopen(f);
    put_person(f->ob, "P11", 1);
    entries es = read_after(f->ob, hub.seq);
    assert_int_equal(es.n, 1);
    assert_int_equal(es.e[0].seq, hub.seq + 1);
}

/* Store format ---------------------------------------------------------------------------- */

static int bodies(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec, size_t len)
{
    (void)seq;
    (void)version;
    Reint__V1__Record **out = ud;
    *out = reint__v1__record__unpack(NULL, len, rec);
    return 0;
}

/* A store of format 3 held the upstream copy of a person with its registration day (field 7,
 * protocol 1); opened by this build it is migrated: the copy a resend sends carries the pair
 * (2023-05, BS 2080-02) of day 19500 (2023-05-23, BS 2080-02-09) and no day. */
static void test_a_format_3_store_sends_month_pairs_instead_of_days(void **state)
{
    fx *f = *state;
    put_persons(f->ob, 1);
    outbox_close(f->ob);
    f->ob = NULL;
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT record FROM records", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    Reint__V1__Record *r = reint__v1__record__unpack(NULL, (size_t)sqlite3_column_bytes(st, 0),
                                                     sqlite3_column_blob(st, 0));
    sqlite3_finalize(st);
    assert_non_null(r);
    /* The person as a format-3 store held it: no pair, the day as field 7. */
    r->person->registered_month = r->person->registered_bs_month = 0;
    uint8_t buf[256], body[128];
    size_t blen = reint__v1__person__pack(r->person, body);
    memcpy(body + blen, "\x38\xac\x98\x01", 4); /* field 7, varint 19500 */
    blen += 4;
    r->body_case = REINT__V1__RECORD__BODY__NOT_SET;
    size_t len = reint__v1__record__pack(r, buf);
    buf[len++] = 0x52;
    buf[len++] = (uint8_t)blen;
    memcpy(buf + len, body, blen);
    len += blen;
    r->body_case = REINT__V1__RECORD__BODY_PERSON;
    reint__v1__record__free_unpacked(r, NULL);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE records SET record=?1", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE meta SET value=3 WHERE key='format'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    reopen(f);
    Reint__V1__Record *sent = NULL;
    assert_int_equal(outbox_read(f->ob, 0, 1, bodies, &sent), 1);
    assert_non_null(sent);
    assert_int_equal(sent->person->registered_month, 202305);
    assert_int_equal(sent->person->registered_bs_month, 208002);
    assert_int_equal(sent->person->base.n_unknown_fields, 0);
    reint__v1__record__free_unpacked(sent, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_format_3_store_sends_month_pairs_instead_of_days,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_entries_are_numbered_from_one_upwards, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_unchanged_row_takes_no_sequence_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_changed_record_moves_to_the_next_sequence_number,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_store_checkpoints_on_its_own_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_counter_survives_reopening_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hub_behind_the_node_resumes_at_the_hub, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hub_behind_what_it_acknowledged_gets_the_rest_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_level_with_the_node_resumes_where_both_stand,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_ahead_after_a_lost_ack_resumes_after_the_hub,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_that_lost_its_store_gets_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_incarnation_sends_its_store_from_the_first_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_restored_store_sends_everything_it_made_since, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restored_store_with_nothing_new_resends_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_restored_store_never_reissues_a_sequence_the_hub_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_counter_moved_past_the_hub_survives_a_restart,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
