/* The listener: binding, accepting connections under the caps (per address, and in all with
 * the eviction of the connection that has waited longest for a request head), the counters,
 * and stopping. A stopped server frees itself once its listener and every connection have
 * closed. See http_internal.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"

#define HTTP_IDLE_TIMEOUT_MS 60000

static void server_free(http_server *s)
{
    for (size_t i = 0; i < HTTP__ADDR_BUCKETS; i++) {
        for (struct http__addr_count *e = s->addr_tab[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(s->trusted);
    free(s->proxy_from);
    free(s);
}

/* Frees a stopped server once nothing of it is open any more. */
static void server_maybe_free(http_server *s)
{
    if (s->stopping && s->listener_closed && s->nconns == 0 && !s->spare_busy)
        server_free(s);
}

void http__server_link(http_server *s, http__conn *c)
{
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
}

void http__server_unlink(http_server *s, http__conn *c)
{
    http__server_conn_closing(s, c);
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->closing)
        s->nclosing--;
    server_maybe_free(s);
}

/* ---- addresses --------------------------------------------------------------------------- */

int http__addr_from_sockaddr(const struct sockaddr *sa, http__addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        /* IPv4 counts as its IPv4-mapped IPv6 form, so that a dual-stack listener sees one
         * address either way. */
        out->b[10] = 0xff;
        out->b[11] = 0xff;
        memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

int http__addr_from_text(const char *ip, http__addr *out)
{
    memset(out, 0, sizeof *out);
    if (uv_inet_pton(AF_INET, ip, out->b + 12) == 0) {
        out->b[10] = 0xff;
        out->b[11] = 0xff;
        return 0;
    }
    return uv_inet_pton(AF_INET6, ip, out->b) == 0 ? 0 : -1;
}

static int addr_in(const http__addr *list, size_t n, const http__addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list[i].b, a->b, sizeof a->b) == 0)
            return 1;
    return 0;
}

/* Parses a comma- or space-separated list of IP addresses into a malloc'd array. Returns 0,
 * or a negative UV_E* code after logging the entry that is not an address. */
static int addr_list_parse(const char *text, const char *what, http__addr **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text)
        return 0;
    size_t cap = 0;
    for (const char *p = text; *p; p++)
        if (*p != ',' && *p != ' ' && *p != '\t' && (p == text || strchr(", \t", p[-1])))
            cap++;
    if (cap == 0)
        return 0;
    http__addr *list = calloc(cap, sizeof *list);
    if (!list)
        return UV_ENOMEM;
    const char *p = text;
    while (*p) {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            break;
        char ip[INET6_ADDRSTRLEN + 1] = "";
        if (len < sizeof ip) {
            memcpy(ip, p, len);
            ip[len] = '\0';
        }
        if (len >= sizeof ip || http__addr_from_text(ip, &list[*n]) < 0) {
            log_error("http: %s entry \"%.*s\" is not an IPv4 or IPv6 address", what,
                      (int)(len > 64 ? 64 : len), p);
            free(list);
            *n = 0;
            return UV_EINVAL;
        }
        (*n)++;
        p += len;
    }
    *out = list;
    return 0;
}

static size_t addr_bucket(const http_server *s, const http__addr *a)
{
    /* FNV-1a with a per-server seed: a client choosing its IPv6 addresses cannot aim them
     * all at one bucket without knowing the seed. */
    uint32_t h = 2166136261u ^ s->addr_seed;
    for (size_t i = 0; i < sizeof a->b; i++) {
        h ^= a->b[i];
        h *= 16777619u;
    }
    return h & (HTTP__ADDR_BUCKETS - 1);
}

static struct http__addr_count **addr_find(http_server *s, const http__addr *a)
{
    struct http__addr_count **pp = &s->addr_tab[addr_bucket(s, a)];
    while (*pp && memcmp((*pp)->addr.b, a->b, sizeof a->b) != 0)
        pp = &(*pp)->next;
    return pp;
}

int http__server_count_addr(http_server *s, http__conn *c)
{
    if (!c->addr_known || c->addr_counted || addr_in(s->trusted, s->ntrusted, &c->addr))
        return 0;
    struct http__addr_count **pp = addr_find(s, &c->addr);
    if (*pp && (*pp)->n >= s->max_per_addr) {
        s->stats.refused_per_addr++;
        http__server_note(s);
        log_debug("http: %s: %zu connections open from this address, refusing another", c->peer,
                  (*pp)->n);
        return -1;
    }
    if (!*pp) {
        struct http__addr_count *e = calloc(1, sizeof *e);
        if (!e) {
            /* Uncounted, the connection would escape the cap; refusing is the safe side. */
            log_error("http: %s: out of memory counting the connection, refusing it", c->peer);
            return -1;
        }
        e->addr = c->addr;
        *pp = e;
    }
    (*pp)->n++;
    c->addr_counted = 1;
    return 0;
}

static void addr_uncount(http_server *s, http__conn *c)
{
    if (!c->addr_counted)
        return;
    c->addr_counted = 0;
    struct http__addr_count **pp = addr_find(s, &c->addr);
    struct http__addr_count *e = *pp;
    if (!e)
        return; /* cannot happen: counted connections have an entry */
    if (--e->n == 0) {
        *pp = e->next;
        free(e);
    }
}

/* ---- the counters ------------------------------------------------------------------------ */

/* Logged at most once a minute: a client can cause one of these events per connection, and
 * a line for each would let it fill the log; each event is logged at debug level. */
#define HTTP_NOTE_INTERVAL_MS 60000

void http__server_note(http_server *s)
{
    if (!s->loop)
        return;
    uint64_t now = uv_now(s->loop);
    if (s->noted && now - s->noted_at < HTTP_NOTE_INTERVAL_MS)
        return;
    s->noted = 1;
    s->noted_at = now;
    const http_server_stats *t = &s->stats;
    log_warn("http: port %d under pressure; since it started: %llu request heads and %llu "
             "bodies too slow, %llu connections refused at the per-address cap, %llu closed "
             "and %llu refused at the global cap, %llu PROXY headers refused (logged once a "
             "minute at most)",
             s->port, (unsigned long long)t->head_timeouts, (unsigned long long)t->body_too_slow,
             (unsigned long long)t->refused_per_addr, (unsigned long long)t->evicted_at_cap,
             (unsigned long long)t->refused_at_cap, (unsigned long long)t->proxy_refused);
}

/* ---- the eviction list ------------------------------------------------------------------- */

void http__server_evictable(http_server *s, http__conn *c, int on)
{
    if (on && !c->on_evict && !c->closing) {
        c->evict_prev = s->evict_tail;
        c->evict_next = NULL;
        if (s->evict_tail)
            s->evict_tail->evict_next = c;
        else
            s->evict_head = c;
        s->evict_tail = c;
        c->on_evict = 1;
    } else if (!on && c->on_evict) {
        if (c->evict_prev)
            c->evict_prev->evict_next = c->evict_next;
        else
            s->evict_head = c->evict_next;
        if (c->evict_next)
            c->evict_next->evict_prev = c->evict_prev;
        else
            s->evict_tail = c->evict_prev;
        c->evict_prev = c->evict_next = NULL;
        c->on_evict = 0;
    }
}

void http__server_conn_closing(http_server *s, http__conn *c)
{
    http__server_evictable(s, c, 0);
    addr_uncount(s, c);
}

/* The connection that has waited longest for a request head and has no answer still being
 * written (closing it would cut that answer short), or NULL. */
static http__conn *evict_candidate(http_server *s)
{
    for (http__conn *c = s->evict_head; c; c = c->evict_next)
        if (!c->closing && c->writes_pending == 0 && (!c->ops || c->ops->queued(c) == 0))
            return c;
    return NULL;
}

/* ---- accepting --------------------------------------------------------------------------- */

static void reject_close_cb(uv_handle_t *h)
{
    free(h);
}

static void spare_close_cb(uv_handle_t *h)
{
    http_server *s = h->data;
    s->spare_busy = 0;
    server_maybe_free(s);
}

/* Accepts the pending connection, if it is still pending, only to close it. libuv stops
 * watching a listener whose connection callback left a connection pending, so a refusal
 * that skipped this would stop the server from accepting anything again. */
static void reject_pending(http_server *s, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof *t);
    uv_close_cb done = reject_close_cb;
    if (!t && !s->spare_busy) {
        t = &s->spare;
        done = spare_close_cb;
    }
    if (!t) {
        log_error("http: out of memory refusing a connection; the listener on port %d stops "
                  "accepting until a connection is accepted again",
                  s->port);
        return;
    }
    if (uv_tcp_init(s->loop, t) < 0) {
        if (t != &s->spare)
            free(t);
        log_error("http: cannot refuse a connection; the listener on port %d stops accepting",
                  s->port);
        return;
    }
    t->data = s;
    if (t == &s->spare)
        s->spare_busy = 1;
    /* UV_EAGAIN when the transport had already taken the connection: nothing to refuse. */
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, done);
}

/* Applies both caps to a conn just accepted (counted in nconns already). Returns 0 when it
 * is admitted, -1 when it must be closed. */
static int admit(http_server *s, http__conn *c)
{
    int from_proxy = c->addr_known && addr_in(s->proxy_from, s->nproxy_from, &c->addr);
    /* The per-address cap first: a refused client must not cost anyone else a connection.
     * A balancer's own address is exempt; its clients' addresses count once known. */
    if (!from_proxy && http__server_count_addr(s, c) < 0)
        return -1;
    if (s->nconns - s->nclosing - 1 >= s->max_conns) {
        http__conn *victim = evict_candidate(s);
        if (!victim) {
            s->stats.refused_at_cap++;
            http__server_note(s);
            log_debug("http: %zu connections open on port %d, all mid-request; refusing %s",
                      s->nconns - s->nclosing - 1, s->port, c->peer);
            return -1;
        }
        s->stats.evicted_at_cap++;
        http__server_note(s);
        log_debug("http: %zu connections open on port %d; closing %s, which waited longest "
                  "for a request, to admit %s",
                  s->nconns - s->nclosing - 1, s->port, victim->peer, c->peer);
        http__conn_close(victim);
    }
    c->proxy_wait = from_proxy;
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    http_server *s = server->data;
    if (status < 0) {
        log_warn("http: accepting on port %d: %s", s->port, uv_strerror(status));
        return;
    }
    if (s->stopping) {
        reject_pending(s, server);
        return;
    }
    http__conn *c = calloc(1, sizeof *c);
    if (!c || uv_timer_init(s->loop, &c->timer) < 0) {
        log_error("http: out of memory accepting a connection on port %d", s->port);
        free(c);
        reject_pending(s, server);
        return;
    }
    c->timer.data = c;
    c->has_timer = 1;
    c->handles = 1;
    http__conn_init(c, s);
    c->accepted_at = http__now(s);
    /* With balancers configured, an HTTPS connection is taken as plain TCP first: a
     * balancer's PROXY header comes before TLS. */
    c->raw_tls = s->tls && s->nproxy_from > 0;
    int rc = s->tls && !c->raw_tls ? http__tls_accept(c, server) : http__tcp_accept(c, server);
    if (rc < 0) {
        log_warn("http: accepting a connection on port %d: %s", s->port, uv_strerror(rc));
        http__conn_close(c);
        reject_pending(s, server);
        return;
    }
    if (admit(s, c) < 0) {
        http__conn_close(c);
        return;
    }
    http__server_evictable(s, c, 1);
    http__conn_arm(c);
    if (c->proxy_wait)
        rc = http__proxy_start(c);
    else if (!s->tls || c->raw_tls)
        rc = http__transport_start(c);
    if (rc < 0) {
        log_warn("http: %s: starting the connection: %s", c->peer, uv_strerror(rc));
        http__conn_close(c);
    }
}

static void listener_close_cb(uv_handle_t *h)
{
    http_server *s = h->data;
    s->listener_closed = 1;
    server_maybe_free(s);
}

int http_server_start(http_server **out, uv_loop_t *loop, const http_server_opts *opts)
{
    *out = NULL;
    if (!opts->handler || opts->port < 0 || opts->port > 65535)
        return UV_EINVAL;
    const char *host = opts->host ? opts->host : "127.0.0.1";
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&addr) != 0)
        return UV_EINVAL;
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return UV_ENOMEM;
    int rc = addr_list_parse(opts->trusted, "trusted", &s->trusted, &s->ntrusted);
    if (rc == 0)
        rc = addr_list_parse(opts->proxy_from, "proxy_from", &s->proxy_from, &s->nproxy_from);
    if (rc < 0) {
        server_free(s);
        return rc;
    }
    s->loop = loop;
    s->handler = opts->handler;
    s->on_head = opts->on_head;
    s->ud = opts->ud;
    s->tls = opts->tls;
    s->max_body = opts->max_body == HTTP_MAX_BODY_NONE ? 0
                  : opts->max_body                     ? opts->max_body
                                                       : HTTP_DEFAULT_MAX_BODY;
    s->idle_ms = HTTP_IDLE_TIMEOUT_MS;
    s->head_ms = opts->head_timeout_ms ? opts->head_timeout_ms : HTTP_DEFAULT_HEAD_TIMEOUT_MS;
    s->min_body_rate = opts->min_body_rate ? opts->min_body_rate : HTTP_DEFAULT_MIN_BODY_RATE;
    s->rate_window_ms =
        opts->body_rate_window_ms ? opts->body_rate_window_ms : HTTP_DEFAULT_BODY_RATE_WINDOW_MS;
    s->max_conns = opts->max_conns ? opts->max_conns : HTTP_DEFAULT_MAX_CONNS;
    s->max_per_addr =
        opts->max_conns_per_addr ? opts->max_conns_per_addr : HTTP_DEFAULT_MAX_CONNS_PER_ADDR;
    s->addr_seed = (uint32_t)uv_hrtime() ^ (uint32_t)(uintptr_t)s;
    http__request_settings(&s->settings);
    rc = uv_tcp_init(loop, &s->listener);
    if (rc < 0) {
        server_free(s);
        return rc;
    }
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &bl);
    if (rc < 0)
        goto fail;
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;
fail:
    s->stopping = 1;
    uv_close((uv_handle_t *)&s->listener, listener_close_cb);
    return rc;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

void http_server_set_idle_timeout(http_server *s, uint64_t ms)
{
    s->idle_ms = ms ? ms : HTTP_IDLE_TIMEOUT_MS;
}

void http_server_set_max_conns(http_server *s, size_t n)
{
    s->max_conns = n ? n : HTTP_DEFAULT_MAX_CONNS;
}

void http_server_get_stats(const http_server *s, http_server_stats *out)
{
    *out = s->stats;
    out->conns_open = s->nconns - s->nclosing;
}

void http_server_stop(http_server *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    uv_close((uv_handle_t *)&s->listener, listener_close_cb);
    for (http__conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        http__conn_close(c);
    }
}
