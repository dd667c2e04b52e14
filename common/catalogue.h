/* The v1 indicator catalogue (DESIGN.md, Indicators): codes, aggregation, dimensions and
 * declared groupings, shared by the hub (which computes every grouping separately) and the
 * federal API (which serves them and refuses undeclared `by=`). */
#ifndef COMMON_CATALOGUE_H
#define COMMON_CATALOGUE_H

#include <stddef.h>

enum catalogue_agg {
    CATALOGUE_COUNT,    /* records counted */
    CATALOGUE_DISTINCT, /* distinct persons counted */
    CATALOGUE_SUM,      /* a sum of amounts; contributors counted for disclosure control */
    CATALOGUE_RATIO,    /* numerator / denominator, divided at read time */
};

#define CATALOGUE_MAX_DIMS      6
#define CATALOGUE_MAX_GROUPINGS 12

typedef struct catalogue_indicator {
    const char *code;  /* "participants_registered" */
    const char *title; /* one line for the catalogue */
    const char *sdg;   /* "10.7" or "" */
    enum catalogue_agg agg;
    const char *dims[CATALOGUE_MAX_DIMS + 1]; /* NULL-terminated: "category", "sex", ... */
    /* NULL-terminated: "" (the total), each single dimension, and the declared pairs
     * written "sex,category" in the order of dims. */
    const char *groupings[CATALOGUE_MAX_GROUPINGS + 1];
} catalogue_indicator;

/* Dimension names used above: category, sex, age_band, caste_group, disability,
 * destination_country, service_type, programme, provider, action, sector, owner_sex,
 * owner_category. Values are the domain enumeration names ("FEMALE", "25_39",
 * "SEED_FUNDING", "QA", "UNKNOWN"). */

const catalogue_indicator *catalogue_all(size_t *n);
const catalogue_indicator *catalogue_find(const char *code);
/* Whether grouping (e.g. "sex,age_band", "" for the total) is declared for ind; a grouping
 * given in another dimension order ("age_band,sex") is normalised into out (at least 64
 * bytes). Returns 1 when declared, 0 otherwise. */
int catalogue_grouping(const catalogue_indicator *ind, const char *grouping, char *out,
                       size_t outlen);

#endif
