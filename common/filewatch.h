/* Calls back when a file changes: its directory is watched, since a file replaced by rename
 * (deploy/pki.sh's CRL) would be missed by a watch on the old inode, and the callback comes
 * 200 ms after the last change, so that a write in several parts is read whole. */
#ifndef COMMON_FILEWATCH_H
#define COMMON_FILEWATCH_H

#include <uv.h>

typedef void (*filewatch_cb)(void *ud);

typedef struct filewatch {
    uv_fs_event_t dir;
    uv_timer_t debounce;
    char path[512];
    const char *base;
    filewatch_cb cb;
    void *ud;
} filewatch;

/* Starts watching path. An empty path watches nothing (and filewatch_stop still closes the
 * handles). Returns 0 or a negative UV_E* code. */
int filewatch_start(filewatch *w, uv_loop_t *loop, const char *path, filewatch_cb cb, void *ud);
/* Closes the handles (w must stay valid until the loop has run their close callbacks). */
void filewatch_stop(filewatch *w);

#endif
