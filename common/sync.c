#include "sync.h"

#include "clock.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hlc.h"
#include "log.h"
#include "netaddr.h"
#include "rid.h"
#include "wire.h"

#define SYNC_PROTOCOL_VERSION 1
#define SYNC_MAX_WINDOW       64
#define SYNC_RESEND_MARK      UINT64_MAX
#define SYNC_SKEW_WARN_MS     (5 * 60 * 1000)
/* How often a session looks for entries committed by another process (an import beside
 * serve); a commit in this process kicks the session at once. The look is one indexed
 * query, so a quarter second costs little and keeps freshness within seconds. */
#define SYNC_POLL_MS 250

/* A growable byte buffer for hand-encoding batches. */
typedef struct sync_buf {
    uint8_t *p;
    size_t len, cap;
} sync_buf;

struct sync_client {
    sync_opts o;
    struct sockaddr_storage addr;
    char expect_peer[64];
    char identity[64];
    uv_timer_t timer; /* reconnect backoff and give-up */
    wire *w;
    int attempt;
    int session;  /* Hello answered */
    int stopping; /* sync_stop called */
    int handles_open;
    uint64_t cursor;                    /* last sequence sent in this session */
    uint64_t inflight[SYNC_MAX_WINDOW]; /* last_seq of each batch in flight, oldest first */
    int n_inflight;
    int resend_needed;      /* the hub asked for a full resend in this session */
    uint64_t resend_target; /* ResendComplete goes once everything through it is acked */
    int resend_sent;
    int64_t session_deadline;
    sync_buf recs, seqs, frame;
    sync_state st;
};

static void sync__connect(sync_client *s);

static int sync__reserve(sync_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

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

static int sync__put_varint(sync_buf *b, uint64_t v)
{
    if (sync__reserve(b, 10) != 0)
        return -1;
    b->len += sync__varint(b->p + b->len, v);
    return 0;
}

static int sync__put_bytes(sync_buf *b, const uint8_t *p, size_t n)
{
    if (sync__reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int sync__add_entry(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec, size_t len)
{
    (void)version;
    sync_client *s = ud;
    /* Batch.records (field 3) is a length-delimited Record, Batch.seqs (4) packed varints:
     * stored records go out as they are, without being unpacked and packed again. */
    if (sync__put_varint(&s->recs, 0x1a) || sync__put_varint(&s->recs, len) ||
        sync__put_bytes(&s->recs, rec, len) || sync__put_varint(&s->seqs, seq))
        return -1;
    s->cursor = seq;
    return 0;
}

static void sync__note_error(sync_client *s, const char *what)
{
    snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", what);
    if (s->o.source.note)
        s->o.source.note(s->o.source.src, 0, 0, 0, what);
}

/* Reads the next entries after the cursor and sends them as one framed Batch envelope.
 * Returns 1 when a batch was sent, 0 when nothing is left, -1 on error. */
static int sync__send_batch(sync_client *s)
{
    uint64_t first = s->cursor + 1;
    uint8_t hdr[32];
    s->recs.len = s->seqs.len = s->frame.len = 0;
    int n = s->o.source.read(s->o.source.src, s->cursor, (size_t)s->o.batch_records,
                             sync__add_entry, s);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    uint64_t last = s->cursor;
    size_t h = 0;
    hdr[h++] = 0x08;
    h += sync__varint(hdr + h, first);
    hdr[h++] = 0x10;
    h += sync__varint(hdr + h, last);
    uint8_t seqhdr[12];
    size_t sh = 0;
    seqhdr[sh++] = 0x22;
    sh += sync__varint(seqhdr + sh, s->seqs.len);
    size_t batch_len = h + s->recs.len + sh + s->seqs.len;
    uint8_t envhdr[12];
    size_t eh = 0;
    envhdr[eh++] = (uint8_t)(s->o.payload << 3 | 2); /* Envelope.batch or .rollup_batch */
    eh += sync__varint(envhdr + eh, batch_len);
    size_t env_len = eh + batch_len;
    uint8_t len4[4] = {(uint8_t)(env_len >> 24), (uint8_t)(env_len >> 16), (uint8_t)(env_len >> 8),
                       (uint8_t)env_len};
    if (sync__put_bytes(&s->frame, len4, 4) || sync__put_bytes(&s->frame, envhdr, eh) ||
        sync__put_bytes(&s->frame, hdr, h) || sync__put_bytes(&s->frame, s->recs.p, s->recs.len) ||
        sync__put_bytes(&s->frame, seqhdr, sh) ||
        sync__put_bytes(&s->frame, s->seqs.p, s->seqs.len))
        return -1;
    if (wire_send_raw(s->w, s->frame.p, s->frame.len) != 0)
        return -1;
    s->inflight[s->n_inflight++] = last;
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

static void sync__pump(sync_client *s)
{
    if (!s->session || s->w == NULL || wire_is_closing(s->w))
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
    if (s->o.once && !s->resend_needed) {
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
    h.identity = s->identity;
    h.incarnation.data = (uint8_t *)s->o.source.incarnation(s->o.source.src);
    h.incarnation.len = 16;
    h.clock = clock_now_ms();
    h.last_seq = s->o.source.last_seq(s->o.source.src);
    env.msg_case = REINT__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    wire_send(w, &env);
}

/* While a session is up the timer polls the outbox, so that entries committed by another
 * process (an import next to a running serve) are sent within a second. */
static void sync__on_poll(uv_timer_t *t)
{
    sync__pump(t->data);
}

static void sync__directive(sync_client *s, const Reint__V1__SignedDirective *sd)
{
    uint64_t serial = 0;
    if (s->o.on_directive == NULL || s->o.on_directive(s->o.ud, sd, &serial) != 0 || serial == 0)
        return;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__DirectiveAck ack = REINT__V1__DIRECTIVE_ACK__INIT;
    ack.serial = serial;
    env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE_ACK;
    env.directive_ack = &ack;
    if (s->w && !wire_is_closing(s->w))
        wire_send(s->w, &env);
}

static int sync__on_hello_reply(sync_client *s, const Reint__V1__HelloReply *r)
{
    uint64_t after = 0;
    int64_t now = (int64_t)clock_now_ms();
    s->st.skew_ms = (int64_t)r->clock - now;
    if (s->st.skew_ms > SYNC_SKEW_WARN_MS || s->st.skew_ms < -SYNC_SKEW_WARN_MS)
        log_warn("clock skew with the hub is %lld s; check this machine's clock",
                 (long long)(s->st.skew_ms / 1000));
    if (s->o.source.observe)
        s->o.source.observe(s->o.source.src, r->acked_version);
    if (s->o.source.resume_point(s->o.source.src, r->acked_seq, r->acked_version, &after) != 0)
        return -1;
    s->cursor = after;
    s->n_inflight = 0;
    s->resend_sent = 0;
    s->resend_needed = r->resend_requested != 0;
    s->resend_target = s->o.source.last_seq(s->o.source.src);
    s->session = 1;
    s->attempt = 0;
    s->st.connected = 1;
    if (s->o.source.note)
        s->o.source.note(s->o.source.src, 0, now, s->st.skew_ms, "");
    s->st.last_error[0] = '\0';
    log_info("session with %s: hub holds through %llu, resuming after %llu of %llu%s",
             wire_peer(s->w), (unsigned long long)r->acked_seq, (unsigned long long)after,
             (unsigned long long)s->o.source.last_seq(s->o.source.src),
             r->resend_requested ? " (full resend requested)" : "");
    uv_timer_start(&s->timer, sync__on_poll, SYNC_POLL_MS, SYNC_POLL_MS);
    for (size_t i = 0; i < r->n_directives; i++)
        sync__directive(s, r->directives[i]);
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
    sync__pump(s);
    return 0;
}

static int sync__on_envelope(wire *w, const Reint__V1__Envelope *env, void *ud)
{
    sync_client *s = ud;
    int rc = 0;
    switch (env->msg_case) {
    case REINT__V1__ENVELOPE__MSG_HELLO_REPLY:
        rc = s->session ? -1 : sync__on_hello_reply(s, env->hello_reply);
        break;
    case REINT__V1__ENVELOPE__MSG_ACK:
        rc = s->session ? sync__on_ack(s, env->ack) : -1;
        break;
    case REINT__V1__ENVELOPE__MSG_ERROR: {
        char what[300];
        snprintf(what, sizeof(what), "hub error %u: %s", env->error->code,
                 env->error->message ? env->error->message : "");
        log_warn("%s", what);
        sync__note_error(s, what);
        wire_close(w);
        return 1;
    }
    case REINT__V1__ENVELOPE__MSG_DIRECTIVE:
        if (s->session)
            sync__directive(s, env->directive);
        return wire_is_closing(w);
    default:
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
        free(s->recs.p);
        free(s->seqs.p);
        free(s->frame.p);
        free(s);
    }
}

static void sync__on_timer_close(uv_handle_t *h)
{
    sync_client *s = h->data;
    s->handles_open--;
    sync__maybe_free(s);
}

static void sync__on_timer(uv_timer_t *t)
{
    sync_client *s = t->data;
    if (s->stopping)
        return;
    if (s->o.once && s->o.give_up_ms > 0 && (int64_t)uv_now(s->o.loop) > s->session_deadline &&
        s->w == NULL) {
        log_error("sync: no session with the hub within %ld ms; giving up", s->o.give_up_ms);
        s->stopping = 1;
        sync__finish_once(s, UV_ETIMEDOUT);
        uv_close((uv_handle_t *)&s->timer, sync__on_timer_close);
        return;
    }
    sync__connect(s);
}

static void sync__schedule(sync_client *s)
{
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

static void sync__on_close(wire *w, int status, void *ud)
{
    (void)w;
    sync_client *s = ud;
    int had_session = s->session;
    s->w = NULL;
    s->session = 0;
    s->n_inflight = 0;
    s->st.connected = 0;
    uv_timer_stop(&s->timer);
    if (status != 0 && !s->stopping) {
        char what[200];
        snprintf(what, sizeof(what), "connection to hub %s lost: %s", s->o.hub,
                 uv_strerror(status));
        log_warn("%s", what);
        if (!had_session)
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

static void sync__connect(sync_client *s)
{
    int rc = wire_connect(&s->w, s->o.tls, s->o.loop, (const struct sockaddr *)&s->addr,
                          s->expect_peer, s->o.max_frame, &sync__wire_cb, s);
    if (rc != 0) {
        s->w = NULL;
        log_warn("cannot connect to hub %s: %s", s->o.hub, uv_strerror(rc));
        sync__schedule(s);
    }
}

int sync_start(sync_client **out, const sync_opts *opts)
{
    sync_client *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return UV_ENOMEM;
    s->o = *opts;
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
    sync__connect(s);
    *out = s;
    return 0;
}

void sync_kick(sync_client *s)
{
    if (s && s->session && s->n_inflight < s->o.window)
        sync__pump(s);
}

void sync_stop(sync_client *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = 1;
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
