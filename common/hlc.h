/* Hybrid logical clock: versions are (milliseconds << 16 | counter), never below the last
 * value issued or observed, so a node restored from a backup still issues versions above
 * what it issued before as long as its wall clock moves forward. */
#ifndef COMMON_HLC_H
#define COMMON_HLC_H

#include <stdint.h>

typedef struct hlc {
    uint64_t last;
} hlc;

/* Issues the next version given the wall clock now_ms (clock_now_ms()). */
uint64_t hlc_next(hlc *c, uint64_t now_ms);
/* Moves the clock past a version observed elsewhere (e.g. the hub's acked version). */
void hlc_observe(hlc *c, uint64_t version);
/* Milliseconds part of a version. */
static inline uint64_t hlc_ms(uint64_t version)
{
    return version >> 16;
}

#endif
