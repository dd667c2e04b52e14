/* Keeps a TLS context's CRL current without a restart: reloads it when the file changes
 * (filewatch) and whenever crlwatch_reload is called (SIGHUP). */
#ifndef COMMON_CRLWATCH_H
#define COMMON_CRLWATCH_H

#include <uv.h>

#include "filewatch.h"
#include "tls.h"

typedef struct crlwatch {
    filewatch file;
    tls_ctx *ctx[2]; /* contexts that check the CRL (NULL entries are skipped) */
} crlwatch;

/* Starts watching path for ctx and ctx2 (ctx2 may be NULL). An empty path watches
 * nothing. Returns 0 or a negative UV_E* code. */
int crlwatch_start(crlwatch *w, uv_loop_t *loop, const char *path, tls_ctx *ctx, tls_ctx *ctx2);
/* Reloads now, logging the outcome. */
void crlwatch_reload(crlwatch *w);
/* Closes the handles (w must stay valid until the loop has run their close callbacks). */
void crlwatch_stop(crlwatch *w);

#endif
