#include "receiver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "frame.h"
#include "log.h"
#include "netaddr.h"
#include "utf8.h"
#include "wire.h"

#define RECEIVER_SWEEP_MS 1000

struct receiver_peer {
    receiver *rx;
    wire *w;
    receiver_peer *next;
    int refs;       /* the connection, plus each reference the tier holds */
    int dead;       /* the connection has closed */
    int identified; /* the certificate named an identity the tier accepts */
    int hello_seen; /* Hello received; the tier is answering it */
    int session;    /* HelloReply sent */
    int holds;      /* RECEIVER_HOLD_* bits */
    int crl_left;   /* the CRL was left out of a HelloReply (said once) */
    uint32_t scope, version;
    uint64_t hello_last_seq; /* the last sequence the peer announced in Hello */
    uint64_t session_ms;     /* loop time the session opened */
    uint8_t incarnation[16];
    size_t max_frame; /* the peer's: the largest frame we may send it */
    uint64_t accepted_ms, position;
    void *data;
};

/* A refused handshake is logged the first time a client host offers a given certificate with a
 * given reason (the refusal's text names both), then once every RECEIVER_REFUSAL_REPEAT_MS with
 * the number not logged between: a node left running with a revoked certificate retries every
 * few seconds, and its every attempt was a SECURITY line. Another certificate or another reason
 * from the same host is logged at once. The refusals not yet logged are said by the sweep once
 * their interval is over, or when their entry is taken for another. More than a province's
 * municipalities fit. */
#define RECEIVER_REFUSALS          256
#define RECEIVER_REFUSAL_REPEAT_MS (10 * 60 * 1000)

typedef struct receiver_refusals {
    uint64_t key;       /* FNV-1a of host and reason; 0 for a free entry */
    char host[48];      /* the peer's address without its port */
    char why[176];      /* the refusal's text (the reason and the certificate offered) */
    uint64_t logged_ms; /* the loop's time when it was last logged */
    uint64_t seen_ms;   /* ... and last refused */
    uint64_t quiet;     /* its refusals since it was last logged, not logged */
} receiver_refusals;

struct receiver {
    receiver_refusals refused[RECEIVER_REFUSALS];
    receiver_opts o;
    char listen[128], what[16], self[32];
    uv_tcp_t server;
    uv_timer_t sweep;
    receiver_peer *peers;
    int stopping, port;
    int live; /* open handles plus peers not yet freed */
    receiver_metrics m;
};

static void receiver__release(receiver *rx)
{
    if (--rx->live == 0)
        free(rx);
}

void receiver_peer_ref(receiver_peer *p)
{
    p->refs++;
}

void receiver_peer_unref(receiver_peer *p)
{
    if (--p->refs > 0)
        return;
    receiver *rx = p->rx;
    if (rx->o.ops.release)
        rx->o.ops.release(rx->o.ud, p);
    free(p);
    receiver__release(rx);
}

int receiver_peer_dead(const receiver_peer *p)
{
    return p->dead || wire_is_closing(p->w);
}

int receiver_peer_session(const receiver_peer *p)
{
    return p->session;
}

uint32_t receiver_peer_scope(const receiver_peer *p)
{
    return p->scope;
}

const uint8_t *receiver_peer_incarnation(const receiver_peer *p)
{
    return p->incarnation;
}

uint32_t receiver_peer_version(const receiver_peer *p)
{
    return p->version;
}

size_t receiver_peer_max_frame(const receiver_peer *p)
{
    return p->max_frame;
}

const char *receiver_peer_addr(const receiver_peer *p)
{
    return p->dead ? "(closed)" : wire_addr(p->w);
}

const char *receiver_peer_serial(const receiver_peer *p)
{
    return p->dead ? "?" : wire_peer_serial(p->w);
}

const char *receiver_peer_bad_record(receiver_peer *p, size_t index)
{
    return p->dead ? NULL : wire_bad_record(p->w, index);
}

void *receiver_peer_data(const receiver_peer *p)
{
    return p->data;
}

void receiver_peer_set_data(receiver_peer *p, void *data)
{
    p->data = data;
}

uint64_t receiver_peer_position(const receiver_peer *p)
{
    return p->position;
}

void receiver_peer_advance(receiver_peer *p, uint64_t seq)
{
    if (seq > p->position)
        p->position = seq;
}

/* The peer's name in logs: its identity once known, else its address. */
static const char *receiver__name(const receiver_peer *p)
{
    return p->dead ? "(closed)" : wire_peer(p->w);
}

void receiver_close(receiver_peer *p)
{
    if (!p->dead)
        wire_close(p->w);
}

static void receiver__fail(receiver_peer *p, Reint__V1__ErrorCode code, const char *what)
{
    if (!p->dead)
        wire_fail(p->w, code, what);
}

void receiver_protocol_error(receiver_peer *p, const char *what)
{
    p->rx->m.protocol_errors++;
    log_warn("%s (%s): protocol error: %s; connection closed", receiver__name(p),
             receiver_peer_addr(p), what);
    receiver__fail(p, REINT__V1__ERROR_CODE__ERROR_CODE_PROTOCOL, what);
}

void receiver_security(receiver_peer *p, const char *what)
{
    p->rx->m.security_events++;
    log_security("%s (%s, certificate serial %s): %s; connection closed", receiver__name(p),
                 receiver_peer_addr(p), receiver_peer_serial(p)[0] ? receiver_peer_serial(p) : "-",
                 what);
    receiver__fail(p, REINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN, what);
}

void receiver_internal_error(receiver_peer *p, const char *what)
{
    log_error("%s (%s): %s; connection closed so that the sender retries", receiver__name(p),
              receiver_peer_addr(p), what);
    receiver__fail(p, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, what);
}

int receiver_send(receiver_peer *p, const Reint__V1__Envelope *env)
{
    if (receiver_peer_dead(p))
        return UV_ENOTCONN;
    return wire_send(p->w, env);
}

int receiver_check_batch(receiver_peer *p, uint64_t first_seq, uint64_t last_seq,
                         const uint64_t *seqs, size_t n_seqs, size_t n_items)
{
    char why[200];
    if (n_seqs != n_items || first_seq == 0 || first_seq > last_seq) {
        receiver_protocol_error(p, "batch sequence numbers do not match its items");
        return 1;
    }
    if (first_seq > p->position + 1) {
        snprintf(why, sizeof(why), "batch starts at %llu but the %s holds only through %llu",
                 (unsigned long long)first_seq, p->rx->self, (unsigned long long)p->position);
        receiver_protocol_error(p, why);
        return 1;
    }
    /* A session outlives its Hello (entries made since are sent in it), so a batch may end
     * past the Hello's last_seq, but never by more than a sender could have issued since,
     * and never at 2^53 or beyond: no position a receiver keeps can make a counter wrap. */
    if (last_seq >= RECEIVER_SEQ_LIMIT ||
        (last_seq > p->hello_last_seq && last_seq - p->position > RECEIVER_SEQ_STEP)) {
        snprintf(why, sizeof(why),
                 "batch ends at %llu, beyond the last sequence %llu announced in Hello",
                 (unsigned long long)last_seq, (unsigned long long)p->hello_last_seq);
        receiver_protocol_error(p, why);
        return 1;
    }
    for (size_t i = 0; i < n_seqs; i++) {
        uint64_t prev = i ? seqs[i - 1] : first_seq - 1;
        if (seqs[i] <= prev || seqs[i] > last_seq) {
            receiver_protocol_error(p, "batch sequence numbers out of order");
            return 1;
        }
    }
    return 0;
}

void receiver_refusal_set(receiver_refusal *r, const char *field, const char *reason)
{
    utf8_scrub(r->field, sizeof(r->field), field);
    utf8_scrub(r->reason, sizeof(r->reason), reason);
}

int receiver_too_far_ahead(const receiver_peer *p, uint64_t version)
{
    return (version >> 16) > clock_now_ms() + p->rx->o.max_ahead_ms;
}

void receiver_clock_ahead(receiver_peer *p, const char *what)
{
    char why[360], now[24];
    p->rx->m.clock_refusals++;
    /* The receiver's own time goes with the refusal: the sender's operator can then see
     * which of the two clocks is wrong (a receiver whose clock is behind refuses every
     * sender, and re-initialising them would be the wrong fix). */
    time_t t = (time_t)(clock_now_ms() / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(now, sizeof(now), "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(now, sizeof(now), "unknown");
    snprintf(why, sizeof(why),
             "%s is more than %llu s ahead of the %s's clock, which reads %s: check the "
             "sender's clock and the %s's; the batch is refused whole and nothing of it is "
             "stored",
             what, (unsigned long long)(p->rx->o.max_ahead_ms / 1000), p->rx->self, now,
             p->rx->self);
    log_warn("%s (%s): %s", receiver__name(p), receiver_peer_addr(p), why);
    receiver__fail(p, REINT__V1__ERROR_CODE__ERROR_CODE_CLOCK_AHEAD, why);
}

size_t receiver_refusals_per_ack(const receiver_peer *p)
{
    /* A refusal takes at most about 300 bytes packed (id, seq, a 63-byte field name, a
     * 199-byte reason, tags and lengths); the ack's own fields take a few dozen. */
    size_t n = (p->max_frame - 64) / 320;
    return n ? n : 1;
}

int receiver_welcome(receiver_peer *p, Reint__V1__HelloReply *r)
{
    if (receiver_peer_dead(p))
        return UV_ENOTCONN;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    if (r->clock == 0)
        r->clock = clock_now_ms();
    r->max_frame = (uint32_t)p->rx->o.max_frame;
    /* The CA-signed CRL travels down with every HelloReply: a sender that was offline past
     * its CRL's nextUpdate refreshes it here, and checks this receiver against it. */
    uint8_t *crl = NULL;
    size_t crl_len = 0;
    if (r->crl.len == 0 && tls_ctx_crl_pem(p->rx->o.tls, &crl, &crl_len) == 0 && crl_len) {
        r->crl.data = crl;
        r->crl.len = crl_len;
    }
    env.msg_case = REINT__V1__ENVELOPE__MSG_HELLO_REPLY;
    env.hello_reply = r;
    /* A peer that announced small frames still gets its HelloReply: the CRL (which grows with
     * every revocation) is left out when it would not fit even without the directives, which
     * are trimmed first, and the log says so once. */
    size_t n_directives = r->n_directives;
    r->n_directives = 0;
    int crl_fits = !crl || reint__v1__envelope__get_packed_size(&env) <= p->max_frame;
    r->n_directives = n_directives;
    if (!crl_fits) {
        if (!p->crl_left++)
            log_warn("%s (%s): the CRL (%zu bytes) is left out of the HelloReply: it does not "
                     "fit the %zu-byte frames this peer announced; give it the CRL by hand",
                     receiver__name(p), receiver_peer_addr(p), crl_len, p->max_frame);
        r->crl.data = NULL;
        r->crl.len = 0;
    }
    while (r->n_directives > 0 && reint__v1__envelope__get_packed_size(&env) > p->max_frame)
        r->n_directives /= 2;
    int rc = wire_send(p->w, &env);
    if (crl) {
        r->crl.data = NULL;
        r->crl.len = 0;
        free(crl);
    }
    if (rc != 0)
        return rc;
    p->position = r->acked_seq;
    p->session = 1;
    p->session_ms = uv_now(p->rx->o.loop);
    p->rx->m.sessions++;
    /* The session may now send frames up to this receiver's limit. */
    wire_set_read_max(p->w, p->rx->o.max_frame);
    return 0;
}

int receiver_ack(receiver_peer *p, uint64_t acked_seq, uint64_t acked_version,
                 const receiver_refusal *refusals, size_t n)
{
    if (receiver_peer_dead(p))
        return 0;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Ack ack = REINT__V1__ACK__INIT;
    Reint__V1__Refusal *rs = NULL, **rp = NULL;
    if (n) {
        rs = calloc(n, sizeof(*rs));
        rp = calloc(n, sizeof(*rp));
        if (rs == NULL || rp == NULL) {
            free(rs);
            free(rp);
            receiver_internal_error(p, "out of memory for an acknowledgement");
            return REINT_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        reint__v1__refusal__init(&rs[i]);
        if (refusals[i].has_id) {
            rs[i].id.data = (uint8_t *)refusals[i].id;
            rs[i].id.len = 16;
        }
        rs[i].seq = refusals[i].seq;
        rs[i].field = (char *)refusals[i].field;
        rs[i].reason = (char *)refusals[i].reason;
        rp[i] = &rs[i];
    }
    ack.acked_seq = acked_seq;
    ack.acked_version = acked_version;
    ack.n_refusals = n;
    ack.refusals = rp;
    env.msg_case = REINT__V1__ENVELOPE__MSG_ACK;
    env.ack = &ack;
    int rc = wire_send(p->w, &env);
    free(rs);
    free(rp);
    if (rc != 0)
        receiver_internal_error(p, "acknowledgement could not be sent");
    return rc;
}

void receiver_peer_hold(receiver_peer *p, int reason)
{
    if (p->dead)
        return;
    if (p->holds == 0)
        wire_pause(p->w);
    p->holds |= reason;
}

void receiver_peer_release(receiver_peer *p, int reason)
{
    if (p->dead || (p->holds & reason) == 0)
        return;
    p->holds &= ~reason;
    if (p->holds == 0)
        wire_resume(p->w);
}

void receiver_hold_all(receiver *rx, int reason)
{
    for (receiver_peer *p = rx->peers; p; p = p->next)
        receiver_peer_hold(p, reason);
}

void receiver_release_all(receiver *rx, int reason)
{
    for (receiver_peer *p = rx->peers; p; p = p->next)
        receiver_peer_release(p, reason);
}

void receiver_each_session(receiver *rx, void (*fn)(receiver_peer *p, void *arg), void *arg)
{
    for (receiver_peer *p = rx->peers; p; p = p->next)
        if (p->session && !receiver_peer_dead(p))
            fn(p, arg);
}

/* Hello: the version, then one session per scope, then the tier. Returns as on_envelope. */
static int receiver__hello(receiver_peer *p, const Reint__V1__Hello *h)
{
    receiver *rx = p->rx;
    char why[160];
    if (h->protocol_version < RECEIVER_PROTOCOL_MIN ||
        h->protocol_version > RECEIVER_PROTOCOL_MAX) {
        rx->m.version_refusals++;
        snprintf(why, sizeof(why),
                 "protocol version %u not supported (this %s speaks %d to %d); upgrade needed",
                 h->protocol_version, rx->self, RECEIVER_PROTOCOL_MIN, RECEIVER_PROTOCOL_MAX);
        log_warn("%s (%s): %s", receiver__name(p), receiver_peer_addr(p), why);
        receiver__fail(p, REINT__V1__ERROR_CODE__ERROR_CODE_VERSION, why);
        return 1;
    }
    if (h->incarnation.len != 16) {
        receiver_protocol_error(p, "hello incarnation must be 16 bytes");
        return 1;
    }
    if (h->max_frame != 0 && h->max_frame < RECEIVER_FRAME_MIN) {
        /* No HelloReply (nor any error after it) would fit: said now, under the default. */
        receiver_protocol_error(p, "hello max_frame must be 0 (4 MiB) or at least 512 bytes");
        return 1;
    }
    if (h->last_seq >= RECEIVER_SEQ_LIMIT) {
        receiver_protocol_error(p, "hello last_seq must be below 2^53");
        return 1;
    }
    if (h->clock > clock_now_ms() + rx->o.max_ahead_ms) {
        receiver_clock_ahead(p, "the Hello's clock");
        return 1;
    }
    for (receiver_peer *o = rx->peers; o; o = o->next) {
        if (o != p && !o->dead && o->scope == p->scope && (o->session || o->hello_seen)) {
            /* One session per identity: the newer one takes over (refusing it instead would let
             * a stale connection lock the peer out). */
            log_info("%s reconnected from %s (certificate serial %s); closing its previous "
                     "session from %s",
                     receiver__name(p), receiver_peer_addr(p), receiver_peer_serial(p),
                     receiver_peer_addr(o));
            rx->m.sessions_replaced++;
            wire_close(o->w);
        }
    }
    p->version = h->protocol_version;
    p->hello_last_seq = h->last_seq;
    memcpy(p->incarnation, h->incarnation.data, 16);
    /* A v1 peer announces no limit: it takes the protocol's default frames. */
    p->max_frame = h->max_frame ? h->max_frame : FRAME_DEFAULT_MAX;
    wire_set_send_max(p->w, p->max_frame);
    p->hello_seen = 1;
    int rc = rx->o.ops.hello(rx->o.ud, p, h);
    if (rc < 0) {
        receiver_internal_error(p, "the session could not be opened");
        return 1;
    }
    return receiver_peer_dead(p);
}

static int receiver__on_envelope(wire *w, const Reint__V1__Envelope *env, void *ud)
{
    receiver_peer *p = ud;
    receiver *rx = p->rx;
    if (!p->identified || rx->stopping)
        return 1;
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_HELLO) {
        if (p->hello_seen) {
            receiver_protocol_error(p, "Hello sent twice");
            return 1;
        }
        return receiver__hello(p, env->hello);
    }
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_ERROR) {
        /* The peer refused something this tier sent (a node, a review change it would not
         * store): its reason goes to the log, and the connection ends. */
        char text[256];
        utf8_scrub(text, sizeof(text), env->error->message ? env->error->message : "");
        log_warn("%s %s (%s): refused what was sent: error %u: %s", rx->what, wire_peer(w),
                 wire_addr(w), env->error->code, text);
        wire_close(w);
        return 1;
    }
    if (!p->session) {
        receiver_protocol_error(p, "the session must start with Hello and wait for its reply");
        return 1;
    }
    int rc = rx->o.ops.message(rx->o.ud, p, env);
    if (rc < 0) {
        receiver_internal_error(p, reint_strerror(rc));
        return 1;
    }
    return rc != 0 || wire_is_closing(w);
}

static void receiver__on_ready(wire *w, void *ud)
{
    receiver_peer *p = ud;
    receiver *rx = p->rx;
    char why[200] = "";
    if (rx->o.ops.identify(rx->o.ud, wire_peer(w), &p->scope, why, sizeof(why)) != 0) {
        receiver_security(p, why[0] ? why : "certificate identity refused");
        return;
    }
    p->identified = 1;
}

/* Says the refusals of e not logged since its last line, if any. */
static void receiver__refusals_flush(receiver_refusals *e)
{
    if (e->quiet == 0)
        return;
    log_security("peer (%s): %llu more handshake%s refused since the last line: %s", e->host,
                 (unsigned long long)e->quiet, e->quiet == 1 ? "" : "s", e->why);
    e->quiet = 0;
}

/* Logs a handshake refused from addr ("host:port", "[v6]:port") for why, unless the same host
 * was refused for the same reason less than RECEIVER_REFUSAL_REPEAT_MS ago (then counted). */
static void receiver__refusal(receiver *rx, const char *addr, const char *why)
{
    char host[sizeof(rx->refused[0].host)];
    snprintf(host, sizeof(host), "%s", addr);
    char *colon = strrchr(host, ':');
    if (colon && colon != host)
        *colon = '\0';
    uint64_t key = 14695981039346656037ull;
    for (const char *c = host; *c; c++)
        key = (key ^ (uint8_t)*c) * 1099511628211ull;
    key = (key ^ '|') * 1099511628211ull;
    for (const char *c = why; *c; c++)
        key = (key ^ (uint8_t)*c) * 1099511628211ull;
    key |= 1; /* never 0, a free entry's */
    uint64_t now = uv_now(rx->o.loop);
    /* Its entry, else a free one, else the one refused longest ago. */
    receiver_refusals *e = NULL, *oldest = &rx->refused[0];
    for (int i = 0; i < RECEIVER_REFUSALS; i++) {
        receiver_refusals *r = &rx->refused[i];
        if (r->key == key) {
            e = r;
            break;
        }
        if (oldest->key != 0 && (r->key == 0 || r->seen_ms < oldest->seen_ms))
            oldest = r;
    }
    if (e && now - e->logged_ms < RECEIVER_REFUSAL_REPEAT_MS) {
        e->quiet++;
        e->seen_ms = now;
        return;
    }
    if (e == NULL) {
        e = oldest;
        receiver__refusals_flush(e);
        memset(e, 0, sizeof(*e));
        e->key = key;
        snprintf(e->host, sizeof(e->host), "%s", host);
        snprintf(e->why, sizeof(e->why), "%s", why);
    }
    char more[96] = "";
    if (e->quiet)
        snprintf(more, sizeof(more), " (%llu more since the last line, not logged)",
                 (unsigned long long)e->quiet);
    log_security("peer (%s): its certificate was refused at the handshake: %s%s", addr, why, more);
    e->quiet = 0;
    e->logged_ms = e->seen_ms = now;
}

static void receiver__on_close(wire *w, int status, void *ud)
{
    receiver_peer *p = ud;
    receiver *rx = p->rx;
    /* A certificate refused at the handshake (revoked, of another CA, expired) says so: a
     * revoked node's reconnects were logged as a bare "protocol error" with no address. */
    const char *tls_why = wire_tls_error(w);
    if (!p->identified && status != 0 && status != UV_EOF && tls_why && tls_why[0] &&
        strstr(tls_why, "certificate") != NULL) {
        rx->m.handshakes_refused++;
        receiver__refusal(rx, receiver_peer_addr(p), tls_why);
    } else if (status != 0 && status != UV_EOF) {
        log_info("%s: connection closed: %s", p->identified ? rx->what : "peer",
                 uv_strerror(status));
    }
    p->dead = 1;
    for (receiver_peer **pp = &rx->peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    rx->m.connected--;
    if (rx->o.ops.closed)
        rx->o.ops.closed(rx->o.ud, p);
    receiver_peer_unref(p);
}

static const wire_cb receiver__wire_cb = {
    .on_ready = receiver__on_ready,
    .on_envelope = receiver__on_envelope,
    .on_close = receiver__on_close,
};

static void receiver__on_connection(uv_stream_t *server, int status)
{
    receiver *rx = server->data;
    if (status < 0 || rx->stopping)
        return;
    receiver_peer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_error("out of memory accepting a %s connection", rx->what);
        return;
    }
    p->rx = rx;
    p->refs = 1;
    p->accepted_ms = uv_now(rx->o.loop);
    p->max_frame = FRAME_DEFAULT_MAX;
    /* Until Hello, frames are limited to what a Hello needs. */
    if (wire_accept(&p->w, rx->o.tls, server, RECEIVER_PRE_HELLO_MAX, &receiver__wire_cb, p) != 0) {
        free(p);
        return;
    }
    if ((size_t)rx->m.connected >= rx->o.max_conns) {
        rx->m.conns_refused++;
        log_warn("%s: %d connections open, the most this %s takes; closing the new one",
                 wire_addr(p->w), rx->m.connected, rx->self);
        p->dead = 0;
        rx->live++;
        p->next = rx->peers;
        rx->peers = p;
        rx->m.connected++;
        wire_close(p->w);
        return;
    }
    rx->live++;
    p->next = rx->peers;
    rx->peers = p;
    rx->m.connections++;
    rx->m.connected++;
}

/* Closes connections that have not said Hello within the deadline (slowloris), and sessions
 * past their maximum age (their peers handshake again, against the current CRL). */
static void receiver__on_sweep(uv_timer_t *t)
{
    receiver *rx = t->data;
    uint64_t now = uv_now(rx->o.loop);
    for (int i = 0; i < RECEIVER_REFUSALS; i++)
        if (rx->refused[i].quiet && now - rx->refused[i].logged_ms >= RECEIVER_REFUSAL_REPEAT_MS) {
            receiver__refusals_flush(&rx->refused[i]);
            rx->refused[i].logged_ms = now;
        }
    for (receiver_peer *p = rx->peers; p; p = p->next) {
        if (receiver_peer_dead(p))
            continue;
        if (!p->hello_seen && now - p->accepted_ms > RECEIVER_HELLO_DEADLINE_MS) {
            log_warn("%s: no Hello within %d s; closing", wire_addr(p->w),
                     RECEIVER_HELLO_DEADLINE_MS / 1000);
            rx->m.protocol_errors++;
            wire_close(p->w);
        } else if (p->session && now - p->session_ms > rx->o.max_session_ms) {
            log_info("%s: session older than %llu s; closing so that it handshakes again",
                     receiver__name(p), (unsigned long long)(rx->o.max_session_ms / 1000));
            rx->m.sessions_aged++;
            wire_close(p->w);
        }
    }
}

int receiver_recheck(receiver *rx)
{
    int closed = 0;
    for (receiver_peer *p = rx->peers; p; p = p->next) {
        if (receiver_peer_dead(p) || !p->identified)
            continue;
        if (wire_verify_again(p->w, rx->o.tls) != 0) {
            rx->m.revoked_closed++;
            closed++;
            char why[160];
            snprintf(why, sizeof(why), "certificate no longer valid after a CRL reload: %s",
                     wire_tls_error(p->w));
            if (wire_superseded(p->w)) {
                /* A rotation (pki.sh issue --force revokes the old one as superseded): routine,
                 * not a security event; the peer must come back with its new certificate. */
                log_warn("%s (%s, certificate serial %s): %s, replaced by a newer one (a "
                         "rotation); session closed: it reconnects with the new certificate",
                         receiver__name(p), receiver_peer_addr(p),
                         receiver_peer_serial(p)[0] ? receiver_peer_serial(p) : "-", why);
                receiver__fail(p, REINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN, why);
            } else {
                receiver_security(p, why);
            }
        }
    }
    if (closed)
        log_info("CRL reloaded: %d open session%s closed", closed, closed == 1 ? "" : "s");
    return closed;
}

static void receiver__on_crl_reload(void *ud)
{
    receiver_recheck(ud);
}

int receiver_start(receiver **out, const receiver_opts *opts, char *err, size_t errlen)
{
    struct sockaddr_storage sa, bound;
    int blen = sizeof(bound);
    receiver *rx = calloc(1, sizeof(*rx));
    if (rx == NULL)
        return REINT_ENOMEM;
    rx->o = *opts;
    if (rx->o.max_frame == 0)
        rx->o.max_frame = FRAME_DEFAULT_MAX;
    if (rx->o.max_ahead_ms == 0)
        rx->o.max_ahead_ms = 86400000;
    if (rx->o.max_conns == 0)
        rx->o.max_conns = 4096;
    if (rx->o.max_session_ms == 0)
        rx->o.max_session_ms = 24ULL * 3600 * 1000;
    snprintf(rx->listen, sizeof(rx->listen), "%s", opts->listen);
    snprintf(rx->what, sizeof(rx->what), "%s", opts->what ? opts->what : "peer");
    snprintf(rx->self, sizeof(rx->self), "%s", opts->self ? opts->self : "receiver");
    rx->o.listen = rx->listen;
    if (netaddr_parse(rx->listen, &sa) != 0) {
        snprintf(err, errlen, "sync listen address \"%s\" is not HOST:PORT", rx->listen);
        free(rx);
        return REINT_EINVAL;
    }
    int rc = uv_tcp_init(opts->loop, &rx->server);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", rx->listen, uv_strerror(rc));
        free(rx);
        return rc;
    }
    rx->server.data = rx;
    rx->live = 1;
    rc = uv_tcp_bind(&rx->server, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&rx->server, 511, receiver__on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&rx->server, (struct sockaddr *)&bound, &blen);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", rx->listen, uv_strerror(rc));
        rx->stopping = 1;
        uv_close((uv_handle_t *)&rx->server, NULL);
        return rc; /* leaked on purpose: the handle closes on the loop and the caller exits */
    }
    rx->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_init(opts->loop, &rx->sweep);
    rx->sweep.data = rx;
    rx->live++;
    uv_timer_start(&rx->sweep, receiver__on_sweep, RECEIVER_SWEEP_MS, RECEIVER_SWEEP_MS);
    uv_unref((uv_handle_t *)&rx->sweep);
    tls_ctx_on_reload(rx->o.tls, receiver__on_crl_reload, rx);
    *out = rx;
    return 0;
}

int receiver_port(const receiver *rx)
{
    return rx->port;
}

void receiver_get_metrics(const receiver *rx, receiver_metrics *m)
{
    *m = rx->m;
}

static void receiver__on_handle_closed(uv_handle_t *h)
{
    receiver__release(h->data);
}

void receiver_stop(receiver *rx)
{
    if (rx == NULL || rx->stopping)
        return;
    rx->stopping = 1;
    tls_ctx_on_reload(rx->o.tls, NULL, NULL);
    for (receiver_peer *p = rx->peers; p; p = p->next)
        if (!p->dead)
            wire_close(p->w);
    uv_timer_stop(&rx->sweep);
    uv_close((uv_handle_t *)&rx->sweep, receiver__on_handle_closed);
    uv_close((uv_handle_t *)&rx->server, receiver__on_handle_closed);
}
