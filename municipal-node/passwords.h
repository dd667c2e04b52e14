/* Clerks' passwords for signing in to the workspace (web.h), as an alternative to pasting a
 * clerk token: set with `municipal-node password CLERK`, kept in the node's store as a slow
 * hash only (scrypt, N=2^15, r=8, p=1, a random 16-byte salt: about 0.1 s and 32 MiB per
 * check, so that a copied store does not give the passwords away cheaply).
 *
 * The stored form is "scrypt$15$8$1$<salt hex>$<hash hex>". passwords_hash and
 * passwords_verify touch no store and may run on any thread; the others use the caller's
 * connection. */
#ifndef MUNICIPAL_NODE_PASSWORDS_H
#define MUNICIPAL_NODE_PASSWORDS_H

#include "error.h"
#include "tokens.h"

#include <sqlite3.h>
#include <stddef.h>

/* Bytes of a stored hash, NUL included. */
#define PASSWORDS_HASH_MAX 160
/* A password shorter than this is refused when set. */
#define PASSWORDS_MIN_LEN 10
/* Nor may it be longer (a bound on the work of a check). */
#define PASSWORDS_MAX_LEN 256

/* Creates the table in db when missing. Returns 0 or REINT_EDB. */
int passwords_open(sqlite3 *db);

/* The stored form of password with a fresh salt, into out. Returns 0, REINT_EINVAL (too
 * short or too long) or REINT_ENOMEM (scrypt could not run). */
int passwords_hash(const char *password, char out[PASSWORDS_HASH_MAX]);
/* 0 when password matches the stored form, REINT_EINVAL when it does not (or stored is not a
 * form this build reads), REINT_ENOMEM when scrypt could not run. Constant time in the hash
 * comparison. */
int passwords_verify(const char *stored, const char *password);
/* A stored form that no password matches, to check against when a clerk has none (a sign-in
 * then takes as long as one for a clerk who has one). */
const char *passwords_dummy(void);

/* Sets clerk's password (the name as tokens.h allows: letters, digits, - _ .). Returns 0,
 * REINT_EINVAL with err (a bad name or password) or REINT_EDB. */
int passwords_set(sqlite3 *db, const char *clerk, const char *password, char *err, size_t errlen);
/* Removes clerk's password. Returns 0, REINT_ENOTFOUND or REINT_EDB. */
int passwords_remove(sqlite3 *db, const char *clerk);
/* clerk's stored form into out, and her name as stored into name. A name is found whatever
 * its case ("Asha" signs in as asha: a clerk's capital was refused as a wrong password);
 * passwords_set refuses a second name alike but for case, and passwords_remove finds a name
 * as this does. Returns 0, REINT_ENOTFOUND or REINT_EDB. */
int passwords_get(sqlite3 *db, const char *clerk, char out[PASSWORDS_HASH_MAX],
                  char name[TOKENS_NAME_MAX]);

#endif
