/* Stream framing between tiers: a 4-byte big-endian length, then one protobuf Envelope.
 * The reader accepts arbitrary read splits and refuses a frame whose announced length is
 * above its maximum before allocating anything of that size. */
#ifndef COMMON_FRAME_H
#define COMMON_FRAME_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"

#define FRAME_DEFAULT_MAX (4u * 1024u * 1024u)
/* The largest frame any configuration allows (CONFIG_FRAME_MAX). */
#define FRAME_MAX_ANY (64u * 1024u * 1024u)

typedef struct frame_reader {
    uint8_t hdr[4];
    size_t hdr_have;
    uint8_t *buf; /* payload being assembled; reused across frames */
    size_t cap;
    size_t need; /* payload length of the current frame */
    size_t have;
    size_t max;
} frame_reader;

/* Between reads a reader keeps its buffer only up to this size (enough for acks and
 * Hellos); a larger one is returned once no frame is half-received, so that an idle
 * connection holds at most this much for its frames. */
#define FRAME_KEEP_MAX (4u * 1024u)

/* Called for each complete payload (valid only during the call). A non-zero return stops
 * feeding and is returned by frame_reader_feed. */
typedef int (*frame_cb)(void *ud, const uint8_t *payload, size_t len);

void frame_reader_init(frame_reader *r, size_t max);
/* Changes the maximum for the frames after the one being read (e.g. small before Hello). */
void frame_reader_set_max(frame_reader *r, size_t max);
/* Feeds len bytes. Returns 0, REINT_ETOOBIG, REINT_ENOMEM, or the callback's return. After
 * an error the reader must not be fed again. The buffer grows with the bytes that arrive,
 * never to an announced length ahead of them. */
int frame_reader_feed(frame_reader *r, const uint8_t *data, size_t len, frame_cb cb, void *ud);
void frame_reader_free(frame_reader *r);

/* Packs env with its length header into a malloc'd buffer the caller frees. Returns 0,
 * REINT_ETOOBIG when the packed size is above max, or REINT_ENOMEM. */
int frame_pack(const Reint__V1__Envelope *env, size_t max, uint8_t **out, size_t *outlen);

/* Whether every string field of the message of descriptor d packed in the len bytes at p
 * (protobuf-c unpacked them already: the encoding is well formed) is UTF-8 without a NUL, at
 * any depth, a Record's strings aside. Returns 0, or REINT_EMALFORMED with why naming the
 * field. For messages carried as bytes (a signed directive's body). */
int frame_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                        char *why, size_t whylen);

/* Messages nest at most this deep in an Envelope (the proto has no recursive message). */
#define FRAME_DEPTH_MAX 16

/* The records of a Batch that hold a string that is not UTF-8 or holds a NUL. protobuf-c cut
 * such a string at its NUL ("QA\0..." became "QA", which validates), so the receiver refuses
 * each of these records alone, naming the field, and stores the rest of the batch. */
typedef struct frame_bad_record {
    size_t index;                           /* its place in Batch.records */
    const ProtobufCFieldDescriptor *member; /* the Record's field holding it (NULL: none), */
    const ProtobufCFieldDescriptor *field;  /* and the string field */
} frame_bad_record;

typedef struct frame_bad_records {
    frame_bad_record *v; /* in the records' order */
    size_t n, cap;
    char name[64]; /* the last name frame_bad_record_field gave */
} frame_bad_records;

/* The field of the index'th record's bad string, named as record validation names fields
 * ("person.destination_country"; valid until the next call), or NULL when its strings are
 * good. */
const char *frame_bad_record_field(frame_bad_records *b, size_t index);
void frame_bad_records_free(frame_bad_records *b);

/* Unpacks one payload into an Envelope (free with reint__v1__envelope__free_unpacked).
 * Returns 0, REINT_ENOMEM, or REINT_EMALFORMED with why (may be NULL) saying what: not an
 * Envelope, a field numbered 0, or a string field (named) that is not UTF-8 or holds a NUL,
 * outside the records of a Batch. Those records are listed in bad (emptied first), or not
 * looked at when bad is NULL. */
int frame_unpack(const uint8_t *payload, size_t len, Reint__V1__Envelope **out,
                 frame_bad_records *bad, char *why, size_t whylen);

#endif
