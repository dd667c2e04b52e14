#include "personkey.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* The letters with a nukta that are also one code point, and the letter each is with the
 * nukta U+093C after it. */
static const struct {
    unsigned composed, base;
} personkey__nukta[] = {{0x0929, 0x0928}, {0x0931, 0x0930}, {0x0934, 0x0933}, {0x0958, 0x0915},
                        {0x0959, 0x0916}, {0x095A, 0x0917}, {0x095B, 0x091C}, {0x095C, 0x0921},
                        {0x095D, 0x0922}, {0x095E, 0x092B}, {0x095F, 0x092F}};

/* The code point of the three-byte Devanagari character at p (n bytes left), or 0. */
static unsigned personkey__deva(const unsigned char *p, size_t n)
{
    if (n < 3 || p[0] != 0xE0 || (p[1] != 0xA4 && p[1] != 0xA5) || (p[2] & 0xC0) != 0x80)
        return 0;
    return 0x0900 | (((unsigned)p[1] & 0x03) << 6) | (p[2] & 0x3F);
}

/* Appends the k bytes at s to out if they fit whole; 0 when they do not. */
static int personkey__put(char *out, size_t outlen, size_t *o, const void *s, size_t k)
{
    if (*o + k + 1 > outlen)
        return 0;
    memcpy(out + *o, s, k);
    *o += k;
    return 1;
}

size_t personkey(int which, const char *s, size_t n, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    int space = 0; /* a blank is pending (names) */
    if (outlen == 0)
        return 0;
    while (i < n) {
        unsigned cp = personkey__deva(p + i, n - i);
        if (cp >= 0x0966 && cp <= 0x096F) { /* a Devanagari digit */
            char d = (char)('0' + (cp - 0x0966));
            i += 3;
            if (which == PERSONKEY_NAME) {
                if (!personkey__put(out, outlen, &o, p + i - 3, 3))
                    break;
            } else if (!personkey__put(out, outlen, &o, &d, 1)) {
                break;
            }
            continue;
        }
        if (which != PERSONKEY_NAME) {
            unsigned char c = p[i++];
            if (c >= '0' && c <= '9') {
                if (!personkey__put(out, outlen, &o, &c, 1))
                    break;
            } else if (which == PERSONKEY_CITIZENSHIP &&
                       ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
                char u = (char)(c >= 'a' ? c - 32 : c);
                if (!personkey__put(out, outlen, &o, &u, 1))
                    break;
            }
            continue;
        }
        /* A name. */
        unsigned char c = p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = o > 0;
            i++;
            continue;
        }
        if (c == '.') {
            i++;
            continue;
        }
        if (n - i >= 3 && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0x8C || p[i + 2] == 0x8D)) {
            i += 3;
            continue;
        }
        if (space) {
            if (!personkey__put(out, outlen, &o, " ", 1))
                break;
            space = 0;
        }
        unsigned base = 0;
        for (size_t k = 0; cp && k < sizeof(personkey__nukta) / sizeof(personkey__nukta[0]); k++)
            if (personkey__nukta[k].composed == cp)
                base = personkey__nukta[k].base;
        if (base) {
            unsigned char two[6] = {0xE0,
                                    (unsigned char)(0xA4 | ((base >> 6) & 0x01)),
                                    (unsigned char)(0x80 | (base & 0x3F)),
                                    0xE0,
                                    0xA4,
                                    0xBC};
            if (!personkey__put(out, outlen, &o, two, sizeof(two)))
                break;
            i += 3;
            continue;
        }
        /* One character, whole: its length from its first byte. */
        size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (k > n - i)
            k = n - i;
        if (k == 1 && c >= 'A' && c <= 'Z') {
            char l = (char)(c + 32);
            if (!personkey__put(out, outlen, &o, &l, 1))
                break;
        } else if (!personkey__put(out, outlen, &o, p + i, k)) {
            break;
        }
        i += k;
    }
    if (which == PERSONKEY_PHONE && o > 10 && !memcmp(out, "977", 3)) {
        memmove(out, out + 3, o - 3);
        o -= 3;
    }
    out[o] = '\0';
    return o;
}

static void personkey__sql(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char stack[512];
    (void)argc;
    int which = sqlite3_value_int(argv[0]);
    const char *s = (const char *)sqlite3_value_text(argv[1]);
    if (s == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    size_t n = (size_t)sqlite3_value_bytes(argv[1]);
    /* A key is never longer than its text but for nuktas (6 bytes for 3). */
    size_t cap = 2 * n + 1;
    char *out = cap <= sizeof(stack) ? stack : malloc(cap);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t len = personkey(which, s, n, out, cap);
    sqlite3_result_text(ctx, out, (int)len, SQLITE_TRANSIENT);
    if (out != stack)
        free(out);
}

int personkey_register(sqlite3 *db)
{
    return sqlite3_create_function(db, "person_key", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   personkey__sql, NULL, NULL) == SQLITE_OK
               ? 0
               : REINT_EDB;
}
