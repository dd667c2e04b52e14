/* The renderings of the federal API's answers, pure (no I/O, no database): the catalogue, an
 * indicator as JSON or CSV, and DHIS2's dataValueSets. Values are exact, or what disclosure.h
 * lets the public see when perturbed is set: then no numerator, denominator or contributor
 * count is shown, and a value withheld (a sum of few contributors or of an area or period too
 * fine, a ratio of a small denominator, any empty sum or ratio) is null with "suppressed":
 * true in JSON, empty in CSV and omitted from DHIS2's exports (dhis2.h). Every value comes from the
 * one function of a cell's contents, so the same cell shows the same value on every route; a route
 * that lists cells of other areas or periods than the query's must judge sums by each cell's own
 * (disclosure_sum_level). An answer for a grouping lists its whole category space, zeros included
 * (every value of each dimension's enumeration, UNKNOWN last; every two-letter code for countries),
 * so that a row's presence says nothing; DHIS2's exports omit zeros, as DHIS2 does. Each renderer
 * appends to b and returns 0, or REINT_ETOOBIG when b failed (its maximum or memory): the caller
 * then answers 500, never a truncated 200. */
#ifndef FEDERAL_API_FRENDER_H
#define FEDERAL_API_FRENDER_H

#include "error.h"

#include <stddef.h>

#include "catalogue.h"
#include "findicators.h"
#include "params.h"
#include "sbuf.h"

/* GET /v1/indicators: every indicator with its aggregation, dimensions and groupings. */
int frender_catalogue(sbuf *b);

/* GET /v1/indicators/<code> as JSON: the indicator, period, area, the "as of" of each province
 * of the area, the total, and a row per key of grouping q->by. */
int frender_indicator_json(sbuf *b, const catalogue_indicator *ind, const params_query *q,
                           const findicators_result *r, int perturbed);

/* The same as CSV: a header row, then a row per key of q->by, then the total's row (its
 * dimension columns TOTAL). The "as of" goes in a header: see frender_as_of_header. */
int frender_indicator_csv(sbuf *b, const catalogue_indicator *ind, const params_query *q,
                          const findicators_result *r, int perturbed);

/* The X-Data-As-Of header value of a CSV answer ("1=2026-07-31T...; 2=none") into out. */
void frender_as_of_header(const params_query *q, const findicators_result *r, char *out,
                          size_t outlen);

/* A key or a grouping's part longer than this is cut; the catalogue's longest is 25. */
#define FRENDER_PART_MAX 40

/* One value that DHIS2's exports send: its indicator and cell, the grouping's dimensions and
 * the key's values (nd of each: 0 for the total), and the value as text ("12", "0.2500"). */
typedef struct frender_dv {
    const catalogue_indicator *ind;
    const findicators_cell *cell;
    int nd;
    char dims[2][FRENDER_PART_MAX];
    char vals[2][FRENDER_PART_MAX];
    char value[64];
} frender_dv;

typedef void (*frender_dv_fn)(void *ud, const frender_dv *v);

/* Calls fn for every cell of r that DHIS2's exports send, in r's order: the values the role
 * sees (the same function as every other route), except zeros and withheld ones. */
void frender_dv_each(const params_query *q, const findicators_result *r, int perturbed,
                     frender_dv_fn fn, void *ud);

/* The "as of" object of an answer: {"1":"2026-...Z" or null, ...} per province of q's area. */
void frender_as_of_json(sbuf *b, const params_query *q, const findicators_result *r);

/* The category space of a dimension ("sex"): how many values (UNKNOWN, last, included; 1 for
 * a dimension this build does not know), and value i of them into out. */
size_t frender_space_n(const char *dim);
void frender_space_at(const char *dim, size_t i, char out[FRENDER_PART_MAX]);

#endif
