#include "fsession.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "session.h"

static int fsession__sha256_hex(const char *s, size_t n, char out[FSESSION_HASH_HEX + 1])
{
    uint8_t h[32];
    unsigned int len = 0;
    if (EVP_Digest(s, n, h, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return REINT_ENOMEM;
    hex_encode(h, sizeof(h), out);
    return 0;
}

/* Whether v (n bytes) has the shape of our cookie values: 43 of base64url. */
static int fsession__shape_ok(const char *v, size_t n)
{
    if (n != FSESSION_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int fsession_cookie_hash(const http_req *r, char hash[FSESSION_HASH_HEX + 1])
{
    const char *v;
    size_t n;
    if (!session_cookie_value(r, FSESSION_COOKIE, &v, &n))
        return REINT_ENOTFOUND;
    if (!fsession__shape_ok(v, n))
        return REINT_EINVAL;
    return fsession__sha256_hex(v, n, hash);
}

int fsession_check(db_pool *db, const char *hash, uint64_t now_ms, db_cb cb, void *ud)
{
    char now[24], idle[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms);
    snprintf(idle, sizeof(idle), "%llu", (unsigned long long)FSESSION_IDLE_MS);
    const char *v[3] = {hash, now, idle};
    /* The token is joined on every use: revoking it ends its sessions at once. */
    return db_query(db,
                    "UPDATE web_sessions s SET seen_ms = GREATEST(s.seen_ms, $2::bigint)"
                    " FROM tokens t WHERE s.id = decode($1, 'hex') AND t.name = s.token_name"
                    " AND t.revoked_at IS NULL AND s.expires_ms > $2::bigint"
                    " AND s.seen_ms > $2::bigint - $3::bigint AND s.created_ms <= $2::bigint"
                    " RETURNING t.name, t.role, t.province, s.csrf, s.expires_ms",
                    3, v, cb, ud);
}

int fsession_create(db_pool *db, const char *token_name, uint64_t now_ms, fsession_new *out,
                    db_cb cb, void *ud)
{
    char hash[FSESSION_HASH_HEX + 1], now[24], exp[24], idle[24];
    if (session_random(out->id) != 0 || session_random(out->csrf) != 0 ||
        fsession__sha256_hex(out->id, FSESSION_ID_LEN, hash) != 0)
        return REINT_ENOMEM;
    out->expires_ms = now_ms + FSESSION_TTL_MS;
    snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms);
    snprintf(exp, sizeof(exp), "%llu", (unsigned long long)out->expires_ms);
    snprintf(idle, sizeof(idle), "%llu", (unsigned long long)FSESSION_IDLE_MS);
    const char *v[6] = {hash, token_name, out->csrf, now, exp, idle};
    /* Ended sessions go in the same statement, so that the table holds only live ones
     * (plus those that ended since the last sign-in anywhere). */
    return db_query(db,
                    "WITH gone AS (DELETE FROM web_sessions WHERE expires_ms <= $4::bigint"
                    " OR seen_ms <= $4::bigint - $6::bigint)"
                    " INSERT INTO web_sessions(id, token_name, csrf, created_ms, expires_ms,"
                    " seen_ms) VALUES (decode($1, 'hex'), $2, $3, $4::bigint, $5::bigint,"
                    " $4::bigint)",
                    6, v, cb, ud);
}

int fsession_end(db_pool *db, const char *hash, db_cb cb, void *ud)
{
    const char *v[1] = {hash};
    return db_query(db, "DELETE FROM web_sessions WHERE id = decode($1, 'hex')", 1, v, cb, ud);
}

void fsession_set_cookie(http_req *r, const char *id)
{
    session_set_cookie(r, FSESSION_COOKIE, id, id[0] ? FSESSION_TTL_MS / 1000 : 0, 1);
}

int fsession_same_site(const http_req *r)
{
    /* The pages are sent with Referrer-Policy no-referrer, under which a browser's POST says
     * Origin: null; the CSRF token is what another site cannot supply. */
    return session_same_site(r, 1);
}

int fsession_csrf_ok(const http_req *r, const char *csrf)
{
    return fsession_same_site(r) && session_csrf_token_ok(r, csrf);
}
