#include "metrics.h"

#include <malloc.h>
#include <sqlite3.h>

#include "http.h"
#include "testhook.h"

const uint32_t metrics_hist_bounds_us[METRICS_HIST_BUCKETS] = {
    250,   500,   1000,  2000,  3000,   5000,   7500,   10000,
    15000, 25000, 50000, 75000, 100000, 250000, 500000, 1000000,
};

void metrics_hist_observe(metrics_hist *h, uint64_t us)
{
    size_t i = 0;
    while (i < METRICS_HIST_BUCKETS && us > metrics_hist_bounds_us[i])
        i++;
    h->n[i]++;
    h->count++;
    h->sum_us += us;
}

/* The rows of one histogram: cumulative buckets with their upper bounds in seconds. */
static void metrics__render_hist(sbuf *out, const metric *m)
{
    uint64_t below = 0;
    sbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", m->name, m->help, m->name);
    for (size_t i = 0; i <= METRICS_HIST_BUCKETS; i++) {
        below += m->hist->n[i];
        if (i < METRICS_HIST_BUCKETS)
            sbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", m->name,
                        metrics_hist_bounds_us[i] / 1e6, (unsigned long long)below);
        else
            sbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", m->name, (unsigned long long)below);
    }
    sbuf_printf(out, "%s_sum %.6f\n%s_count %llu\n", m->name, (double)m->hist->sum_us / 1e6,
                m->name, (unsigned long long)m->hist->count);
}

int metrics_render(sbuf *out, const metric *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].type == METRIC_HISTOGRAM) {
            metrics__render_hist(out, &rows[i]);
            continue;
        }
        const char *type = rows[i].type == METRIC_COUNTER ? "counter" : "gauge";
        sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", rows[i].name, rows[i].help,
                    rows[i].name, type, rows[i].name, (long long)rows[i].value);
    }
    return out->failed ? REINT_ENOMEM : 0;
}

size_t metrics_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

int metrics_render_process(sbuf *out, int64_t crl_next_update)
{
    metric rows[] = {
        METRIC_G("test_hooks_enabled",
                 "1 when the process runs with --enable-test-hooks (never in production).",
                 testhook_enabled()),
        METRIC_G("test_clock_offset_seconds", "Shift of the wall clock by a test clock file.",
                 testhook_clock_offset_ms() / 1000),
        METRIC_C("test_faults_fired_total", "Injected test faults that struck.",
                 testhook_fired_total()),
        METRIC_G("process_heap_in_use_bytes",
                 "Bytes the allocator has handed out and not taken back, mmapped chunks "
                 "included (mallinfo2).",
                 metrics_heap_in_use()),
        METRIC_G("sqlite_memory_used_bytes", "Bytes SQLite holds (sqlite3_memory_used).",
                 sqlite3_memory_used()),
        METRIC_G("tls_crl_next_update_seconds", "When the loaded CRL expires (Unix time).",
                 crl_next_update),
    };
    size_t n = sizeof(rows) / sizeof(rows[0]);
    return metrics_render(out, rows, crl_next_update < 0 ? n - 1 : n);
}

void metrics_respond(http_req *r, const metric *rows, size_t n, int64_t crl_next_update)
{
    sbuf b;
    sbuf_init(&b, 1 << 20);
    if (metrics_render(&b, rows, n) != 0 || metrics_render_process(&b, crl_next_update) != 0)
        http_respond(r, 500, "text/plain", "metrics could not be rendered\n", 30);
    else
        http_respond(r, 200, "text/plain; version=0.0.4", b.p, b.len);
    sbuf_free(&b);
}
