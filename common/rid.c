#include "rid.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "hex.h"

int rid_random(uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Random bits for ids come from a per-thread buffer refilled with one getrandom() call per
 * RID__POOL bytes: an import makes a million ids, and a system call each was a visible part
 * of its cost. A child process forgets the buffer it inherited (rid__forget, registered
 * with pthread_atfork), so that parent and child never hand out the same bits. */
#define RID__POOL 4096

static _Thread_local struct {
    uint8_t b[RID__POOL];
    size_t used; /* bytes of b handed out; RID__POOL when empty */
    unsigned long gen;
} rid__pool = {.used = RID__POOL};

/* Bumped in a forked child; a thread's buffer filled under another generation is stale. */
static atomic_ulong rid__generation;
static pthread_once_t rid__once = PTHREAD_ONCE_INIT;

static void rid__forget(void)
{
    atomic_fetch_add(&rid__generation, 1);
}

static void rid__init(void)
{
    pthread_atfork(NULL, NULL, rid__forget);
}

static int rid__pool_take(uint8_t *out, size_t len)
{
    unsigned long gen;
    pthread_once(&rid__once, rid__init);
    gen = atomic_load_explicit(&rid__generation, memory_order_relaxed);
    if (rid__pool.gen != gen || RID__POOL - rid__pool.used < len) {
        if (rid_random(rid__pool.b, RID__POOL) != 0)
            return -1;
        rid__pool.used = 0;
        rid__pool.gen = gen;
    }
    memcpy(out, rid__pool.b + rid__pool.used, len);
    /* Bits handed out are not kept where a later reader of this memory could find them. */
    memset(rid__pool.b + rid__pool.used, 0, len);
    rid__pool.used += len;
    return 0;
}

int rid_new(uint8_t id[RID_LEN], uint64_t now_ms)
{
    if (rid__pool_take(id + 6, RID_LEN - 6) != 0)
        return -1;
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)(now_ms >> (40 - 8 * i));
    id[6] = (uint8_t)(0x70 | (id[6] & 0x0f));
    id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
    return 0;
}

void rid_format(const uint8_t id[RID_LEN], char out[RID_HEX_LEN + 1])
{
    /* 8-4-4-4-12 digits: groups of 4, 2, 2, 2 and 6 bytes. */
    static const int groups[] = {4, 2, 2, 2, 6};
    size_t o = 0, at = 0;
    for (int g = 0; g < 5; g++) {
        if (g)
            out[o++] = '-';
        hex_encode(id + at, (size_t)groups[g], out + o);
        o += 2 * (size_t)groups[g];
        at += (size_t)groups[g];
    }
}

int rid_parse(const char *s, uint8_t id[RID_LEN])
{
    if (strlen(s) != RID_HEX_LEN)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < RID_HEX_LEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        if (hex_decode(s + i, 2, id + o++) != 0)
            return -1;
        i += 2;
    }
    return 0;
}
