#include "web.h"

#include <string.h>

/* Paths the shell answers: the script reads the path and draws that page. */
static const char *const web__pages[] = {"/",         "/signin", "/today",        "/people",
                                         "/import",   "/months", "/availability", "/export",
                                         "/followups"};

static int web__is_page(const char *path)
{
    if (webassets_in(web__pages, sizeof(web__pages) / sizeof(web__pages[0]), path))
        return 1;
    /* A person's page: /people/<local_id>. */
    return strncmp(path, "/people/", 8) == 0 && path[8] != '\0';
}

int web_handle(http_req *r)
{
    const char *path = http_req_path(r);
    return webassets_serve_bscal(r) ||
           webassets_serve(r, webassets_find(web_assets, web_assets_n,
                                             web__is_page(path) ? "/index.html" : path)) ||
           webassets_not_found_page(r, webassets_find(web_assets, web_assets_n, "/index.html"));
}
