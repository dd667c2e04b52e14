#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void frame_reader_init(frame_reader *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max ? max : FRAME_DEFAULT_MAX;
}

void frame_reader_set_max(frame_reader *r, size_t max)
{
    r->max = max ? max : FRAME_DEFAULT_MAX;
}

void frame_reader_free(frame_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

int frame_reader_feed(frame_reader *r, const uint8_t *data, size_t len, frame_cb cb, void *ud)
{
    while (len > 0) {
        if (r->hdr_have < 4) {
            size_t take = 4 - r->hdr_have < len ? 4 - r->hdr_have : len;
            memcpy(r->hdr + r->hdr_have, data, take);
            r->hdr_have += take;
            data += take;
            len -= take;
            if (r->hdr_have < 4)
                break; /* len is 0 */
            r->need = (size_t)r->hdr[0] << 24 | (size_t)r->hdr[1] << 16 | (size_t)r->hdr[2] << 8 |
                      (size_t)r->hdr[3];
            if (r->need > r->max)
                return REINT_ETOOBIG;
            r->have = 0;
        }
        size_t take = r->need - r->have < len ? r->need - r->have : len;
        if (r->have + take > r->cap) {
            /* Grow with what arrived, geometrically, never past this frame's length: a peer
             * that announces a large frame and sends little of it holds little memory. */
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->have + take)
                cap *= 2;
            if (cap > r->need)
                cap = r->need;
            uint8_t *nb = realloc(r->buf, cap);
            if (nb == NULL)
                return REINT_ENOMEM;
            r->buf = nb;
            r->cap = cap;
        }
        if (take > 0) {
            memcpy(r->buf + r->have, data, take);
            r->have += take;
            data += take;
            len -= take;
        }
        if (r->have == r->need) {
            r->hdr_have = 0;
            int rc = cb(ud, r->buf, r->need);
            if (rc != 0)
                return rc;
        }
    }
    /* Everything fed is consumed: unless a frame's payload is still arriving, a buffer above
     * the keep size goes back (frames that arrive together still share one buffer). */
    if (r->hdr_have < 4 && r->cap > FRAME_KEEP_MAX)
        frame_reader_free(r);
    return 0;
}

int frame_pack(const Reint__V1__Envelope *env, size_t max, uint8_t **out, size_t *outlen)
{
    size_t n = reint__v1__envelope__get_packed_size(env);
    if (n > (max ? max : FRAME_DEFAULT_MAX) || n > 0xffffffffu)
        return REINT_ETOOBIG;
    uint8_t *buf = malloc(n + 4);
    if (buf == NULL)
        return REINT_ENOMEM;
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    reint__v1__envelope__pack(env, buf + 4);
    *out = buf;
    *outlen = n + 4;
    return 0;
}

/* protobuf-c reads a tag whose varint is padded (0x80 0x00) as field number 0 and keeps it
 * as an unknown field, then writes it back as the single byte 0x00, which it refuses: a
 * message that decodes but cannot be passed on. Field number 0 is not valid protobuf. */
static int frame__has_field_zero(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v =
                *(ProtobufCMessage *const *const *)(const void *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (frame__has_field_zero(v[j]))
                    return 1;
            continue;
        }
        /* A oneof's members share one pointer: only the member in use may be read. */
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub =
            *(const ProtobufCMessage *const *)(const void *)(base + f->offset);
        if (sub != NULL && frame__has_field_zero(sub))
            return 1;
    }
    return 0;
}

/* Reads the varint at p[*i..len) into *v. Returns 0, or -1 past the end. */
static int frame__varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; *i < len && shift < 64; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* 1 when the n bytes at s are UTF-8 without a NUL: ASCII, the common case, in one pass. */
static int frame__text_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0)
            return 0;
        if (s[i] >= 0x80)
            return memchr(s + i, 0, n - i) == NULL && utf8_valid((const char *)s + i, n - i);
    }
    return 1;
}

/* A walk of the string fields of an encoded message (frame__strings_ok). */
typedef struct frame__walk {
    frame_bad_records *bad; /* a Batch's records with a bad string; NULL: records not walked */
    const ProtobufCMessageDescriptor *in; /* where the walk stopped: the message, */
    const ProtobufCFieldDescriptor *at;   /* and its string field (NULL: not a string's fault) */
    char *why;
    size_t whylen;
} frame__walk;

static int frame__record(frame__walk *w, const uint8_t *p, size_t len, int depth, size_t index);

/* The member of f's oneof already seen in this message (seen: a bit per field index), or
 * NULL: none, or f is in no oneof. */
static const ProtobufCFieldDescriptor *frame__oneof_seen(const ProtobufCMessageDescriptor *d,
                                                         const ProtobufCFieldDescriptor *f,
                                                         uint64_t seen)
{
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    for (unsigned j = 0; j < d->n_fields && j < 64; j++) {
        const ProtobufCFieldDescriptor *g = &d->fields[j];
        if ((seen >> j & 1) && (g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            g->quantifier_offset == f->quantifier_offset)
            return g;
    }
    return NULL;
}

/* Whether every string field of the message of descriptor d encoded at p (len bytes), at any
 * depth, is UTF-8 without a NUL, as proto3 asks of strings. protobuf-c hands strings on as C
 * strings and checks neither: a NUL cut a string where it stood ("\0\x1b[31m" arrived as ""),
 * with nothing said. A Record's strings do not fail the message: the record is listed in
 * w->bad (frame__record), or left alone when that is NULL. Runs on bytes protobuf-c has
 * unpacked already, so the encoding itself is well formed. Returns 0, REINT_EMALFORMED with
 * w->why naming the field (never its value), or REINT_ENOMEM. */
static int frame__strings_ok(frame__walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                             size_t len, int depth)
{
    size_t i = 0, records = 0;
    /* seen: the singular message fields met, by descriptor index (at most 13 in the proto) */
    uint64_t key, n, seen = 0;
    if (depth > FRAME_DEPTH_MAX) {
        snprintf(w->why, w->whylen, "messages nested deeper than %d", FRAME_DEPTH_MAX);
        return REINT_EMALFORMED;
    }
    while (i < len) {
        if (frame__varint(p, len, &i, &key) != 0)
            goto malformed;
        switch (key & 7) {
        case 0:
            if (frame__varint(p, len, &i, &n) != 0)
                goto malformed;
            break;
        case 1:
        case 5: {
            size_t width = (key & 7) == 1 ? 8 : 4;
            if (len - i < width)
                goto malformed;
            i += width;
            break;
        }
        case 2: {
            if (frame__varint(p, len, &i, &n) != 0 || n > len - i)
                goto malformed;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                    : NULL;
            int rc = 0;
            if (f && f->type == PROTOBUF_C_TYPE_STRING && !frame__text_ok(p + i, n)) {
                w->in = d;
                w->at = f;
                snprintf(w->why, w->whylen, "%s.%s is not UTF-8 without NUL", d->short_name,
                         f->name);
                return REINT_EMALFORMED;
            }
            /* protobuf-c keeps the last of a oneof's members sent twice (and merges another
             * singular message): the records listed from a Batch sent before another would
             * then name places in a batch that is not the one kept. No encoder sends one
             * twice. */
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
                unsigned at = (unsigned)(f - d->fields);
                if (at < 64 && (seen >> at & 1)) {
                    snprintf(w->why, w->whylen, "%s.%s appears more than once", d->short_name,
                             f->name);
                    return REINT_EMALFORMED;
                }
                /* Nor two members of one oneof: a Batch then a HelloReply kept the reply,
                 * with the records listed from the batch dropped (a fuzzer found it). */
                const ProtobufCFieldDescriptor *o = frame__oneof_seen(d, f, seen);
                if (o != NULL) {
                    snprintf(w->why, w->whylen, "%s.%s and %s.%s are members of one oneof",
                             d->short_name, o->name, d->short_name, f->name);
                    return REINT_EMALFORMED;
                }
                seen |= at < 64 ? (uint64_t)1 << at : 0;
            }
            /* A record's strings are its own: a bad one refuses that record alone, and the
             * rest of its batch is stored. */
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (f->descriptor != &reint__v1__record__descriptor)
                    rc = frame__strings_ok(w, f->descriptor, p + i, n, depth + 1);
                else if (w->bad != NULL)
                    rc = frame__record(w, p + i, n, depth + 1, records++);
            }
            if (rc != 0)
                return rc;
            i += n;
            break;
        }
        default:
            goto malformed;
        }
    }
    return 0;
malformed:
    snprintf(w->why, w->whylen, "%s is not well formed", d->short_name);
    return REINT_EMALFORMED;
}

/* Walks the index'th Record of a message; one with a bad string is added to w->bad, named as
 * its validation names fields ("person.destination_country"). */
static int frame__record(frame__walk *w, const uint8_t *p, size_t len, int depth, size_t index)
{
    frame__walk rw = {.why = w->why, .whylen = w->whylen};
    const ProtobufCMessageDescriptor *rd = &reint__v1__record__descriptor;
    int rc = frame__strings_ok(&rw, rd, p, len, depth);
    if (rc == 0 || rw.at == NULL)
        return rc;
    const ProtobufCFieldDescriptor *member = NULL;
    for (unsigned j = 0; j < rd->n_fields && rw.in != rd; j++)
        if (rd->fields[j].descriptor == rw.in)
            member = &rd->fields[j];
    frame_bad_records *b = w->bad;
    if (b->n > 0 && b->v[b->n - 1].index >= index) {
        /* Never with the check of repeated singular fields above; the search needs it. */
        snprintf(w->why, w->whylen, "records listed out of order");
        return REINT_EMALFORMED;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        frame_bad_record *v = realloc(b->v, cap * sizeof(*v));
        if (v == NULL)
            return REINT_ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    frame_bad_record *r = &b->v[b->n++];
    r->index = index;
    r->member = member;
    r->field = rw.at;
    w->why[0] = '\0';
    return 0;
}

const char *frame_bad_record_field(frame_bad_records *b, size_t index)
{
    /* The walk lists records in their order: a search, so that a batch of many bad records
     * costs its receiver no more time than a good one. */
    size_t lo = 0, hi = b != NULL ? b->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->v[mid].index == index) {
            const frame_bad_record *r = &b->v[mid];
            snprintf(b->name, sizeof(b->name), "%s%s%s", r->member ? r->member->name : "",
                     r->member ? "." : "", r->field->name);
            return b->name;
        }
        if (b->v[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void frame_bad_records_free(frame_bad_records *b)
{
    free(b->v);
    memset(b, 0, sizeof(*b));
}

int frame_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                        char *why, size_t whylen)
{
    frame__walk w = {.why = why, .whylen = whylen};
    return frame__strings_ok(&w, d, p, len, 0);
}

int frame_unpack(const uint8_t *payload, size_t len, Reint__V1__Envelope **out,
                 frame_bad_records *bad, char *why, size_t whylen)
{
    char scratch[8];
    if (why == NULL || whylen == 0) {
        why = scratch;
        whylen = sizeof(scratch);
    }
    snprintf(why, whylen, "not a protobuf Envelope");
    Reint__V1__Envelope *e = reint__v1__envelope__unpack(NULL, len, payload);
    if (e == NULL)
        return REINT_EMALFORMED;
    if (frame__has_field_zero(&e->base)) {
        snprintf(why, whylen, "a field numbered 0");
        reint__v1__envelope__free_unpacked(e, NULL);
        return REINT_EMALFORMED;
    }
    if (bad != NULL)
        bad->n = 0;
    frame__walk w = {.bad = bad, .why = why, .whylen = whylen};
    int rc = frame__strings_ok(&w, &reint__v1__envelope__descriptor, payload, len, 0);
    if (rc != 0) {
        if (rc == REINT_ENOMEM)
            snprintf(why, whylen, "out of memory");
        reint__v1__envelope__free_unpacked(e, NULL);
        return rc;
    }
    why[0] = '\0';
    *out = e;
    return 0;
}
