#include "pcache.h"

#include <pthread.h>
#include <sqlite3.h>

/* SQLite's lock-byte page starts at this offset (PENDING_BYTE, fixed outside SQLite's own
 * tests); its number at page size sz is PCACHE_LOCK_BYTE / sz + 1. */
#define PCACHE_LOCK_BYTE 0x40000000u

typedef struct pcache {
    sqlite3_pcache *inner; /* pcache1's cache */
    unsigned lock_page;    /* the lock-byte page's number at this cache's page size */
    unsigned max_key;      /* no page is keyed above it, the parked ones aside */
    unsigned parked;       /* pages keyed at lock_page now (a swap in progress) */
} pcache;

static sqlite3_pcache_methods2 pcache__inner; /* pcache1, as SQLite's default */
static pthread_once_t pcache__once = PTHREAD_ONCE_INIT;
static int pcache__installed;
static uint64_t pcache__skipped, pcache__passed;

static int pcache__init(void *arg)
{
    (void)arg;
    return pcache__inner.xInit ? pcache__inner.xInit(pcache__inner.pArg) : SQLITE_OK;
}

static void pcache__shutdown(void *arg)
{
    (void)arg;
    if (pcache__inner.xShutdown)
        pcache__inner.xShutdown(pcache__inner.pArg);
}

static sqlite3_pcache *pcache__create(int sz_page, int sz_extra, int purgeable)
{
    pcache *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    c->inner = pcache__inner.xCreate(sz_page, sz_extra, purgeable);
    if (c->inner == NULL) {
        sqlite3_free(c);
        return NULL;
    }
    c->lock_page = PCACHE_LOCK_BYTE / (unsigned)(sz_page > 0 ? sz_page : 1) + 1;
    c->max_key = 0;
    c->parked = 0;
    return (sqlite3_pcache *)c;
}

static void pcache__cachesize(sqlite3_pcache *p, int n)
{
    pcache__inner.xCachesize(((pcache *)p)->inner, n);
}

static int pcache__pagecount(sqlite3_pcache *p)
{
    return pcache__inner.xPagecount(((pcache *)p)->inner);
}

static sqlite3_pcache_page *pcache__fetch(sqlite3_pcache *p, unsigned key, int create)
{
    pcache *c = (pcache *)p;
    sqlite3_pcache_page *pg = pcache__inner.xFetch(c->inner, key, create);
    /* Any page fetched counts, the lock-byte page's too (the pager fetches it only to
     * refuse it, and drops it: the bound stays safe, merely loose). */
    if (pg != NULL && key > c->max_key)
        c->max_key = key;
    return pg;
}

static void pcache__unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    pcache__inner.xUnpin(((pcache *)p)->inner, pg, discard);
}

static void pcache__rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned from, unsigned to)
{
    pcache *c = (pcache *)p;
    pcache__inner.xRekey(c->inner, pg, from, to);
    if (from == c->lock_page && c->parked > 0)
        c->parked--;
    if (to == c->lock_page)
        c->parked++; /* a swap's temporary key: counted, not taken as the bound */
    else if (to > c->max_key)
        c->max_key = to;
}

static void pcache__truncate(sqlite3_pcache *p, unsigned limit)
{
    pcache *c = (pcache *)p;
    /* Drops the pages keyed limit or above: none when limit is above the bound and no parked
     * page is at or above it. */
    if (limit > c->max_key && (c->parked == 0 || limit > c->lock_page)) {
        __atomic_fetch_add(&pcache__skipped, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_fetch_add(&pcache__passed, 1, __ATOMIC_RELAXED);
    pcache__inner.xTruncate(c->inner, limit);
    if (limit == 0 || limit - 1 < c->max_key)
        c->max_key = limit > 0 ? limit - 1 : 0;
    if (limit <= c->lock_page)
        c->parked = 0;
}

static void pcache__destroy(sqlite3_pcache *p)
{
    pcache *c = (pcache *)p;
    pcache__inner.xDestroy(c->inner);
    sqlite3_free(c);
}

static void pcache__shrink(sqlite3_pcache *p)
{
    pcache__inner.xShrink(((pcache *)p)->inner);
}

static void pcache__install_once(void)
{
    static sqlite3_pcache_methods2 wrapper = {
        1,
        NULL,
        pcache__init,
        pcache__shutdown,
        pcache__create,
        pcache__cachesize,
        pcache__pagecount,
        pcache__fetch,
        pcache__unpin,
        pcache__rekey,
        pcache__truncate,
        pcache__destroy,
        pcache__shrink,
    };
    /* Both calls fail once SQLite is initialised: the default cache then stays. */
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &pcache__inner) != SQLITE_OK ||
        pcache__inner.xCreate == NULL || pcache__inner.xShrink == NULL)
        return;
    if (sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) == SQLITE_OK)
        pcache__installed = 1;
}

int pcache_install(void)
{
    pthread_once(&pcache__once, pcache__install_once);
    return pcache__installed;
}

void pcache_get_counts(pcache_counts *out)
{
    out->skipped = __atomic_load_n(&pcache__skipped, __ATOMIC_RELAXED);
    out->passed = __atomic_load_n(&pcache__passed, __ATOMIC_RELAXED);
}
