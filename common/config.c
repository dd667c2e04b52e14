#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The longest line libinih reads whole (its buffer holds the newline and a NUL too). */
#define CONFIG_MAX_LINE (INI_MAX_LINE - 2)
/* The width of the comments config_print writes, "; " included. */
#define CONFIG_COMMENT_WIDTH 96

typedef struct config_state {
    const config_item *items;
    size_t n;
    char *err;
    size_t errlen;
    const char *path;
    int failed;
    unsigned char *seen; /* per item: set once already */
} config_state;

static int config__set(const config_item *it, const char *value, char *why, size_t whylen)
{
    switch (it->type) {
    case CONFIG_STR:
        if (strlen(value) >= CONFIG_STR_MAX) {
            snprintf(why, whylen, "value longer than %d bytes", CONFIG_STR_MAX - 1);
            return -1;
        }
        snprintf((char *)it->dst, CONFIG_STR_MAX, "%s", value);
        return 0;
    case CONFIG_INT: {
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if ((errno != 0 && errno != ERANGE) || end == value || *end != '\0') {
            snprintf(why, whylen, "\"%s\" is not a whole number", value);
            return -1;
        }
        if (errno == ERANGE || v < it->min || v > it->max) {
            snprintf(why, whylen, "%.40s is outside the range %ld..%ld", value, it->min, it->max);
            return -1;
        }
        *(long *)it->dst = v;
        return 0;
    }
    case CONFIG_BOOL:
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1")) {
            *(int *)it->dst = 1;
            return 0;
        }
        if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0")) {
            *(int *)it->dst = 0;
            return 0;
        }
        snprintf(why, whylen, "\"%s\" is not true/false", value);
        return -1;
    }
    return -1;
}

/* Debian's libinih does not pass line numbers to handlers; find the key's line afterwards so
 * that the error still names it. */
static int config__line_of(const char *path, const char *section, const char *name, int nth)
{
    char buf[1024], cur[256] = "";
    int line = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(buf, sizeof(buf), f)) {
        char *p = buf;
        line++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '[') {
            char *e = strchr(p, ']');
            if (e)
                snprintf(cur, sizeof(cur), "%.*s", (int)(e - p - 1), p + 1);
            continue;
        }
        size_t n = strlen(name);
        if (strcmp(cur, section) == 0 && strncmp(p, name, n) == 0 &&
            strchr(" \t=:", p[n]) != NULL && --nth == 0) {
            fclose(f);
            return line;
        }
    }
    fclose(f);
    return 0;
}

static int config__handler(void *user, const char *section, const char *name, const char *value)
{
    int lineno;
    config_state *s = user;
    char why[256];
    if (s->failed)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].section, section) == 0 && strcmp(s->items[i].name, name) == 0) {
            /* A key set twice (a line added at the end, a second [section], an indented
             * line that libinih takes as the key's continuation) silently took the last. */
            if (s->seen[i]) {
                int first = config__line_of(s->path, section, name, 1);
                lineno = config__line_of(s->path, section, name, 2);
                if (lineno)
                    snprintf(s->err, s->errlen,
                             "%s line %d: [%s] %s is set a second time (first on line %d); "
                             "keep one",
                             s->path, lineno, section, name, first);
                else
                    snprintf(s->err, s->errlen,
                             "%s line %d: [%s] %s is followed by an indented line, which is "
                             "read as a second value of it: start each key at the beginning "
                             "of its line, and write a value on one line",
                             s->path, first, section, name);
                s->failed = 1;
                return 0;
            }
            s->seen[i] = 1;
            if (config__set(&s->items[i], value, why, sizeof(why)) == 0)
                return 1;
            lineno = config__line_of(s->path, section, name, 1);
            snprintf(s->err, s->errlen, "%s line %d: [%s] %s: %s", s->path, lineno, section, name,
                     why);
            s->failed = 1;
            return 0;
        }
    }
    lineno = config__line_of(s->path, section, name, 1);
    snprintf(s->err, s->errlen, "%s line %d: unknown key [%s] %s", s->path, lineno, section, name);
    s->failed = 1;
    return 0;
}

/* The error of line lineno of path, len characters long: REINT_EINVAL. */
static int config__long_line(const char *path, int lineno, size_t len, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "%s line %d is %zu characters long: lines are read up to %d; break it (a comment "
             "into several lines beginning with ;)",
             path, lineno, len, CONFIG_MAX_LINE);
    return REINT_EINVAL;
}

int config_load(const char *path, const config_item *items, size_t n, char *err, size_t errlen)
{
    config_state s = {items, n, err, errlen, path, 0, NULL};
    for (size_t i = 0; i < n; i++) {
        if (items[i].type == CONFIG_INT && items[i].min >= items[i].max) {
            snprintf(err, errlen, "[%s] %s declares no range (a bug in this program)",
                     items[i].section, items[i].name);
            return REINT_EINVAL;
        }
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return REINT_EIO;
    }
    /* A line past libinih's buffer is read as two, the second a continuation of the key
     * before it: said as it is, not as "an indented line" or a key set twice. */
    char buf[1024];
    int lineno = 0;
    size_t len = 0;
    while (fgets(buf, sizeof(buf), f)) {
        size_t k = strlen(buf);
        int ends = k > 0 && buf[k - 1] == '\n';
        len += k - (size_t)ends;
        if (!ends && !feof(f))
            continue;
        lineno++;
        if (len > CONFIG_MAX_LINE) {
            fclose(f);
            return config__long_line(path, lineno, len, err, errlen);
        }
        len = 0;
    }
    /* A last line with no newline, read to its end in the loop above without being counted
     * (a review: one of 1,023 characters slipped through). */
    if (len > CONFIG_MAX_LINE) {
        fclose(f);
        return config__long_line(path, lineno + 1, len, err, errlen);
    }
    rewind(f);
    s.seen = calloc(n ? n : 1, 1);
    if (s.seen == NULL) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return REINT_ENOMEM;
    }
    int rc = ini_parse_file(f, config__handler, &s);
    fclose(f);
    free(s.seen);
    if (s.failed)
        return REINT_EINVAL;
    if (rc != 0) {
        snprintf(err, errlen, "%s line %d: not a valid INI line", path, rc);
        return REINT_EINVAL;
    }
    return 0;
}

/* help as "; " lines of at most CONFIG_COMMENT_WIDTH columns, broken at spaces: one line
 * of 220 characters made the federal tier refuse its own example (deploy/examples), since
 * libinih reads lines of up to CONFIG_MAX_LINE characters and takes the rest as another. */
static void config__print_comment(FILE *f, const char *help)
{
    const char *p = help;
    while (*p) {
        size_t len = strlen(p), cut = len;
        if (len > CONFIG_COMMENT_WIDTH - 2) {
            cut = CONFIG_COMMENT_WIDTH - 2;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0) /* one word longer than the width: whole, up to its end */
                for (cut = CONFIG_COMMENT_WIDTH - 2; p[cut] && p[cut] != ' '; cut++)
                    ;
        }
        fprintf(f, "; %.*s\n", (int)cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
}

int config_printable(const config_item *items, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const config_item *it = &items[i];
        size_t len = strlen(it->name) + 3;
        if (it->type != CONFIG_STR || (len += strlen((const char *)it->dst)) <= CONFIG_MAX_LINE)
            continue;
        snprintf(err, errlen,
                 "[%s] %s would be a line of %zu characters, and the configuration's lines are "
                 "read up to %d",
                 it->section, it->name, len, CONFIG_MAX_LINE);
        return REINT_EINVAL;
    }
    return 0;
}

void config_print(FILE *f, const config_item *items, size_t n)
{
    const char *section = NULL;
    for (size_t i = 0; i < n; i++) {
        const config_item *it = &items[i];
        if (section == NULL || strcmp(section, it->section) != 0) {
            fprintf(f, "%s[%s]\n", section ? "\n" : "", it->section);
            section = it->section;
        }
        config__print_comment(f, it->help);
        switch (it->type) {
        case CONFIG_STR:
            fprintf(f, "%s = %s\n", it->name, (const char *)it->dst);
            break;
        case CONFIG_INT:
            fprintf(f, "; range %ld..%ld\n%s = %ld\n", it->min, it->max, it->name,
                    *(long *)it->dst);
            break;
        case CONFIG_BOOL:
            fprintf(f, "%s = %s\n", it->name, *(int *)it->dst ? "true" : "false");
            break;
        }
    }
}
