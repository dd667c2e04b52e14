#include "fcovcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftokcache.h"
#include "review.h"

#define FCOVCACHE_YEAR0 1900
#define FCOVCACHE_YEARS 200

typedef struct fcovcache_entry {
    char key[FCOVCACHE_KEY]; /* "" when empty */
    uint64_t since;
    uint64_t used; /* the cache's use counter when last read or written */
    int64_t values[FCOVCACHE_VALUES];
    uint16_t n;
    uint16_t slots[FCOVCACHE_MONTHS];
} fcovcache_entry;

struct fcovcache {
    uint64_t clock;     /* raised by every stamp */
    uint64_t all_stamp; /* the last "*" */
    uint64_t stamp[FCOVCACHE_SLOTS];
    uint64_t uses;
    fcovcache_entry e[FCOVCACHE_ENTRIES];
    fcovcache_metrics m;
};

fcovcache *fcovcache_new(void)
{
    return calloc(1, sizeof(fcovcache));
}

void fcovcache_free(fcovcache *c)
{
    free(c);
}

int fcovcache_slot(int bs, int ym)
{
    int y = ym / 100, mo = ym % 100;
    if ((bs != 0 && bs != 1) || y < FCOVCACHE_YEAR0 || y >= FCOVCACHE_YEAR0 + FCOVCACHE_YEARS ||
        mo < 1 || mo > 12)
        return -1;
    return bs * FCOVCACHE_YEARS * 12 + (y - FCOVCACHE_YEAR0) * 12 + (mo - 1);
}

int fcovcache_slot_of_period(const char *p)
{
    int bs;
    int32_t ym;
    return review_parse_month(p, &bs, &ym) == 0 ? fcovcache_slot(bs, (int)ym) : -1;
}

void fcovcache_slot_period(int slot, char out[12])
{
    int bs = slot >= FCOVCACHE_YEARS * 12, r = slot % (FCOVCACHE_YEARS * 12);
    if (review_period(bs, (FCOVCACHE_YEAR0 + r / 12) * 100 + r % 12 + 1, out, 12) != 0)
        out[0] = '\0';
}

void fcovcache_mark(uint8_t *bits, int slot)
{
    if (slot >= 0 && slot < FCOVCACHE_SLOTS)
        bits[slot / 8] |= (uint8_t)(1u << (slot % 8));
}

size_t fcovcache_payload(const uint8_t *bits, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 2)
        return 0;
    out[0] = '\0';
    for (int s = 0; s < FCOVCACHE_SLOTS; s++) {
        if (!(bits[s / 8] & (1u << (s % 8))))
            continue;
        char p[12];
        fcovcache_slot_period(s, p);
        size_t l = strlen(p) + (o ? 1 : 0);
        if (p[0] == '\0' || o + l + 1 > outlen) {
            memcpy(out, "*", 2);
            return 1;
        }
        if (o)
            out[o++] = ',';
        memcpy(out + o, p, strlen(p) + 1);
        o += strlen(p);
    }
    return o;
}

static void fcovcache__touch_all(fcovcache *c)
{
    c->all_stamp = ++c->clock;
    c->m.resets++;
}

void fcovcache_notify(void *ud, const char *channel, const char *payload)
{
    fcovcache *c = ud;
    if (channel == NULL) {
        if (payload && strcmp(payload, "-") == 0) {
            if (c->m.listening > 0)
                c->m.listening--;
        } else if (payload && strcmp(payload, "!") == 0) {
            c->m.refused = 1;
        } else { /* "+": a connection began listening */
            c->m.listening++;
            fcovcache__touch_all(c);
        }
        return;
    }
    if (strcmp(channel, FCOVCACHE_CHANNEL) != 0 ||
        (payload && strcmp(payload, FTOKCACHE_PAYLOAD) == 0))
        return; /* the tokens table changed (ftokcache.h): no month's coverage */
    c->m.notifications++;
    /* Each month named is stamped; anything not understood stamps everything. */
    const char *s = payload ? payload : "*";
    for (;;) {
        const char *end = strchr(s, ',');
        size_t l = end ? (size_t)(end - s) : strlen(s);
        char p[16];
        int slot = -1;
        if (l > 0 && l < sizeof(p)) {
            memcpy(p, s, l);
            p[l] = '\0';
            slot = fcovcache_slot_of_period(p);
        }
        if (slot < 0) {
            fcovcache__touch_all(c);
            return;
        }
        c->stamp[slot] = ++c->clock;
        if (end == NULL)
            return;
        s = end + 1;
    }
}

uint64_t fcovcache_clock(const fcovcache *c)
{
    return c->clock;
}

/* FNV-1a of the key: the first entry of its set. */
static fcovcache_entry *fcovcache__set(fcovcache *c, const char *key)
{
    uint32_t h = 2166136261u;
    for (; *key; key++)
        h = (h ^ (uint8_t)*key) * 16777619u;
    return &c->e[(h % (FCOVCACHE_ENTRIES / FCOVCACHE_WAYS)) * FCOVCACHE_WAYS];
}

/* The entry of key in its set, or NULL. */
static fcovcache_entry *fcovcache__find(fcovcache *c, const char *key)
{
    fcovcache_entry *set = fcovcache__set(c, key);
    for (int i = 0; i < FCOVCACHE_WAYS; i++)
        if (set[i].key[0] != '\0' && strcmp(set[i].key, key) == 0)
            return &set[i];
    return NULL;
}

static int fcovcache__fresh(const fcovcache *c, uint64_t since, const uint16_t *slots, size_t n)
{
    if (c->all_stamp > since)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (c->stamp[slots[i]] > since)
            return 0;
    return 1;
}

int fcovcache_get(fcovcache *c, const char *key, int64_t out[FCOVCACHE_VALUES])
{
    fcovcache_entry *e = fcovcache__find(c, key);
    if (c->m.listening > 0 && !c->m.refused && e && fcovcache__fresh(c, e->since, e->slots, e->n)) {
        memcpy(out, e->values, sizeof(e->values));
        e->used = ++c->uses;
        c->m.hits++;
        return 1;
    }
    c->m.misses++;
    return 0;
}

void fcovcache_put(fcovcache *c, const char *key, uint64_t since, const int *slots, size_t n,
                   const int64_t values[FCOVCACHE_VALUES])
{
    if (c->m.listening <= 0 || c->m.refused || n > FCOVCACHE_MONTHS || strlen(key) >= FCOVCACHE_KEY)
        return;
    uint16_t s[FCOVCACHE_MONTHS];
    for (size_t i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= FCOVCACHE_SLOTS)
            return;
        s[i] = (uint16_t)slots[i];
    }
    if (!fcovcache__fresh(c, since, s, n))
        return;
    /* Its own entry, else an empty one, else the least recently used of the set. */
    fcovcache_entry *e = fcovcache__find(c, key);
    if (e == NULL) {
        fcovcache_entry *set = fcovcache__set(c, key);
        e = &set[0];
        for (int i = 0; i < FCOVCACHE_WAYS && e->key[0] != '\0'; i++)
            if (set[i].key[0] == '\0' || set[i].used < e->used)
                e = &set[i];
    }
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->since = since;
    e->used = ++c->uses;
    memcpy(e->values, values, sizeof(e->values));
    e->n = (uint16_t)n;
    memcpy(e->slots, s, n * sizeof(s[0]));
}

void fcovcache_get_metrics(const fcovcache *c, fcovcache_metrics *m)
{
    *m = c->m;
}
