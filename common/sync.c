#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "frame.h"
#include "hlc.h"
#include "log.h"
#include "netaddr.h"
#include "rid.h"
#include "sbuf.h"
#include "testhook.h"
#include "wire.h"

#define SYNC_MAX_WINDOW  64
#define SYNC_RESEND_MARK UINT64_MAX
/* A receiver's position must stay below 2^53 (as the receiver checks the sender's). */
#define SYNC_SEQ_LIMIT (UINT64_C(1) << 53)
/* Versions and clocks a receiver may send ahead of this sender's clock: one day. */
#define SYNC_MAX_AHEAD_MS (86400ULL * 1000)
#define SYNC_SKEW_WARN_MS (5 * 60 * 1000)
/* How often a session looks for entries committed by another process (an import beside
 * serve); a commit in this process kicks the session at once, and municipal-node serve
 * also kicks it when another process writes the store's WAL, so the poll is the fallback
 * (a filesystem without inotify). The look is one indexed query. */
#define SYNC_POLL_MS 250
/* A connection without a session this long after it was made (a receiver that takes the TCP
 * connection but never finishes the TLS handshake, or never answers Hello) is dropped and
 * made again; a `sync` run gives up at its own deadline, whichever comes first. */
#define SYNC_SESSION_WAIT_MS (30 * 1000)
/* A session that waits for the receiver (batches in flight, or a `sync` run's review
 * changes) and hears nothing from it this long, while nothing it sent moves towards the
 * receiver either, is dropped and made again: a receiver that hung, or a connection a
 * network dropped without a word, would otherwise hold the session (and a `sync` run) for
 * ever. Far above the seconds an ack takes under the all-Nepal resync, so that a busy
 * receiver is not left; a slow link is not left while its bytes move (wire_unacked). The
 * default of sync_opts.heard_wait_ms. */
#define SYNC_HEARD_WAIT_MS (180 * 1000)
/* A poll this late after the one before comes after a stalled loop (a stopped process, a
 * paused machine): what the receiver sent meanwhile is read after it, so the wait restarts. */
#define SYNC_STALL_MS (10 * 1000)
/* A failed attempt said again at warn (the same failure in between is said at info). */
#define SYNC_FAIL_REPEAT_MS (10 * 60 * 1000)
/* Room for a frame's fixed parts: the length, the envelope and batch headers, first_seq and
 * last_seq, the seqs field's header (a bound, not an exact count). */
#define SYNC_FRAME_OVERHEAD 48
/* A receiver that refused this protocol version is asked again this rarely. */
#define SYNC_UPGRADE_RETRY_MS (10 * 60 * 1000)
/* A receiver that found this sender's clock ahead is asked again this rarely. */
#define SYNC_CLOCK_RETRY_MS (60 * 1000)
/* Missing directives asked for in one DirectiveAck (the relay sends those it holds). */
#define SYNC_DIRECTIVES_ASKED 64

/* A snapshot being sent in parts: its bytes, its sequence, and where each part's cells
 * start and end. */
typedef struct sync_split {
    sbuf item;
    uint64_t seq, first_seq; /* first_seq of every part's batch: the cursor before it + 1 */
    size_t header_len;       /* the snapshot's fields other than cells, in item */
    size_t *cut;             /* cut[k]..cut[k+1]: part k's cells, offsets in item */
    size_t n_parts, cap_cut, next;
} sync_split;

struct sync_client {
    sync_opts o;
    struct sockaddr_storage addr;
    char expect_peer[64];
    char identity[64];
    uv_timer_t timer; /* reconnect backoff and give-up */
    int no_poll;      /* test hook sync_no_poll: sessions never poll the source */
    wire *w;
    int attempt;
    int session;  /* Hello answered */
    int stopping; /* sync_stop called */
    int handles_open;
    uint64_t cursor;                    /* last sequence sent in this session */
    uint64_t inflight[SYNC_MAX_WINDOW]; /* what each batch in flight acknowledges, oldest first */
    int n_inflight;
    int resend_needed;      /* the hub asked for a full resend in this session */
    uint64_t resend_target; /* ResendComplete goes once everything through it is acked */
    int resend_sent;
    int64_t session_deadline;
    uint64_t connect_ms;      /* when the connection now open was made */
    uint64_t session_wait_ms; /* SYNC_SESSION_WAIT_MS (a test hook shortens it) */
    uint64_t heard_ms;        /* last progress on what is awaited (an ack; review changes), or
                                 of what was sent to the receiver, or last time nothing was due */
    uint64_t heard_wait_ms;   /* opts.heard_wait_ms or SYNC_HEARD_WAIT_MS (a test hook: 2 s) */
    uint64_t poll_ms;         /* the session's last poll, or its start */
    size_t unacked;           /* wire_unacked at that poll */
    size_t peer_max;          /* the receiver's frame limit (HelloReply.max_frame) */
    int read_failed;          /* an entry could not be added to the batch (memory, or the source) */
    uint64_t asked_gap;       /* the newest missing directive asked for in this session */
    sbuf recs, seqs, dropped, frame;
    sync_split split;
    sync_state st;
    /* The last failed attempt said at warn, and when: the same failure again is said at
     * info until SYNC_FAIL_REPEAT_MS have passed (a hub whose federal tier was down logged
     * "connection lost" at warn every 10 s). */
    char warned[400];
    uint64_t warned_ms;
    unsigned failures; /* attempts failed since the last session, or since warned */
};

static void sync__connect(sync_client *s);

static size_t sync__varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static size_t sync__varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static int sync__put_varint(sbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    return sbuf_add(b, (const char *)tmp, sync__varint(tmp, v));
}

static int sync__put_bytes(sbuf *b, const uint8_t *p, size_t n)
{
    return sbuf_add(b, (const char *)p, n);
}

/* Reads one varint at *p (below end). Returns 0 or -1 when it does not end in time. */
static int sync__get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            return 0;
    }
    return -1;
}

/* The frame size of the batch being built if an entry of len bytes at seq joined it. */
static size_t sync__frame_with(const sync_client *s, size_t len, uint64_t seq)
{
    return SYNC_FRAME_OVERHEAD + s->recs.len + 1 + sync__varint_len(len) + len + s->seqs.len +
           sync__varint_len(seq) + s->dropped.len;
}

/* Batch.dropped (field 5): an entry the receiver cannot take in one frame, filed by the
 * source as a dead letter. */
static int sync__drop(sync_client *s, uint64_t seq, const uint8_t *rec, size_t len)
{
    char reason[160];
    uint8_t id[16] = {0};
    int kind = 0;
    snprintf(reason, sizeof(reason),
             "record of %zu bytes is larger than the receiver's frame limit of %zu bytes", len,
             s->peer_max);
    if (s->o.source.oversized == NULL ||
        s->o.source.oversized(s->o.source.src, seq, rec, len, reason, id, &kind) != 0)
        return -1;
    sbuf m;
    sbuf_init(&m, 1024);
    sync__put_varint(&m, 0x08);
    sync__put_varint(&m, seq);
    sync__put_varint(&m, 0x12);
    sync__put_varint(&m, 16);
    sync__put_bytes(&m, id, 16);
    sync__put_varint(&m, 0x18);
    sync__put_varint(&m, (uint64_t)kind);
    sync__put_varint(&m, 0x20);
    sync__put_varint(&m, len);
    sync__put_varint(&m, 0x2a);
    sync__put_varint(&m, strlen(reason));
    sbuf_puts(&m, reason);
    int rc = m.failed || sync__put_varint(&s->dropped, 0x2a) ||
             sync__put_varint(&s->dropped, m.len) ||
             sync__put_bytes(&s->dropped, (const uint8_t *)m.p, m.len);
    sbuf_free(&m);
    if (rc == 0) {
        s->st.dropped++;
        log_warn("record at sequence %llu (%zu bytes) exceeds %s's frame limit of %zu bytes; "
                 "filed as a dead letter",
                 (unsigned long long)seq, len, s->o.expect_peer, s->peer_max);
    }
    return rc ? -1 : 0;
}

/* Prepares the parts of a snapshot too large for one frame: the cells (field 4) are shared
 * out in order among parts that each fit the receiver's frames. Returns 0 or -1 (a snapshot
 * that does not parse, or a single cell larger than a frame). */
static int sync__split_start(sync_client *s, uint64_t seq, const uint8_t *item, size_t len)
{
    sync_split *sp = &s->split;
    sbuf_reset(&sp->item);
    sp->n_parts = sp->next = 0;
    sbuf h;
    sbuf_init(&h, len + 1);
    /* The header fields (municipality, period, revision) first, the cells after them: parts
     * are built as header + part fields + a run of cells. */
    const uint8_t *p = item, *end = item + len;
    while (p < end) {
        const uint8_t *field = p;
        uint64_t tag, v;
        if (sync__get_varint(&p, end, &tag) != 0)
            goto bad;
        if ((tag & 7) == 0) {
            if (sync__get_varint(&p, end, &v) != 0)
                goto bad;
        } else if ((tag & 7) == 2) {
            if (sync__get_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
                goto bad;
            p += v;
        } else {
            goto bad;
        }
        if ((tag >> 3) != 4 && (tag >> 3) != 5 && (tag >> 3) != 6)
            sbuf_add(&h, (const char *)field, (size_t)(p - field));
    }
    sp->header_len = h.len;
    if (h.failed || sbuf_add(&sp->item, h.p, h.len) != 0 ||
        h.len + SYNC_FRAME_OVERHEAD + 32 >= s->peer_max)
        goto bad;
    /* What a part's cells may take: the frame less its fixed parts, the header, and the
     * part fields (32 bytes bound them). */
    size_t budget = s->peer_max - SYNC_FRAME_OVERHEAD - 32 - h.len;
    size_t part_bytes = 0;
    p = item;
    while (p < end) {
        const uint8_t *field = p;
        uint64_t tag, v = 0;
        sync__get_varint(&p, end, &tag);
        sync__get_varint(&p, end, &v);
        if ((tag & 7) == 2)
            p += v;
        if ((tag >> 3) != 4)
            continue;
        size_t n = (size_t)(p - field);
        if (n > budget)
            goto bad;
        if (sp->n_parts == 0 || part_bytes + n > budget) {
            if (sbuf_grow((void **)&sp->cut, &sp->cap_cut, sp->n_parts + 2, sizeof(size_t)) != 0)
                goto bad;
            sp->cut[sp->n_parts++] = sp->item.len;
            part_bytes = 0;
        }
        if (sbuf_add(&sp->item, (const char *)field, n) != 0)
            goto bad;
        part_bytes += n;
    }
    if (sp->n_parts == 0)
        goto bad;
    sp->cut[sp->n_parts] = sp->item.len;
    sp->seq = seq;
    sp->first_seq = s->cursor + 1;
    sbuf_free(&h);
    log_info("snapshot at sequence %llu (%zu bytes) goes to %s in %zu parts",
             (unsigned long long)seq, len, s->o.expect_peer, sp->n_parts);
    return 0;
bad:
    sbuf_free(&h);
    sp->n_parts = 0;
    log_error("snapshot at sequence %llu (%zu bytes) cannot be split below %zu bytes a frame",
              (unsigned long long)seq, len, s->peer_max);
    return -1;
}

static int sync__add_entry(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec, size_t len)
{
    (void)version;
    sync_client *s = ud;
    if (sync__frame_with(s, len, seq) > s->peer_max) {
        if (s->recs.len > 0 || s->dropped.len > 0)
            return 1; /* the batch is full: this entry starts the next one */
        /* Alone above the limit: a snapshot goes in parts, a record is dropped. */
        if (s->o.payload == SYNC_SNAPSHOTS) {
            s->read_failed = sync__split_start(s, seq, rec, len) != 0;
            return 1;
        }
        if (sync__drop(s, seq, rec, len) != 0) {
            s->read_failed = 1;
            return 1;
        }
        s->cursor = seq;
        return 0;
    }
    /* Batch.records (field 3) is a length-delimited Record, Batch.seqs (4) packed varints:
     * stored records go out as they are, without being unpacked and packed again. */
    if (sync__put_varint(&s->recs, 0x1a) || sync__put_varint(&s->recs, len) ||
        sync__put_bytes(&s->recs, rec, len) || sync__put_varint(&s->seqs, seq)) {
        s->read_failed = 1;
        return 1;
    }
    s->cursor = seq;
    return 0;
}

static void sync__note_error(sync_client *s, const char *what)
{
    snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", what);
    if (s->o.source.note)
        s->o.source.note(s->o.source.src, 0, 0, 0, what);
}

/* Frames and sends the batch built in recs, seqs and dropped (or one part of a split
 * snapshot, given in part/part_len) covering first..last. */
static int sync__send_frame(sync_client *s, uint64_t first, uint64_t last)
{
    uint8_t hdr[32], seqhdr[12], envhdr[12];
    size_t h = 0, sh = 0, eh = 0;
    hdr[h++] = 0x08;
    h += sync__varint(hdr + h, first);
    hdr[h++] = 0x10;
    h += sync__varint(hdr + h, last);
    seqhdr[sh++] = 0x22;
    sh += sync__varint(seqhdr + sh, s->seqs.len);
    size_t batch_len = h + s->recs.len + sh + s->seqs.len + s->dropped.len;
    envhdr[eh++] = (uint8_t)(s->o.payload << 3 | 2); /* Envelope.batch or .rollup_batch */
    eh += sync__varint(envhdr + eh, batch_len);
    size_t env_len = eh + batch_len;
    uint8_t len4[4] = {(uint8_t)(env_len >> 24), (uint8_t)(env_len >> 16), (uint8_t)(env_len >> 8),
                       (uint8_t)env_len};
    sbuf_reset(&s->frame);
    if (sync__put_bytes(&s->frame, len4, 4) || sync__put_bytes(&s->frame, envhdr, eh) ||
        sync__put_bytes(&s->frame, hdr, h) ||
        sync__put_bytes(&s->frame, (const uint8_t *)s->recs.p, s->recs.len) ||
        sync__put_bytes(&s->frame, seqhdr, sh) ||
        sync__put_bytes(&s->frame, (const uint8_t *)s->seqs.p, s->seqs.len) ||
        sync__put_bytes(&s->frame, (const uint8_t *)s->dropped.p, s->dropped.len))
        return -1;
    return wire_send_raw(s->w, (const uint8_t *)s->frame.p, s->frame.len) == 0 ? 0 : -1;
}

/* Sends the next part of the snapshot being split, as the only item of a batch. The last
 * part's batch acknowledges its sequence; the others acknowledge only what came before it. */
static int sync__send_part(sync_client *s)
{
    sync_split *sp = &s->split;
    size_t k = sp->next;
    sbuf_reset(&s->recs);
    sbuf_reset(&s->seqs);
    sbuf_reset(&s->dropped);
    size_t cells = sp->cut[k + 1] - sp->cut[k];
    /* RollupSnapshot: header, part (field 5), parts (field 6), this part's cells. */
    size_t item_len =
        sp->header_len + 1 + sync__varint_len(k) + 1 + sync__varint_len(sp->n_parts) + cells;
    if (sync__put_varint(&s->recs, 0x1a) || sync__put_varint(&s->recs, item_len) ||
        sync__put_bytes(&s->recs, (const uint8_t *)sp->item.p, sp->header_len) ||
        sync__put_varint(&s->recs, 0x28) || sync__put_varint(&s->recs, k) ||
        sync__put_varint(&s->recs, 0x30) || sync__put_varint(&s->recs, sp->n_parts) ||
        sync__put_bytes(&s->recs, (const uint8_t *)sp->item.p + sp->cut[k], cells) ||
        sync__put_varint(&s->seqs, sp->seq))
        return -1;
    if (sync__send_frame(s, sp->first_seq, sp->seq) != 0)
        return -1;
    sp->next++;
    s->st.parts_sent++;
    int last = sp->next == sp->n_parts;
    s->inflight[s->n_inflight++] = last ? sp->seq : sp->first_seq - 1;
    if (last) {
        s->cursor = sp->seq;
        sp->n_parts = sp->next = 0;
    }
    return 1;
}

/* Reads the next entries after the cursor and sends them as one framed batch. Returns 1 when
 * a batch was sent, 0 when nothing is left, -1 on error. */
static int sync__send_batch(sync_client *s)
{
    if (s->split.n_parts)
        return sync__send_part(s);
    uint64_t first = s->cursor + 1;
    sbuf_reset(&s->recs);
    sbuf_reset(&s->seqs);
    sbuf_reset(&s->dropped);
    s->read_failed = 0;
    int n = s->o.source.read(s->o.source.src, s->cursor, (size_t)s->o.batch_records,
                             sync__add_entry, s);
    if (n < 0 || s->read_failed)
        return -1;
    if (s->recs.len == 0 && s->dropped.len == 0)
        return s->split.n_parts ? sync__send_part(s) : 0;
    if (sync__send_frame(s, first, s->cursor) != 0)
        return -1;
    s->inflight[s->n_inflight++] = s->cursor;
    s->st.records_sent += (uint64_t)n;
    return 1;
}

static void sync__finish_once(sync_client *s, int status)
{
    void (*done)(void *, int) = s->o.on_done;
    s->o.on_done = NULL;
    if (done)
        done(s->o.ud, status);
}

/* 1 when this sender checks revocation and its CRL is past nextUpdate: it then sends no
 * record, since a receiver revoked since then would not be recognised; the session stays
 * open only to fetch a fresh CRL, which every HelloReply carries (unless this sender
 * announced frames smaller than the CRL: receiver_welcome). */
static int sync__crl_expired(const sync_client *s)
{
    int64_t next = s->o.tls ? tls_ctx_crl_next_update(s->o.tls) : 0;
    return next != 0 && next * 1000 <= (int64_t)clock_now_ms();
}

/* Stops sending while the CRL is expired; returns 1 then. Ends the session (and a `sync`
 * run) so that the next HelloReply can bring a fresh CRL. */
static int sync__crl_block(sync_client *s)
{
    if (!sync__crl_expired(s)) {
        s->st.crl_expired = 0;
        return 0;
    }
    if (!s->st.crl_expired) {
        char what[200];
        snprintf(what, sizeof(what),
                 "CRL expired: the certificate revocation list is past its next update and %s "
                 "offered no newer one; no record is sent until it does",
                 s->o.expect_peer);
        log_warn("%s", what);
        sync__note_error(s, what);
    }
    s->st.crl_expired = 1;
    if (s->o.once) {
        s->stopping = 1;
        sync__finish_once(s, REINT_ESTALE);
    }
    if (s->w && !wire_is_closing(s->w))
        wire_close(s->w);
    return 1;
}

static void sync__pump(sync_client *s)
{
    if (!s->session || s->w == NULL || wire_is_closing(s->w))
        return;
    if (sync__crl_block(s))
        return;
    while (s->n_inflight < s->o.window && s->n_inflight < SYNC_MAX_WINDOW) {
        int rc = sync__send_batch(s);
        if (rc < 0) {
            sync__note_error(s, "cannot read or send the outbox");
            wire_close(s->w);
            return;
        }
        if (rc == 0)
            break;
    }
    if (s->n_inflight > 0)
        return;
    if (s->resend_needed && !s->resend_sent && s->cursor >= s->resend_target) {
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        Reint__V1__ResendComplete rc = REINT__V1__RESEND_COMPLETE__INIT;
        rc.incarnation.data = (uint8_t *)s->o.source.incarnation(s->o.source.src);
        rc.incarnation.len = 16;
        rc.last_seq = s->cursor;
        env.msg_case = REINT__V1__ENVELOPE__MSG_RESEND_COMPLETE;
        env.resend_complete = &rc;
        if (wire_send(s->w, &env) == 0) {
            s->resend_sent = 1;
            s->inflight[s->n_inflight++] = SYNC_RESEND_MARK;
            log_info("full resend of %llu entries sent; hub may now drop older copies",
                     (unsigned long long)s->cursor);
        }
        return;
    }
    if (s->o.once && !s->resend_needed && (s->o.settled == NULL || s->o.settled(s->o.ud))) {
        log_info("sync complete: everything through sequence %llu is at the hub",
                 (unsigned long long)s->cursor);
        sync__finish_once(s, 0);
        s->stopping = 1;
        wire_close(s->w);
    }
}

static void sync__on_ready(wire *w, void *ud)
{
    sync_client *s = ud;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Hello h = REINT__V1__HELLO__INIT;
    h.protocol_version = SYNC_PROTOCOL_VERSION;
    h.max_frame = (uint32_t)s->o.max_frame;
    h.calendar = (Reint__V1__Calendar)s->o.calendar;
    h.identity = s->identity;
    h.incarnation.data = (uint8_t *)s->o.source.incarnation(s->o.source.src);
    h.incarnation.len = 16;
    h.clock = clock_now_ms();
    h.last_seq = s->o.source.last_seq(s->o.source.src);
    if (s->o.fill_hello)
        s->o.fill_hello(s->o.ud, &h);
    env.msg_case = REINT__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    wire_send(w, &env);
}

/* 1 while this side waits for the receiver: an ack of a batch in flight, or, in a `sync`
 * run, the review changes the HelloReply offered. */
static int sync__awaiting(sync_client *s)
{
    return s->n_inflight > 0 || (s->o.once && s->o.settled && !s->o.settled(s->o.ud));
}

/* While a session is up the timer polls the outbox, so that entries committed by another
 * process (an import next to a running serve) are sent within a second; and it leaves a
 * session whose receiver has gone silent (SYNC_HEARD_WAIT_MS). */
static void sync__on_poll(uv_timer_t *t)
{
    sync_client *s = t->data;
    uint64_t now = uv_now(s->o.loop);
    if (s->w == NULL || wire_is_closing(s->w))
        return;
    size_t unacked = wire_unacked(s->w);
    if (now - s->poll_ms > SYNC_STALL_MS || unacked != s->unacked)
        s->heard_ms = now; /* a stalled loop, or what was sent is moving */
    s->poll_ms = now;
    s->unacked = unacked;
    if (!sync__awaiting(s)) {
        s->heard_ms = now;
    } else if (now - s->heard_ms >= s->heard_wait_ms) {
        char what[300], awaited[64];
        if (s->n_inflight)
            snprintf(awaited, sizeof(awaited), "%d batch%s awaited its ack", s->n_inflight,
                     s->n_inflight == 1 ? "" : "es");
        else
            snprintf(awaited, sizeof(awaited), "the review changes it offered were awaited");
        snprintf(what, sizeof(what),
                 "%s (%s) sent nothing for %llu ms, and took nothing more of what was sent, "
                 "while %s; connecting again",
                 s->o.expect_peer, s->o.hub, (unsigned long long)(now - s->heard_ms), awaited);
        log_warn("%s", what);
        sync__note_error(s, what);
        wire_close(s->w); /* its close schedules the next attempt, or a `sync` run's end */
        return;
    }
    if (!s->no_poll)
        sync__pump(s);
}

/* Acknowledges serial (0: none) and, when force is set or a gap newer than those already
 * asked for appeared, asks for the directives this side lacks. */
static void sync__directive_ack(sync_client *s, uint64_t serial, int force)
{
    uint64_t missing[SYNC_DIRECTIVES_ASKED];
    size_t n =
        s->o.directive_gaps ? s->o.directive_gaps(s->o.ud, missing, SYNC_DIRECTIVES_ASKED) : 0;
    int ask = n > 0 && (force || missing[n - 1] > s->asked_gap);
    if (serial == 0 && !ask)
        return;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__DirectiveAck ack = REINT__V1__DIRECTIVE_ACK__INIT;
    ack.serial = serial;
    if (ask) {
        ack.missing = missing;
        ack.n_missing = n;
        s->asked_gap = missing[n - 1];
        log_warn("asking %s for %zu missing directive%s (first %llu)", s->o.expect_peer, n,
                 n == 1 ? "" : "s", (unsigned long long)missing[0]);
    }
    env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE_ACK;
    env.directive_ack = &ack;
    if (s->w && !wire_is_closing(s->w))
        wire_send(s->w, &env);
}

static void sync__directive(sync_client *s, const Reint__V1__SignedDirective *sd)
{
    uint64_t serial = 0;
    if (s->o.on_directive == NULL || s->o.on_directive(s->o.ud, sd, &serial) != 0 || serial == 0)
        return;
    sync__directive_ack(s, serial, 0);
}

/* Records the receiver's clock against this machine's (1; 0 for a clock past 2^53, not
 * taken). Neither is known to be right: the warning says which way they differ, not which to
 * fix. */
static int sync__skew(sync_client *s, uint64_t peer_clock, int64_t now)
{
    if (peer_clock >= SYNC_SEQ_LIMIT) /* no clock of this era: nothing to compare */
        return 0;
    s->st.skew_ms = (int64_t)peer_clock - now;
    if (s->st.skew_ms > SYNC_SKEW_WARN_MS || s->st.skew_ms < -SYNC_SKEW_WARN_MS)
        log_warn("clock skew: %s's clock reads %lld s %s this machine's; check both clocks",
                 s->o.expect_peer, (long long)llabs(s->st.skew_ms / 1000),
                 s->st.skew_ms > 0 ? "ahead of" : "behind");
    return 1;
}

static int sync__on_hello_reply(sync_client *s, const Reint__V1__HelloReply *r)
{
    uint64_t after = 0;
    int64_t now = (int64_t)clock_now_ms();
    char why[200];
    /* Nothing a receiver says is adopted unchecked: a position past 2^53 or a version from
     * the future would make this sender's counters or clock wrap or run ahead. */
    /* (Its clock is only shown as skew: a receiver whose clock is ahead is not adopted.) */
    if (r->acked_seq >= SYNC_SEQ_LIMIT ||
        (r->acked_version >> 16) > (uint64_t)now + SYNC_MAX_AHEAD_MS) {
        snprintf(why, sizeof(why),
                 "%s answered an impossible position (sequence %llu, version %llu, clock %llu); "
                 "not adopted",
                 s->o.expect_peer, (unsigned long long)r->acked_seq,
                 (unsigned long long)r->acked_version, (unsigned long long)r->clock);
        log_security("%s", why);
        sync__note_error(s, why);
        return -1;
    }
    if (r->crl.len) {
        /* Installing a newer CRL re-checks this connection (sync__on_crl_reload). */
        char err[300];
        int rc = tls_ctx_install_crl(s->o.tls, r->crl.data, r->crl.len, err, sizeof(err));
        if (rc < 0)
            log_warn("%s offered a CRL that was not taken: %s", s->o.expect_peer, err);
        else if (rc == 1) {
            char until[32] = "?";
            time_t t = (time_t)tls_ctx_crl_next_update(s->o.tls);
            struct tm tm;
            if (gmtime_r(&t, &tm))
                strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
            log_info("CRL refreshed from %s (valid until %s)", s->o.expect_peer, until);
        }
        if (s->w == NULL || wire_is_closing(s->w))
            return -1;
    }
    (void)sync__skew(s, r->clock, now);
    if (s->o.source.observe)
        s->o.source.observe(s->o.source.src, r->acked_version);
    if (s->o.source.resume_point(s->o.source.src, r->acked_seq, r->acked_version, &after) != 0)
        return -1;
    s->cursor = after;
    s->n_inflight = 0;
    s->resend_sent = 0;
    s->split.n_parts = s->split.next = 0;
    /* A v1 receiver announces no limit: it reads frames of the protocol's default size. */
    s->peer_max = r->max_frame ? r->max_frame : FRAME_DEFAULT_MAX;
    s->st.upgrade_needed = 0;
    s->st.clock_ahead = 0;
    s->st.cert_refused = 0;
    s->resend_needed = r->resend_requested != 0;
    s->resend_target = s->o.source.last_seq(s->o.source.src);
    s->session = 1;
    s->attempt = 0;
    s->st.connected = 1;
    /* A session: the next failure is a new outage, said at warn at once (a review: one
     * within 10 minutes of the last warned was said at info only). */
    s->warned[0] = '\0';
    s->failures = 0;
    if (s->o.source.note)
        s->o.source.note(s->o.source.src, 0, now, s->st.skew_ms, "");
    s->st.last_error[0] = '\0';
    log_info("session with %s: hub holds through %llu, resuming after %llu of %llu%s",
             wire_peer(s->w), (unsigned long long)r->acked_seq, (unsigned long long)after,
             (unsigned long long)s->o.source.last_seq(s->o.source.src),
             r->resend_requested ? " (full resend requested)" : "");
    /* The timer also watches that the receiver answers; with the test hook sync_no_poll it
     * only watches. */
    s->heard_ms = s->poll_ms = uv_now(s->o.loop);
    s->unacked = 0;
    uv_timer_start(&s->timer, sync__on_poll, SYNC_POLL_MS, SYNC_POLL_MS);
    s->asked_gap = 0;
    for (size_t i = 0; i < r->n_directives; i++)
        sync__directive(s, r->directives[i]);
    if (s->asked_gap == 0)
        sync__directive_ack(s, 0, 1); /* gaps from earlier sessions are asked for again */
    if (s->o.on_session)
        s->o.on_session(s->o.ud, r);
    if (s->w == NULL || wire_is_closing(s->w))
        return 0;
    sync__pump(s);
    return 0;
}

static int sync__on_ack(sync_client *s, const Reint__V1__Ack *a)
{
    if (s->n_inflight == 0) {
        log_warn("ack with no batch in flight; closing");
        return -1;
    }
    uint64_t last = s->inflight[0];
    memmove(s->inflight, s->inflight + 1, (size_t)(s->n_inflight - 1) * sizeof(uint64_t));
    s->n_inflight--;
    if (last == SYNC_RESEND_MARK) {
        s->resend_needed = 0;
        s->st.last_sync_ms = (int64_t)clock_now_ms();
        if (s->o.source.note)
            s->o.source.note(s->o.source.src, s->st.last_sync_ms, 0, 0, NULL);
        sync__pump(s);
        return 0;
    }
    /* A receiver may acknowledge less than the batch (the refusals one ack can list); the
     * session then ends, and the rest is sent again from its position in the next one. This
     * side ends it too, rather than count on the receiver: the cursor is past what was
     * acknowledged, so the session could not send the rest, and a `sync` run would take the
     * batch for delivered. Never more than the batch. */
    int partial = a->acked_seq < last;
    if (partial)
        last = a->acked_seq;
    else if (a->acked_seq > last)
        log_security("%s acknowledged through sequence %llu, past the batch's %llu; taken as the "
                     "batch",
                     s->o.expect_peer, (unsigned long long)a->acked_seq, (unsigned long long)last);
    if (s->o.source.acked(s->o.source.src, last, (const Reint__V1__Refusal *const *)a->refusals,
                          a->n_refusals) != 0)
        return -1;
    for (size_t i = 0; i < a->n_refusals; i++) {
        char id[RID_HEX_LEN + 1] = "?";
        if (a->refusals[i]->id.len == 16)
            rid_format(a->refusals[i]->id.data, id);
        log_warn("%s refused item %s (sequence %llu): %s: %s", s->o.expect_peer, id,
                 (unsigned long long)a->refusals[i]->seq, a->refusals[i]->field,
                 a->refusals[i]->reason);
    }
    s->st.refusals += a->n_refusals;
    s->st.batches_acked++;
    s->st.last_sync_ms = (int64_t)clock_now_ms();
    if (partial) {
        log_info("%s acknowledged through sequence %llu only; the rest goes again in a new "
                 "session",
                 s->o.expect_peer, (unsigned long long)last);
        wire_close(s->w);
        return 0;
    }
    sync__pump(s);
    return 0;
}

static int sync__on_envelope(wire *w, const Reint__V1__Envelope *env, void *ud)
{
    sync_client *s = ud;
    int rc = 0;
    /* Only what is awaited restarts the wait: a receiver that sends other messages (an empty
     * Reviews, a directive) but never acks is as stuck as a silent one. */
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_ACK ||
        (env->msg_case == REINT__V1__ENVELOPE__MSG_REVIEWS && env->reviews->n_reviews > 0))
        s->heard_ms = uv_now(s->o.loop);
    switch (env->msg_case) {
    case REINT__V1__ENVELOPE__MSG_HELLO_REPLY:
        rc = s->session ? -1 : sync__on_hello_reply(s, env->hello_reply);
        break;
    case REINT__V1__ENVELOPE__MSG_ACK:
        rc = s->session ? sync__on_ack(s, env->ack) : -1;
        break;
    case REINT__V1__ENVELOPE__MSG_ERROR: {
        char what[300];
        if (env->error->code == REINT__V1__ERROR_CODE__ERROR_CODE_CLOCK_AHEAD) {
            /* Records carry versions from this machine's future: nothing is sent until its
             * clock is right (docs/OPERATIONS.md says how to recover). */
            s->st.clock_ahead = 1;
            snprintf(what, sizeof(what), "clock ahead: %s refused the batch: %s", s->o.expect_peer,
                     env->error->message ? env->error->message : "");
            /* A refusal at Hello comes before any HelloReply: the Error's clock is then the
             * only reading of the receiver's (a v1 receiver gives none). */
            if (env->error->clock && sync__skew(s, env->error->clock, (int64_t)clock_now_ms())) {
                if (s->o.source.note)
                    s->o.source.note(s->o.source.src, 0, 0, s->st.skew_ms, NULL);
            }
        } else if (env->error->code == REINT__V1__ERROR_CODE__ERROR_CODE_VERSION) {
            /* Nothing is sent until one side is upgraded; the outbox stays as it is. */
            s->st.upgrade_needed = 1;
            snprintf(what, sizeof(what), "upgrade needed: %s refused protocol version %d: %s",
                     s->o.expect_peer, SYNC_PROTOCOL_VERSION,
                     env->error->message ? env->error->message : "");
        } else {
            snprintf(what, sizeof(what), "%s error %u: %s", s->o.expect_peer, env->error->code,
                     env->error->message ? env->error->message : "");
        }
        log_warn("%s", what);
        sync__note_error(s, what);
        if (s->st.upgrade_needed && s->o.once) {
            /* Nothing will move until an upgrade: `sync` says so now rather than retrying. */
            s->stopping = 1;
            sync__finish_once(s, REINT_EVERSION);
        }
        wire_close(w);
        return 1;
    }
    case REINT__V1__ENVELOPE__MSG_DIRECTIVE:
        if (s->session)
            sync__directive(s, env->directive);
        return wire_is_closing(w);
    default:
        if (s->session && s->o.on_message && env->msg_case != REINT__V1__ENVELOPE__MSG__NOT_SET) {
            rc = s->o.on_message(s->o.ud, s, env) == 0 ? 0 : -1;
            break;
        }
        log_warn("unexpected message %d from the hub; closing", (int)env->msg_case);
        rc = -1;
    }
    if (rc != 0 && !wire_is_closing(w)) {
        wire_close(w);
        return 1;
    }
    return wire_is_closing(w);
}

static void sync__on_drain(wire *w, void *ud)
{
    (void)w;
    sync__pump(ud);
}

static void sync__maybe_free(sync_client *s)
{
    if (s->stopping && s->w == NULL && s->handles_open == 0) {
        sbuf_free(&s->recs);
        sbuf_free(&s->seqs);
        sbuf_free(&s->dropped);
        sbuf_free(&s->frame);
        sbuf_free(&s->split.item);
        free(s->split.cut);
        free(s);
    }
}

static void sync__on_timer_close(uv_handle_t *h)
{
    sync_client *s = h->data;
    s->handles_open--;
    sync__maybe_free(s);
}

static void sync__on_timer(uv_timer_t *t);

/* While a connection waits for its session: the timer fires when the wait is over, or at a
 * `sync` run's deadline if that comes first. */
static void sync__arm_wait(sync_client *s)
{
    int64_t now = (int64_t)uv_now(s->o.loop), due = (int64_t)(s->connect_ms + s->session_wait_ms);
    if (s->o.once && s->o.give_up_ms > 0 && s->session_deadline + 1 < due)
        due = s->session_deadline + 1;
    uv_timer_start(&s->timer, sync__on_timer, (uint64_t)(due > now ? due - now : 0), 0);
}

static void sync__on_timer(uv_timer_t *t)
{
    sync_client *s = t->data;
    if (s->stopping)
        return;
    /* A `sync` run gives up when it has no session by its deadline: nothing connected, or a
     * connection still without one (a hub that takes the TCP connection but never finishes
     * the TLS handshake, or never answers Hello). A session under way goes on. */
    if (s->o.once && s->o.give_up_ms > 0 && (int64_t)uv_now(s->o.loop) > s->session_deadline &&
        !s->session) {
        log_error("sync: no session with the hub within %ld ms%s; giving up", s->o.give_up_ms,
                  s->w ? " (a connection without one)" : "");
        s->stopping = 1;
        sync__finish_once(s, UV_ETIMEDOUT);
        uv_close((uv_handle_t *)&s->timer, sync__on_timer_close);
        if (s->w)
            wire_close(s->w);
        return;
    }
    if (s->w != NULL) {
        if (s->session)
            return;
        if (uv_now(s->o.loop) - s->connect_ms >= s->session_wait_ms) {
            char what[200];
            snprintf(what, sizeof(what), "no session with hub %s within %llu ms of connecting",
                     s->o.hub, (unsigned long long)s->session_wait_ms);
            log_warn("%s; connecting again", what);
            sync__note_error(s, what);
            wire_close(s->w); /* its close schedules the next attempt */
            return;
        }
        sync__arm_wait(s);
        return;
    }
    sync__connect(s);
}

static void sync__schedule(sync_client *s)
{
    if ((s->st.upgrade_needed || s->st.clock_ahead || s->st.crl_expired) && !s->o.once) {
        uv_timer_start(&s->timer, sync__on_timer,
                       s->st.upgrade_needed ? SYNC_UPGRADE_RETRY_MS : SYNC_CLOCK_RETRY_MS, 0);
        return;
    }
    /* Full jitter: a random delay up to min(cap, base * 2^attempt). */
    long cap = s->o.backoff_base_ms;
    for (int i = 0; i < s->attempt && cap < s->o.backoff_cap_ms; i++)
        cap *= 2;
    if (cap > s->o.backoff_cap_ms)
        cap = s->o.backoff_cap_ms;
    uint32_t r = 0;
    rid_random((uint8_t *)&r, sizeof(r));
    uint64_t delay = (uint64_t)(r % (uint32_t)(cap + 1));
    s->attempt++;
    uv_timer_start(&s->timer, sync__on_timer, delay, 0);
}

/* Whether a handshake's failure is the receiver's alert about this machine's certificate. */
static int sync__cert_refused(const char *tls_why)
{
    static const char *const alerts[] = {
        "alert certificate revoked", "alert bad certificate",     "alert certificate expired",
        "alert unknown ca",          "alert certificate unknown", "alert unsupported certificate"};
    for (size_t i = 0; tls_why && i < sizeof(alerts) / sizeof(alerts[0]); i++)
        if (strstr(tls_why, alerts[i]))
            return 1;
    return 0;
}

static void sync__on_close(wire *w, int status, void *ud)
{
    sync_client *s = ud;
    const char *tls_why = w ? wire_tls_error(w) : NULL;
    int had_session = s->session;
    s->w = NULL;
    s->session = 0;
    s->n_inflight = 0;
    s->split.n_parts = s->split.next = 0;
    s->st.connected = 0;
    uv_timer_stop(&s->timer);
    if (status != 0 && !s->stopping) {
        char what[400];
        if (!had_session && sync__cert_refused(tls_why)) {
            /* The receiver's alert names this machine's own certificate: retrying never
             * helps, replacing it does (an operator's attack found only "hub unreachable"). */
            s->st.cert_refused = 1;
            snprintf(what, sizeof(what),
                     "certificate refused: %s (%s) refused this machine's certificate (%s): "
                     "put a new one at [tls] cert and key and send SIGHUP (docs/OPERATIONS.md, "
                     "Certificates)",
                     s->o.expect_peer, s->o.hub, tls_why);
        } else {
            /* "lost" only for a session there was: an attempt that never had one cannot
             * reach the peer. */
            /* The reason once ("connection refused: connect: connection refused"). */
            const char *why = uv_strerror(status);
            int both = tls_why && tls_why[0] && strstr(tls_why, why) == NULL;
            snprintf(what, sizeof(what), "%s %s (%s)%s: %s%s%s",
                     had_session ? "connection to" : "cannot reach", s->o.expect_peer, s->o.hub,
                     had_session ? " lost" : "", both || !tls_why || !tls_why[0] ? why : "",
                     both ? ": " : "", tls_why && tls_why[0] ? tls_why : "");
        }
        uint64_t now = clock_mono_ms();
        s->failures++;
        if (had_session || strcmp(what, s->warned) != 0 ||
            now - s->warned_ms >= SYNC_FAIL_REPEAT_MS) {
            if (s->failures > 1 && strcmp(what, s->warned) == 0)
                log_warn("%s (%u attempts since %llu s ago)", what, s->failures,
                         (unsigned long long)((now - s->warned_ms) / 1000));
            else
                log_warn("%s", what);
            snprintf(s->warned, sizeof(s->warned), "%s", what);
            s->warned_ms = now;
            s->failures = 1;
        } else {
            log_info("%s", what);
        }
        /* A session lost is noted too: until then `municipal-node status` could only take
         * an empty last error for a session still open (a review). */
        sync__note_error(s, what);
    }
    if (s->stopping) {
        if (!uv_is_closing((uv_handle_t *)&s->timer))
            uv_close((uv_handle_t *)&s->timer, sync__on_timer_close);
        sync__maybe_free(s);
        return;
    }
    sync__schedule(s);
}

static const wire_cb sync__wire_cb = {
    .on_ready = sync__on_ready,
    .on_envelope = sync__on_envelope,
    .on_drain = sync__on_drain,
    .on_close = sync__on_close,
};

/* The CRL was reloaded (a file change, SIGHUP, or one offered in a HelloReply): the
 * receiver of an open connection is checked again and left when now revoked. */
static void sync__on_crl_reload(void *ud)
{
    sync_client *s = ud;
    if (s->w == NULL && s->st.crl_expired && !sync__crl_expired(s) && !s->stopping) {
        /* Waiting out an expired CRL: a fresh one is here, so try again now. */
        uv_timer_start(&s->timer, sync__on_timer, 0, 0);
        return;
    }
    if (s->w == NULL || wire_is_closing(s->w))
        return;
    if (wire_verify_again(s->w, s->o.tls) != 0) {
        char what[300];
        int rotated = wire_superseded(s->w);
        snprintf(what, sizeof(what),
                 "%s's certificate is no longer valid after a CRL reload (%s%s); "
                 "disconnected",
                 s->o.expect_peer, wire_tls_error(s->w),
                 rotated ? ", replaced by a newer one (a rotation)" : "");
        if (rotated) /* routine (pki.sh issue --force), not a security event */
            log_warn("%s", what);
        else
            log_security("%s", what);
        sync__note_error(s, what);
        wire_close(s->w);
    }
}

static void sync__connect(sync_client *s)
{
    int rc = wire_connect(&s->w, s->o.tls, s->o.loop, (const struct sockaddr *)&s->addr,
                          s->expect_peer, s->o.max_frame, &sync__wire_cb, s);
    if (rc != 0) {
        s->w = NULL;
        log_warn("cannot connect to hub %s: %s", s->o.hub, uv_strerror(rc));
        sync__schedule(s);
        return;
    }
    s->connect_ms = uv_now(s->o.loop);
    sync__arm_wait(s);
}

int sync_start(sync_client **out, const sync_opts *opts)
{
    sync_client *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return UV_ENOMEM;
    s->o = *opts;
    if (s->o.max_frame == 0)
        s->o.max_frame = FRAME_DEFAULT_MAX;
    /* Test hook: no session polls, so that a test sees the owner's own wake-ups
     * (municipal-node serve watches its WAL) carry another process's commits. */
    s->no_poll = testhook_fire("sync_no_poll");
    /* Test hook: a connection waits 1 s for its session, so that a test sees it made again. */
    s->session_wait_ms = testhook_fire("sync_session_wait_short") ? 1000 : SYNC_SESSION_WAIT_MS;
    /* Test hook: a session left unanswered is dropped after 2 s. */
    s->heard_wait_ms = testhook_fire("sync_heard_wait_short") ? 2000
                       : s->o.heard_wait_ms > 0               ? (uint64_t)s->o.heard_wait_ms
                                                              : SYNC_HEARD_WAIT_MS;
    /* Every buffer is bounded by the largest frame the protocol can carry. */
    sbuf_init(&s->recs, FRAME_MAX_ANY);
    sbuf_init(&s->seqs, FRAME_MAX_ANY);
    sbuf_init(&s->dropped, FRAME_MAX_ANY);
    sbuf_init(&s->frame, FRAME_MAX_ANY);
    sbuf_init(&s->split.item, FRAME_MAX_ANY);
    if (s->o.window <= 0)
        s->o.window = 8;
    if (s->o.window > SYNC_MAX_WINDOW)
        s->o.window = SYNC_MAX_WINDOW;
    if (s->o.batch_records <= 0)
        s->o.batch_records = 2000;
    if (s->o.backoff_base_ms <= 0)
        s->o.backoff_base_ms = 250;
    if (s->o.backoff_cap_ms <= 0)
        s->o.backoff_cap_ms = 30000;
    if (netaddr_parse(opts->hub, &s->addr) != 0) {
        log_error("upstream address \"%s\" is not HOST:PORT", opts->hub);
        free(s);
        return UV_EINVAL;
    }
    snprintf(s->expect_peer, sizeof(s->expect_peer), "%s", opts->expect_peer);
    snprintf(s->identity, sizeof(s->identity), "%s", opts->identity ? opts->identity : "");
    s->o.expect_peer = s->expect_peer;
    s->o.identity = s->identity;
    uv_timer_init(opts->loop, &s->timer);
    s->timer.data = s;
    s->handles_open = 1;
    s->session_deadline = (int64_t)uv_now(opts->loop) + s->o.give_up_ms;
    if (s->o.once && s->o.give_up_ms > 0)
        uv_timer_start(&s->timer, sync__on_timer, (uint64_t)s->o.give_up_ms + 1, 0);
    if (s->o.tls)
        tls_ctx_on_reload(s->o.tls, sync__on_crl_reload, s);
    sync__connect(s);
    *out = s;
    return 0;
}

void sync_kick(sync_client *s)
{
    if (s && s->session && s->n_inflight < s->o.window)
        sync__pump(s);
}

int sync_send(sync_client *s, const Reint__V1__Envelope *env)
{
    if (s == NULL || !s->session || s->w == NULL || wire_is_closing(s->w))
        return UV_ENOTCONN;
    return wire_send(s->w, env);
}

void sync_fail(sync_client *s, Reint__V1__ErrorCode code, const char *message)
{
    if (s != NULL && s->w != NULL && !wire_is_closing(s->w))
        wire_fail(s->w, code, message);
}

void sync_stop(sync_client *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = 1;
    if (s->o.tls)
        tls_ctx_on_reload(s->o.tls, NULL, NULL);
    uv_timer_stop(&s->timer);
    if (!uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, sync__on_timer_close);
    if (s->w)
        wire_close(s->w);
    sync__maybe_free(s);
}

void sync_get_state(const sync_client *s, sync_state *st)
{
    *st = s->st;
}
