/* SQLite's page cache with one walk fewer: the default cache (pcache1), wrapped so that a
 * commit does not visit every cached page for nothing.
 *
 * Why: at the end of every write transaction SQLite's pager asks the cache to drop the pages
 * beyond the database's size (xTruncate). pcache1 skips that when no page was ever keyed
 * beyond it, but a B-tree balance that puts its new sibling pages in ascending order swaps
 * two page numbers through a temporary one, the lock-byte page's (1 GiB / page size + 1),
 * and pcache1 then takes that number for its largest key. In a database under 1 GiB the
 * commit then walks the whole cache, every page header, to drop nothing: with the hub's
 * 256 MiB cache (65,536 pages of 4 KiB) about 70 % of the noting transaction's commit in
 * bench/rollup_bench --profile, and 14 % of the one-municipality batch's figure
 * (docs/BENCHMARKS.md, the rollup bullet of "Goals not met").
 *
 * The wrapper forwards every call to pcache1 and keeps, per cache, an upper bound of the
 * keys its pages may hold, apart from the pages parked at the lock-byte page during a swap
 * (counted). A truncation at or below that bound, or one that would reach a parked page, goes
 * to pcache1 as before; one above it has nothing to drop and is skipped.
 *
 * Install it once per process, before SQLite initialises (its first connection):
 * store_open() does (pcache_install is idempotent and thread safe). If SQLite was initialised
 * before, the default cache stays and nothing else changes. */
#ifndef COMMON_PCACHE_H
#define COMMON_PCACHE_H

#include <stdint.h>

/* Installs the wrapper. Returns 1 when it is SQLite's page cache, 0 when SQLite keeps its own
 * (initialised before the first call). */
int pcache_install(void);

/* How many truncations the wrapper skipped and passed on to pcache1, since the process
 * started (for tests and /metrics-like diagnostics). */
typedef struct pcache_counts {
    uint64_t skipped, passed;
} pcache_counts;
void pcache_get_counts(pcache_counts *out);

#endif
