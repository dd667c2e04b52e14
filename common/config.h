/* INI configuration (libinih) described by a table, so that every key has a type, a default
 * (the value already in the destination) and a line of documentation that --help prints. */
#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

enum config_type { CONFIG_STR, CONFIG_INT, CONFIG_BOOL };

typedef struct config_item {
    const char *section;
    const char *name;
    enum config_type type;
    void *dst; /* char[CONFIG_STR_MAX], long, or int */
    const char *help;
    long min, max; /* CONFIG_INT: the accepted range, both ends included (min < max) */
} config_item;

/* Table rows: every whole number names its range. */
#define CONFIG_ITEM_STR(section, name, dst, help)                                                  \
    {                                                                                              \
        section, name, CONFIG_STR, dst, help, 0, 0                                                 \
    }
#define CONFIG_ITEM_BOOL(section, name, dst, help)                                                 \
    {                                                                                              \
        section, name, CONFIG_BOOL, dst, help, 0, 0                                                \
    }
#define CONFIG_ITEM_INT(section, name, dst, help, min, max)                                        \
    {                                                                                              \
        section, name, CONFIG_INT, dst, help, min, max                                             \
    }

#define CONFIG_STR_MAX 512

/* The range of every max_frame setting: a Hello fits in the smallest, and no frame reaches
 * the protocol's 4-byte length limit. */
#define CONFIG_FRAME_MIN 512L
#define CONFIG_FRAME_MAX (64L * 1024 * 1024)

/* Reads path into the items' destinations. Unknown sections or keys, a key set twice, values
 * of the wrong type, whole numbers outside their item's range and unreadable files are
 * errors: returns
 * REINT_EINVAL (REINT_EIO for an unreadable file) with "FILE line N: ..." in err. An item
 * table with a CONFIG_INT that declares no range is refused whole (a programming error). */
int config_load(const char *path, const config_item *items, size_t n, char *err, size_t errlen);
/* Prints every key with its current value and documentation, as an example INI file. */
void config_print(FILE *f, const config_item *items, size_t n);
/* Whether every line config_print writes is one config_load reads back (a value of a long
 * path can make a line longer than libinih reads): 0, or REINT_EINVAL with err naming the
 * key and the limit. */
int config_printable(const config_item *items, size_t n, char *err, size_t errlen);

#endif
