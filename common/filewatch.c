#include "filewatch.h"

#include <stdio.h>
#include <string.h>

#define FILEWATCH_DEBOUNCE_MS 200

static void filewatch__on_debounce(uv_timer_t *t)
{
    filewatch *w = t->data;
    int last = w->tries >= FILEWATCH_RETRIES;
    if (w->cb(w->ud, last) == 1 && !last) {
        w->tries++;
        uv_timer_start(&w->debounce, filewatch__on_debounce, FILEWATCH_DEBOUNCE_MS, 0);
    }
}

static void filewatch__on_change(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)events;
    filewatch *w = h->data;
    if (status == 0 && name && strcmp(name, w->base) == 0) {
        w->tries = 0;
        uv_timer_start(&w->debounce, filewatch__on_debounce, FILEWATCH_DEBOUNCE_MS, 0);
    }
}

int filewatch_start(filewatch *w, uv_loop_t *loop, const char *path, filewatch_cb cb, void *ud)
{
    char dir[sizeof(w->path)];
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path ? path : "");
    w->cb = cb;
    w->ud = ud;
    uv_timer_init(loop, &w->debounce);
    uv_fs_event_init(loop, &w->dir);
    w->debounce.data = w->dir.data = w;
    if (w->path[0] == '\0')
        return 0;
    const char *slash = strrchr(w->path, '/');
    w->base = slash ? slash + 1 : w->path;
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - w->path) : 1, slash ? w->path : ".");
    return uv_fs_event_start(&w->dir, filewatch__on_change, dir, 0);
}

void filewatch_stop(filewatch *w)
{
    uv_fs_event_stop(&w->dir);
    uv_close((uv_handle_t *)&w->dir, NULL);
    uv_close((uv_handle_t *)&w->debounce, NULL);
}
