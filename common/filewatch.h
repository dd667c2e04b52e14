/* Calls back when a file changes: its directory is watched, since a file replaced by rename
 * (deploy/pki.sh's CRL) would be missed by a watch on the old inode, and the callback comes
 * 200 ms after the last change, so that a write in several parts is read whole. A callback
 * that finds the file unfinished (empty, or cut inside a line: a writer that truncated it and
 * has not written the rest yet) returns 1 to be called again 200 ms later, up to
 * FILEWATCH_RETRIES times; the last call has last_try set, and must take the file as it is. */
#ifndef COMMON_FILEWATCH_H
#define COMMON_FILEWATCH_H

#include <uv.h>

#define FILEWATCH_RETRIES 5

typedef int (*filewatch_cb)(void *ud, int last_try);

typedef struct filewatch {
    uv_fs_event_t dir;
    uv_timer_t debounce;
    char path[512];
    const char *base;
    filewatch_cb cb;
    void *ud;
    int tries; /* calls that asked to be called again since the last change */
} filewatch;

/* Starts watching path. An empty path watches nothing (and filewatch_stop still closes the
 * handles). Returns 0 or a negative UV_E* code. */
int filewatch_start(filewatch *w, uv_loop_t *loop, const char *path, filewatch_cb cb, void *ud);
/* Closes the handles (w must stay valid until the loop has run their close callbacks). */
void filewatch_stop(filewatch *w);

#endif
