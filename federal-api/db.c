#include "db.h"

#include "clock.h"

#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "log.h"

#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000

enum db_state { DB_DOWN, DB_CONNECTING, DB_IDLE, DB_BUSY, DB_CLOSED };

typedef struct db_q {
    struct db_q *next;
    db_cb cb;
    void *ud;
    uint64_t queued_ms;
    int n;
    int bulk; /* DB_BULK: sent only while another connection stays free (see db_query_bulk) */
    char *sql;
    char **values; /* n pointers, then the strings, all in this allocation */
} db_q;

typedef struct db_conn {
    db_pool *p;
    PGconn *pg;
    uv_poll_t *poll; /* NULL when not watching; freed in its close callback */
    int fd;
    enum db_state state;
    db_q *cur;
    PGresult *res; /* the result kept for cur: the first error, else the last */
    uv_timer_t retry;
    unsigned backoff_ms;
    int ever_connected;
    int listening; /* its LISTEN is in flight (state DB_BUSY, no statement of the pool) */
    int listens;   /* its LISTEN succeeded and it has not broken since */
} db_conn;

struct db_pool {
    db_opts o;
    char *conninfo;
    char *listen;       /* the channel, copied, or NULL */
    int listen_refused; /* a LISTEN was refused (logged once) */
    db_conn *conns;
    /* Two queues, each in arrival order: DB_READ (every interactive statement) is served
     * first; DB_BULK (ingest) takes at most size - 1 connections when size > 1, so that a
     * national query never waits behind a province's commit. */
    struct db_fifo {
        db_q *head, *tail;
    } fifo[2];
    size_t queued;
    int bulk_busy;
    uv_timer_t kick, sweep;
    int stopping, handles_open;
    db_metrics m;
};

enum { DB_READ, DB_BULK };

static void db__dispatch(db_pool *p);
static void db__connect(db_conn *c);

static db_q *db__pop(db_pool *p, int k)
{
    struct db_fifo *f = &p->fifo[k];
    db_q *q = f->head;
    if (q == NULL)
        return NULL;
    f->head = q->next;
    if (f->head == NULL)
        f->tail = NULL;
    q->next = NULL;
    p->queued--;
    return q;
}

static void db__free_poll(uv_handle_t *h)
{
    free(h);
}

static void db__unwatch(db_conn *c)
{
    if (c->poll) {
        uv_close((uv_handle_t *)c->poll, db__free_poll);
        c->poll = NULL;
    }
}

static void db__on_poll(uv_poll_t *h, int status, int events);

/* Watches the connection's current socket (libpq may change it while connecting). */
static int db__watch(db_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->poll && c->fd != fd)
        db__unwatch(c);
    if (c->poll == NULL) {
        c->poll = malloc(sizeof(*c->poll));
        if (c->poll == NULL)
            return -1;
        if (uv_poll_init(c->p->o.loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return -1;
        }
        c->poll->data = c;
        c->fd = fd;
    }
    return uv_poll_start(c->poll, events, db__on_poll) == 0 ? 0 : -1;
}

/* Hands every notification libpq has read on c to the pool's on_notify (or drops it). */
static void db__notifies(db_conn *c)
{
    for (PGnotify *nf; (nf = PQnotifies(c->pg)) != NULL;) {
        if (c->p->o.on_notify)
            c->p->o.on_notify(c->p->o.notify_ud, nf->relname, nf->extra);
        PQfreemem(nf);
    }
}

static void db__finish(db_conn *c, const PGresult *res, const char *err)
{
    db_q *q = c->cur;
    c->cur = NULL;
    if (q && q->bulk)
        c->p->bulk_busy--;
    if (err)
        c->p->m.errors++;
    if (q) {
        q->cb(q->ud, err ? NULL : res, err);
        free(q);
    }
}

static void db__on_retry(uv_timer_t *t)
{
    db_conn *c = t->data;
    if (!c->p->stopping && c->state == DB_DOWN)
        db__connect(c);
}

/* The connection broke: fail its statement, drop it and reconnect after a backoff. */
static void db__fail(db_conn *c, const char *why)
{
    db_pool *p = c->p;
    char msg[256];
    snprintf(msg, sizeof(msg), "database: %s", why && why[0] ? why : "connection lost");
    size_t l = strlen(msg);
    while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
        msg[--l] = '\0';
    if (c->state == DB_IDLE || c->state == DB_BUSY) {
        p->m.connected--;
        p->m.disconnects++;
        log_warn("%s; reconnecting", msg);
    } else if (c->state == DB_CONNECTING) {
        log_warn("%s; retrying in %u ms", msg, c->backoff_ms);
    }
    db__unwatch(c);
    if (c->res) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = DB_DOWN;
    c->listening = 0;
    if (c->listens) {
        c->listens = 0;
        if (p->o.on_notify)
            p->o.on_notify(p->o.notify_ud, NULL, "-");
    }
    db__finish(c, NULL, msg);
    if (p->stopping)
        return;
    int rc = uv_timer_start(&c->retry, db__on_retry, c->backoff_ms, 0);
    if (rc != 0)
        log_error("database: cannot schedule a reconnect (%s); this connection stays down",
                  uv_strerror(rc));
    c->backoff_ms = c->backoff_ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void db__connect(db_conn *c)
{
    c->pg = PQconnectStart(c->p->conninfo);
    if (c->pg == NULL) {
        db__fail(c, "out of memory");
        return;
    }
    c->state = DB_CONNECTING;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        db__fail(c, PQerrorMessage(c->pg));
        return;
    }
    /* libpq's protocol: behave as if PQconnectPoll had returned PGRES_POLLING_WRITING. */
    if (db__watch(c, UV_WRITABLE) != 0)
        db__fail(c, "cannot watch the database socket");
}

static void db__send_flush(db_conn *c);

/* Sends the connection's LISTEN; it takes statements once that is done (db__listened). */
static void db__listen(db_conn *c)
{
    char *id = PQescapeIdentifier(c->pg, c->p->listen, strlen(c->p->listen));
    size_t l = id ? strlen(id) + 8 : 0;
    char *sql = id ? malloc(l) : NULL;
    if (sql)
        snprintf(sql, l, "LISTEN %s", id);
    PQfreemem(id);
    c->state = DB_BUSY;
    c->listening = 1;
    int sent = sql && PQsendQuery(c->pg, sql);
    const char *why = sql == NULL ? "out of memory" : PQerrorMessage(c->pg);
    free(sql);
    if (!sent) {
        db__fail(c, why);
        return;
    }
    db__send_flush(c);
}

/* The LISTEN's result (res, NULL when none came). Refused (a standby), the connection works
 * without listening; otherwise it now listens, and whatever was notified while it did not is
 * unknown to it (on_notify "+" says so). */
static void db__listened(db_conn *c, PGresult *res)
{
    c->listening = 0;
    if (res == NULL) {
        db__fail(c, "LISTEN: no result");
        return;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (!c->p->listen_refused) {
            char msg[256];
            snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
            msg[strcspn(msg, "\n")] = '\0';
            log_warn("database: LISTEN %s refused (%s): its notifications are not heard",
                     c->p->listen, msg);
        }
        c->p->listen_refused = 1;
        if (c->p->o.on_notify)
            c->p->o.on_notify(c->p->o.notify_ud, NULL, "!");
    } else {
        c->listens = 1;
        if (c->p->o.on_notify)
            c->p->o.on_notify(c->p->o.notify_ud, NULL, "+");
    }
    PQclear(res);
    c->state = DB_IDLE;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        c->state = DB_BUSY; /* counted as connected until db__fail */
        db__fail(c, PQerrorMessage(c->pg));
        return;
    }
    db__dispatch(c->p);
}

static void db__connect_step(db_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (db__watch(c, UV_READABLE) != 0)
            db__fail(c, "cannot watch the database socket");
        return;
    case PGRES_POLLING_WRITING:
        if (db__watch(c, UV_WRITABLE) != 0)
            db__fail(c, "cannot watch the database socket");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->pg, 1) != 0 || db__watch(c, UV_READABLE) != 0) {
            db__fail(c, PQerrorMessage(c->pg));
            return;
        }
        c->state = DB_IDLE;
        c->backoff_ms = DB_BACKOFF_MIN_MS;
        c->p->m.connected++;
        c->p->m.connects++;
        if (c->ever_connected)
            log_info("database: reconnected");
        c->ever_connected = 1;
        if (c->p->listen) {
            db__listen(c);
            return;
        }
        db__dispatch(c->p);
        return;
    default:
        db__fail(c, PQerrorMessage(c->pg));
        return;
    }
}

/* Reads what arrived; completes the statement once PQgetResult returns NULL. */
static void db__read(db_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        db__fail(c, PQerrorMessage(c->pg));
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            /* libpq parses notifications with the results: hand them over before the
             * connection may go quiet. */
            db__notifies(c);
            PGresult *res = c->res;
            c->res = NULL;
            if (c->listening) {
                db__listened(c, res);
                return;
            }
            c->state = DB_IDLE;
            ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
            if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
                db__finish(c, res, NULL);
            } else {
                char msg[512];
                const char *e = res ? PQresultErrorMessage(res) : "no result";
                snprintf(msg, sizeof(msg), "%s", e[0] ? e : PQresStatus(st));
                size_t l = strlen(msg);
                while (l > 0 && msg[l - 1] == '\n')
                    msg[--l] = '\0';
                db__finish(c, NULL, msg);
            }
            if (res)
                PQclear(res);
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                c->state = DB_BUSY; /* counted as connected until db__fail */
                db__fail(c, PQerrorMessage(c->pg));
                return;
            }
            db__dispatch(c->p);
            return;
        }
        /* Keep the first error, otherwise the last result. */
        if (c->res && PQresultStatus(c->res) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            if (c->res)
                PQclear(c->res);
            c->res = r;
        }
    }
    db__notifies(c);
}

static void db__on_poll(uv_poll_t *h, int status, int events)
{
    db_conn *c = h->data;
    if (c == NULL || c->poll != h)
        return;
    if (status < 0) {
        db__fail(c, uv_strerror(status));
        return;
    }
    switch (c->state) {
    case DB_CONNECTING:
        db__connect_step(c);
        return;
    case DB_IDLE:
        /* While idle: a notification (db_opts.listen), a notice, or the server going away. */
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
            db__fail(c, PQerrorMessage(c->pg));
            return;
        }
        db__notifies(c);
        return;
    case DB_BUSY:
        if (events & UV_WRITABLE) {
            int r = PQflush(c->pg);
            if (r < 0) {
                db__fail(c, PQerrorMessage(c->pg));
                return;
            }
            if (r == 0 && db__watch(c, UV_READABLE) != 0) {
                db__fail(c, "cannot watch the database socket");
                return;
            }
        }
        if (events & UV_READABLE)
            db__read(c);
        return;
    default:
        return;
    }
}

static void db__send(db_conn *c, db_q *q)
{
    c->cur = q;
    c->state = DB_BUSY;
    c->p->m.queries++;
    if (!PQsendQueryParams(c->pg, q->sql, q->n, NULL, (const char *const *)q->values, NULL, NULL,
                           0)) {
        db__fail(c, PQerrorMessage(c->pg));
        return;
    }
    db__send_flush(c);
}

/* Pushes what was sent on c, watching for the rest of it and for the answer. */
static void db__send_flush(db_conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        db__fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (db__watch(c, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) != 0)
        db__fail(c, "cannot watch the database socket");
}

/* Whether one more bulk statement may start while bulk_busy run on a pool of size
 * connections: with more than one, one connection always stays for reads. */
static int db__bulk_may_start(int bulk_busy, int size)
{
    return size <= 1 ? bulk_busy == 0 : bulk_busy < size - 1;
}

/* The next statement for a free connection: the oldest read, else the oldest bulk statement
 * if that leaves a connection free for reads. */
static db_q *db__next(db_pool *p)
{
    db_q *q = db__pop(p, DB_READ);
    if (q == NULL && db__bulk_may_start(p->bulk_busy, p->o.size))
        q = db__pop(p, DB_BULK);
    return q;
}

static void db__dispatch(db_pool *p)
{
    for (int i = 0; i < p->o.size && p->queued && !p->stopping; i++) {
        db_conn *c = &p->conns[i];
        if (c->state != DB_IDLE)
            continue;
        db_q *q = db__next(p);
        if (q == NULL)
            break;
        if (q->bulk)
            p->bulk_busy++;
        db__send(c, q);
    }
}

static void db__on_kick(uv_timer_t *t)
{
    db__dispatch(t->data);
}

/* Fails statements that waited too long for a connection (the database is down). */
static void db__on_sweep(uv_timer_t *t)
{
    db_pool *p = t->data;
    uint64_t now = clock_mono_ms();
    for (int k = DB_READ; k <= DB_BULK; k++) {
        while (p->fifo[k].head && now - p->fifo[k].head->queued_ms > p->o.queue_timeout_ms) {
            db_q *q = db__pop(p, k);
            p->m.timeouts++;
            p->m.errors++;
            q->cb(q->ud, NULL, "database: no connection available (timed out waiting)");
            free(q);
        }
    }
}

static void db__on_pool_timer_closed(uv_handle_t *h);

int db_pool_start(db_pool **out, const db_opts *opts)
{
    db_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return REINT_ENOMEM;
    p->o = *opts;
    if (p->o.size <= 0)
        p->o.size = 4;
    if (p->o.max_queue == 0)
        p->o.max_queue = 10000;
    if (p->o.queue_timeout_ms == 0)
        p->o.queue_timeout_ms = 10000;
    p->conninfo = strdup(opts->conninfo);
    p->listen = opts->listen ? strdup(opts->listen) : NULL;
    p->conns = calloc((size_t)p->o.size, sizeof(db_conn));
    if (p->conninfo == NULL || p->conns == NULL || (opts->listen && p->listen == NULL)) {
        free(p->conninfo);
        free(p->listen);
        free(p->conns);
        free(p);
        return REINT_ENOMEM;
    }
    p->m.size = p->o.size;
    /* Every timer is made before any is started or any connection begins, so that a failure
     * is undone by closing what exists (each close callback releases the pool). */
    if (uv_timer_init(p->o.loop, &p->kick) != 0) {
        free(p->conninfo);
        free(p->listen);
        free(p->conns);
        free(p);
        return REINT_EINVAL;
    }
    p->kick.data = p->sweep.data = p;
    p->handles_open = 1;
    if (uv_timer_init(p->o.loop, &p->sweep) != 0) {
        p->stopping = 1;
        uv_close((uv_handle_t *)&p->kick, db__on_pool_timer_closed);
        return REINT_EINVAL;
    }
    p->handles_open = 2;
    for (int i = 0; i < p->o.size; i++) {
        db_conn *c = &p->conns[i];
        c->p = p;
        c->backoff_ms = DB_BACKOFF_MIN_MS;
        if (uv_timer_init(p->o.loop, &c->retry) != 0) {
            p->o.size = i; /* db_pool_stop closes the timers of the first i only */
            db_pool_stop(p);
            return REINT_EINVAL;
        }
        c->retry.data = c;
        p->handles_open++;
    }
    int rc = uv_timer_start(&p->sweep, db__on_sweep, 250, 250);
    if (rc != 0) {
        db_pool_stop(p);
        return REINT_EINVAL;
    }
    for (int i = 0; i < p->o.size; i++)
        db__connect(&p->conns[i]);
    *out = p;
    return 0;
}

static int db__queue(db_pool *p, int bulk, const char *sql, int n, const char *const *values,
                     db_cb cb, void *ud)
{
    if (p->stopping)
        return REINT_ESTOP;
    if (p->queued >= p->o.max_queue)
        return REINT_EQUEUE;
    size_t sl = strlen(sql) + 1, need = sizeof(db_q) + (size_t)n * sizeof(char *) + sl;
    for (int i = 0; i < n; i++)
        need += values[i] ? strlen(values[i]) + 1 : 0;
    /* Without the kick no statement would be sent: refuse rather than queue. */
    if (!uv_is_active((uv_handle_t *)&p->kick) && uv_timer_start(&p->kick, db__on_kick, 0, 0) != 0)
        return REINT_ESTOP;
    db_q *q = malloc(need);
    if (q == NULL)
        return REINT_ENOMEM;
    memset(q, 0, sizeof(*q));
    q->cb = cb;
    q->ud = ud;
    q->n = n;
    q->bulk = bulk;
    q->queued_ms = clock_mono_ms();
    q->values = (char **)(q + 1);
    char *s = (char *)(q->values + n);
    q->sql = s;
    memcpy(s, sql, sl);
    s += sl;
    for (int i = 0; i < n; i++) {
        if (values[i] == NULL) {
            q->values[i] = NULL;
            continue;
        }
        size_t l = strlen(values[i]) + 1;
        memcpy(s, values[i], l);
        q->values[i] = s;
        s += l;
    }
    struct db_fifo *f = &p->fifo[bulk ? DB_BULK : DB_READ];
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    p->queued++;
    return 0;
}

int db_query(db_pool *p, const char *sql, int n, const char *const *values, db_cb cb, void *ud)
{
    return db__queue(p, 0, sql, n, values, cb, ud);
}

int db_query_bulk(db_pool *p, const char *sql, int n, const char *const *values, db_cb cb, void *ud)
{
    return db__queue(p, 1, sql, n, values, cb, ud);
}

static void db__release(db_pool *p)
{
    if (--p->handles_open > 0)
        return;
    free(p->conns);
    free(p->conninfo);
    free(p->listen);
    free(p);
}

static void db__on_pool_timer_closed(uv_handle_t *h)
{
    db__release(h->data);
}

static void db__on_conn_timer_closed(uv_handle_t *h)
{
    db__release(((db_conn *)h->data)->p);
}

void db_pool_stop(db_pool *p)
{
    if (p == NULL || p->stopping)
        return;
    p->stopping = 1;
    for (int k = DB_READ; k <= DB_BULK; k++) {
        db_q *q;
        while ((q = db__pop(p, k)) != NULL) {
            q->cb(q->ud, NULL, "database: shutting down");
            free(q);
        }
    }
    for (int i = 0; i < p->o.size; i++) {
        db_conn *c = &p->conns[i];
        db__unwatch(c);
        if (c->res) {
            PQclear(c->res);
            c->res = NULL;
        }
        if (c->pg) {
            PQfinish(c->pg);
            c->pg = NULL;
        }
        c->state = DB_CLOSED;
        db__finish(c, NULL, "database: shutting down");
        uv_close((uv_handle_t *)&c->retry, db__on_conn_timer_closed);
    }
    uv_close((uv_handle_t *)&p->kick, db__on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->sweep, db__on_pool_timer_closed);
}

void db_get_metrics(const db_pool *p, db_metrics *m)
{
    *m = p->m;
    m->queued = p->queued;
}
