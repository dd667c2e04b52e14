/* Record ids: 16 bytes in the UUIDv7 layout (48-bit Unix milliseconds, version 7, then
 * random bits), so that B-tree inserts land at the right edge. */
#ifndef COMMON_RID_H
#define COMMON_RID_H

#include <stddef.h>
#include <stdint.h>

#define RID_LEN     16
#define RID_HEX_LEN 36 /* 8-4-4-4-12 */

/* Fills id with a new time-ordered id for the given wall clock. Returns 0 or -1 when the
 * system random source fails. */
int rid_new(uint8_t id[RID_LEN], uint64_t now_ms);
/* Writes the canonical text form (37 bytes with the NUL) into out. */
void rid_format(const uint8_t id[RID_LEN], char out[RID_HEX_LEN + 1]);
/* Parses the canonical text form. Returns 0 or -1. */
int rid_parse(const char *s, uint8_t id[RID_LEN]);
/* Random bytes from the kernel. Returns 0 or -1. */
int rid_random(uint8_t *buf, size_t len);

#endif
