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

/* One embedded file (the generated table; strings and bytes static). */
typedef struct fweb_asset {
    const char *path; /* "/app.js" */
    const char *type; /* Content-Type */
    const char *etag; /* quoted */
    const unsigned char *data;
    size_t len;
} fweb_asset;

extern const fweb_asset fweb_assets[];
extern const size_t fweb_assets_n;

/* The pages' Content-Security-Policy, the clerk's pages' own (municipal-node/web.h):
 * everything from this origin only, no inline script or style, no eval, no framing, and DOM
 * sinks closed by Trusted Types with no policy. Chart.js draws on a canvas and the map is
 * built with createElementNS, so neither needs more. */
#define FWEB_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "   \
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "            \
    "object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

/* Answers r and returns 1 when its path is one of the pages' (a page or an asset); returns 0
 * without answering for any other path. */
int fweb_handle(http_req *r);

/* The embedded file at path, or NULL. */
const fweb_asset *fweb_asset_find(const char *path);

#endif
