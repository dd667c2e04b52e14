#include "ftokcache.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

typedef struct ftokcache_entry {
    uint8_t hash[32];
    int used;       /* 0: empty */
    uint64_t since; /* the clock when its lookup was sent */
    uint64_t at_ms; /* when it was kept */
    ftokcache_who who;
} ftokcache_entry;

struct ftokcache {
    uint64_t clock;   /* raised by every event that drops the cache */
    uint64_t dropped; /* the clock of the last drop */
    int listening;    /* connections of the pool listening now */
    int refused;      /* a LISTEN was refused: nothing is kept */
    ftokcache_entry e[FTOKCACHE_ENTRIES];
    ftokcache_metrics m;
};

ftokcache *ftokcache_new(void)
{
    return calloc(1, sizeof(ftokcache));
}

void ftokcache_free(ftokcache *c)
{
    if (c == NULL)
        return;
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static void ftokcache__drop(ftokcache *c)
{
    c->dropped = ++c->clock;
    c->m.drops++;
    OPENSSL_cleanse(c->e, sizeof(c->e));
}

void ftokcache_notify(ftokcache *c, const char *channel, const char *payload)
{
    if (channel == NULL) {
        if (payload && strcmp(payload, "-") == 0) {
            if (c->listening > 0)
                c->listening--;
        } else if (payload && strcmp(payload, "!") == 0) {
            c->refused = 1;
            ftokcache__drop(c);
        } else { /* "+": a connection began listening */
            c->listening++;
            ftokcache__drop(c);
        }
        return;
    }
    if (payload && strcmp(payload, FTOKCACHE_PAYLOAD) == 0)
        ftokcache__drop(c);
}

uint64_t ftokcache_clock(const ftokcache *c)
{
    return c->clock;
}

static ftokcache_entry *ftokcache__slot(ftokcache *c, const uint8_t hash[32])
{
    /* The hash is SHA-256: its first bytes are as good an index as any. */
    uint32_t h = (uint32_t)hash[0] | (uint32_t)hash[1] << 8;
    return &c->e[h % FTOKCACHE_ENTRIES];
}

int ftokcache_get(ftokcache *c, const uint8_t hash[32], uint64_t now_ms, ftokcache_who *out)
{
    ftokcache_entry *e = ftokcache__slot(c, hash);
    if (c->listening > 0 && !c->refused && e->used && e->since >= c->dropped &&
        now_ms >= e->at_ms && now_ms - e->at_ms < FTOKCACHE_TTL_MS &&
        CRYPTO_memcmp(e->hash, hash, 32) == 0) {
        *out = e->who;
        c->m.hits++;
        return 1;
    }
    c->m.misses++;
    return 0;
}

void ftokcache_put(ftokcache *c, const uint8_t hash[32], uint64_t since, uint64_t now_ms,
                   const ftokcache_who *who)
{
    /* Dropped after the lookup was sent: what it read may be older than the change. */
    if (c->listening <= 0 || c->refused || since < c->dropped)
        return;
    ftokcache_entry *e = ftokcache__slot(c, hash);
    memcpy(e->hash, hash, 32);
    e->used = 1;
    e->since = since;
    e->at_ms = now_ms;
    e->who = *who;
}

void ftokcache_get_metrics(const ftokcache *c, ftokcache_metrics *m)
{
    *m = c->m;
}
