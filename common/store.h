/* SQLite helpers shared by the node and the hub: every store opens in WAL mode with
 * synchronous=FULL, because its commits precede acknowledgements (with WAL and NORMAL a
 * power loss can undo an acknowledged commit). */
#ifndef COMMON_STORE_H
#define COMMON_STORE_H

#include "error.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Opens (creating when create is non-zero) the database at path, sets WAL, synchronous=FULL,
 * foreign keys and a busy timeout, and runs schema (several statements) when non-NULL.
 * Returns 0 or REINT_EDB with a message in err. */
int store_open(const char *path, int create, const char *schema, sqlite3 **out, char *err,
               size_t errlen);
/* The same, with the page size of a database created here (0: SQLite's default). */
int store_open_paged(const char *path, int create, int page_size, const char *schema, sqlite3 **out,
                     char *err, size_t errlen);
void store_close(sqlite3 *db);

/* Runs SQL without results. Returns 0 or REINT_EDB (message logged). */
int store_exec(sqlite3 *db, const char *sql);
/* Steps st to its end and resets it: 0 when it finished (SQLITE_DONE), or REINT_EDB with
 * SQLite's message logged (a statement that returns rows is not meant for this). */
int store_step_done(sqlite3 *db, sqlite3_stmt *st);
/* Prepares a statement or logs and returns NULL. */
sqlite3_stmt *store_prepare(sqlite3 *db, const char *sql);

/* Key/value metadata in table meta(key TEXT PRIMARY KEY, value). The getters return 0,
 * REINT_ENOTFOUND when the key has no row (the blob getter: or REINT_EMALFORMED when its
 * value is not len bytes), or REINT_EDB when SQLite failed (logged): a caller never takes a
 * read error for an absent key. */
int store_meta_get_int(sqlite3 *db, const char *key, int64_t *out);
/* The same with dflt for an absent key: 0 or REINT_EDB. */
int store_meta_get_int_or(sqlite3 *db, const char *key, int64_t dflt, int64_t *out);
int store_meta_set_int(sqlite3 *db, const char *key, int64_t v);
int store_meta_get_blob(sqlite3 *db, const char *key, uint8_t *buf, size_t len);
int store_meta_set_blob(sqlite3 *db, const char *key, const uint8_t *buf, size_t len);

/* The connection's durability settings as SQLite reports them: *synchronous (2 = FULL) and
 * *wal (1 when journal_mode is WAL). /metrics shows them so that a test can assert them:
 * a kill -9 cannot reveal a missing fsync. */
int store_durability(sqlite3 *db, int *synchronous, int *wal);

#endif
