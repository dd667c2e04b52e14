/* Frame + envelope decoding + record validation: the path every byte from a node takes
 * at the hub before anything is stored.
 *
 * And one property, enforced: whatever decodes re-encodes, the re-encoded frame decodes
 * again, and encoding that second message gives exactly the bytes of the first encoding.
 * A tier that relays or stores what it decoded (a hub relaying directives, a node re-sending
 * its outbox) must not change it by passing it on; a codec that loses or invents a field on
 * a round trip breaks that, and so does a frame header that disagrees with its payload. The
 * input itself need not be canonical (a varint may be padded, a field repeated), so it is the
 * first encoding, not the input, that is the reference. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "record.h"

/* A violated property is a crash, so that libFuzzer keeps the input as an artifact. */
static void fuzz__require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_envelope: property violated: %s\n", what);
        abort();
    }
}

/* The length in a frame's 4-byte big-endian header. */
static size_t fuzz__frame_len(const uint8_t *f)
{
    return (size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 | (size_t)f[3];
}

static void fuzz__check_reencoding(const Reint__V1__Envelope *env)
{
    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    Reint__V1__Envelope *again = NULL;
    int rc = frame_pack(env, 0, &first, &first_len);
    /* Canonical encoding can be longer than the input (a negative int32 sent as a 5-byte
     * varint takes 10), so a frame near the limit may not fit again; that is no defect. */
    if (rc == REINT_ETOOBIG)
        return;
    fuzz__require(rc == 0, "a decoded envelope does not encode");
    fuzz__require(first_len >= 4 && fuzz__frame_len(first) == first_len - 4,
                  "the frame header does not give the payload's length");
    fuzz__require(frame_unpack(first + 4, first_len - 4, &again, NULL, NULL, 0) == 0,
                  "an encoded envelope does not decode");
    fuzz__require(again->msg_case == env->msg_case, "the message kind changed on a round trip");
    fuzz__require(frame_pack(again, 0, &second, &second_len) == 0,
                  "a re-decoded envelope does not encode");
    fuzz__require(second_len == first_len && memcmp(first, second, first_len) == 0,
                  "encoding the decoded encoding gives other bytes");
    reint__v1__envelope__free_unpacked(again, NULL);
    free(first);
    free(second);
}

static int on_frame(void *ud, const uint8_t *payload, size_t len)
{
    (void)ud;
    Reint__V1__Envelope *env = NULL;
    frame_bad_records bad = {0};
    if (frame_unpack(payload, len, &env, &bad, NULL, 0) != 0) {
        frame_bad_records_free(&bad);
        return 0;
    }
    /* The list names places of the batch kept, in order. */
    for (size_t i = 0; i < bad.n; i++) {
        fuzz__require(env->msg_case == REINT__V1__ENVELOPE__MSG_BATCH &&
                          bad.v[i].index < env->batch->n_records,
                      "a bad record is a record of the batch kept");
        fuzz__require(i == 0 || bad.v[i - 1].index < bad.v[i].index,
                      "bad records are listed in their order");
    }
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_BATCH) {
        record_error err;
        for (size_t i = 0; i < env->batch->n_records; i++) {
            record_upgraded up;
            const char *field = frame_bad_record_field(&bad, i);
            /* A Record's one string field today. */
            fuzz__require(field == NULL || strcmp(field, "person.destination_country") == 0,
                          "a bad record names the field of its string");
            record_validate(env->batch->records[i], 20000, &err);
            (void)record_kind(env->batch->records[i]);
            /* The path of a v1 node's record: its day (an unknown field's varint) becomes a
             * pair; what comes out must pack, and validate without an unknown field. */
            if (record_upgrade(env->batch->records[i], RECORD_V1_DAYS, &up, &err) == 0) {
                uint8_t *buf = malloc(reint__v1__record__get_packed_size(&up.rec) + 1);
                if (buf != NULL)
                    reint__v1__record__pack(&up.rec, buf);
                free(buf);
                if (record_validate(&up.rec, 20000, &err) != 0 &&
                    strstr(err.reason, "unknown fields are never stored") != NULL)
                    __builtin_trap();
            }
        }
    }
    fuzz__check_reencoding(env);
    reint__v1__envelope__free_unpacked(env, NULL);
    frame_bad_records_free(&bad);
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
