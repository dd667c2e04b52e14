#include "session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "log.h"

#define SESSION_ID_LEN 43 /* base64url of 32 random bytes */

typedef struct session_slot {
    int used;
    uint8_t id_hash[32]; /* SHA-256 of the cookie's value: the value itself is not kept */
    char clerk[TOKENS_NAME_MAX];
    char csrf[SESSION_CSRF_LEN + 1];
    uint64_t created_ms, seen_ms;
} session_slot;

struct session_table {
    int secure;
    session_slot s[SESSION_MAX];
};

session_table *session_table_new(int secure)
{
    session_table *t = calloc(1, sizeof(*t));
    if (t)
        t->secure = secure != 0;
    return t;
}

void session_table_free(session_table *t)
{
    if (t)
        OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

void session_clear(session_table *t)
{
    OPENSSL_cleanse(t->s, sizeof(t->s));
}

static const char *session__cookie_name(const session_table *t)
{
    /* __Host- makes a browser refuse the cookie unless it is Secure, set by this host itself
     * and for the whole site: a sibling name under the office's domain cannot plant one. */
    return t->secure ? "__Host-reint_session" : "reint_session";
}

int session_random(char out[SESSION_CSRF_LEN + 1])
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
        if (o < SESSION_CSRF_LEN)
            out[o++] = b64[v >> 6 & 63];
        if (o < SESSION_CSRF_LEN)
            out[o++] = b64[v & 63];
    }
    out[SESSION_CSRF_LEN] = '\0';
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

static int session__sha256(const char *s, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    return EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : REINT_ENOMEM;
}

int session_cookie_value(const http_req *r, const char *name, const char **v, size_t *n)
{
    const char *h = http_req_header(r, "Cookie");
    size_t nl = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nl && strncmp(h, name, nl) == 0 && h[nl] == '=') {
            *v = h + nl + 1;
            *n = len - nl - 1;
            while (*n > 0 && ((*v)[*n - 1] == ' '))
                (*n)--;
            return 1;
        }
        h = end;
    }
    return 0;
}

/* The value of our cookie in r's Cookie header: 1 with *v and *n set, 0 when absent. */
static int session__cookie(const session_table *t, const http_req *r, const char **v, size_t *n)
{
    return session_cookie_value(r, session__cookie_name(t), v, n);
}

int session_has_cookie(const session_table *t, const http_req *r)
{
    const char *v;
    size_t n;
    return t && session__cookie(t, r, &v, &n);
}

void session_set_cookie(http_req *r, const char *name, const char *value,
                        unsigned long long max_age_s, int secure)
{
    char c[256];
    snprintf(c, sizeof(c), "%s=%s; Path=/; Max-Age=%llu; HttpOnly; SameSite=Strict%s", name, value,
             max_age_s, secure ? "; Secure" : "");
    http_add_header(r, "Set-Cookie", c);
}

static void session__set_cookie(const session_table *t, http_req *r, const char *value,
                                unsigned long long max_age_s)
{
    session_set_cookie(r, session__cookie_name(t), value, max_age_s, t->secure);
}

static int session__live(const session_slot *s, uint64_t now)
{
    return s->used && now < s->created_ms + SESSION_TTL_MS && now < s->seen_ms + SESSION_IDLE_MS &&
           now >= s->created_ms;
}

int session_create(session_table *t, http_req *r, const char *clerk, session_info *out)
{
    char id[44];
    uint64_t now = clock_now_ms();
    session_slot *slot = NULL;
    for (size_t i = 0; i < SESSION_MAX; i++) {
        session_slot *s = &t->s[i];
        if (!session__live(s, now)) {
            slot = s;
            break;
        }
        if (slot == NULL || s->seen_ms < slot->seen_ms)
            slot = s;
    }
    if (slot->used && session__live(slot, now))
        log_info("session: %d sessions open; the least recently used (%s) ends", SESSION_MAX,
                 slot->clerk);
    memset(slot, 0, sizeof(*slot));
    if (session_random(id) != 0 || session_random(slot->csrf) != 0 ||
        session__sha256(id, SESSION_ID_LEN, slot->id_hash) != 0) {
        memset(slot, 0, sizeof(*slot));
        return REINT_ENOMEM;
    }
    snprintf(slot->clerk, sizeof(slot->clerk), "%s", clerk);
    slot->created_ms = slot->seen_ms = now;
    slot->used = 1;
    session__set_cookie(t, r, id, SESSION_TTL_MS / 1000);
    OPENSSL_cleanse(id, sizeof(id));
    out->clerk = slot->clerk;
    out->csrf = slot->csrf;
    out->expires_ms = slot->created_ms + SESSION_TTL_MS;
    return 0;
}

/* The live slot of r's cookie, or NULL (*had_cookie says whether there was one). */
static session_slot *session__find(session_table *t, const http_req *r, uint64_t now,
                                   int *had_cookie)
{
    const char *v;
    size_t n;
    uint8_t h[32];
    *had_cookie = session__cookie(t, r, &v, &n);
    if (!*had_cookie || n != SESSION_ID_LEN || session__sha256(v, n, h) != 0)
        return NULL;
    for (size_t i = 0; i < SESSION_MAX; i++) {
        session_slot *s = &t->s[i];
        if (s->used && CRYPTO_memcmp(s->id_hash, h, sizeof(h)) == 0) {
            if (session__live(s, now))
                return s;
            memset(s, 0, sizeof(*s));
            return NULL;
        }
    }
    return NULL;
}

enum session_status session_check(session_table *t, const http_req *r, session_info *out)
{
    int had = 0;
    uint64_t now = clock_now_ms();
    session_slot *s = session__find(t, r, now, &had);
    if (s == NULL)
        return had ? SESSION_EXPIRED : SESSION_NONE;
    s->seen_ms = now;
    out->clerk = s->clerk;
    out->csrf = s->csrf;
    out->expires_ms = s->created_ms + SESSION_TTL_MS;
    return SESSION_OK;
}

/* 1 when origin ("scheme://host[:port]") names the host of the request's Host header. */
static int session__same_origin(const char *origin, const char *host)
{
    const char *p = strstr(origin, "://");
    if (p == NULL || host == NULL)
        return 0;
    return strcasecmp(p + 3, host) == 0;
}

int session_same_site(const http_req *r, int allow_null_origin)
{
    const char *site = http_req_header(r, "Sec-Fetch-Site");
    const char *origin = http_req_header(r, "Origin");
    /* Browsers say where a request comes from; anything but this site itself (or a person
     * typing the address: none) is refused, reads included, so that another site cannot
     * even make the person's browser ask. */
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return 0;
    if (origin && !(allow_null_origin && strcmp(origin, "null") == 0) &&
        !session__same_origin(origin, http_req_header(r, "Host")))
        return 0;
    return 1;
}

int session_csrf_token_ok(const http_req *r, const char *csrf)
{
    const char *m = http_req_method(r);
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
        return 1;
    const char *tok = http_req_header(r, "X-CSRF-Token");
    return tok && csrf && strlen(tok) == SESSION_CSRF_LEN && strlen(csrf) == SESSION_CSRF_LEN &&
           CRYPTO_memcmp(tok, csrf, SESSION_CSRF_LEN) == 0;
}

int session_csrf_ok(const session_info *s, const http_req *r)
{
    return session_same_site(r, 0) && session_csrf_token_ok(r, s->csrf);
}

void session_end(session_table *t, http_req *r)
{
    int had = 0;
    session_slot *s = session__find(t, r, clock_now_ms(), &had);
    if (s)
        memset(s, 0, sizeof(*s));
    session_forget_cookie(t, r);
}

void session_forget_cookie(session_table *t, http_req *r)
{
    session__set_cookie(t, r, "", 0);
}
