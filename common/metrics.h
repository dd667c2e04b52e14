/* /metrics in the Prometheus text format (version 0.0.4), from a table: each daemon fills an
 * array of metric rows and renders it with one call, so that every tier writes the format
 * the same way and no answer is cut at a fixed buffer. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sbuf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

typedef struct metric {
    const char *name; /* [a-z_]+, e.g. "hub_records_stored_total" */
    enum metric_type type;
    const char *help; /* one sentence, no line break */
    int64_t value;
} metric;

#define METRIC_C(name, help, v)                                                                    \
    {                                                                                              \
        name, METRIC_COUNTER, help, (int64_t)(v)                                                   \
    }
#define METRIC_G(name, help, v)                                                                    \
    {                                                                                              \
        name, METRIC_GAUGE, help, (int64_t)(v)                                                     \
    }

/* Appends the exposition of n rows to out. Returns 0, or REINT_ENOMEM when out failed (its
 * maximum or memory); the caller then answers 500, never a truncated 200. */
int metrics_render(sbuf *out, const metric *rows, size_t n);

/* Appends the rows every daemon shows about itself: whether the test hooks are enabled, the
 * test clock's shift and the faults struck (all 0 in production), and the CRL expiry when
 * crl_next_update is not negative. */
int metrics_render_process(sbuf *out, int64_t crl_next_update);

/* Answers a GET /metrics: rows followed by the process rows (crl_next_update as above);
 * 200 with the exposition, or 500 when it could not be built. */
struct http_req;
void metrics_respond(struct http_req *r, const metric *rows, size_t n, int64_t crl_next_update);

#endif
