/* Checkpoints of a WAL database on a thread of their own (issue 17).
 *
 * SQLite's automatic checkpoint runs inside the commit that finds the write-ahead log past its
 * threshold: that commit copies the log's pages back into the database file and syncs it (on
 * a hub, 64 MiB of log: about a tenth of a second), on the thread that committed, which for a
 * daemon is its event loop. A walckpt turns the connection's automatic checkpoints off and
 * runs them on a thread with a connection of its own (PASSIVE: it never waits for, nor makes
 * wait, the writer or a reader), started by the writer's commits that leave the log at
 * `frames` frames or more. The loop then never stops to checkpoint, and the second core does
 * the copying.
 *
 * Durability does not change: a commit is durable in the log before it returns, and a
 * checkpoint is crash-safe whichever connection runs it (the checkpointing connection syncs
 * with synchronous=FULL, as store_open sets). When the log reaches four times `frames`
 * (the thread fell behind, or a reader keeps its checkpoints from finishing), the writer's
 * commit checkpoints itself as before, so that the log stays bounded. */
#ifndef COMMON_WALCKPT_H
#define COMMON_WALCKPT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct walckpt walckpt;

typedef struct walckpt_stats {
    uint64_t runs;        /* checkpoints the thread ran to their end */
    uint64_t inline_runs; /* checkpoints the writer ran itself, the log past 4 x frames */
    uint64_t failures;    /* checkpoints that failed (logged), SQLITE_BUSY not counted */
    int last_log;         /* after the thread's last checkpoint: frames in the log */
    int last_done;        /* and of those, frames in the database file */
} walckpt_stats;

/* Starts checkpointing path, the file db (a WAL connection used by one thread) has open:
 * turns db's automatic checkpoints off and starts the thread. frames > 0. Returns 0, or
 * REINT_EDB / REINT_ENOMEM with err set (db is then as it was). */
int walckpt_start(walckpt **out, sqlite3 *db, const char *path, int frames, char *err,
                  size_t errlen);
/* Stops the thread (after the checkpoint it is running, if any), gives db back its automatic
 * checkpoints at the same threshold, and frees c. Call it before closing db. NULL is fine. */
void walckpt_stop(walckpt *c);
/* A consistent copy of c's counters; callable from any thread. */
void walckpt_get_stats(walckpt *c, walckpt_stats *out);

#endif
