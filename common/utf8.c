#include "utf8.h"

#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (at most n bytes; RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when there is none. */
size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

size_t utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80; /* every byte but a continuation */
    return chars;
}

unsigned long utf8_decode(const unsigned char *s, size_t l)
{
    switch (l) {
    case 1:
        return s[0];
    case 2:
        return ((unsigned long)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3:
        return ((unsigned long)(s[0] & 0x0F) << 12) | ((unsigned long)(s[1] & 0x3F) << 6) |
               (s[2] & 0x3F);
    default:
        return ((unsigned long)(s[0] & 0x07) << 18) | ((unsigned long)(s[1] & 0x3F) << 12) |
               ((unsigned long)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

int utf8_unsafe(unsigned long cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

int utf8_invisible(unsigned long cp)
{
    /* Unicode's White_Space and Default_Ignorable_Code_Point, less U+0020 and the C0 and C1
     * controls (utf8_unsafe's), plus the blank fillers (Hangul, Braille) shown as nothing. */
    static const unsigned long ranges[][2] = {
        {0x00A0, 0x00A0},   {0x00AD, 0x00AD}, {0x034F, 0x034F},   {0x061C, 0x061C},
        {0x115F, 0x1160},   {0x1680, 0x1680}, {0x17B4, 0x17B5},   {0x180B, 0x180F},
        {0x2000, 0x200F},   {0x2028, 0x202F}, {0x205F, 0x206F},   {0x2800, 0x2800},
        {0x3000, 0x3000},   {0x3164, 0x3164}, {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},
        {0xFFA0, 0xFFA0},   {0xFFF0, 0xFFFB}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
        {0xE0000, 0xE0FFF},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return 1;
    return 0;
}

/* The byte offset in the n bytes at s of the first byte that starts no well-formed sequence,
 * or of the first character for which stop(cp, ud) is non-zero; -1 when there is none.
 * (utf8_valid keeps its own loop: it decodes nothing, on the wire's and the import's path.) */
static long utf8__find(const char *s, size_t n, int (*stop)(unsigned long cp, const void *ud),
                       const void *ud)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (l == 0 || stop(utf8_decode(p + i, l), ud))
            return (long)i;
        i += l;
    }
    return -1;
}

static int utf8__unsafe_but(unsigned long cp, const void *allowed)
{
    return utf8_unsafe(cp) &&
           !(cp < 0x20 && cp != 0 && allowed && strchr((const char *)allowed, (int)cp));
}

static int utf8__shows(unsigned long cp, const void *ud)
{
    (void)ud;
    return !(cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || utf8_invisible(cp));
}

long utf8_unsafe_at(const char *s, size_t n, const char *allowed)
{
    return utf8__find(s, n, utf8__unsafe_but, allowed);
}

int utf8_blank(const char *s, size_t n)
{
    return utf8__find(s, n, utf8__shows, NULL) < 0;
}

size_t utf8_scrub(char *dst, size_t dstlen, const char *src)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t n = strlen(src), o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (l == 0 || utf8_unsafe(utf8_decode(p + i, l))) {
            if (o + 1 >= dstlen)
                break;
            dst[o++] = '?';
            i += l ? l : 1;
            continue;
        }
        if (o + l >= dstlen)
            break;
        memcpy(dst + o, p + i, l);
        o += l;
        i += l;
    }
    dst[o] = '\0';
    return o;
}
