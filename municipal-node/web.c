#include "web.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bscal.h"
#include "log.h"
#include "sbuf.h"

/* Paths the shell answers: the script reads the path and draws that page. */
static const char *const web__pages[] = {"/",         "/signin", "/today",        "/people",
                                         "/import",   "/months", "/availability", "/export",
                                         "/followups"};

const web_asset *web_asset_find(const char *path)
{
    for (size_t i = 0; i < web_assets_n; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

static int web__is_page(const char *path)
{
    for (size_t i = 0; i < sizeof(web__pages) / sizeof(web__pages[0]); i++)
        if (strcmp(path, web__pages[i]) == 0)
            return 1;
    /* A person's page: /people/<local_id>. */
    return strncmp(path, "/people/", 8) == 0 && path[8] != '\0';
}

/* The BS table as JSON, made once: {"first_year", "last_year", "start": [day of each year's
 * 1 Baishakh, days since 1970-01-01], "months": [[12 lengths], ...]}. NULL when out of
 * memory (then made again next time). */
static const char *web__bscal_json(size_t *len, char etag[24])
{
    static sbuf b;
    static char tag[24];
    if (b.len == 0 || b.failed) {
        sbuf_free(&b);
        sbuf_init(&b, 64 * 1024);
        sbuf_printf(&b, "{\"first_year\":%d,\"last_year\":%d,\"start\":[", BSCAL_FIRST_YEAR,
                    BSCAL_LAST_YEAR);
        for (int y = BSCAL_FIRST_YEAR; y <= BSCAL_LAST_YEAR; y++) {
            int32_t d = 0;
            if (bscal_days_from_bs(y, 1, 1, &d) != 0)
                b.failed = 1;
            sbuf_printf(&b, "%s%d", y > BSCAL_FIRST_YEAR ? "," : "", (int)d);
        }
        sbuf_puts(&b, "],\"months\":[");
        for (int y = BSCAL_FIRST_YEAR; y <= BSCAL_LAST_YEAR; y++) {
            sbuf_puts(&b, y > BSCAL_FIRST_YEAR ? ",[" : "[");
            for (int m = 1; m <= 12; m++) {
                int n = bscal_bs_month_days(y, m);
                if (n < 0)
                    b.failed = 1;
                sbuf_printf(&b, "%s%d", m > 1 ? "," : "", n);
            }
            sbuf_puts(&b, "]");
        }
        sbuf_puts(&b, "]}");
        if (b.failed) {
            log_error("web: the BS table could not be written as JSON");
            return NULL;
        }
        uint64_t h = 1469598103934665603u;
        for (size_t i = 0; i < b.len; i++)
            h = (h ^ (unsigned char)b.p[i]) * 1099511628211u;
        snprintf(tag, sizeof(tag), "\"%016llx\"", (unsigned long long)h);
    }
    *len = b.len;
    memcpy(etag, tag, sizeof(tag));
    return b.p;
}

/* Sends body with the page headers: the CSP, and revalidation by ETag on every use (so that
 * a new node binary's pages are never mixed with an old one's cached scripts). */
static void web__send(http_req *r, const char *type, const char *etag, const void *body, size_t len)
{
    const char *inm = http_req_header(r, "If-None-Match");
    http_add_header(r, "Content-Security-Policy", WEB_CSP);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "ETag", etag);
    http_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    http_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    if (inm && strcmp(inm, etag) == 0) {
        http_respond(r, 304, type, NULL, 0);
        return;
    }
    http_respond(r, 200, type, body, len);
}

int web_handle(http_req *r)
{
    const char *path = http_req_path(r), *m = http_req_method(r);
    const web_asset *a = NULL;
    size_t len = 0;
    char etag[24];
    const char *json = NULL;
    if (web__is_page(path))
        a = web_asset_find("/index.html");
    else if (strcmp(path, "/bscal.json") == 0)
        json = "";
    else
        a = web_asset_find(path);
    if (a == NULL && json == NULL)
        return 0;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        static const char msg[] = "{\"error\":\"pages are read with GET\"}";
        http_add_header(r, "Allow", "GET, HEAD");
        http_respond(r, 405, NULL, msg, sizeof(msg) - 1);
        return 1;
    }
    if (json) {
        json = web__bscal_json(&len, etag);
        if (json == NULL) {
            static const char oom[] = "{\"error\":\"out of memory\"}";
            http_respond(r, 500, NULL, oom, sizeof(oom) - 1);
            return 1;
        }
        web__send(r, "application/json; charset=utf-8", etag, json, len);
        return 1;
    }
    web__send(r, a->type, a->etag, a->data, a->len);
    return 1;
}
