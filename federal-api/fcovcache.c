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
    void *obj; /* fcovcache_put_obj's, released by the cache's obj_free */
    uint16_t n;
    uint16_t slots[FCOVCACHE_MONTHS];
} fcovcache_entry;

struct fcovcache {
    char tag[16]; /* "" for the untagged payloads */
    void (*obj_free)(void *);
    uint64_t clock;     /* raised by every stamp */
    uint64_t all_stamp; /* the last "*" */
    uint64_t stamp[FCOVCACHE_SLOTS];
    uint64_t uses;
    fcovcache_entry e[FCOVCACHE_ENTRIES];
    fcovcache_metrics m;
};

fcovcache *fcovcache_new(const char *tag, void (*obj_free)(void *))
{
    fcovcache *c = calloc(1, sizeof(fcovcache));
    if (c == NULL)
        return NULL;
    snprintf(c->tag, sizeof(c->tag), "%s", tag ? tag : "");
    c->obj_free = obj_free;
    return c;
}

static void fcovcache__release(fcovcache *c, fcovcache_entry *e)
{
    if (e->obj && c->obj_free)
        c->obj_free(e->obj);
    e->obj = NULL;
}

void fcovcache_free(fcovcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < FCOVCACHE_ENTRIES; i++)
        fcovcache__release(c, &c->e[i]);
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
    const char *s = payload ? payload : "*";
    const char *colon = strchr(s, ':');
    size_t tl = strlen(c->tag);
    if (strcmp(s, "*") != 0) {
        if (tl == 0 && colon)
            return; /* another cache's */
        if (tl && (colon == NULL || (size_t)(colon - s) != tl || memcmp(s, c->tag, tl) != 0))
            return;
        if (tl)
            s = colon + 1;
    }
    c->m.notifications++;
    /* Each month named is stamped; anything not understood stamps everything. */
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

/* The fresh entry of key (a hit), or NULL (a miss); counted when count is set. */
static fcovcache_entry *fcovcache__get(fcovcache *c, const char *key, int count)
{
    fcovcache_entry *e = fcovcache__find(c, key);
    if (!(c->m.listening > 0 && !c->m.refused && e &&
          fcovcache__fresh(c, e->since, e->slots, e->n)))
        e = NULL;
    if (e)
        e->used = ++c->uses;
    if (count)
        *(e ? &c->m.hits : &c->m.misses) += 1;
    return e;
}

int fcovcache_get(fcovcache *c, const char *key, int64_t out[FCOVCACHE_VALUES])
{
    fcovcache_entry *e = fcovcache__get(c, key, 1);
    if (e)
        memcpy(out, e->values, sizeof(e->values));
    return e != NULL;
}

void *fcovcache_get_obj(fcovcache *c, const char *key, int count)
{
    fcovcache_entry *e = fcovcache__get(c, key, count);
    return e ? e->obj : NULL;
}

/* The entry to fill for key, when it may be kept (see fcovcache_put), else NULL. */
static fcovcache_entry *fcovcache__put(fcovcache *c, const char *key, uint64_t since,
                                       const int *slots, size_t n)
{
    if (c->m.listening <= 0 || c->m.refused || n > FCOVCACHE_MONTHS || strlen(key) >= FCOVCACHE_KEY)
        return NULL;
    uint16_t s[FCOVCACHE_MONTHS];
    for (size_t i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= FCOVCACHE_SLOTS)
            return NULL;
        s[i] = (uint16_t)slots[i];
    }
    if (!fcovcache__fresh(c, since, s, n))
        return NULL;
    /* Its own entry, else an empty one, else the least recently used of the set. */
    fcovcache_entry *e = fcovcache__find(c, key);
    if (e == NULL) {
        fcovcache_entry *set = fcovcache__set(c, key);
        e = &set[0];
        for (int i = 0; i < FCOVCACHE_WAYS && e->key[0] != '\0'; i++)
            if (set[i].key[0] == '\0' || set[i].used < e->used)
                e = &set[i];
    }
    fcovcache__release(c, e);
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->since = since;
    e->used = ++c->uses;
    e->n = (uint16_t)n;
    memcpy(e->slots, s, n * sizeof(s[0]));
    return e;
}

void fcovcache_put(fcovcache *c, const char *key, uint64_t since, const int *slots, size_t n,
                   const int64_t values[FCOVCACHE_VALUES])
{
    fcovcache_entry *e = fcovcache__put(c, key, since, slots, n);
    if (e)
        memcpy(e->values, values, sizeof(e->values));
}

void fcovcache_put_obj(fcovcache *c, const char *key, uint64_t since, const int *slots, size_t n,
                       void *obj)
{
    fcovcache_entry *e = fcovcache__put(c, key, since, slots, n);
    if (e)
        e->obj = obj;
    else if (obj && c->obj_free)
        c->obj_free(obj);
}

void fcovcache_get_metrics(const fcovcache *c, fcovcache_metrics *m)
{
    *m = c->m;
}
