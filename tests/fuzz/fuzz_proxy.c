/* libFuzzer target for the PROXY protocol v2 header parser (http__proxy_parse). The server
 * reads the header in steps sized by what the parser says it needs; this target replays the
 * input the same way and checks that the steps agree with one parse of the whole input,
 * that the parser always asks for more than it has, that a complete header's length is
 * within the format's bounds, and that the address it reports is the one in the input,
 * decoded here apart from the parser. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

/* The client address an input carries, decoded apart from the parser: 1 with *out set for
 * a PROXY command over TCP/IPv4 or TCP/IPv6 with a large enough block, 0 otherwise. */
static int oracle_addr(const uint8_t *d, size_t n, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (n < 16 || d[12] != 0x21)
        return 0;
    size_t len = (size_t)d[14] << 8 | d[15];
    if (d[13] == 0x11 && len >= 12 && n >= 28) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, d + 16, 4);
        memcpy(&a->sin_port, d + 24, 2);
        return 1;
    }
    if (d[13] == 0x21 && len >= 36 && n >= 52) {
        struct sockaddr_in6 a = {0};
        a.sin6_family = AF_INET6;
        memcpy(&a.sin6_addr, d + 16, 16);
        memcpy(&a.sin6_port, d + 48, 2);
        memcpy(out, &a, sizeof a);
        return 1;
    }
    return 0;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return memcmp(&x->sin_addr, &y->sin_addr, 4) == 0 && x->sin_port == y->sin_port;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 && x->sin6_port == y->sin6_port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http__proxy whole, step;
    long rc = http__proxy_parse(data, size, &whole);
    if (rc == 0 && whole.need <= size)
        abort(); /* asked for bytes it had */

    /* The server's way: never more bytes than the parser asked for. */
    size_t have = size < 16 ? size : 16;
    long inc;
    for (;;) {
        inc = http__proxy_parse(data, have, &step);
        if (inc != 0 || have == size)
            break;
        if (step.need <= have || step.need > HTTP__PROXY_KEEP)
            abort();
        have = step.need < size ? step.need : size;
    }
    if (inc != rc)
        abort(); /* the steps and the whole input disagree */
    if (rc <= 0)
        return 0;
    size_t len = (size_t)data[14] << 8 | data[15];
    if ((size_t)rc != 16 + len)
        abort();
    if (step.local != whole.local || (!step.local && !same_addr(&step.src, &whole.src)))
        abort();
    struct sockaddr_storage want;
    int has = oracle_addr(data, size, &want);
    if (has == whole.local)
        abort(); /* an address where the input has none, or none where it has one */
    if (has && !same_addr(&want, &whole.src))
        abort();
    return 0;
}
