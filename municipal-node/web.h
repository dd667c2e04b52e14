/* The clerks' workspace: the pages a clerk uses in her browser, served by `municipal-node
 * serve` from files compiled into the binary (municipal-node/web/ and common/web/, embedded by
 * tools/embed_web.sh; no file to deploy, nothing fetched from elsewhere). The pages are one
 * HTML shell and ES modules that call the JSON API (api.h) with the clerk's session
 * (session.h); this module only serves them, with a strict Content-Security-Policy, ETags and
 * revalidation on every use.
 *
 *   GET /, /today, /people, /people/<local_id>, /followups, /import, /months, /availability,
 *       /export, /signin               the shell (index.html); the script draws the page
 *   GET /<asset>                        the embedded files by their path
 *   GET /bscal.json                     the Bikram Sambat table the node compiles in (bscal.h),
 *                                       for the pages' date picker and Gregorian equivalents */
#ifndef MUNICIPAL_NODE_WEB_H
#define MUNICIPAL_NODE_WEB_H

#include <stddef.h>

#include "http.h"

/* One embedded file (the generated table; strings and bytes static). */
typedef struct web_asset {
    const char *path; /* "/app.js" */
    const char *type; /* Content-Type */
    const char *etag; /* quoted */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_n;

/* The pages' Content-Security-Policy: scripts, styles, fonts, images and fetches from the
 * node itself only; no inline script or style, no eval, no framing, no plugin, no form sent
 * elsewhere, no <base>. The same for every page, tests included. */
#define WEB_CSP                                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "   \
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "            \
    "object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

/* Answers r and returns 1 when its path is the workspace's (a page, an asset or
 * /bscal.json); returns 0 without answering for any other path. */
int web_handle(http_req *r);

/* The embedded file at path, or NULL. */
const web_asset *web_asset_find(const char *path);

#endif
