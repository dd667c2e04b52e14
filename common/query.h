/* The one strict parser of API query strings (the federal API and the hub officers' API):
 * a query is "name=value" pairs joined by single '&'s, at most QUERY_MAX bytes as received,
 * each name once, names and percent-decoded values of A-Z a-z 0-9 _ , / - . only (the dot for
 * ranges of periods, 2023..2026). Anything else is refused: an empty segment ("&&", a leading or
 * trailing '&'), a pair without '=', an empty or unknown-looking name, a bad escape, a '+' (a
 * space), a value above QUERY_MAX_VALUE bytes. What is accepted has one normalised spelling
 * (query_format), which is what the audit logs record: padding, escapes and repeats cannot hide
 * what was read. Pure: no I/O, no allocation. */
#ifndef COMMON_QUERY_H
#define COMMON_QUERY_H

#include "error.h"

#include <stddef.h>

#define QUERY_MAX        1024 /* bytes of a raw (percent-encoded) query string */
#define QUERY_MAX_NAME   31   /* bytes of a decoded name */
#define QUERY_MAX_VALUE  64   /* bytes of a decoded value */
#define QUERY_MAX_PARAMS 16
/* The longest normalised query, with its NUL: every pair at its longest, '=' and '&'. */
#define QUERY_NORM_MAX (QUERY_MAX_PARAMS * (QUERY_MAX_NAME + QUERY_MAX_VALUE + 2))

typedef struct query_param {
    char name[QUERY_MAX_NAME + 1];
    char value[QUERY_MAX_VALUE + 1];
} query_param;

typedef struct query_pairs {
    size_t n;
    query_param p[QUERY_MAX_PARAMS];
} query_pairs;

/* Parses raw (the query as received, without the '?'; "" is the empty query) into q.
 * Names are not checked against any list: the caller refuses those it does not serve.
 * Returns 0, or REINT_EINVAL with a sentence in err naming the parameter and what is wrong
 * (it never repeats a name or value that failed the character check). */
int query_parse(const char *raw, query_pairs *q, char *err, size_t errlen);

/* The decoded value of name, or NULL when the query does not hold it. Owned by q. */
const char *query_get(const query_pairs *q, const char *name);

/* Writes q's normalised spelling into out: "name=value" in the order received, joined by
 * '&' ("" for the empty query). The characters allowed need no escaping, so the spelling
 * is unambiguous. Returns 0, or REINT_ETOOBIG when outlen is below QUERY_NORM_MAX and the
 * text does not fit (out then holds ""). */
int query_format(const query_pairs *q, char *out, size_t outlen);

#endif
