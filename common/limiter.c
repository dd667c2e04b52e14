#include "limiter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct limiter_slot {
    char addr[LIMITER_ADDR_MAX];
    char prefix[LIMITER_PREFIX_MAX];
    uint64_t key;             /* a hash of addr and prefix, compared first */
    uint64_t last_ms;         /* last attempt seen: the least recent slot is reused */
    uint64_t window_start_ms; /* of the failures counted */
    uint64_t last_fail_ms;
    uint64_t blocked_until_ms;
    unsigned failures; /* in the window */
    unsigned strikes;  /* blocks so far: the next lasts window << strikes */
    /* The first 8 bytes of the SHA-256 of the last tokens that failed (a ring; all zero for
     * none): 64 bits tell a known bad token from a valid one beyond doubt. */
    uint64_t failed_hashes[LIMITER_HASHES];
    unsigned next_hash;
    limiter_count pending;
} limiter_slot;

struct limiter {
    unsigned max_failures;
    uint64_t window_ms;
    limiter_slot slots[LIMITER_SLOTS];
    limiter_count overflow;
};

limiter *limiter_new(unsigned max_failures, unsigned window_s)
{
    limiter *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->max_failures = max_failures ? max_failures : 20;
    l->window_ms = (uint64_t)(window_s ? window_s : 60) * 1000;
    snprintf(l->overflow.addr, sizeof(l->overflow.addr), "*");
    snprintf(l->overflow.prefix, sizeof(l->overflow.prefix), "*");
    return l;
}

void limiter_free(limiter *l)
{
    free(l);
}

static int limiter__token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

void limiter_prefix(const char *h, const char *skip, char out[LIMITER_PREFIX_MAX])
{
    snprintf(out, LIMITER_PREFIX_MAX, "none");
    if (h == NULL)
        return;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return;
    h += 7;
    while (*h == ' ')
        h++;
    size_t sl = skip ? strlen(skip) : 0;
    if (sl && strncmp(h, skip, sl) == 0)
        h += sl;
    size_t n = 0;
    for (; n < LIMITER_PREFIX_LEN && h[n] != '\0' && h[n] != ' '; n++)
        out[n] = limiter__token_char(h[n]) ? h[n] : '?';
    /* "Bearer " and nothing else counts as no token at all. */
    if (n == 0)
        return;
    out[n] = '\0';
}

void limiter_addr(const char *peer, char out[LIMITER_ADDR_MAX])
{
    const char *colon = peer ? strrchr(peer, ':') : NULL;
    size_t n = peer == NULL ? 0 : colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= LIMITER_ADDR_MAX)
        n = LIMITER_ADDR_MAX - 1;
    if (n)
        memcpy(out, peer, n);
    out[n] = '\0';
}

/* FNV-1a over the address, a NUL and the prefix. */
static uint64_t limiter__key(const char *addr, const char *prefix)
{
    uint64_t h = 1469598103934665603u;
    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    h *= 1099511628211u;
    for (const char *p = prefix; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return h;
}

static void limiter__add_count(limiter_count *to, const limiter_count *from)
{
    if (from->failed + from->refused == 0)
        return;
    if (to->failed + to->refused == 0 || from->first_ms < to->first_ms)
        to->first_ms = from->first_ms;
    if (from->last_ms > to->last_ms)
        to->last_ms = from->last_ms;
    to->failed += from->failed;
    to->refused += from->refused;
    memcpy(to->what, from->what, sizeof(to->what));
}

/* The slot of (addr, prefix); with create, a new one: an empty slot, else the least
 * recently seen that is not blocked (so that flooding new pairs does not lift a block
 * early), else the least recently seen. A reused slot's unwritten counts go to the
 * overflow entry. NULL when absent and not created. */
static limiter_slot *limiter__find(limiter *l, const char *addr, const char *prefix,
                                   uint64_t now_ms, int create)
{
    uint64_t key = limiter__key(addr, prefix);
    limiter_slot *empty = NULL, *lru_open = NULL, *lru = NULL;
    for (size_t i = 0; i < LIMITER_SLOTS; i++) {
        limiter_slot *s = &l->slots[i];
        if (s->addr[0] == '\0') {
            if (empty == NULL)
                empty = s;
            continue;
        }
        if (s->key == key && strcmp(s->addr, addr) == 0 && strcmp(s->prefix, prefix) == 0)
            return s;
        if (lru == NULL || s->last_ms < lru->last_ms)
            lru = s;
        if (now_ms >= s->blocked_until_ms && (lru_open == NULL || s->last_ms < lru_open->last_ms))
            lru_open = s;
    }
    if (!create)
        return NULL;
    limiter_slot *s = empty ? empty : lru_open ? lru_open : lru;
    limiter__add_count(&l->overflow, &s->pending);
    memset(s, 0, sizeof(*s));
    snprintf(s->addr, sizeof(s->addr), "%s", addr[0] ? addr : "?");
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    s->key = limiter__key(s->addr, s->prefix);
    s->last_ms = now_ms;
    return s;
}

/* The first 8 bytes of a token's hash, never 0 (0 marks an empty entry). */
static uint64_t limiter__hash64(const uint8_t *hash)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | hash[i];
    return v ? v : 1;
}

/* Whether the token is none, or one the slot already failed with. */
static int limiter__known_bad(const limiter_slot *s, const uint8_t *hash)
{
    if (hash == NULL)
        return 1;
    uint64_t v = limiter__hash64(hash);
    for (int i = 0; i < LIMITER_HASHES; i++)
        if (s->failed_hashes[i] == v)
            return 1;
    return 0;
}

static void limiter__remember(limiter_slot *s, const uint8_t *hash)
{
    if (hash == NULL || limiter__known_bad(s, hash))
        return;
    s->failed_hashes[s->next_hash] = limiter__hash64(hash);
    s->next_hash = (s->next_hash + 1) % LIMITER_HASHES;
}

static unsigned limiter__retry(const limiter_slot *s, uint64_t now_ms)
{
    uint64_t left = (s->blocked_until_ms - now_ms + 999) / 1000;
    return left ? (unsigned)left : 1;
}

static void limiter__count(limiter_slot *s, const char *what, uint64_t now_ms, int refused)
{
    limiter_count *c = &s->pending;
    if (c->failed + c->refused == 0)
        c->first_ms = now_ms;
    c->last_ms = now_ms;
    if (refused)
        c->refused++;
    else
        c->failed++;
    snprintf(c->what, sizeof(c->what), "%s", what ? what : "");
}

int limiter_blocked(limiter *l, const char *addr, const char *prefix, const uint8_t *hash,
                    const char *what, uint64_t now_ms, unsigned *retry_after_s)
{
    limiter_slot *s = limiter__find(l, addr, prefix, now_ms, 0);
    if (s == NULL || now_ms >= s->blocked_until_ms || !limiter__known_bad(s, hash))
        return 0;
    s->last_ms = now_ms;
    limiter__count(s, what, now_ms, 1);
    *retry_after_s = limiter__retry(s, now_ms);
    return 1;
}

enum limiter_verdict limiter_fail(limiter *l, const char *addr, const char *prefix,
                                  const uint8_t *hash, const char *what, uint64_t now_ms,
                                  unsigned *retry_after_s)
{
    limiter_slot *s = limiter__find(l, addr, prefix, now_ms, 1);
    uint64_t max_ms = (uint64_t)LIMITER_BLOCK_MAX_S * 1000;
    s->last_ms = now_ms;
    limiter__remember(s, hash);
    if (now_ms < s->blocked_until_ms) {
        /* A failure during a block neither extends it nor counts towards the next. */
        limiter__count(s, what, now_ms, 1);
        *retry_after_s = limiter__retry(s, now_ms);
        return LIMITER_BLOCKED;
    }
    if (s->strikes && now_ms - s->last_fail_ms >= max_ms)
        s->strikes = 0;
    if (now_ms - s->window_start_ms >= l->window_ms || now_ms < s->window_start_ms) {
        s->window_start_ms = now_ms;
        s->failures = 0;
    }
    s->failures++;
    s->last_fail_ms = now_ms;
    limiter__count(s, what, now_ms, 0);
    if (s->failures < l->max_failures)
        return LIMITER_FAILED;
    /* Each block lasts twice the one before: a client that keeps failing waits longer each
     * time, one that stops is forgotten after LIMITER_BLOCK_MAX_S. */
    uint64_t block = l->window_ms;
    for (unsigned i = 0; i < s->strikes && block < max_ms; i++)
        block *= 2;
    if (block > max_ms)
        block = max_ms;
    s->blocked_until_ms = now_ms + block;
    s->strikes++;
    s->failures = 0;
    s->window_start_ms = now_ms;
    return LIMITER_TRIPPED;
}

size_t limiter_drain(limiter *l, limiter_count *out, size_t max)
{
    size_t n = 0;
    if (n < max && l->overflow.failed + l->overflow.refused > 0) {
        out[n++] = l->overflow;
        l->overflow.failed = l->overflow.refused = 0;
    }
    for (size_t i = 0; i < LIMITER_SLOTS && n < max; i++) {
        limiter_slot *s = &l->slots[i];
        if (s->pending.failed + s->pending.refused == 0)
            continue;
        out[n] = s->pending;
        snprintf(out[n].addr, sizeof(out[n].addr), "%s", s->addr);
        snprintf(out[n].prefix, sizeof(out[n].prefix), "%s", s->prefix);
        n++;
        s->pending.failed = s->pending.refused = 0;
    }
    return n;
}

int limiter_pending(const limiter *l)
{
    if (l->overflow.failed + l->overflow.refused > 0)
        return 1;
    for (size_t i = 0; i < LIMITER_SLOTS; i++)
        if (l->slots[i].pending.failed + l->slots[i].pending.refused > 0)
            return 1;
    return 0;
}
