#include "loopwatch.h"

#include <string.h>
#include <time.h>

static uint64_t loopwatch__cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void loopwatch__on_prepare(uv_prepare_t *h)
{
    loopwatch *w = h->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop), cpu = loopwatch__cpu_ns();
    if (w->started) {
        uint64_t turn = now - w->last_ns, waited = idle - w->last_idle_ns;
        metrics_hist_observe(&w->busy, (turn > waited ? turn - waited : 0) / 1000);
        if (cpu >= w->last_cpu_ns) /* the thread's clock cannot go back; 0 if unreadable */
            metrics_hist_observe(&w->cpu, (cpu - w->last_cpu_ns) / 1000);
    }
    w->started = 1;
    w->last_ns = now;
    w->last_idle_ns = idle;
    w->last_cpu_ns = cpu;
}

int loopwatch_start(loopwatch *w, uv_loop_t *loop)
{
    memset(w, 0, sizeof(*w));
    int rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    if (rc == 0)
        rc = uv_prepare_init(loop, &w->prepare);
    if (rc != 0)
        return rc;
    w->prepare.data = w;
    w->open = 1;
    uv_unref((uv_handle_t *)&w->prepare);
    return uv_prepare_start(&w->prepare, loopwatch__on_prepare);
}

void loopwatch_stop(loopwatch *w)
{
    if (w->open) {
        w->open = 0;
        uv_close((uv_handle_t *)&w->prepare, NULL);
    }
}
