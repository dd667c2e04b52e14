/* libFuzzer target for bscal_parse: any text that parses, in either calendar, must format
 * back to exactly the same text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bscal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64)
        return 0; /* a date is 10 bytes; longer inputs only cost time */
    char s[65];
    memcpy(s, data, size);
    s[size] = '\0';
    for (int bs = 0; bs <= 1; bs++) {
        int32_t days;
        int rc = bscal_parse(s, bs, &days);
        if (rc == 0) {
            char out[11];
            if (bscal_format(days, bs, out, sizeof(out)) != 0 || strcmp(out, s) != 0)
                abort();
        } else if (rc != REINT_EINVAL && rc != REINT_ERANGE) {
            abort();
        }
    }
    return 0;
}
