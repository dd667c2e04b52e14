/* INI configuration (libinih) described by a table, so that every key has a type, a default
 * (the value already in the destination) and a line of documentation that --help prints. */
#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum config_type { CONFIG_STR, CONFIG_INT, CONFIG_BOOL };

typedef struct config_item {
    const char *section;
    const char *name;
    enum config_type type;
    void *dst; /* char[CONFIG_STR_MAX], long, or int */
    const char *help;
} config_item;

#define CONFIG_STR_MAX 512

/* Reads path into the items' destinations. Unknown sections or keys, values of the wrong
 * type and unreadable files are errors: returns -1 with "FILE line N: ..." in err. */
int config_load(const char *path, const config_item *items, size_t n, char *err, size_t errlen);
/* Prints every key with its current value and documentation, as an example INI file. */
void config_print(FILE *f, const config_item *items, size_t n);

#endif
