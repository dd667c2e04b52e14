#include "crlwatch.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

void crlwatch_reload(crlwatch *w)
{
    char err[256];
    if (w->path[0] == '\0')
        return;
    for (int i = 0; i < 2; i++) {
        if (w->ctx[i] == NULL)
            continue;
        if (tls_ctx_reload_crl(w->ctx[i], err, sizeof(err)) != 0) {
            log_error("CRL reload failed, keeping the previous one: %s", err);
            return;
        }
    }
    log_info("CRL reloaded from %s", w->path);
}

static void crlwatch__on_debounce(uv_timer_t *t)
{
    crlwatch_reload(t->data);
}

static void crlwatch__on_change(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)events;
    crlwatch *w = h->data;
    if (status == 0 && name && strcmp(name, w->base) == 0)
        uv_timer_start(&w->debounce, crlwatch__on_debounce, 200, 0);
}

int crlwatch_start(crlwatch *w, uv_loop_t *loop, const char *path, tls_ctx *ctx, tls_ctx *ctx2)
{
    char dir[sizeof(w->path)];
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path ? path : "");
    w->ctx[0] = ctx;
    w->ctx[1] = ctx2;
    uv_timer_init(loop, &w->debounce);
    uv_fs_event_init(loop, &w->dir);
    w->debounce.data = w->dir.data = w;
    if (w->path[0] == '\0')
        return 0;
    const char *slash = strrchr(w->path, '/');
    w->base = slash ? slash + 1 : w->path;
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - w->path) : 1, slash ? w->path : ".");
    return uv_fs_event_start(&w->dir, crlwatch__on_change, dir, 0);
}

void crlwatch_stop(crlwatch *w)
{
    uv_fs_event_stop(&w->dir);
    uv_close((uv_handle_t *)&w->dir, NULL);
    uv_close((uv_handle_t *)&w->debounce, NULL);
}
