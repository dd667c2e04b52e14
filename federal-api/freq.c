#include "freq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Printable ASCII only, so that whatever a client sends is valid UTF-8 text for the
 * audit table. */
static void freq__printable(char *dst, size_t dstlen, const char *src)
{
    size_t o = 0;
    for (; *src && o + 1 < dstlen; src++)
        dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[o] = '\0';
}

freq *freq_new(const freq_env *env, http_req *r, int post)
{
    freq *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->env = env;
    f->r = r;
    f->post = post;
    freq__printable(f->peer, sizeof(f->peer), http_req_peer(r));
    limiter_addr(f->peer, f->addr);
    snprintf(f->prefix, sizeof(f->prefix), "none");
    const char *q = http_req_query(r);
    freq_set_target(f, http_req_path(r), q);
    return f;
}

void freq_set_target(freq *f, const char *path, const char *query)
{
    char t[FREQ_TARGET_MAX];
    snprintf(t, sizeof(t), "%s%s%s", path, query[0] ? "?" : "", query);
    freq__printable(f->target, sizeof(f->target), t);
}

void freq_finish(freq *f, int status, const char *ctype, const char *body, size_t len)
{
    fmetrics_count_status(f->env->m, status);
    http_respond(f->r, status, ctype, body, len);
    free(f->body);
    if (f->state_free)
        f->state_free(f->state);
    free(f);
}

void freq_error(freq *f, int status, const char *msg)
{
    static const char fallback[] = "{\"error\":\"error\"}\n";
    sbuf b;
    sbuf_init(&b, 4096);
    sbuf_puts(&b, "{\"error\":");
    sbuf_json_str(&b, msg);
    sbuf_puts(&b, "}\n");
    if (status == 401)
        http_add_header(f->r, "WWW-Authenticate", "Bearer");
    if (b.failed)
        freq_finish(f, status, NULL, fallback, sizeof(fallback) - 1);
    else
        freq_finish(f, status, NULL, b.p, b.len);
    sbuf_free(&b);
}

void freq_finish_sbuf(freq *f, int status, const char *ctype, const sbuf *b)
{
    if (b->failed)
        freq_error(f, 500, "answer too large");
    else
        freq_finish(f, status, ctype, b->p ? b->p : "", b->len);
}
