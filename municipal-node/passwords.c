#include "passwords.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "hex.h"
#include "log.h"
#include "store.h"
#include "tokens.h"

#define PASSWORDS_LOG_N 15
#define PASSWORDS_R     8
#define PASSWORDS_P     1
#define PASSWORDS_SALT  16
#define PASSWORDS_OUT   32
/* scrypt needs 128 * r * N bytes; twice that leaves OpenSSL its own room. */
#define PASSWORDS_MAXMEM ((uint64_t)256 * PASSWORDS_R << PASSWORDS_LOG_N)

static const char *passwords__schema =
    "CREATE TABLE IF NOT EXISTS clerk_passwords(clerk TEXT PRIMARY KEY, hash TEXT NOT NULL,"
    " set_ms INTEGER NOT NULL) WITHOUT ROWID;";

int passwords_open(sqlite3 *db)
{
    return store_exec(db, passwords__schema);
}

static int passwords__scrypt(const char *password, const uint8_t *salt, int log_n, int r, int p,
                             uint8_t out[PASSWORDS_OUT])
{
    uint64_t n = (uint64_t)1 << log_n;
    if (EVP_PBE_scrypt(password, strlen(password), salt, PASSWORDS_SALT, n, (uint64_t)r,
                       (uint64_t)p, PASSWORDS_MAXMEM, out, PASSWORDS_OUT) != 1)
        return REINT_ENOMEM;
    return 0;
}

int passwords_hash(const char *password, char out[PASSWORDS_HASH_MAX])
{
    uint8_t salt[PASSWORDS_SALT], h[PASSWORDS_OUT];
    char salt_hex[2 * PASSWORDS_SALT + 1], h_hex[2 * PASSWORDS_OUT + 1];
    size_t len = strlen(password);
    if (len < PASSWORDS_MIN_LEN || len > PASSWORDS_MAX_LEN)
        return REINT_EINVAL;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return REINT_ENOMEM;
    int rc = passwords__scrypt(password, salt, PASSWORDS_LOG_N, PASSWORDS_R, PASSWORDS_P, h);
    if (rc != 0)
        return rc;
    hex_encode(salt, sizeof(salt), salt_hex);
    hex_encode(h, sizeof(h), h_hex);
    snprintf(out, PASSWORDS_HASH_MAX, "scrypt$%d$%d$%d$%s$%s", PASSWORDS_LOG_N, PASSWORDS_R,
             PASSWORDS_P, salt_hex, h_hex);
    OPENSSL_cleanse(h, sizeof(h));
    return 0;
}

int passwords_verify(const char *stored, const char *password)
{
    int log_n = 0, r = 0, p = 0, consumed = 0;
    char salt_hex[2 * PASSWORDS_SALT + 1], h_hex[2 * PASSWORDS_OUT + 1];
    uint8_t salt[PASSWORDS_SALT], want[PASSWORDS_OUT], got[PASSWORDS_OUT];
    if (strlen(password) > PASSWORDS_MAX_LEN)
        return REINT_EINVAL;
    /* Parameters within what this build would choose and a little more: a stored form cannot
     * make a sign-in take minutes or gigabytes. */
    if (sscanf(stored, "scrypt$%2d$%2d$%1d$%32[0-9a-f]$%64[0-9a-f]%n", &log_n, &r, &p, salt_hex,
               h_hex, &consumed) != 5 ||
        stored[consumed] != '\0' || log_n < 10 || log_n > 17 || r < 1 || r > 8 || p != 1 ||
        strlen(salt_hex) != 2 * PASSWORDS_SALT || strlen(h_hex) != 2 * PASSWORDS_OUT ||
        hex_decode(salt_hex, 2 * PASSWORDS_SALT, salt) != 0 ||
        hex_decode(h_hex, 2 * PASSWORDS_OUT, want) != 0)
        return REINT_EINVAL;
    int rc = passwords__scrypt(password, salt, log_n, r, p, got);
    if (rc != 0)
        return rc;
    rc = CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? 0 : REINT_EINVAL;
    OPENSSL_cleanse(got, sizeof(got));
    return rc;
}

const char *passwords_dummy(void)
{
    /* A well-formed form whose hash is no scrypt output of any password anyone knows. */
    return "scrypt$15$8$1$00000000000000000000000000000000$"
           "0000000000000000000000000000000000000000000000000000000000000000";
}

static int passwords__name_ok(const char *clerk)
{
    size_t n = strlen(clerk);
    if (n == 0 || n >= TOKENS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = clerk[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* The stored name clerk means, into name: the one spelt so, else the one name alike but
 * for case (ASCII: names are ASCII), when there is one only. Returns 0, REINT_ENOTFOUND
 * (none), REINT_EEXIST (two alike but for case, stored before names were compared so, and
 * neither spelt so) or REINT_EDB. */
static int passwords__stored_name(sqlite3 *db, const char *clerk, char name[TOKENS_NAME_MAX])
{
    sqlite3_stmt *st = store_prepare(db, "SELECT clerk, clerk = ?1 FROM clerk_passwords"
                                         " WHERE clerk = ?1 COLLATE NOCASE"
                                         " ORDER BY clerk = ?1 DESC LIMIT 2");
    int rc = REINT_EDB, step;
    if (st == NULL || sqlite3_bind_text(st, 1, clerk, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = REINT_ENOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL)
        goto out;
    snprintf(name, TOKENS_NAME_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
    if (sqlite3_column_int(st, 1)) {
        rc = 0;
        goto out;
    }
    step = sqlite3_step(st);
    rc = step == SQLITE_DONE ? 0 : step == SQLITE_ROW ? REINT_EEXIST : REINT_EDB;
out:
    if (rc == REINT_EDB)
        log_error("passwords: the store could not be read: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int passwords_set(sqlite3 *db, const char *clerk, const char *password, char *err, size_t errlen)
{
    char h[PASSWORDS_HASH_MAX], stored[TOKENS_NAME_MAX];
    if (!passwords__name_ok(clerk)) {
        snprintf(err, errlen,
                 "clerk \"%.64s\" is not a name of letters, digits, - _ . (at most %d)", clerk,
                 TOKENS_NAME_MAX - 1);
        return REINT_EINVAL;
    }
    int rc = passwords_hash(password, h);
    if (rc == REINT_EINVAL) {
        snprintf(err, errlen, "a password has %d to %d characters", PASSWORDS_MIN_LEN,
                 PASSWORDS_MAX_LEN);
        return rc;
    }
    if (rc != 0) {
        snprintf(err, errlen, "the password could not be hashed (out of memory)");
        return rc;
    }
    /* A sign-in finds a clerk whatever the case typed: two names alike but for case would
     * be one clerk to her and two to the node. Checked and stored in one write transaction,
     * so that two runs at once ("Asha" and "ASHA") cannot both pass the check. */
    if (store_exec(db, "BEGIN IMMEDIATE") != 0) {
        snprintf(err, errlen, "the store could not be written: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    int found = passwords__stored_name(db, clerk, stored);
    sqlite3_stmt *st = NULL;
    if (found == REINT_EDB) {
        snprintf(err, errlen, "the store could not be read: %s", sqlite3_errmsg(db));
        rc = REINT_EDB;
        goto out;
    }
    if (found == REINT_EEXIST || (found == 0 && strcmp(stored, clerk) != 0)) {
        snprintf(err, errlen,
                 "clerk \"%s\" has a password already, and names are the same whatever their "
                 "case: set \"%s\"'s, or remove it first",
                 stored, stored);
        rc = REINT_EINVAL;
        goto out;
    }
    st = store_prepare(db, "INSERT OR REPLACE INTO clerk_passwords(clerk, hash, set_ms)"
                           " VALUES(?1, ?2, ?3)");
    if (st == NULL || sqlite3_bind_text(st, 1, clerk, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, h, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, (sqlite3_int64)clock_now_ms()) != SQLITE_OK ||
        store_step_done(db, st) != 0 || store_exec(db, "COMMIT") != 0) {
        snprintf(err, errlen, "the password could not be stored: %s", sqlite3_errmsg(db));
        rc = REINT_EDB;
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    if (rc != 0)
        store_exec(db, "ROLLBACK");
    return rc;
}

int passwords_remove(sqlite3 *db, const char *clerk)
{
    char name[TOKENS_NAME_MAX];
    int rc = passwords__stored_name(db, clerk, name);
    if (rc != 0)
        return rc == REINT_EEXIST ? REINT_ENOTFOUND : rc;
    sqlite3_stmt *st = store_prepare(db, "DELETE FROM clerk_passwords WHERE clerk = ?1");
    if (st == NULL || sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
        store_step_done(db, st) != 0) {
        sqlite3_finalize(st);
        return REINT_EDB;
    }
    sqlite3_finalize(st);
    return sqlite3_changes(db) ? 0 : REINT_ENOTFOUND;
}

int passwords_get(sqlite3 *db, const char *clerk, char out[PASSWORDS_HASH_MAX],
                  char name[TOKENS_NAME_MAX])
{
    int rc = passwords__stored_name(db, clerk, name), step;
    if (rc != 0)
        return rc == REINT_EEXIST ? REINT_ENOTFOUND : rc;
    rc = REINT_EDB;
    sqlite3_stmt *st = store_prepare(db, "SELECT hash FROM clerk_passwords WHERE clerk = ?1");
    if (st == NULL || sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 0);
        if (h == NULL)
            goto out;
        snprintf(out, PASSWORDS_HASH_MAX, "%s", (const char *)h);
        rc = 0;
    } else if (step == SQLITE_DONE) {
        rc = REINT_ENOTFOUND;
    }
out:
    if (rc == REINT_EDB)
        log_error("passwords: the store could not be read: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}
