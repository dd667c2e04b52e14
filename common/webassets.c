#include "webassets.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bscal.h"
#include "log.h"
#include "sbuf.h"

const webasset *webassets_find(const webasset *table, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].path, path) == 0)
            return &table[i];
    return NULL;
}

int webassets_in(const char *const *list, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(path, list[i]) == 0)
            return 1;
    return 0;
}

int webassets_refuse_method(http_req *r)
{
    const char *m = http_req_method(r);
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return 0;
    static const char msg[] = "{\"error\":\"this resource is read with GET or HEAD\"}";
    http_add_header(r, "Allow", "GET, HEAD");
    http_respond(r, 405, NULL, msg, sizeof(msg) - 1);
    return 1;
}

static void webassets__headers(http_req *r)
{
    http_add_header(r, "Content-Security-Policy", WEBASSETS_CSP);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    http_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

void webassets_send(http_req *r, const char *type, const char *etag, const void *body, size_t len)
{
    const char *inm = http_req_header(r, "If-None-Match");
    webassets__headers(r);
    http_add_header(r, "ETag", etag);
    if (inm && strcmp(inm, etag) == 0) {
        http_respond(r, 304, type, NULL, 0);
        return;
    }
    http_respond(r, 200, type, body, len);
}

int webassets_serve(http_req *r, const webasset *a)
{
    if (a == NULL)
        return 0;
    if (!webassets_refuse_method(r))
        webassets_send(r, a->type, a->etag, a->data, a->len);
    return 1;
}

/* The BS table as JSON, made once: {"first_year", "last_year", "start": [day of each year's
 * 1 Baishakh, days since 1970-01-01], "months": [[12 lengths], ...]}. NULL when out of
 * memory (then made again next time). */
static const char *webassets__bscal_json(size_t *len, char etag[24])
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

int webassets_serve_bscal(http_req *r)
{
    if (strcmp(http_req_path(r), "/bscal.json") != 0)
        return 0;
    if (webassets_refuse_method(r))
        return 1;
    size_t len = 0;
    char etag[24];
    const char *json = webassets__bscal_json(&len, etag);
    if (json == NULL) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        http_respond(r, 500, NULL, oom, sizeof(oom) - 1);
        return 1;
    }
    webassets_send(r, "application/json; charset=utf-8", etag, json, len);
    return 1;
}

int webassets_wants_page(http_req *r)
{
    static const char *const plain[] = {"/healthz", "/metrics", "/crl"};
    const char *m = http_req_method(r), *path = http_req_path(r);
    const char *accept = http_req_header(r, "Accept");
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
        return 0;
    if (strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/open/", 6) == 0 ||
        webassets_in(plain, sizeof(plain) / sizeof(plain[0]), path))
        return 0;
    return accept != NULL && strstr(accept, "text/html") != NULL;
}

int webassets_not_found_page(http_req *r, const webasset *shell)
{
    if (shell == NULL || !webassets_wants_page(r))
        return 0;
    webassets__headers(r);
    http_respond(r, 404, shell->type, (const char *)shell->data, shell->len);
    return 1;
}
