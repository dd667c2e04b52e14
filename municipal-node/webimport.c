#include "webimport.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "field.h"
#include "clock.h"
#include "hex.h"
#include "import.h"
#include "intake.h"
#include "log.h"
#include "lookup.h"
#include "months.h"
#include "outbox.h"
#include "review.h"

/* Bytes of the import's own messages kept (a bad header, a store failure); refused rows are
 * kept apart, structured. */
#define WEBIMPORT_MESSAGES_MAX 8192

typedef struct webimport_error {
    long line;
    field_error e;
} webimport_error;

enum { JOB_RUNNING, JOB_DONE, JOB_FAILED };

typedef struct webimport_job {
    webimport *w;
    uv_work_t work;
    char id[WEBIMPORT_ID_LEN + 1];
    int kind;
    char name[128];
    char clerk[128];
    char path[4096];
    uint64_t started_ms, ended_ms; /* Unix ms; ended 0 while it runs */
    int rc;
    /* Written by the worker and read by the loop's thread, under mu. */
    pthread_mutex_t mu;
    int state;
    long long done_bytes, total_bytes;
    import_stats st;
    webimport_error *errors;
    size_t n_errors, errors_left_out;
    char messages[WEBIMPORT_MESSAGES_MAX];
    size_t messages_len;
    /* The persons stored that look like another (lookup_import_duplicates), set by the
     * worker once the import ended; NULL before, or when they could not be read. */
    json_t *duplicates;
    int duplicates_more;
} webimport_job;

struct webimport {
    uv_loop_t *loop;
    char db_path[4096];
    char dir[4096];
    int bs;
    int32_t earliest;
    void (*on_done)(void *ud);
    void *ud;
    webimport_job *jobs[WEBIMPORT_JOBS]; /* the newest last */
    int running;
};

int webimport_new(webimport **out, const webimport_opts *o)
{
    webimport *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return REINT_ENOMEM;
    w->loop = o->loop;
    snprintf(w->db_path, sizeof(w->db_path), "%s", o->db_path);
    snprintf(w->dir, sizeof(w->dir), "%s", o->dir);
    w->bs = o->bs;
    w->earliest = o->earliest;
    w->on_done = o->on_done;
    w->ud = o->ud;
    *out = w;
    return 0;
}

static void webimport__job_free(webimport_job *j)
{
    if (j == NULL)
        return;
    pthread_mutex_destroy(&j->mu);
    free(j->errors);
    json_decref(j->duplicates);
    free(j);
}

void webimport_free(webimport *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < WEBIMPORT_JOBS; i++)
        webimport__job_free(w->jobs[i]);
    free(w);
}

/* ---- the worker's side ------------------------------------------------------------------ */

static ssize_t webimport__msg_write(void *cookie, const char *buf, size_t n)
{
    webimport_job *j = cookie;
    pthread_mutex_lock(&j->mu);
    size_t room = sizeof(j->messages) - 1 - j->messages_len;
    size_t k = n < room ? n : room;
    memcpy(j->messages + j->messages_len, buf, k);
    j->messages_len += k;
    j->messages[j->messages_len] = '\0';
    pthread_mutex_unlock(&j->mu);
    return (ssize_t)n; /* past the bound the rest is dropped, never an error */
}

static void webimport__progress(void *ud, long long done, long long total, const import_stats *st)
{
    webimport_job *j = ud;
    pthread_mutex_lock(&j->mu);
    j->done_bytes = done;
    j->total_bytes = total;
    j->st = *st;
    pthread_mutex_unlock(&j->mu);
}

static void webimport__refused(void *ud, long line, const field_errors *errs)
{
    webimport_job *j = ud;
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; i < errs->n; i++) {
        if (j->n_errors >= WEBIMPORT_MAX_ERRORS) {
            j->errors_left_out++;
            continue;
        }
        j->errors[j->n_errors].line = line;
        j->errors[j->n_errors].e = errs->e[i];
        j->n_errors++;
    }
    j->errors_left_out += errs->dropped;
    pthread_mutex_unlock(&j->mu);
}

static void webimport__work(uv_work_t *req)
{
    webimport_job *j = req->data;
    webimport *w = j->w;
    outbox *ob = NULL;
    intake *in = NULL;
    char err[512];
    static const cookie_io_functions_t io = {.write = webimport__msg_write};
    FILE *msgs = fopencookie(j, "w", io);
    if (msgs)
        setvbuf(msgs, NULL, _IOLBF, 0);
    /* The worker's own connection: a SQLite connection is used by one thread at a time. */
    if (outbox_open(w->db_path, &ob, err, sizeof(err)) != 0 ||
        intake_open(&in, ob, w->bs, err, sizeof(err)) != 0) {
        if (msgs)
            fprintf(msgs, "%s\n", err);
        j->rc = REINT_EDB;
        goto out;
    }
    intake_set_earliest(in, w->earliest);
    import_opts o = {.errors_out = msgs,
                     .clerk = j->clerk,
                     .name = j->name,
                     .on_progress = webimport__progress,
                     .on_refused = webimport__refused,
                     .ud = j};
    import_stats st;
    j->rc = import_csv_opts(in, j->kind, j->path, &o, &st);
    /* Persons registered twice (the clerk attack's: a spreadsheet of people already
     * registered was taken without a word, and counted twice upstream): said, not refused,
     * as the form and POST /v1/persons say it. Also after a failure, for what was stored. */
    if (j->kind == INTAKE_PERSON && st.inserted + st.updated > 0) {
        json_t *dups = NULL;
        int more = 0;
        if (lookup_import_duplicates(in, (int64_t)j->started_ms, j->clerk, &dups, &more) == 0) {
            pthread_mutex_lock(&j->mu);
            j->duplicates = dups;
            j->duplicates_more = more;
            pthread_mutex_unlock(&j->mu);
        }
    }
    webimport__progress(j, j->rc == 0 ? j->total_bytes : j->done_bytes, j->total_bytes, &st);
out:
    if (msgs)
        fclose(msgs);
    intake_close(in);
    if (ob)
        outbox_close(ob);
}

/* ---- the loop's side -------------------------------------------------------------------- */

static void webimport__after(uv_work_t *req, int status)
{
    webimport_job *j = req->data;
    webimport *w = j->w;
    if (unlink(j->path) != 0 && errno != ENOENT)
        log_warn("import %s: cannot remove the upload %s: %s", j->id, j->path, strerror(errno));
    pthread_mutex_lock(&j->mu);
    j->state = status == 0 && j->rc == 0 ? JOB_DONE : JOB_FAILED;
    j->ended_ms = clock_now_ms();
    pthread_mutex_unlock(&j->mu);
    w->running = 0;
    log_info("import %s of %s by %s: %s: %lld rows, %lld new, %lld changed, %lld refused", j->id,
             j->name, j->clerk, j->state == JOB_DONE ? "done" : "failed", j->st.rows,
             j->st.inserted, j->st.updated, j->st.refused);
    if (w->on_done)
        w->on_done(w->ud);
}

/* The name as messages may show it: printable ASCII and UTF-8 letters kept, others '_'. */
static void webimport__name(char *out, size_t outlen, const char *name)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(name && *name ? name : "upload.csv");
         *p && o + 1 < outlen; p++)
        out[o++] = (*p < 0x20 || *p == 0x7F || *p == '/' || *p == '\\') ? '_' : (char)*p;
    /* A cut inside a UTF-8 character would leave invalid text in JSON. */
    while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
        o--;
    if (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0xC0)
        o--;
    out[o] = '\0';
}

static int webimport__write_upload(const char *path, const char *csv, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return REINT_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, csv + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            close(fd);
            unlink(path);
            return REINT_EIO;
        }
        off += (size_t)k;
    }
    if (close(fd) != 0) {
        unlink(path);
        return REINT_EIO;
    }
    return 0;
}

int webimport_start(webimport *w, int kind, const char *name, const char *csv, size_t len,
                    const char *clerk, char id[WEBIMPORT_ID_LEN + 1])
{
    uint8_t rnd[WEBIMPORT_ID_LEN / 2];
    if (w->running)
        return REINT_EEXIST;
    if (field_columns(kind) == NULL)
        return REINT_EINVAL;
    webimport_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return REINT_ENOMEM;
    j->errors = malloc(WEBIMPORT_MAX_ERRORS * sizeof(*j->errors));
    if (j->errors == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1 ||
        pthread_mutex_init(&j->mu, NULL) != 0) {
        free(j->errors);
        free(j);
        return REINT_ENOMEM;
    }
    j->w = w;
    j->kind = kind;
    hex_encode(rnd, sizeof(rnd), j->id);
    webimport__name(j->name, sizeof(j->name), name);
    snprintf(j->clerk, sizeof(j->clerk), "%s", clerk);
    snprintf(j->path, sizeof(j->path), "%s/upload-%s.csv", w->dir, j->id);
    j->total_bytes = (long long)len;
    j->started_ms = clock_now_ms();
    j->state = JOB_RUNNING;
    if (webimport__write_upload(j->path, csv, len) != 0) {
        log_error("import: cannot write the upload to %s: %s", j->path, strerror(errno));
        webimport__job_free(j);
        return REINT_EIO;
    }
    j->work.data = j;
    int rc = uv_queue_work(w->loop, &j->work, webimport__work, webimport__after);
    if (rc != 0) {
        log_error("import: cannot start a worker: %s", uv_strerror(rc));
        unlink(j->path);
        webimport__job_free(j);
        return REINT_ENOMEM;
    }
    /* The oldest job that has ended makes room (never the running one: there is none). */
    webimport__job_free(w->jobs[0]);
    memmove(w->jobs, w->jobs + 1, (WEBIMPORT_JOBS - 1) * sizeof(w->jobs[0]));
    w->jobs[WEBIMPORT_JOBS - 1] = j;
    w->running = 1;
    memcpy(id, j->id, sizeof(j->id));
    log_info("import %s of %s (%zu bytes) by %s started", j->id, j->name, len, clerk);
    return 0;
}

static webimport_job *webimport__find(webimport *w, const char *id)
{
    for (int i = 0; i < WEBIMPORT_JOBS; i++)
        if (w->jobs[i] && strcmp(w->jobs[i]->id, id) == 0)
            return w->jobs[i];
    return NULL;
}

/* {"line", "field", "code", "arg", "reason"}; NULL when out of memory. */
static json_t *webimport__error_json(const webimport_error *e)
{
    return json_pack("{s:I,s:s,s:s,s:s,s:s}", "line", (json_int_t)e->line, "field", e->e.field,
                     "code", e->e.code, "arg", e->e.arg, "reason", e->e.reason);
}

static const char *const webimport__states[] = {"running", "done", "failed"};

/* The job's summary (webimport.h) under its lock; NULL when out of memory. */
static json_t *webimport__summary(const webimport *w, const webimport_job *j)
{
    json_t *months = json_array();
    for (int i = 0; months && i < j->st.n_months; i++) {
        char p[16];
        if (review_period(w->bs, j->st.months[i].ym, p, sizeof(p)) != 0)
            continue;                      /* a month no calendar names: never stored */
        int state = j->st.months[i].state; /* as the import began: what its rows changed */
        if (json_array_append_new(months, json_pack("{s:s,s:I,s:o}", "period", p, "rows",
                                                    (json_int_t)j->st.months[i].rows, "state",
                                                    state ? json_string(review_state_name(state))
                                                          : json_null())) != 0) {
            json_decref(months);
            return NULL;
        }
    }
    if (months == NULL)
        return NULL;
    json_t *dups = j->duplicates ? json_copy(j->duplicates) : json_array();
    if (dups == NULL) {
        json_decref(months);
        return NULL;
    }
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:o,s:b}",
                     "id", j->id, "kind", field_kind_name(j->kind), "name", j->name, "clerk",
                     j->clerk, "state", webimport__states[j->state], "started",
                     (json_int_t)j->started_ms, "ended",
                     j->ended_ms ? json_integer((json_int_t)j->ended_ms) : json_null(),
                     "done_bytes", (json_int_t)j->done_bytes, "total_bytes",
                     (json_int_t)j->total_bytes, "rows", (json_int_t)j->st.rows, "inserted",
                     (json_int_t)j->st.inserted, "updated", (json_int_t)j->st.updated, "unchanged",
                     (json_int_t)j->st.unchanged, "refused", (json_int_t)j->st.refused, "months",
                     months, "months_left_out", (json_int_t)j->st.months_left_out, "duplicates",
                     dups, "duplicates_more", j->duplicates_more);
}

int webimport_list_json(webimport *w, json_t **out)
{
    json_t *list = json_array();
    *out = NULL;
    if (list == NULL)
        return REINT_ENOMEM;
    for (int i = WEBIMPORT_JOBS - 1; i >= 0; i--) { /* the newest first */
        webimport_job *j = w->jobs[i];
        if (j == NULL)
            continue;
        pthread_mutex_lock(&j->mu);
        json_t *o = webimport__summary(w, j);
        pthread_mutex_unlock(&j->mu);
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            return REINT_ENOMEM;
        }
    }
    *out = json_pack("{s:o}", "imports", list);
    return *out ? 0 : REINT_ENOMEM;
}

int webimport_json(webimport *w, const char *id, json_t **out)
{
    webimport_job *j = webimport__find(w, id);
    *out = NULL;
    if (j == NULL)
        return REINT_ENOTFOUND;
    json_t *errors = json_array(), *messages = json_array();
    int rc = errors && messages ? 0 : REINT_ENOMEM;
    pthread_mutex_lock(&j->mu);
    int state = j->state;
    if (rc == 0 && state != JOB_RUNNING) {
        for (size_t i = 0; i < j->n_errors && rc == 0; i++)
            if (json_array_append_new(errors, webimport__error_json(&j->errors[i])) != 0)
                rc = REINT_ENOMEM;
        char *save = NULL, copy[WEBIMPORT_MESSAGES_MAX];
        memcpy(copy, j->messages, j->messages_len + 1);
        for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
             line = strtok_r(NULL, "\n", &save)) {
            /* A message cut at the bound may end inside a character: it is left out. */
            json_t *m = json_string(line);
            if (m && json_array_append_new(messages, m) != 0)
                rc = REINT_ENOMEM;
        }
    }
    if (rc == 0 && (*out = webimport__summary(w, j)) != NULL &&
        (json_object_set(*out, "errors", errors) != 0 ||
         json_object_set_new(*out, "errors_left_out",
                             json_integer((json_int_t)j->errors_left_out)) != 0 ||
         json_object_set(*out, "messages", messages) != 0)) {
        json_decref(*out);
        *out = NULL;
    }
    pthread_mutex_unlock(&j->mu);
    json_decref(errors);
    json_decref(messages);
    if (rc == 0 && *out == NULL)
        rc = REINT_ENOMEM;
    return rc;
}

int webimport_errors_csv(webimport *w, const char *id, sbuf *out)
{
    webimport_job *j = webimport__find(w, id);
    if (j == NULL)
        return REINT_ENOTFOUND;
    pthread_mutex_lock(&j->mu);
    int running = j->state == JOB_RUNNING;
    if (!running) {
        sbuf_puts(out, "\xEF\xBB\xBFline,field,code,reason\r\n");
        for (size_t i = 0; i < j->n_errors; i++) {
            sbuf_printf(out, "%ld,", j->errors[i].line);
            sbuf_csv_str(out, j->errors[i].e.field);
            sbuf_puts(out, ",");
            sbuf_csv_str(out, j->errors[i].e.code);
            sbuf_puts(out, ",");
            sbuf_csv_str(out, j->errors[i].e.reason);
            sbuf_puts(out, "\r\n");
        }
        /* What was wrong with the file as a whole (a bad header, a failed commit), so that the
         * download of an import that failed is not empty: no line or field, code "file". */
        char *save = NULL, copy[WEBIMPORT_MESSAGES_MAX];
        memcpy(copy, j->messages, j->messages_len + 1);
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            sbuf_puts(out, ",,file,");
            sbuf_csv_str(out, line);
            sbuf_puts(out, "\r\n");
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (running)
        return REINT_EEXIST;
    return out->failed ? REINT_ENOMEM : 0;
}
