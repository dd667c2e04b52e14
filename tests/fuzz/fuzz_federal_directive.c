/* libFuzzer target for the POST /v1/directives body (fdir_parse): any input is accepted or
 * refused with a reason, never crashes; an accepted one packs into a Directive that unpacks
 * again and renders (fdir_json_open) as JSON that jansson parses. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fdirectives.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdir_draft *dr = NULL;
    fdir_errors *errs = malloc(sizeof(*errs));
    if (errs == NULL)
        return 0;
    int rc = fdir_parse((const char *)data, size, &dr, errs);
    if (rc == REINT_EINVAL && errs->n == 0)
        abort(); /* a refusal always names a field */
    if (rc == 0) {
        Reint__V1__Directive *d = fdir_directive(dr);
        d->serial = 7;
        d->key_id = "fuzz";
        size_t n = reint__v1__directive__get_packed_size(d);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf == NULL)
            abort();
        reint__v1__directive__pack(d, buf);
        Reint__V1__Directive *u = reint__v1__directive__unpack(NULL, n, buf);
        if (u == NULL)
            abort();
        sbuf b;
        sbuf_init(&b, 1 << 20);
        fdir_json_open(&b, u, 20000);
        sbuf_puts(&b, "}");
        json_error_t je;
        json_t *j = b.failed ? NULL : json_loadb(b.p, b.len, 0, &je);
        if (j == NULL)
            abort();
        json_decref(j);
        sbuf_free(&b);
        reint__v1__directive__free_unpacked(u, NULL);
        free(buf);
        fdir_draft_free(dr);
    }
    free(errs);
    return 0;
}
