/* Frame + envelope decoding + record validation: the path every byte from a node takes
 * at the hub before anything is stored. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"
#include "record.h"

static int on_frame(void *ud, const uint8_t *payload, size_t len)
{
    (void)ud;
    Reint__V1__Envelope *env = NULL;
    if (frame_unpack(payload, len, &env) != 0)
        return 0;
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_BATCH) {
        record_error err;
        for (size_t i = 0; i < env->batch->n_records; i++) {
            record_validate(env->batch->records[i], 20000, &err);
            (void)record_kind(env->batch->records[i]);
        }
    }
    uint8_t *out = NULL;
    size_t n = 0;
    /* Whatever decoded must re-encode. */
    if (frame_pack(env, 0, &out, &n) == 0)
        free(out);
    reint__v1__envelope__free_unpacked(env, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame_reader r;
    frame_reader_init(&r, 1 << 20);
    /* Feed in two pieces to exercise reassembly. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    if (frame_reader_feed(&r, data, cut, on_frame, NULL) == 0)
        frame_reader_feed(&r, data + cut, size - cut, on_frame, NULL);
    frame_reader_free(&r);
    return 0;
}
