/* The provincial officers' dashboard: the pages an officer or a reviewer uses in a browser,
 * served on the hub's HTTPS port beside the officers' API (officers.h) from files compiled
 * into the binary (provincial-hub/web/, common/web/, Debian's Chart.js and the build's map of
 * Nepal, embedded by tools/embed_web.sh; nothing fetched from elsewhere). The pages are one
 * HTML shell and ES modules that call the officers' JSON API with the officer's session
 * (common/session.h); this module only serves them, with a strict Content-Security-Policy,
 * ETags and revalidation on every use.
 *
 *   GET /, /signin, /gaps, /reviews, /indicators   the shell (index.html); the script draws
 *                                                  the page the address names
 *   GET /<asset>                                   the embedded files by their path
 *                                                  (/map.json: tools/topo2svg.py's output) */
#ifndef PROVINCIAL_HUB_HUBWEB_H
#define PROVINCIAL_HUB_HUBWEB_H

#include <stddef.h>

#include "http.h"
#include "webassets.h"

/* The embedded files (tools/embed_web.sh's table), served by webassets.h. */
extern const webasset hubweb_assets[];
extern const size_t hubweb_assets_n;

/* Whether path is one the dashboard serves (a page or an asset): such a request needs no
 * token, as the files hold no data. */
int hubweb_is_public(const char *path);

/* Answers r and returns 1 when its path is the dashboard's (a page or an asset), or when a
 * browser asks for a page the dashboard does not have (404 with the shell, which says so:
 * webassets_not_found_page); returns 0 without answering for any other request. */
int hubweb_handle(http_req *r);

#endif
