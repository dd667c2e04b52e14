#include "webassets.h"

#include <string.h>

const webasset *webassets_find(const webasset *table, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].path, path) == 0)
            return &table[i];
    return NULL;
}

int webassets_in(const char *const *list, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(path, list[i]) == 0)
            return 1;
    return 0;
}

int webassets_refuse_method(http_req *r)
{
    const char *m = http_req_method(r);
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return 0;
    static const char msg[] = "{\"error\":\"this resource is read with GET or HEAD\"}";
    http_add_header(r, "Allow", "GET, HEAD");
    http_respond(r, 405, NULL, msg, sizeof(msg) - 1);
    return 1;
}

void webassets_send(http_req *r, const char *type, const char *etag, const void *body, size_t len)
{
    const char *inm = http_req_header(r, "If-None-Match");
    http_add_header(r, "Content-Security-Policy", WEBASSETS_CSP);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "ETag", etag);
    http_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    http_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    if (inm && strcmp(inm, etag) == 0) {
        http_respond(r, 304, type, NULL, 0);
        return;
    }
    http_respond(r, 200, type, body, len);
}

int webassets_serve(http_req *r, const webasset *a)
{
    if (a == NULL)
        return 0;
    if (!webassets_refuse_method(r))
        webassets_send(r, a->type, a->etag, a->data, a->len);
    return 1;
}
