#include "query.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"

/* The characters of names and decoded values: none of them means anything to SQL, CSV,
 * JSON or a URL, so a value is never escaped again on its way out. */
static int query__char_ok(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ',' || c == '/' || c == '-' || c == '.';
}

/* Decodes src[0..n) into dst (dstlen bytes with the NUL). Returns the length, -1 for a bad
 * escape or a character outside query__char_ok (a '+', a space, a NUL among them), -2 when
 * longer than dstlen - 1. */
static long query__decode(const char *src, size_t n, char *dst, size_t dstlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)src[i];
        if (ch == '%') {
            int hi = n - i >= 3 ? hex_digit((unsigned char)src[i + 1]) : -1;
            int lo = n - i >= 3 ? hex_digit((unsigned char)src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (!query__char_ok(ch))
            return -1;
        if (o + 1 >= dstlen)
            return -2;
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return (long)o;
}

int query_parse(const char *raw, query_pairs *q, char *err, size_t errlen)
{
    q->n = 0;
    size_t rl = strnlen(raw, QUERY_MAX + 1);
    if (rl > QUERY_MAX) {
        snprintf(err, errlen, "query string is longer than %d bytes", QUERY_MAX);
        return REINT_EINVAL;
    }
    const char *s = raw, *end = raw + rl;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        size_t i = q->n;
        /* A query of "a=1&&b=2", "&a=1" or "a=1&" would read the same as "a=1&b=2" and
         * "a=1": refused, so that one query has one spelling. */
        if (pe == s || (amp != NULL && amp + 1 == end)) {
            snprintf(err, errlen,
                     "query has an empty parameter (\"&&\", or '&' at its start or end); "
                     "write name=value pairs joined by single '&'");
            return REINT_EINVAL;
        }
        if (i == QUERY_MAX_PARAMS) {
            snprintf(err, errlen, "query has more than %d parameters", QUERY_MAX_PARAMS);
            return REINT_EINVAL;
        }
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        const char *ke = eq ? eq : pe;
        query_param *p = &q->p[i];
        if (ke == s || query__decode(s, (size_t)(ke - s), p->name, sizeof(p->name)) < 0) {
            snprintf(err, errlen, "query has an unknown or malformed parameter name");
            return REINT_EINVAL;
        }
        if (eq == NULL) {
            snprintf(err, errlen, "parameter %s has no value: write %s=VALUE", p->name, p->name);
            return REINT_EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(q->p[k].name, p->name) == 0) {
                snprintf(err, errlen, "parameter %s is given more than once", p->name);
                return REINT_EINVAL;
            }
        }
        long vl = query__decode(eq + 1, (size_t)(pe - eq - 1), p->value, sizeof(p->value));
        if (vl == -2) {
            snprintf(err, errlen, "%s is longer than %d bytes", p->name, QUERY_MAX_VALUE);
            return REINT_EINVAL;
        }
        if (vl < 0) {
            snprintf(err, errlen, "%s contains characters other than A-Z a-z 0-9 _ , / - .",
                     p->name);
            return REINT_EINVAL;
        }
        q->n = i + 1;
        s = pe + (amp ? 1 : 0);
    }
    return 0;
}

const char *query_get(const query_pairs *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->p[i].name, name) == 0)
            return q->p[i].value;
    return NULL;
}

int query_format(const query_pairs *q, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return REINT_ETOOBIG;
    out[0] = '\0';
    for (size_t i = 0; i < q->n; i++) {
        int w = snprintf(out + o, outlen - o, "%s%s=%s", i ? "&" : "", q->p[i].name, q->p[i].value);
        if (w < 0 || (size_t)w >= outlen - o) {
            out[0] = '\0';
            return REINT_ETOOBIG;
        }
        o += (size_t)w;
    }
    return 0;
}
