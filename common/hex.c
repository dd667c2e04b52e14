#include "hex.h"

#include <stdlib.h>

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 2 != 0)
        return REINT_EMALFORMED;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit((unsigned char)in[i]), lo = hex_digit((unsigned char)in[i + 1]);
        if (hi < 0 || lo < 0)
            return REINT_EMALFORMED;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int hex_decode_alloc(const char *in, size_t len, uint8_t **out, size_t *n)
{
    if (len % 2 != 0)
        return REINT_EMALFORMED;
    uint8_t *p = malloc(len / 2 ? len / 2 : 1);
    if (p == NULL)
        return REINT_ENOMEM;
    int rc = hex_decode(in, len, p);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *out = p;
    *n = len / 2;
    return 0;
}
