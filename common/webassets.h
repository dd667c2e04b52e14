/* The serving side shared by the three daemons' pages (the clerks' workspace,
 * municipal-node/web.h; the officers' dashboard, provincial-hub/hubweb.h; the national
 * dashboard and open-data page, federal-api/fweb.h): the table of files tools/embed_web.sh
 * compiles into each binary, the pages' Content-Security-Policy, and the answer that serves
 * one file with it, an ETag and revalidation on every use. Each daemon keeps only its own
 * routes (which paths are pages). */
#ifndef COMMON_WEBASSETS_H
#define COMMON_WEBASSETS_H

#include <stddef.h>

#include "http.h"

/* One embedded file (a row of a generated table; strings and bytes static). */
typedef struct webasset {
    const char *path; /* "/app.js" */
    const char *type; /* Content-Type */
    const char *etag; /* quoted */
    const unsigned char *data;
    size_t len;
} webasset;

/* The pages' Content-Security-Policy, the same for every daemon and every page, tests
 * included: scripts, styles, fonts, images and fetches from this origin only; no inline script
 * or style, no eval, no framing, no plugin, no form sent elsewhere, no <base>; and DOM sinks
 * closed by Trusted Types with no policy (so no HTML string ever becomes markup). */
#define WEBASSETS_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "   \
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "            \
    "object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

/* The file of table (n rows) at path, or NULL. */
const webasset *webassets_find(const webasset *table, size_t n, const char *path);

/* 1 when path is one of the n strings of list, else 0 (a daemon's page routes). */
int webassets_in(const char *const *list, size_t n, const char *path);

/* Answers r with 405 (Allow: GET, HEAD) and returns 1 unless it is a GET or a HEAD; returns 0
 * without answering for those. For pages, and for /healthz and /metrics. */
int webassets_refuse_method(http_req *r);

/* Answers r with body (len bytes, of Content-Type type, entity tag etag) and the pages'
 * headers: the CSP, revalidation by ETag on every use (so that a new binary's pages are never
 * mixed with an old one's cached scripts, and a matching If-None-Match gets a 304), and no
 * reading by another origin. */
void webassets_send(http_req *r, const char *type, const char *etag, const void *body, size_t len);

/* Serves a (a GET or a HEAD; 405 otherwise) and returns 1; returns 0 without answering
 * when a is NULL (the path is not the pages'). */
int webassets_serve(http_req *r, const webasset *a);

/* Serves /bscal.json, the BS calendar table the pages convert dates and name months with
 * (common/web/bsdate.js), and returns 1; returns 0 without answering for any other path. */
int webassets_serve_bscal(http_req *r);

/* 1 when r is a browser's GET or HEAD of a page (Accept names text/html) outside the APIs
 * (/v1/, /open/) and the plain paths (/healthz, /metrics, /crl): a mistyped or old address
 * then gets the pages' shell, whose script says the page is not there and shows the
 * navigation, where it got the API's bare JSON. */
int webassets_wants_page(http_req *r);
/* Answers r with shell (the pages' index.html), status 404 and the pages' headers, and
 * returns 1, when webassets_wants_page(r); else returns 0 without answering. */
int webassets_not_found_page(http_req *r, const webasset *shell);

#endif
