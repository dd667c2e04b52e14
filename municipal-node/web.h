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
#include "webassets.h"

/* The embedded files (tools/embed_web.sh's table), served by webassets.h. */
extern const webasset web_assets[];
extern const size_t web_assets_n;

/* Answers r and returns 1 when its path is the workspace's (a page, an asset or
 * /bscal.json), or when a browser asks for a page the workspace does not have (404 with the
 * shell, which says so: webassets_not_found_page); returns 0 without answering for any other
 * request. */
int web_handle(http_req *r);

#endif
