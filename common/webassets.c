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

static void webassets__headers(http_req *r)
{
    http_add_header(r, "Content-Security-Policy", WEBASSETS_CSP);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    http_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

void webassets_send(http_req *r, const char *type, const char *etag, const void *body, size_t len)
{
    const char *inm = http_req_header(r, "If-None-Match");
    webassets__headers(r);
    http_add_header(r, "ETag", etag);
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

int webassets_wants_page(http_req *r)
{
    static const char *const plain[] = {"/healthz", "/metrics", "/crl"};
    const char *m = http_req_method(r), *path = http_req_path(r);
    const char *accept = http_req_header(r, "Accept");
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
        return 0;
    if (strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/open/", 6) == 0 ||
        webassets_in(plain, sizeof(plain) / sizeof(plain[0]), path))
        return 0;
    return accept != NULL && strstr(accept, "text/html") != NULL;
}

int webassets_not_found_page(http_req *r, const webasset *shell)
{
    if (shell == NULL || !webassets_wants_page(r))
        return 0;
    webassets__headers(r);
    http_respond(r, 404, shell->type, (const char *)shell->data, shell->len);
    return 1;
}
