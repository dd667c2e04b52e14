#include "fweb.h"

#include <string.h>

/* Paths the shell answers: the script reads the path and draws that page. */
static const char *const fweb__pages[] = {"/", "/signin", "/dashboard", "/open-data"};

const fweb_asset *fweb_asset_find(const char *path)
{
    for (size_t i = 0; i < fweb_assets_n; i++)
        if (strcmp(fweb_assets[i].path, path) == 0)
            return &fweb_assets[i];
    return NULL;
}

static int fweb__is_page(const char *path)
{
    for (size_t i = 0; i < sizeof(fweb__pages) / sizeof(fweb__pages[0]); i++)
        if (strcmp(path, fweb__pages[i]) == 0)
            return 1;
    return 0;
}

int fweb_handle(http_req *r)
{
    const char *path = http_req_path(r), *m = http_req_method(r);
    const fweb_asset *a =
        fweb__is_page(path) ? fweb_asset_find("/index.html") : fweb_asset_find(path);
    if (a == NULL)
        return 0;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        static const char msg[] = "{\"error\":\"pages are read with GET\"}";
        http_add_header(r, "Allow", "GET, HEAD");
        http_respond(r, 405, NULL, msg, sizeof(msg) - 1);
        return 1;
    }
    /* Revalidated on every use, so that a new binary's pages never run an old cached script. */
    http_add_header(r, "Content-Security-Policy", FWEB_CSP);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "ETag", a->etag);
    http_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    http_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    const char *inm = http_req_header(r, "If-None-Match");
    if (inm && strcmp(inm, a->etag) == 0) {
        http_respond(r, 304, a->type, NULL, 0);
        return 1;
    }
    http_respond(r, 200, a->type, (const char *)a->data, a->len);
    return 1;
}
