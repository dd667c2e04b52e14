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

static int web__is_page(const char *path)
{
    if (webassets_in(web__pages, sizeof(web__pages) / sizeof(web__pages[0]), path))
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

int web_handle(http_req *r)
{
    const char *path = http_req_path(r);
    if (strcmp(path, "/bscal.json") != 0)
        return webassets_serve(r, webassets_find(web_assets, web_assets_n,
                                                 web__is_page(path) ? "/index.html" : path)) ||
               webassets_not_found_page(r, webassets_find(web_assets, web_assets_n, "/index.html"));
    if (webassets_refuse_method(r))
        return 1;
    size_t len = 0;
    char etag[24];
    const char *json = web__bscal_json(&len, etag);
    if (json == NULL) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        http_respond(r, 500, NULL, oom, sizeof(oom) - 1);
        return 1;
    }
    webassets_send(r, "application/json; charset=utf-8", etag, json, len);
    return 1;
}
