#include "walckpt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "store.h"

/* The writer checkpoints itself when the log reaches this many times the threshold. */
#define WALCKPT_HARD_FACTOR 4

struct walckpt {
    sqlite3 *writer; /* the caller's connection; its hook runs on the caller's thread */
    sqlite3 *db;     /* the thread's own connection */
    int frames;
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    int pending; /* a commit left the log at the threshold or above */
    int stop;
    walckpt_stats stats;
};

/* Runs on the writer's thread after each of its commits, with the log's frame count. */
static int walckpt__hook(void *ud, sqlite3 *db, const char *name, int nframes)
{
    walckpt *c = ud;
    if (nframes >= c->frames * WALCKPT_HARD_FACTOR) {
        /* The thread has not kept up: bound the log here, as the automatic checkpoint did. */
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->lock);
        if (rc == SQLITE_OK)
            c->stats.inline_runs++;
        pthread_mutex_unlock(&c->lock);
        return SQLITE_OK;
    }
    if (nframes >= c->frames) {
        pthread_mutex_lock(&c->lock);
        c->pending = 1;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
    }
    return SQLITE_OK;
}

static void *walckpt__main(void *arg)
{
    walckpt *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->pending && !c->stop)
            pthread_cond_wait(&c->wake, &c->lock);
        if (c->stop)
            break;
        c->pending = 0;
        pthread_mutex_unlock(&c->lock);
        int log_frames = 0, done = 0;
        int rc =
            sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_error("walckpt: checkpoint of %s failed: %s", sqlite3_db_filename(c->db, "main"),
                      sqlite3_errmsg(c->db));
        pthread_mutex_lock(&c->lock);
        if (rc == SQLITE_OK) {
            c->stats.runs++;
            c->stats.last_log = log_frames;
            c->stats.last_done = done;
        } else if (rc != SQLITE_BUSY) {
            c->stats.failures++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int walckpt_start(walckpt **out, sqlite3 *db, const char *path, int frames, char *err,
                  size_t errlen)
{
    int rc = REINT_ENOMEM, have_lock = 0, have_cond = 0;
    *out = NULL;
    if (frames <= 0) {
        snprintf(err, errlen, "walckpt: frames must be positive");
        return REINT_EINVAL;
    }
    walckpt *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "walckpt: out of memory");
        return REINT_ENOMEM;
    }
    c->writer = db;
    c->frames = frames;
    if (store_open(path, 0, NULL, &c->db, err, errlen) != 0) {
        rc = REINT_EDB;
        goto fail;
    }
    /* A checkpoint reads the log's frames and writes the file directly: no cache to speak
     * of. Its own automatic checkpoints are off, it writes nothing. */
    if (store_exec(c->db, "PRAGMA cache_size=-256") != 0 ||
        sqlite3_wal_autocheckpoint(c->db, 0) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(c->db));
        rc = REINT_EDB;
        goto fail;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        snprintf(err, errlen, "walckpt: cannot create a mutex");
        goto fail;
    }
    have_lock = 1;
    if (pthread_cond_init(&c->wake, NULL) != 0) {
        snprintf(err, errlen, "walckpt: cannot create a condition variable");
        goto fail;
    }
    have_cond = 1;
    if (pthread_create(&c->thread, NULL, walckpt__main, c) != 0) {
        snprintf(err, errlen, "walckpt: cannot start the checkpoint thread");
        goto fail;
    }
    /* Replaces the automatic checkpoint, which is itself a WAL hook. */
    sqlite3_wal_hook(db, walckpt__hook, c);
    *out = c;
    return 0;
fail:
    if (have_cond)
        pthread_cond_destroy(&c->wake);
    if (have_lock)
        pthread_mutex_destroy(&c->lock);
    store_close(c->db);
    free(c);
    return rc;
}

void walckpt_stop(walckpt *c)
{
    if (c == NULL)
        return;
    sqlite3_wal_hook(c->writer, NULL, NULL);
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    sqlite3_wal_autocheckpoint(c->writer, c->frames);
    store_close(c->db);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void walckpt_get_stats(walckpt *c, walckpt_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}
