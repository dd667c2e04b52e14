/* How long each turn of a libuv loop keeps it busy (timers, I/O callbacks, work done inside
 * them), as a histogram: a request or a batch that arrives during a turn waits at most that
 * long before its own callback runs, so the histogram's tail bounds what one process adds to
 * an answer's latency, apart from the answer's own work. It uses libuv's idle-time metric
 * (uv_metrics_idle_time): a turn's busy time is the time between two prepare callbacks
 * minus the time spent waiting in the poll between them. Beside it, each turn's CPU time tells
 * work from waiting for a core. */
#ifndef COMMON_LOOPWATCH_H
#define COMMON_LOOPWATCH_H

#include <stdint.h>
#include <uv.h>

#include "metrics.h"

typedef struct loopwatch {
    uv_prepare_t prepare;
    uint64_t last_ns, last_idle_ns, last_cpu_ns;
    int open;          /* the handle was initialised and is not closed */
    int started;       /* a first turn was seen */
    metrics_hist busy; /* one observation per turn, in microseconds */
    /* The CPU time of the loop's thread in each turn: a busy turn much longer than its CPU
     * time was waiting for a core (or for a page, a lock), not working. */
    metrics_hist cpu;
} loopwatch;

/* Configures loop to measure its idle time and starts watching it. Must be called before the
 * loop first runs. Returns 0 or a negative UV_E* code. The watch keeps the loop alive no
 * longer than its other handles (it is unreferenced). */
int loopwatch_start(loopwatch *w, uv_loop_t *loop);

/* Closes the watch's handle (if start opened it); w must stay valid until the loop has run
 * its close callbacks. */
void loopwatch_stop(loopwatch *w);

#endif
