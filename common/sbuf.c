#include "sbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

void sbuf_init(sbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sbuf_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void sbuf_reset(sbuf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int sbuf__reserve(sbuf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->len + n + 1 > b->max) {
        b->failed = 1;
        return -1;
    }
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c < b->len + n + 1)
        c *= 2;
    char *np = realloc(b->p, c);
    if (np == NULL) {
        b->failed = 1;
        return -1;
    }
    b->p = np;
    b->cap = c;
    return 0;
}

int sbuf_add(sbuf *b, const char *s, size_t n)
{
    if (sbuf__reserve(b, n) != 0)
        return -1;
    if (n > 0) /* s may be NULL for nothing (an empty SQLite blob) */
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

void *sbuf_extend(sbuf *b, size_t n)
{
    if (sbuf__reserve(b, n) != 0)
        return NULL;
    void *at = b->p + b->len;
    b->len += n;
    b->p[b->len] = '\0';
    return at;
}

int sbuf_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return REINT_ENOMEM;
        n *= 2;
    }
    void *np = realloc(*p, n * elem);
    if (np == NULL)
        return REINT_ENOMEM;
    *p = np;
    *cap = n;
    return 0;
}

int sbuf_puts(sbuf *b, const char *s)
{
    return sbuf_add(b, s, strlen(s));
}

int sbuf_u64(sbuf *b, uint64_t v)
{
    char tmp[20]; /* 18446744073709551615 */
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return sbuf_add(b, tmp + i, sizeof(tmp) - i);
}

int sbuf_i64(sbuf *b, int64_t v)
{
    if (v >= 0)
        return sbuf_u64(b, (uint64_t)v);
    if (sbuf_add(b, "-", 1) != 0)
        return -1;
    return sbuf_u64(b, (uint64_t)0 - (uint64_t)v); /* INT64_MIN too */
}

int sbuf_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(tmp))
        return sbuf_add(b, tmp, (size_t)n);
    if (sbuf__reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int sbuf_json_str(sbuf *b, const char *s)
{
    sbuf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sbuf_add(b, e, 2);
        } else if (c < 0x20) {
            sbuf_printf(b, "\\u%04x", c);
        } else {
            sbuf_add(b, (const char *)&c, 1);
        }
    }
    return sbuf_add(b, "\"", 1);
}

int sbuf_csv_str(sbuf *b, const char *s)
{
    int quoted = strpbrk(s, ",\"\r\n") != NULL;
    if (quoted)
        sbuf_add(b, "\"", 1);
    if (csv_formula_guarded(s))
        sbuf_add(b, "'", 1); /* inside the quotes, where a field's text starts */
    if (!quoted)
        return sbuf_puts(b, s);
    for (; *s; s++) {
        if (*s == '"')
            sbuf_add(b, "\"", 1);
        sbuf_add(b, s, 1);
    }
    return sbuf_add(b, "\"", 1);
}
