/* libFuzzer target for the HTTP request parser: the input is the byte stream of one
 * connection, fed through the same llhttp callbacks, bounds checks, URL/query/percent
 * decoding and one-at-a-time dispatch as the server (see http_parse_feed_for_fuzz). */
#include <stddef.h>
#include <stdint.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)http_parse_feed_for_fuzz(data, size);
    return 0;
}
