#include "hubweb.h"

#include <string.h>

/* Paths the shell answers: the script reads the path and draws that page. */
static const char *const hubweb__pages[] = {"/", "/signin", "/gaps", "/reviews", "/indicators"};

static int hubweb__is_page(const char *path)
{
    return webassets_in(hubweb__pages, sizeof(hubweb__pages) / sizeof(hubweb__pages[0]), path);
}

static const webasset *hubweb__asset(const char *path)
{
    return webassets_find(hubweb_assets, hubweb_assets_n,
                          hubweb__is_page(path) ? "/index.html" : path);
}

int hubweb_is_public(const char *path)
{
    return hubweb__asset(path) != NULL;
}

int hubweb_handle(http_req *r)
{
    return webassets_serve(r, hubweb__asset(http_req_path(r))) ||
           webassets_not_found_page(r,
                                    webassets_find(hubweb_assets, hubweb_assets_n, "/index.html"));
}
