/* Small whole-file helpers for files a daemon replaces while others read them (a CRL). */
#ifndef COMMON_FSUTIL_H
#define COMMON_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads all of path into a malloc'd buffer (*out, *len). A file of max bytes or more is
 * refused (REINT_ETOOBIG). Returns 0 or a negative REINT_E* code with err set. */
int fs_read_all(const char *path, size_t max, uint8_t **out, size_t *len, char *err, size_t errlen);
/* Replaces path with data durably: written to path.new, fsync'd, renamed over path, and the
 * directory fsync'd, so a reader sees the old file or the new one, never a part. Returns 0
 * or REINT_EIO with err set. */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

#endif
