/* Signed-in sessions of the pages for people (the clerks' workspace, municipal-node/web.h, and
 * the provincial officers' dashboard, provincial-hub/hubweb.h): a random cookie that stands for
 * a clerk (or an officer) for SESSION_TTL_MS at most and SESSION_IDLE_MS without use, kept in
 * memory only (a restart of the node signs everyone out, and a copy of the store holds no session).
 *
 * The cookie is HttpOnly and SameSite=Strict, and over HTTPS Secure with the __Host- prefix
 * (no other site, subdomain or plain-HTTP page can set or read it). A request that changes
 * anything must also carry the session's CSRF token in X-CSRF-Token (which a form or a link
 * on another site cannot add), and is refused when its Origin or Sec-Fetch-Site say it comes
 * from another site. Not thread-safe: the loop's thread uses it. */
#ifndef COMMON_SESSION_H
#define COMMON_SESSION_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "tokens.h"

#define SESSION_MAX      256
#define SESSION_TTL_MS   (8 * 3600 * 1000)
#define SESSION_IDLE_MS  (30 * 60 * 1000)
#define SESSION_CSRF_LEN 43 /* base64url of 32 random bytes */

typedef struct session_table session_table;

/* secure non-zero: the node serves HTTPS, so cookies are Secure and __Host- named. NULL when
 * out of memory. */
session_table *session_table_new(int secure);
void session_table_free(session_table *t);
/* Ends every session (the tokens or passwords changed: SIGHUP). */
void session_clear(session_table *t);

/* A session as a request presents it. clerk is the name the session was created for (a
 * clerk's, or the hub's "role:officer"); clerk and csrf are owned by the table and valid until
 * the next call into it. */
typedef struct session_info {
    const char *clerk;
    const char *csrf;
    uint64_t expires_ms; /* absolute end (the idle end may come first) */
} session_info;

enum session_status {
    SESSION_OK,
    SESSION_NONE,    /* no session cookie */
    SESSION_EXPIRED, /* a cookie of an unknown, ended or expired session */
};

/* Starts a session for clerk (at most TOKENS_NAME_MAX - 1 bytes) and adds its Set-Cookie to
 * r's answer; when the table is full the least recently used session ends. Returns 0 with
 * *out set, or REINT_ENOMEM (no random bytes). */
int session_create(session_table *t, http_req *r, const char *clerk, session_info *out);

/* The session r's cookie names, at now (clock_now_ms). A session found is marked used. */
enum session_status session_check(session_table *t, const http_req *r, session_info *out);

/* 1 when r comes from a request to this site itself, and, unless it is a GET or a HEAD,
 * carries the session's CSRF token; 0 otherwise (answer 403). */
int session_csrf_ok(const session_info *s, const http_req *r);

/* Ends r's session (if any) and adds a Set-Cookie that deletes the cookie to r's answer. */
void session_end(session_table *t, http_req *r);

/* Adds a Set-Cookie deleting the session cookie to r's answer (an expired one). */
void session_forget_cookie(session_table *t, http_req *r);

/* Whether r carries a session cookie at all. */
int session_has_cookie(const session_table *t, const http_req *r);

/* The pieces of a cookie session that do not depend on where sessions are kept, shared with
 * the federal API's sessions in PostgreSQL (federal-api/fsession.h). */

/* 32 random bytes as SESSION_CSRF_LEN characters of base64url without padding (a cookie's
 * value or a CSRF token). Returns 0 or REINT_ENOMEM (no random bytes). */
int session_random(char out[SESSION_CSRF_LEN + 1]);

/* The value of the cookie name in r's Cookie header (trailing spaces dropped): 1 with *v and
 * *n set, 0 when absent. */
int session_cookie_value(const http_req *r, const char *name, const char **v, size_t *n);

/* Adds to r's answer the Set-Cookie of name=value for max_age_s seconds (0 deletes it),
 * HttpOnly and SameSite=Strict, and Secure when secure is non-zero. */
void session_set_cookie(http_req *r, const char *name, const char *value,
                        unsigned long long max_age_s, int secure);

/* 1 unless r's Sec-Fetch-Site or Origin says it comes from another site. allow_null_origin
 * non-zero accepts Origin: null (what a browser sends from a page with Referrer-Policy
 * no-referrer; the CSRF token is then what another site cannot supply). */
int session_same_site(const http_req *r, int allow_null_origin);

/* 1 when r is a GET or a HEAD, or carries csrf (SESSION_CSRF_LEN bytes) in X-CSRF-Token;
 * 0 otherwise. */
int session_csrf_token_ok(const http_req *r, const char *csrf);

#endif
