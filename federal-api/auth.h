/* Bearer tokens and their roles. Tokens are random ("fed_" + 64 hex digits) and stored only
 * as SHA-256 hashes; the roles are ministry (exact, whole country), province:<p> (exact, its
 * own province), public (perturbed) and admin (reads the audit log). Failed attempts are
 * limited by common/limiter.h. */
#ifndef FEDERAL_API_AUTH_H
#define FEDERAL_API_AUTH_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

enum auth_role { AUTH_NONE, AUTH_MINISTRY, AUTH_PROVINCE, AUTH_PUBLIC, AUTH_ADMIN };

#define AUTH_TOKEN_PREFIX "fed_"
#define AUTH_TOKEN_LEN    68 /* prefix + 64 hex digits, without the NUL */
#define AUTH_HASH_HEX     64
#define AUTH_NAME_MAX     64

/* Makes a new random token into out (AUTH_TOKEN_LEN + 1 bytes). Returns 0 or REINT_EINVAL
 * when the random generator fails. */
int auth_token_generate(char *out, size_t outlen);

/* Writes the SHA-256 of token as lowercase hex into out (AUTH_HASH_HEX + 1 bytes).
 * Returns 0 or REINT_EINVAL. */
int auth_hash_hex(const char *token, char *out, size_t outlen);

/* Takes the token out of an Authorization header value ("Bearer fed_..."): the scheme is
 * case-insensitive; the token must have the exact shape of ours (anything else is refused
 * before it reaches the database). Returns 0, or REINT_EINVAL when missing or malformed. */
int auth_parse_bearer(const char *header, char *out, size_t outlen);

/* Parses a role as given on the command line: "ministry", "public", "admin", "province"
 * (then province must be 1..7) or "province:P". Returns 0 or REINT_EINVAL. */
int auth_parse_role(const char *s, long province, enum auth_role *role, int *out_province);

/* Parses the role stored in the database ("ministry", "province", "public", "admin"). */
enum auth_role auth_role_from_db(const char *s);
const char *auth_role_name(enum auth_role role);

/* Whether name is an acceptable token name: 1..64 of A-Z a-z 0-9 _ . - */
int auth_name_ok(const char *name);

#endif
