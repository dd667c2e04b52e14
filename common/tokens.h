/* Bearer tokens kept in a file of "name sha256hex [role]" lines: only hashes are stored, the
 * token itself is shown once when issued. Used by the node (clerks) and the hub (provincial
 * officers); checks compare every entry in constant time.
 *
 * Roles are the hub's: officer (reads), reviewer (reads, and decides on months) and admin
 * (tokens, the audit, sweeps). A line without a role is an officer's, so the files written
 * before roles existed, and the node's (whose clerks have no roles), stay valid; an
 * officer's token is written without one, so that an older binary still reads the file. */
#ifndef COMMON_TOKENS_H
#define COMMON_TOKENS_H

#include "error.h"

#include <stddef.h>

#define TOKENS_NAME_MAX 64
#define TOKENS_MAX      4096

typedef struct tokens_table tokens_table;

enum tokens_role { TOKENS_OFFICER, TOKENS_REVIEWER, TOKENS_ADMIN };

/* Reads path. Returns 0, REINT_EIO or REINT_EINVAL with "FILE line N: ..." in err. */
int tokens_load(tokens_table **out, const char *path, char *err, size_t errlen);
void tokens_free(tokens_table *t);
/* The tokens t holds (0 for NULL). */
size_t tokens_count(const tokens_table *t);
/* 1 when every token of old (its name, hash and role) is in new too: a change that only
 * added tokens, after which sessions begun with old's tokens may go on (old NULL: none were
 * loaded). 0 otherwise (a token withdrawn or changed), and when new is NULL. */
int tokens_only_added(const tokens_table *old, const tokens_table *new);

/* The name whose token an Authorization header value ("Bearer <token>") carries, or NULL.
 * The returned name is owned by the table. */
const char *tokens_check(const tokens_table *t, const char *authorization);
/* The same, and the token's role into *role (when the name is not NULL). */
const char *tokens_check_role(const tokens_table *t, const char *authorization,
                              enum tokens_role *role);

/* "officer", "reviewer" or "admin". */
const char *tokens_role_name(enum tokens_role role);
/* Parses one of those names. Returns 0 or REINT_EINVAL. */
int tokens_role_parse(const char *s, enum tokens_role *role);

/* Lowercase hex SHA-256 of token into hex (65 bytes with the NUL). Returns 0 or -1. */
int tokens_hash_hex(const char *token, char hex[65]);

/* Makes a random token for name (letters, digits, - _ .), appends "name hash" to path
 * (created 0600; fsync'd; a file that does not parse is refused, REINT_EINVAL, and left as
 * it is), and writes the token into out. Returns 0 or a negative code with
 * err. */
int tokens_issue(const char *path, const char *name, char *out, size_t outlen, char *err,
                 size_t errlen);
/* The same with a role ("name hash role"; an officer's line has no role). */
int tokens_issue_role(const char *path, const char *name, enum tokens_role role, char *out,
                      size_t outlen, char *err, size_t errlen);
/* Withdraws every token of name from path (count into *removed) and, when issue is set, gives
 * name a new one (written into out; its role *role, or with role NULL that of name's tokens,
 * REINT_EINVAL when they have several; the role given into *used when not NULL): a rotation. The
 * file is rewritten whole, atomically, keeping its other lines, its mode and its owner. Returns 0;
 * REINT_ENOTFOUND when path holds no token of name (nothing is written); or a negative code with
 * err (a line that does not parse: nothing written). */
int tokens_replace(const char *path, const char *name, int issue, const enum tokens_role *role,
                   enum tokens_role *used, char *out, size_t outlen, size_t *removed, char *err,
                   size_t errlen);
/* The `token` command of the hub and the node: gives name a token (role: *role, officer when
 * NULL), or with replace withdraws its tokens and gives a new one, or with revoke withdraws
 * them; prints the token on stdout and what was done on stderr (prog names the program;
 * roles: the program has roles to name). Returns the exit code: 0, 2 for a usage error (a
 * bad name, no token to withdraw, several roles and none given), 1 otherwise. */
int tokens_command(const char *prog, const char *path, const char *name, int revoke, int replace,
                   const enum tokens_role *role, int roles);
/* How many of t's tokens name holds, their roles into *roles (a bit each: 1u << role). */
size_t tokens_named(const tokens_table *t, const char *name, unsigned *roles);
/* Whether path is still the file t was read from as it was then: 0 when it is (or is gone);
 * 2 when another file took its place (renamed over it, as `token --replace` and `--revoke`
 * do: an emptied file is then meant); 1 when it was written in place, or t is NULL and the
 * file exists (either may be half-written). */
int tokens_changed(const tokens_table *t, const char *path);

#endif
