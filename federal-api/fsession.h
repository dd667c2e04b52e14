/* Signed-in sessions of the national dashboard (fweb.h), kept in PostgreSQL (migration 0009)
 * so that any federal-api instance behind a load balancer serves any request of a session.
 *
 * A ministry signs in once with its bearer token (POST /v1/session); the session then stands
 * for that token for FSESSION_TTL_MS at most and FSESSION_IDLE_MS without use, and ends at
 * once when the token is revoked (each check joins the tokens table). The store keeps only
 * the SHA-256 of the cookie's value, so that a copy of the database opens no session. The
 * cookie is __Host- named, HttpOnly, Secure and SameSite=Strict; a request that changes
 * anything must also carry the session's CSRF token in X-CSRF-Token, and any request whose
 * Sec-Fetch-Site or Origin names another site is refused.
 *
 * The statements are queued on the caller's pool (db.h); their callbacks get the rows
 * described at each function. */
#ifndef FEDERAL_API_FSESSION_H
#define FEDERAL_API_FSESSION_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "http.h"
#include "session.h"

#define FSESSION_COOKIE   "__Host-fed_session"
#define FSESSION_TTL_MS   (8ull * 3600 * 1000)
#define FSESSION_IDLE_MS  (30ull * 60 * 1000)
#define FSESSION_ID_LEN   SESSION_CSRF_LEN /* base64url of 32 random bytes (session.h) */
#define FSESSION_CSRF_LEN SESSION_CSRF_LEN
#define FSESSION_HASH_HEX 64

/* The SHA-256 (hex) of the session cookie r carries into hash. Returns 0, REINT_ENOTFOUND
 * when r has no session cookie, or REINT_EINVAL when its value is not of our shape. */
int fsession_cookie_hash(const http_req *r, char hash[FSESSION_HASH_HEX + 1]);

/* Looks up the live session of hash at now_ms and marks it used. The result has no row when
 * the session is unknown, ended, expired, idle too long or its token revoked; else one row:
 * token name, role, province (NULL unless role province), csrf, expires_ms. Returns 0 or
 * db_query's code. */
int fsession_check(db_pool *db, const char *hash, uint64_t now_ms, db_cb cb, void *ud);

/* A new session's secrets: the cookie's value (sent once, never stored) and its CSRF token. */
typedef struct fsession_new {
    char id[FSESSION_ID_LEN + 1];
    char csrf[FSESSION_CSRF_LEN + 1];
    uint64_t expires_ms;
} fsession_new;

/* Stores a session of token_name starting at now_ms, with fresh secrets written into out
 * (the caller adds the cookie with fsession_set_cookie once cb reports success), and deletes
 * the sessions that have ended. Returns 0, REINT_ENOMEM (no random bytes) or db_query's code;
 * cb is then not called. */
int fsession_create(db_pool *db, const char *token_name, uint64_t now_ms, fsession_new *out,
                    db_cb cb, void *ud);

/* Deletes the session of hash. Returns 0 or db_query's code. */
int fsession_end(db_pool *db, const char *hash, db_cb cb, void *ud);

/* Adds the Set-Cookie of id to r's answer (id "" deletes the cookie). */
void fsession_set_cookie(http_req *r, const char *id);

/* 1 unless r's Sec-Fetch-Site or Origin says it comes from another site. */
int fsession_same_site(const http_req *r);

/* 1 when r comes from this site itself and, unless it is a GET or HEAD, carries csrf in
 * X-CSRF-Token; 0 otherwise (answer 403). */
int fsession_csrf_ok(const http_req *r, const char *csrf);

#endif
