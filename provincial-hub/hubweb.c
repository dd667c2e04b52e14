#include "hubweb.h"

#include <string.h>

/* Paths the shell answers: the script reads the path and draws that page. */
static const char *const hubweb__pages[] = {"/", "/signin", "/gaps", "/reviews", "/indicators"};

static const hubweb_asset *hubweb__find(const char *path)
{
    for (size_t i = 0; i < hubweb_assets_n; i++)
        if (strcmp(hubweb_assets[i].path, path) == 0)
            return &hubweb_assets[i];
    return NULL;
}

static int hubweb__is_page(const char *path)
{
    for (size_t i = 0; i < sizeof(hubweb__pages) / sizeof(hubweb__pages[0]); i++)
        if (strcmp(path, hubweb__pages[i]) == 0)
            return 1;
    return 0;
}

int hubweb_is_public(const char *path)
{
    return hubweb__is_page(path) || hubweb__find(path) != NULL;
}

int hubweb_handle(http_req *r)
{
    const char *path = http_req_path(r), *m = http_req_method(r);
    const hubweb_asset *a =
        hubweb__is_page(path) ? hubweb__find("/index.html") : hubweb__find(path);
    if (a == NULL)
        return 0;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        static const char msg[] = "{\"error\":\"pages are read with GET\"}";
        http_add_header(r, "Allow", "GET, HEAD");
        http_respond(r, 405, NULL, msg, sizeof(msg) - 1);
        return 1;
    }
    /* Revalidated on every use (so that a new hub binary's pages are never mixed with an old
     * one's cached scripts), and never framed or read by another origin. */
    const char *inm = http_req_header(r, "If-None-Match");
    http_add_header(r, "Content-Security-Policy", HUBWEB_CSP);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "ETag", a->etag);
    http_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    http_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    if (inm && strcmp(inm, a->etag) == 0) {
        http_respond(r, 304, a->type, NULL, 0);
        return 1;
    }
    http_respond(r, 200, a->type, (const char *)a->data, a->len);
    return 1;
}
