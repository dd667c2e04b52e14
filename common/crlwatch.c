#include "crlwatch.h"

#include "log.h"

void crlwatch_reload(crlwatch *w)
{
    char err[256];
    if (w->file.path[0] == '\0')
        return;
    for (int i = 0; i < 2; i++) {
        if (w->ctx[i] == NULL)
            continue;
        if (tls_ctx_reload_crl(w->ctx[i], err, sizeof(err)) != 0) {
            log_error("CRL reload failed, keeping the previous one: %s", err);
            return;
        }
    }
    log_info("CRL reloaded from %s", w->file.path);
}

static int crlwatch__changed(void *ud, int last_try)
{
    (void)last_try; /* deploy/pki.sh writes the CRL by rename: it is whole when it is there */
    crlwatch_reload(ud);
    return 0;
}

int crlwatch_start(crlwatch *w, uv_loop_t *loop, const char *path, tls_ctx *ctx, tls_ctx *ctx2)
{
    w->ctx[0] = ctx;
    w->ctx[1] = ctx2;
    return filewatch_start(&w->file, loop, path, crlwatch__changed, w);
}

void crlwatch_stop(crlwatch *w)
{
    filewatch_stop(&w->file);
}
