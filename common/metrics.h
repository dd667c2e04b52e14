/* /metrics in the Prometheus text format (version 0.0.4), from a table: each daemon fills an
 * array of metric rows and renders it with one call, so that every tier writes the format
 * the same way and no answer is cut at a fixed buffer. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sbuf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* A histogram of durations, in fixed buckets from 0.25 ms to 1 s (metrics_hist_bounds_us)
 * and one above: cheap enough to observe every request and every loop iteration, and
 * rendered as a Prometheus histogram in seconds (_bucket{le=...}, _sum, _count). */
#define METRICS_HIST_BUCKETS 16
typedef struct metrics_hist {
    uint64_t n[METRICS_HIST_BUCKETS + 1]; /* per bucket, not cumulative; the last: above 1 s */
    uint64_t count, sum_us;
} metrics_hist;

extern const uint32_t metrics_hist_bounds_us[METRICS_HIST_BUCKETS];

/* Counts one duration of us microseconds. */
void metrics_hist_observe(metrics_hist *h, uint64_t us);

typedef struct metric {
    const char *name; /* [a-z_]+, e.g. "hub_records_stored_total" */
    enum metric_type type;
    const char *help; /* one sentence, no line break */
    int64_t value;
    const metrics_hist *hist; /* METRIC_HISTOGRAM only */
} metric;

#define METRIC_C(name, help, v)                                                                    \
    {                                                                                              \
        name, METRIC_COUNTER, help, (int64_t)(v), NULL                                             \
    }
#define METRIC_G(name, help, v)                                                                    \
    {                                                                                              \
        name, METRIC_GAUGE, help, (int64_t)(v), NULL                                               \
    }
/* h: a const metrics_hist * that lives until the rows are rendered. */
#define METRIC_H(name, help, h)                                                                    \
    {                                                                                              \
        name, METRIC_HISTOGRAM, help, 0, h                                                         \
    }

/* The counters of an HTTP(S) server (http.h's http_server_stats) as rows named
 * prefix_<counter>; prefix is a string literal such as "hub_https". */
#define METRICS_HTTP(prefix, st)                                                                   \
    METRIC_C(prefix "_head_timeouts_total",                                                        \
             "Request heads not complete within the deadline (408, or closed).",                   \
             (st).head_timeouts),                                                                  \
        METRIC_C(prefix "_body_too_slow_total", "Request bodies below the minimum rate (408).",    \
                 (st).body_too_slow),                                                              \
        METRIC_C(prefix "_refused_per_address_total",                                              \
                 "Connections refused at the per-address cap.", (st).refused_per_addr),            \
        METRIC_C(prefix "_evicted_total",                                                          \
                 "Connections waiting for a request head closed to admit one at the cap.",         \
                 (st).evicted_at_cap),                                                             \
        METRIC_C(prefix "_refused_at_cap_total",                                                   \
                 "Connections refused at the global cap (every one mid-request).",                 \
                 (st).refused_at_cap),                                                             \
        METRIC_C(prefix "_proxy_refused_total",                                                    \
                 "PROXY protocol headers malformed, missing, or from an address not configured.",  \
                 (st).proxy_refused),                                                              \
        METRIC_G(prefix "_connections", "Connections open now.", (st).conns_open),                 \
        METRIC_H(prefix "_answer_seconds",                                                         \
                 "Time from a request handed to its handler (or on_head) to its answer.",          \
                 &(st).answer)

/* The rows of a store's checkpoint thread (st: a walckpt_stats, common/walckpt.h), named
 * prefix_store_checkpoints_total and so on. */
#define METRICS_WALCKPT(prefix, st)                                                                \
    METRIC_C(prefix "_store_checkpoints_total",                                                    \
             "Checkpoints of the store's log run by its checkpoint thread.", (st).runs),           \
        METRIC_C(prefix "_store_checkpoints_inline_total",                                         \
                 "Checkpoints a commit ran itself: the log passed four times its threshold.",      \
                 (st).inline_runs),                                                                \
        METRIC_C(prefix "_store_checkpoint_failures_total",                                        \
                 "Checkpoints of the store's log that failed (logged).", (st).failures)

/* Appends the exposition of n rows to out. Returns 0, or REINT_ENOMEM when out failed (its
 * maximum or memory); the caller then answers 500, never a truncated 200. */
int metrics_render(sbuf *out, const metric *rows, size_t n);

/* Bytes the allocator has handed out and not taken back: glibc's chunks in every arena and
 * the chunks it mmapped for large requests (a frame buffer of 128 KiB or more is one of
 * those, which mallinfo2's uordblks alone would miss). */
size_t metrics_heap_in_use(void);

/* Appends the rows every daemon shows about itself: whether the test hooks are enabled, the
 * test clock's shift and the faults struck (all 0 in production), and the CRL expiry when
 * crl_next_update is not negative. */
int metrics_render_process(sbuf *out, int64_t crl_next_update);

/* Answers a GET /metrics: rows followed by the process rows (crl_next_update as above);
 * 200 with the exposition, or 500 when it could not be built. */
struct http_req;
void metrics_respond(struct http_req *r, const metric *rows, size_t n, int64_t crl_next_update);

#endif
