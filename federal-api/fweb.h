/* The pages of the federal HTTPS port: the national dashboard (ministry, signed in with a
 * session: fsession.h) and the open-data page (no sign-in), served from files compiled into
 * the binary (federal-api/web/, common/web/, Chart.js from Debian's libjs-chart.js and the map
 * of tools/topo2svg.py; embedded by tools/embed_web.sh with EMBED_WEB_PREFIX=fweb). The pages
 * call the same JSON API as every other client; this module only serves their files, with a
 * strict Content-Security-Policy (Trusted Types required), ETags and revalidation.
 *
 *   GET /, /signin, /dashboard, /open-data     the shell (index.html); the script draws the page
 *   GET /<asset>                               the embedded files by their path */
#ifndef FEDERAL_API_FWEB_H
#define FEDERAL_API_FWEB_H

#include <stddef.h>

#include "http.h"
#include "webassets.h"

/* The embedded files (tools/embed_web.sh's table), served by webassets.h. */
extern const webasset fweb_assets[];
extern const size_t fweb_assets_n;

/* Answers r and returns 1 when its path is one of the pages' (a page or an asset), or when a
 * browser asks for a page there is not (404 with the shell, which says so:
 * webassets_not_found_page); returns 0 without answering for any other request. */
int fweb_handle(http_req *r);

#endif
