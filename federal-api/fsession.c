#include "fsession.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hex.h"

/* 32 random bytes as 43 characters of base64url without padding, into out (44 bytes). */
static int fsession__random(char out[44])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t b[33] = {0};
    if (RAND_bytes(b, 32) != 1)
        return REINT_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        if (o < 43)
            out[o++] = b64[v >> 6 & 63];
        if (o < 43)
            out[o++] = b64[v & 63];
    }
    out[43] = '\0';
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

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
    static const char name[] = FSESSION_COOKIE;
    const size_t nl = sizeof(name) - 1;
    const char *h = http_req_header(r, "Cookie");
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nl && strncmp(h, name, nl) == 0 && h[nl] == '=') {
            const char *v = h + nl + 1;
            size_t n = len - nl - 1;
            while (n > 0 && v[n - 1] == ' ')
                n--;
            if (!fsession__shape_ok(v, n))
                return REINT_EINVAL;
            return fsession__sha256_hex(v, n, hash);
        }
        h = end;
    }
    return REINT_ENOTFOUND;
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
    if (fsession__random(out->id) != 0 || fsession__random(out->csrf) != 0 ||
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
    char c[256];
    snprintf(c, sizeof(c), "%s=%s; Path=/; Max-Age=%llu; HttpOnly; Secure; SameSite=Strict",
             FSESSION_COOKIE, id, id[0] ? (unsigned long long)(FSESSION_TTL_MS / 1000) : 0ull);
    http_add_header(r, "Set-Cookie", c);
}

/* 1 when origin ("scheme://host[:port]") names the host of the request's Host header. */
static int fsession__same_origin(const char *origin, const char *host)
{
    const char *p = strstr(origin, "://");
    if (p == NULL || host == NULL)
        return 0;
    return strcasecmp(p + 3, host) == 0;
}

int fsession_same_site(const http_req *r)
{
    const char *site = http_req_header(r, "Sec-Fetch-Site");
    const char *origin = http_req_header(r, "Origin");
    /* Browsers say where a request comes from: anything but this site itself (or a person
     * typing the address: none) is refused, reads included. The pages are sent with
     * Referrer-Policy no-referrer, under which a browser's POST says Origin: null; the CSRF
     * token below is what another site cannot supply. */
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return 0;
    if (origin && strcmp(origin, "null") != 0 &&
        !fsession__same_origin(origin, http_req_header(r, "Host")))
        return 0;
    return 1;
}

int fsession_csrf_ok(const http_req *r, const char *csrf)
{
    const char *m = http_req_method(r);
    if (!fsession_same_site(r))
        return 0;
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
        return 1;
    const char *tok = http_req_header(r, "X-CSRF-Token");
    return tok && csrf && strlen(tok) == FSESSION_CSRF_LEN && strlen(csrf) == FSESSION_CSRF_LEN &&
           CRYPTO_memcmp(tok, csrf, FSESSION_CSRF_LEN) == 0;
}
