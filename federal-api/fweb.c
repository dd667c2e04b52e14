#include "fweb.h"

#include <string.h>

/* Paths the shell answers: the script reads the path and draws that page. */
static const char *const fweb__pages[] = {"/", "/signin", "/dashboard", "/open-data"};

int fweb_handle(http_req *r)
{
    const char *path = http_req_path(r);
    if (webassets_in(fweb__pages, sizeof(fweb__pages) / sizeof(fweb__pages[0]), path))
        path = "/index.html";
    return webassets_serve_bscal(r) ||
           webassets_serve(r, webassets_find(fweb_assets, fweb_assets_n, path)) ||
           webassets_not_found_page(r, webassets_find(fweb_assets, fweb_assets_n, "/index.html"));
}
