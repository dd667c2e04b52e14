#include "outbox.h"

#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "localrow.h"
#include "personkey.h"
#include "log.h"
#include "record.h"
#include "rid.h"
#include "store.h"
#include "testhook.h"

/* One row per record: its place in the outbox (seq: a change moves the row to a new, higher
 * sequence number, so the outbox stays compacted), its key at the node (kind, local_id), the
 * upstream record as sent and the clerk's local fields. A rowid table, appended at its right
 * edge, plus one index: an import writes two B-trees per row (three tables and six B-trees
 * before, at a third of the speed). */
static const char *outbox__schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS records(seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
    " local_id TEXT NOT NULL, id BLOB NOT NULL, version INTEGER NOT NULL,"
    " live INTEGER NOT NULL, hash INTEGER NOT NULL, record BLOB NOT NULL,"
    " clerk TEXT NOT NULL, updated_ms INTEGER NOT NULL, fields BLOB);"
    "CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records(kind, local_id);"
    "CREATE TABLE IF NOT EXISTS dead_letters(seq INTEGER NOT NULL, id BLOB NOT NULL,"
    " field TEXT NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " PRIMARY KEY(seq, id));";

/* Rows of a few hundred bytes appended in order: 16 KiB pages take a quarter fewer CPU
 * cycles per imported row than the default 4 KiB (fewer page writes and splits). */
#define OUTBOX_PAGE_SIZE 16384

/* The layout above; a store of another layout is refused with a message, not misread.
 * 3: new records' ids are keyed hashes (meta id_key); format 2 is migrated on open.
 * 4: the upstream records of persons, services and enterprises carry the month pair of their
 * event instead of its day (protocol version 2); format 3 is migrated on open. */
#define OUTBOX_FORMAT 4
#define OUTBOX_ID_KEY 32 /* bytes of the per-municipality id key */

enum { ST_FIND, ST_INSERT, ST_UPSERT, ST_READ, ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_N };

static const char *outbox__sql[ST_N] = {
    [ST_FIND] = "SELECT id, version, hash, live FROM records WHERE kind=?1 AND local_id=?2",
    /* A new key is inserted in one step; a key that exists (that conflict only: a sequence
     * number in use stays an error) is left alone, and the caller takes the update path. */
    [ST_INSERT] = "INSERT INTO records(seq, kind, local_id, id, version, live, hash, record,"
                  " clerk, updated_ms, fields) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
                  " ON CONFLICT(kind, local_id) DO NOTHING",
    [ST_UPSERT] = "INSERT INTO records(seq, kind, local_id, id, version, live, hash, record,"
                  " clerk, updated_ms, fields) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
                  " ON CONFLICT(kind, local_id) DO UPDATE SET seq=excluded.seq,"
                  " version=excluded.version, live=excluded.live, hash=excluded.hash,"
                  " record=excluded.record, clerk=excluded.clerk,"
                  " updated_ms=excluded.updated_ms, fields=excluded.fields",
    [ST_READ] = "SELECT seq, version, record FROM records WHERE seq>?1 ORDER BY seq LIMIT ?2",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

/* HMAC-SHA-256 with the store's id key, keyed once: ids are computed by copying these (the
 * inner and outer padded states) rather than keying HMAC for every record. */
struct outbox_idkey {
    EVP_MD_CTX *inner, *outer, *tmp;
};

struct outbox {
    sqlite3 *db;
    walckpt *ckpt; /* the log's checkpoints, off db's thread */
    outbox_idkey *ids;
    sqlite3_stmt *st[ST_N];
    uint32_t municipality;
    uint8_t incarnation[16];
    uint64_t next_seq;
    int64_t n_live, n_dead; /* records and tombstones, kept in meta at each commit */
    hlc clock;
    size_t buf_cap;
    uint8_t *buf;
};

int outbox_create(const char *path, uint32_t municipality, char *err, size_t errlen)
{
    struct stat sb;
    sqlite3 *db = NULL;
    uint8_t inc[16], key[OUTBOX_ID_KEY];
    if (stat(path, &sb) == 0) {
        snprintf(err, errlen, "%s already exists; a node is initialised once", path);
        return REINT_EEXIST;
    }
    if (rid_random(inc, sizeof(inc)) != 0 || rid_random(key, sizeof(key)) != 0) {
        snprintf(err, errlen, "no randomness for the store incarnation and id key");
        return REINT_EDB;
    }
    if (store_open_paged(path, 1, OUTBOX_PAGE_SIZE, outbox__schema, &db, err, errlen) != 0)
        return REINT_EDB;
    int rc = 0;
    if (store_exec(db, "BEGIN") || store_meta_set_blob(db, "incarnation", inc, sizeof(inc)) ||
        store_meta_set_blob(db, "id_key", key, sizeof(key)) ||
        store_meta_set_int(db, "municipality", municipality) ||
        store_meta_set_int(db, "format", OUTBOX_FORMAT) || store_meta_set_int(db, "next_seq", 1) ||
        store_meta_set_int(db, "hlc", 0) || store_meta_set_int(db, "records_live", 0) ||
        store_meta_set_int(db, "records_dead", 0) || store_meta_set_int(db, "acked_seq", 0) ||
        store_exec(db, "COMMIT")) {
        snprintf(err, errlen, "%s: cannot write the store metadata", path);
        rc = REINT_EDB;
    }
    store_close(db);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

void outbox_idkey_free(outbox_idkey *k)
{
    if (k == NULL)
        return;
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    EVP_MD_CTX_free(k->tmp);
    free(k);
}

/* A keyed idkey: the inner and outer states of HMAC-SHA-256 (RFC 2104) with key, or copies
 * of another's (from) when key is NULL. NULL when out of memory. */
static outbox_idkey *outbox__idkey(const uint8_t *key, const outbox_idkey *from)
{
    outbox_idkey *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->inner = EVP_MD_CTX_new();
    k->outer = EVP_MD_CTX_new();
    k->tmp = EVP_MD_CTX_new();
    int ok = k->inner && k->outer && k->tmp;
    if (ok && key) {
        uint8_t ipad[64], opad[64];
        for (int i = 0; i < 64; i++) {
            uint8_t b = i < OUTBOX_ID_KEY ? key[i] : 0;
            ipad[i] = b ^ 0x36;
            opad[i] = b ^ 0x5c;
        }
        ok = EVP_DigestInit_ex(k->inner, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(k->inner, ipad, 64) == 1 &&
             EVP_DigestInit_ex(k->outer, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(k->outer, opad, 64) == 1;
        OPENSSL_cleanse(ipad, sizeof(ipad));
        OPENSSL_cleanse(opad, sizeof(opad));
    } else if (ok) {
        ok = EVP_MD_CTX_copy_ex(k->inner, from->inner) == 1 &&
             EVP_MD_CTX_copy_ex(k->outer, from->outer) == 1;
    }
    if (!ok) {
        outbox_idkey_free(k);
        return NULL;
    }
    return k;
}

int outbox_idkey_new(outbox *ob, outbox_idkey **out)
{
    *out = outbox__idkey(NULL, ob->ids);
    return *out ? 0 : REINT_ENOMEM;
}

int outbox_idkey_id(outbox_idkey *k, int kind, const char *local_id, size_t len, uint8_t id[16])
{
    uint8_t inner[32], outer[32], b = (uint8_t)kind;
    unsigned int n = 0;
    if (EVP_MD_CTX_copy_ex(k->tmp, k->inner) != 1 || EVP_DigestUpdate(k->tmp, &b, 1) != 1 ||
        EVP_DigestUpdate(k->tmp, local_id, len) != 1 ||
        EVP_DigestFinal_ex(k->tmp, inner, &n) != 1 || EVP_MD_CTX_copy_ex(k->tmp, k->outer) != 1 ||
        EVP_DigestUpdate(k->tmp, inner, sizeof(inner)) != 1 ||
        EVP_DigestFinal_ex(k->tmp, outer, &n) != 1)
        return REINT_ENOMEM;
    memcpy(id, outer, 16);
    return 0;
}

int outbox_record_id(outbox *ob, int kind, const char *local_id, uint8_t id[16])
{
    return outbox_idkey_id(ob->ids, kind, local_id, strlen(local_id), id);
}

/* Format 2 -> 3: an id key for the records made from now on (those that exist keep their
 * time-ordered ids). Backups made before this carry no key: restoring one later makes a new
 * key, and rows made in between would get other ids when imported again (docs/OPERATIONS.md
 * says to take a new backup right after the upgrade). */
static int outbox__migrate_2_3(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    uint8_t key[OUTBOX_ID_KEY];
    if (rid_random(key, sizeof(key)) != 0) {
        snprintf(err, errlen, "no randomness for the id key");
        return REINT_EDB;
    }
    int rc = store_exec(db, "BEGIN IMMEDIATE") ||
             store_meta_set_blob(db, "id_key", key, sizeof(key)) ||
             store_meta_set_int(db, "format", 3) || store_exec(db, "COMMIT");
    OPENSSL_cleanse(key, sizeof(key));
    if (rc) {
        if (!sqlite3_get_autocommit(db))
            store_exec(db, "ROLLBACK");
        snprintf(err, errlen, "%s: cannot migrate the store to format 3", path);
        return REINT_EDB;
    }
    log_warn("%s: store migrated to format 3 (keyed record ids); take a new backup now: "
             "backups made before this upgrade carry no id key",
             path);
    return 0;
}

/* Format 3 -> 4: the upstream copy of each person, service and enterprise (records.record,
 * what a resend sends) carried its event's day; it now carries the month pair, as protocol
 * version 2 has it, so that no day is sent again. The clerk's own values (fields) keep the
 * exact dates. One transaction with the format number. */
static int outbox__migrate_3_4(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *rd = NULL, *wr = NULL;
    long long n = 0;
    int rc = store_exec(db, "BEGIN IMMEDIATE") != 0 ? REINT_EDB : 0, s = SQLITE_DONE;
    if (rc == 0 &&
        ((rd = store_prepare(db, "SELECT seq, record FROM records WHERE kind IN (1, 2, 3)"
                                 " AND live = 1")) == NULL ||
         (wr = store_prepare(db, "UPDATE records SET record=?2 WHERE seq=?1")) == NULL))
        rc = REINT_EDB;
    while (rc == 0 && (s = sqlite3_step(rd)) == SQLITE_ROW) {
        Reint__V1__Record *r = reint__v1__record__unpack(NULL, (size_t)sqlite3_column_bytes(rd, 1),
                                                         sqlite3_column_blob(rd, 1));
        record_upgraded up;
        record_error re;
        uint8_t *buf = NULL;
        if (r == NULL || record_upgrade(r, RECORD_V1_DAYS | RECORD_STRIP_UNKNOWN, &up, &re) != 0) {
            snprintf(err, errlen, "%s: record at sequence %lld cannot be migrated: %s %s", path,
                     (long long)sqlite3_column_int64(rd, 0), r ? re.field : "record",
                     r ? re.reason : "does not decode");
            rc = REINT_EINVAL;
        } else if ((buf = malloc(reint__v1__record__get_packed_size(&up.rec) + 1)) == NULL) {
            rc = REINT_ENOMEM;
        } else {
            size_t len = reint__v1__record__pack(&up.rec, buf);
            sqlite3_bind_int64(wr, 1, sqlite3_column_int64(rd, 0));
            sqlite3_bind_blob(wr, 2, buf, (int)len, SQLITE_STATIC);
            rc = store_step_done(db, wr) == 0 ? 0 : REINT_EDB;
            n++;
        }
        free(buf);
        if (r)
            reint__v1__record__free_unpacked(r, NULL);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = REINT_EDB;
    sqlite3_finalize(rd);
    sqlite3_finalize(wr);
    if (rc == 0 && (store_meta_set_int(db, "format", 4) != 0 || store_exec(db, "COMMIT") != 0))
        rc = REINT_EDB;
    if (rc) {
        if (!sqlite3_get_autocommit(db))
            store_exec(db, "ROLLBACK");
        if (rc != REINT_EINVAL)
            snprintf(err, errlen, "%s: cannot migrate the store to format 4: %s", path,
                     sqlite3_errmsg(db));
        return rc;
    }
    log_warn("%s: store migrated to format 4: %lld upstream records now carry month pairs "
             "instead of days (the exact dates stay in this store)",
             path, n);
    return 0;
}

/* Takes the counters from the store (another process may have written since). */
static int outbox__load_counters(outbox *ob)
{
    int64_t next = 1, clock = 0, live = 0, dead = 0;
    if (store_meta_get_int_or(ob->db, "next_seq", 1, &next) != 0 ||
        store_meta_get_int_or(ob->db, "hlc", 0, &clock) != 0 ||
        store_meta_get_int_or(ob->db, "records_live", 0, &live) != 0 ||
        store_meta_get_int_or(ob->db, "records_dead", 0, &dead) != 0)
        return REINT_EDB;
    ob->n_live = live;
    ob->n_dead = dead;
    if ((uint64_t)next > ob->next_seq)
        ob->next_seq = (uint64_t)next;
    hlc_observe(&ob->clock, (uint64_t)clock);
    return 0;
}

int outbox_open(const char *path, outbox **out, char *err, size_t errlen)
{
    outbox *ob = calloc(1, sizeof(*ob));
    int64_t v = 0, format = 0;
    if (ob == NULL)
        return REINT_EDB;
    if (store_open(path, 0, outbox__schema, &ob->db, err, errlen) != 0)
        goto fail;
    if (store_meta_get_blob(ob->db, "incarnation", ob->incarnation, 16) != 0 ||
        store_meta_get_int(ob->db, "municipality", &v) != 0) {
        snprintf(err, errlen, "%s: not a municipal-node store (run `municipal-node init`)", path);
        goto fail;
    }
    if (store_meta_get_int(ob->db, "format", &format) == 0 && format == 2 &&
        outbox__migrate_2_3(ob->db, path, err, errlen) == 0)
        format = 3;
    if (format == 3 && outbox__migrate_3_4(ob->db, path, err, errlen) == 0)
        format = 4;
    if (format != OUTBOX_FORMAT) {
        snprintf(err, errlen,
                 "%s: store format %lld, this build reads format %d; export the data with the "
                 "build that wrote it, then init a new node and import the export",
                 path, (long long)format, OUTBOX_FORMAT);
        goto fail;
    }
    uint8_t key[OUTBOX_ID_KEY];
    int krc = store_meta_get_blob(ob->db, "id_key", key, sizeof(key));
    if (krc == 0 && (ob->ids = outbox__idkey(key, NULL)) == NULL)
        krc = REINT_ENOMEM;
    OPENSSL_cleanse(key, sizeof(key));
    if (krc != 0) {
        snprintf(err, errlen, "%s: the store's id key cannot be read", path);
        goto fail;
    }
    ob->municipality = (uint32_t)v;
    if (walckpt_start(&ob->ckpt, ob->db, path, OUTBOX_CKPT_FRAMES, err, errlen) != 0)
        goto fail;
    if (localrow_register(ob->db) != 0 || personkey_register(ob->db) != 0) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    for (int i = 0; i < ST_N; i++) {
        ob->st[i] = store_prepare(ob->db, outbox__sql[i]);
        if (ob->st[i] == NULL) {
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(ob->db));
            goto fail;
        }
    }
    if (outbox__load_counters(ob) != 0) {
        snprintf(err, errlen, "%s: cannot read the store's counters", path);
        goto fail;
    }
    /* The counters in meta are written at each commit; the records are the authority if they
     * ever lag. Versions rise with sequence numbers, so the last row has the newest. */
    sqlite3_stmt *st =
        store_prepare(ob->db, "SELECT seq, version FROM records ORDER BY seq DESC LIMIT 1");
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        uint64_t ms = (uint64_t)sqlite3_column_int64(st, 0);
        if (ms + 1 > ob->next_seq)
            ob->next_seq = ms + 1;
        hlc_observe(&ob->clock, (uint64_t)sqlite3_column_int64(st, 1));
    }
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        snprintf(err, errlen, "%s: cannot read the newest record: %s", path,
                 sqlite3_errmsg(ob->db));
        goto fail;
    }
    *out = ob;
    return 0;
fail:
    outbox_close(ob);
    return REINT_EDB;
}

void outbox_close(outbox *ob)
{
    if (ob == NULL)
        return;
    walckpt_stop(ob->ckpt);
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(ob->st[i]);
    store_close(ob->db);
    outbox_idkey_free(ob->ids);
    free(ob->buf);
    free(ob);
}

sqlite3 *outbox_db(outbox *ob)
{
    return ob->db;
}

uint32_t outbox_municipality(const outbox *ob)
{
    return ob->municipality;
}

const uint8_t *outbox_incarnation(const outbox *ob)
{
    return ob->incarnation;
}

uint64_t outbox_last_seq(const outbox *ob)
{
    return ob->next_seq - 1;
}

void outbox_observe(outbox *ob, uint64_t version)
{
    hlc_observe(&ob->clock, version);
}

int outbox_begin(outbox *ob)
{
    int rc = store_step_done(ob->db, ob->st[ST_BEGIN]);
    if (rc != 0)
        return rc;
    /* Other processes (an import while serve runs) may have written since this one last
     * did: under the write lock, take the counters from the store. */
    if (outbox__load_counters(ob) != 0) {
        outbox_rollback(ob);
        return REINT_EDB;
    }
    return 0;
}

int outbox_commit(outbox *ob)
{
    if (store_meta_set_int(ob->db, "next_seq", (int64_t)ob->next_seq) != 0 ||
        store_meta_set_int(ob->db, "hlc", (int64_t)ob->clock.last) != 0 ||
        store_meta_set_int(ob->db, "records_live", ob->n_live) != 0 ||
        store_meta_set_int(ob->db, "records_dead", ob->n_dead) != 0) {
        outbox_rollback(ob);
        return REINT_EDB;
    }
    return store_step_done(ob->db, ob->st[ST_COMMIT]);
}

void outbox_rollback(outbox *ob)
{
    if (!sqlite3_get_autocommit(ob->db))
        store_step_done(ob->db, ob->st[ST_ROLLBACK]);
    /* The in-memory counters may have moved; reload them from what is durable. */
    int64_t next = 1;
    if (store_meta_get_int(ob->db, "next_seq", &next) == 0)
        ob->next_seq = (uint64_t)next;
    store_meta_get_int(ob->db, "records_live", &ob->n_live);
    store_meta_get_int(ob->db, "records_dead", &ob->n_dead);
}

int outbox_find(outbox *ob, int kind, const char *local_id, outbox_row *row)
{
    sqlite3_stmt *st = ob->st[ST_FIND];
    int found = 0;
    sqlite3_bind_int(st, 1, kind);
    sqlite3_bind_text(st, 2, local_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
        memcpy(row->id, sqlite3_column_blob(st, 0), 16);
        row->version = (uint64_t)sqlite3_column_int64(st, 1);
        row->hash = (uint64_t)sqlite3_column_int64(st, 2);
        row->live = sqlite3_column_int(st, 3);
        found = 1;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error("outbox find: %s", sqlite3_errmsg(ob->db));
        found = REINT_EDB;
    }
    sqlite3_reset(st);
    return found;
}

/* Writes r (id and body set) as the newest entry of (kind, local_id) with the next sequence
 * number and version: with ST_INSERT for a key not yet in the store (*inserted 0 when it
 * was, and nothing is written), ST_UPSERT otherwise. */
static int outbox__write(outbox *ob, int which, uint64_t now_ms, int kind, const char *local_id,
                         Reint__V1__Record *r, int live, uint64_t hash, const char *clerk,
                         const void *fields, size_t flen, int *inserted)
{
    r->municipality = ob->municipality;
    r->version = hlc_next(&ob->clock, now_ms);
    size_t n = reint__v1__record__get_packed_size(r), pad = 0;
    /* Test hook: a record larger than any frame, as a future build's record might be (an
     * unknown length-delimited field 99 of 8 KiB), so that tests can watch it dead-lettered. */
    if (testhook_fire("outbox_oversize_record"))
        pad = 4 + 8192;
    if (n + pad > ob->buf_cap) {
        uint8_t *nb = realloc(ob->buf, n + pad);
        if (nb == NULL)
            return REINT_ENOMEM;
        ob->buf = nb;
        ob->buf_cap = n + pad;
    }
    reint__v1__record__pack(r, ob->buf);
    if (pad) {
        uint8_t *p = ob->buf + n;
        *p++ = 0x9a; /* field 99, length-delimited */
        *p++ = 0x06;
        *p++ = 0x80; /* 8192 */
        *p++ = 0x40;
        memset(p, 0, 8192);
        n += pad;
    }
    sqlite3_stmt *st = ob->st[which];
    sqlite3_bind_int64(st, 1, (int64_t)ob->next_seq);
    sqlite3_bind_int(st, 2, kind);
    sqlite3_bind_text(st, 3, local_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, r->id.data, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)r->version);
    sqlite3_bind_int(st, 6, live);
    sqlite3_bind_int64(st, 7, (int64_t)hash);
    sqlite3_bind_blob(st, 8, ob->buf, (int)n, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, clerk ? clerk : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)now_ms);
    if (fields)
        sqlite3_bind_blob(st, 11, fields, (int)flen, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    int rc = store_step_done(ob->db, st);
    if (rc != 0)
        return rc;
    if (inserted)
        *inserted = sqlite3_changes(ob->db) == 1;
    if (!inserted || *inserted)
        ob->next_seq++;
    return 0;
}

int outbox_put(outbox *ob, int kind, const char *local_id, const uint8_t *new_id,
               Reint__V1__Record *r, uint64_t hash, const char *clerk, const void *fields,
               size_t flen, outbox_put_result *res)
{
    uint8_t id[16];
    outbox_row old;
    int rc, inserted = 0;
    uint64_t now = clock_now_ms();
    memset(res, 0, sizeof(*res));
    /* Most puts come from imports of new rows: try the insert first, which costs one
     * statement for a new key and a wasted probe for a known one. A new key's id is keyed by
     * (kind, local_id), so that a store restored from an older copy gives a row it lost the
     * same id again, and the hub keeps one copy of it. */
    if (new_id)
        memcpy(id, new_id, 16);
    else if ((rc = outbox_record_id(ob, kind, local_id, id)) != 0)
        return rc;
    r->id.data = id;
    r->id.len = 16;
    rc = outbox__write(ob, ST_INSERT, now, kind, local_id, r, 1, hash, clerk, fields, flen,
                       &inserted);
    if (rc != 0)
        return rc;
    if (inserted) {
        ob->n_live++;
        memcpy(res->id, id, 16);
        res->version = r->version;
        res->change = OUTBOX_INSERTED;
        return 0;
    }
    if ((rc = outbox_find(ob, kind, local_id, &old)) != 1)
        return rc < 0 ? rc : REINT_EDB;
    memcpy(res->id, old.id, 16);
    res->version = old.version;
    if (old.live && old.hash == hash)
        return 0;
    r->id.data = old.id;
    rc = outbox__write(ob, ST_UPSERT, now, kind, local_id, r, 1, hash, clerk, fields, flen, NULL);
    if (rc != 0)
        return rc;
    res->version = r->version;
    res->change = old.live ? OUTBOX_UPDATED : OUTBOX_INSERTED;
    if (!old.live) {
        ob->n_live++;
        ob->n_dead--;
    }
    return 0;
}

int outbox_delete(outbox *ob, int kind, const char *local_id, const char *clerk)
{
    outbox_row old;
    int rc = outbox_find(ob, kind, local_id, &old);
    if (rc < 0)
        return rc;
    if (rc == 0 || !old.live)
        return REINT_ENOTFOUND;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    Reint__V1__Tombstone t = REINT__V1__TOMBSTONE__INIT;
    t.kind = (Reint__V1__RecordKind)kind;
    r.id.data = old.id;
    r.id.len = 16;
    r.body_case = REINT__V1__RECORD__BODY_TOMBSTONE;
    r.tombstone = &t;
    /* The local fields go with the record: a deleted person's data is not kept. */
    rc = outbox__write(ob, ST_UPSERT, clock_now_ms(), kind, local_id, &r, 0, 0, clerk, NULL, 0,
                       NULL);
    if (rc == 0) {
        ob->n_live--;
        ob->n_dead++;
    }
    return rc;
}
int outbox_read(outbox *ob, uint64_t after_seq, size_t max, outbox_entry_cb cb, void *ud)
{
    sqlite3_stmt *st = ob->st[ST_READ];
    int n = 0, rc;
    sqlite3_bind_int64(st, 1, (int64_t)after_seq);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *rec = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (cb(ud, (uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
               rec, len) != 0)
            break;
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error("outbox read: %s", sqlite3_errmsg(ob->db));
        return REINT_EDB;
    }
    return n;
}

int outbox_resume_point(outbox *ob, uint64_t hub_seq, uint64_t hub_version, uint64_t *after)
{
    int64_t mine = 0, next = 1;
    /* Never again issue a sequence number the hub has already counted: a store restored from
     * an older copy would otherwise number new entries below the hub's position, where a
     * session in progress would skip them. */
    if (store_meta_get_int_or(ob->db, "acked_seq", 0, &mine) != 0 ||
        store_meta_get_int_or(ob->db, "next_seq", 1, &next) != 0)
        return REINT_EDB;
    if (hub_seq >= (uint64_t)next && hub_seq >= ob->next_seq) {
        ob->next_seq = hub_seq + 1;
        if (store_meta_set_int(ob->db, "next_seq", (int64_t)ob->next_seq) != 0)
            return REINT_EDB;
    }
    /* The hub lost its store or sees a new incarnation: start from where it stands. */
    if (hub_seq <= (uint64_t)mine) {
        *after = hub_seq;
        return 0;
    }
    /* The hub acknowledged more than this store remembers: a lost ack, or this store was
     * restored from an older copy and has since made entries with sequence numbers the hub
     * already counted. Entries of that range that the hub cannot hold carry versions above
     * the newest it holds (versions rise with sequence numbers within a lineage). */
    sqlite3_stmt *st = store_prepare(
        ob->db, "SELECT min(seq) FROM records WHERE seq>?1 AND seq<=?2 AND version>?3");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, mine);
    sqlite3_bind_int64(st, 2, (int64_t)hub_seq);
    sqlite3_bind_int64(st, 3, (int64_t)hub_version);
    *after = hub_seq;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *after = (uint64_t)sqlite3_column_int64(st, 0) - 1;
    sqlite3_finalize(st);
    if (step != SQLITE_ROW) {
        log_error("outbox resume point: %s", sqlite3_errmsg(ob->db));
        return REINT_EDB;
    }
    return 0;
}

int outbox_acked(outbox *ob, uint64_t acked_seq, const Reint__V1__Refusal *const *refusals,
                 size_t n_refusals)
{
    int64_t now = (int64_t)clock_now_ms();
    if (outbox_begin(ob) != 0)
        return REINT_EDB;
    if (store_meta_set_int(ob->db, "acked_seq", (int64_t)acked_seq) != 0 ||
        store_meta_set_int(ob->db, "last_sync_ms", now) != 0)
        goto fail;
    if (n_refusals > 0) {
        sqlite3_stmt *st = store_prepare(ob->db, "INSERT OR REPLACE INTO dead_letters"
                                                 "(seq, id, field, reason, at_ms)"
                                                 " VALUES(?1,?2,?3,?4,?5)");
        if (st == NULL)
            goto fail;
        for (size_t i = 0; i < n_refusals; i++) {
            const Reint__V1__Refusal *f = refusals[i];
            sqlite3_bind_int64(st, 1, (int64_t)f->seq);
            sqlite3_bind_blob(st, 2, f->id.data, (int)f->id.len, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, f->field ? f->field : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, f->reason ? f->reason : "", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, now);
            if (store_step_done(ob->db, st) != 0) {
                sqlite3_finalize(st);
                goto fail;
            }
        }
        sqlite3_finalize(st);
    }
    return outbox_commit(ob);
fail:
    outbox_rollback(ob);
    return REINT_EDB;
}

int outbox_drop(outbox *ob, uint64_t seq, const char *reason, uint8_t id[16], int *kind)
{
    sqlite3_stmt *st = store_prepare(ob->db, "SELECT kind, id FROM records WHERE seq=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)seq);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 16) {
        *kind = sqlite3_column_int(st, 0);
        memcpy(id, sqlite3_column_blob(st, 1), 16);
    } else {
        rc = step == SQLITE_DONE || step == SQLITE_ROW ? REINT_ENOTFOUND : REINT_EDB;
    }
    sqlite3_finalize(st);
    if (rc != 0)
        return rc;
    st = store_prepare(ob->db, "INSERT OR REPLACE INTO dead_letters(seq, id, field, reason, at_ms)"
                               " VALUES(?1,?2,'record',?3,?4)");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)seq);
    sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)clock_now_ms());
    rc = store_step_done(ob->db, st);
    sqlite3_finalize(st);
    return rc;
}

int outbox_note_sync(outbox *ob, int64_t last_sync_ms, int64_t last_hello_ms, int64_t skew_ms,
                     const char *last_error)
{
    int rc = 0;
    if (store_exec(ob->db, "BEGIN") != 0)
        return REINT_EDB;
    if (last_sync_ms)
        rc |= store_meta_set_int(ob->db, "last_sync_ms", last_sync_ms);
    if (last_hello_ms)
        rc |= store_meta_set_int(ob->db, "last_hello_ms", last_hello_ms);
    /* A session gives the skew; so does a refusal at Hello (skew_ms then non-zero). */
    if (last_hello_ms || skew_ms)
        rc |= store_meta_set_int(ob->db, "skew_ms", skew_ms);
    if (last_error) {
        sqlite3_stmt *st = store_prepare(ob->db, "INSERT OR REPLACE INTO meta(key,value)"
                                                 " VALUES('last_error', ?1)");
        if (st) {
            sqlite3_bind_text(st, 1, last_error, -1, SQLITE_STATIC);
            rc |= store_step_done(ob->db, st);
            sqlite3_finalize(st);
        }
    }
    if (rc != 0) {
        store_exec(ob->db, "ROLLBACK");
        return REINT_EDB;
    }
    return store_exec(ob->db, "COMMIT");
}

/* The first column of the first row of sql (arg bound to ?1 when it has one), 0 when there
 * is no row. Returns 0 or REINT_EDB. */
static int outbox__scalar(outbox *ob, const char *sql, int64_t arg, int64_t *v)
{
    *v = 0;
    sqlite3_stmt *st = store_prepare(ob->db, sql);
    if (st == NULL)
        return REINT_EDB;
    if (strchr(sql, '?'))
        sqlite3_bind_int64(st, 1, arg);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_error("outbox stats: %s", sqlite3_errmsg(ob->db));
        return REINT_EDB;
    }
    return 0;
}

int outbox_stats_get(outbox *ob, outbox_stats *s)
{
    int64_t acked = 0;
    memset(s, 0, sizeof(*s));
    int rc = store_meta_get_int_or(ob->db, "acked_seq", 0, &acked) ||
             store_meta_get_int_or(ob->db, "last_sync_ms", 0, &s->last_sync_ms) ||
             store_meta_get_int_or(ob->db, "last_hello_ms", 0, &s->last_hello_ms) ||
             store_meta_get_int_or(ob->db, "skew_ms", 0, &s->skew_ms);
    s->acked_seq = (uint64_t)acked;
    s->last_seq = outbox_last_seq(ob);
    rc = rc || outbox__scalar(ob, "SELECT count(*) FROM records WHERE seq>?1", acked, &s->backlog);
    rc = rc || outbox__scalar(ob,
                              "SELECT version>>16 FROM records WHERE seq>?1 ORDER BY seq"
                              " LIMIT 1",
                              acked, &s->oldest_unsynced_ms);
    /* Counted at each commit: a count(*) here would read every row of the store. */
    rc = rc || store_meta_get_int_or(ob->db, "records_live", 0, &s->records) ||
         store_meta_get_int_or(ob->db, "records_dead", 0, &s->tombstones);
    rc = rc || outbox__scalar(ob, "SELECT count(*) FROM dead_letters", 0, &s->dead_letters);
    if (rc)
        return REINT_EDB;
    sqlite3_stmt *st = store_prepare(ob->db, "SELECT value FROM meta WHERE key='last_error'");
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (step == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(s->last_error, sizeof(s->last_error), "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    walckpt_get_stats(ob->ckpt, &s->ckpt);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : REINT_EDB;
}
