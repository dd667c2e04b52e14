/* Small whole-file helpers for files a daemon replaces while others read them (a CRL). */
#ifndef COMMON_FSUTIL_H
#define COMMON_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads all of path into a malloc'd buffer (*out, *len). A file of max bytes or more is
 * refused (REINT_ETOOBIG). Returns 0 or a negative REINT_E* code with err set. */
int fs_read_all(const char *path, size_t max, uint8_t **out, size_t *len, char *err, size_t errlen);
/* Replaces path with data durably: written beside it, fsync'd, renamed over path, and the
 * directory fsync'd, so a reader sees the old file or the new one, never a part. Returns 0
 * or REINT_EIO with err set. */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* The same, the new file taking like's mode, owner and group (refused when they cannot be
 * kept): a file of secrets rewritten by root for a daemon's user stays that user's, and 0600.
 * fs_write_atomic keeps the mode of the file it replaces (a new one: 0644 under the umask).
 * The file is written as path.new.XXXXXX, a name of its own (O_EXCL); a crash can leave
 * one behind, never read. */
struct stat;
int fs_write_atomic_like(const char *path, const void *data, size_t len, const struct stat *like,
                         char *err, size_t errlen);

/* The lock a daemon holds on its store for as long as it runs, in the file path (made 0600,
 * holding the daemon's pid): 0 with *fd kept open (the lock goes with the process), or
 * REINT_EEXIST with *holder the pid of the process that holds it (0 when unknown), or
 * REINT_EIO with err set. */
int fs_lock_pidfile(const char *path, int *fd, long *holder, char *err, size_t errlen);
/* Whether dir is a directory this process can create files in: 0, or REINT_EINVAL with err
 * saying why (missing, not a directory, no permission), which is the operator's to fix. */
int fs_dir_usable(const char *dir, char *err, size_t errlen);
/* Whether a process holds path's lock now: 1 with *holder its pid (0 when unknown), 0 when
 * none does (or the file is not there). */
int fs_lock_held(const char *path, long *holder);

#endif
