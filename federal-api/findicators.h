/* Indicator answers from PostgreSQL (GET /v1/indicators/<code> and GET /v1/dataValueSets).
 * One statement per request reads the cells of the area asked (the provinces' aggregates for
 * the nation or a province, added at read time; the municipalities' cells for a district or
 * a municipality), the two largest contributions of each sum of the area (from the
 * municipalities' own, at read time, since a top-k cannot be kept by deltas), each province's
 * last commit (the answer's "as of"), and writes the request's audit row (faudit.h). Its rows are
 * decoded into a findicators_result, which frender.h turns into JSON, CSV or DHIS2's dataValueSets.
 */
#ifndef FEDERAL_API_FINDICATORS_H
#define FEDERAL_API_FINDICATORS_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "freq.h"

/* The SQL pieces every cell query shares (findicators.c, fapprovals.c): the two largest
 * contributions of each sum cell over the rows the WHERE that follows chooses, and the rows
 * of each province's last commit ("as of") after the cells. */
#define FINDICATORS_TOPS                                                                           \
    " SELECT t.indicator, t.grouping, t.key, (array_agg(x.v ORDER BY x.v DESC))[1] AS t1,"         \
    " (array_agg(x.v ORDER BY x.v DESC))[2] AS t2 FROM cell_tops t"                                \
    " CROSS JOIN LATERAL (VALUES (t.top1), (t.top2)) AS x(v)"

#define FINDICATORS_AS_OF                                                                          \
    " UNION ALL SELECT 1, province::text, to_char(last_commit AT TIME ZONE 'UTC',"                 \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"        \
    " FROM province_status WHERE province = ANY($5::smallint[]) ORDER BY 1, 2, 3, 4"

/* One cell of the answer: an indicator's value for one key of one grouping, with what the
 * public role's disclosure control needs (disclosure.h), none of which is shown to it. */
typedef struct findicators_cell {
    const char *indicator, *grouping, *key; /* "sex,age_band" and "FEMALE,25_39"; "" total */
    int64_t nu, de, co;                     /* numerator, denominator, contributors */
    uint32_t ck;                            /* the cell key (sum of record keys mod 2^32) */
    uint32_t nk;                            /* ratios: the numerator's key */
    int64_t t1, t2;     /* sums: the two largest contributions of the area (0: not known) */
    uint32_t area;      /* breakdowns (fbreakdown.h): the area's code (0 for the query's own) */
    const char *period; /* breakdowns: the cell's period; NULL for a single period's answer */
} findicators_cell;

struct fapprovals_coverage;

typedef struct findicators_result {
    findicators_cell *cells; /* malloc'd, n of them */
    size_t n;
    const char *as_of[8]; /* by province 1..7; NULL when that province never sent data */
    /* The answer's approval coverage (fapprovals.h), set by findicators_answer; not owned. */
    const struct fapprovals_coverage *approval;
} findicators_result;

/* Decodes the rows of the statement findicators_answer sends. The strings point into res:
 * the result is valid while res is and is released with findicators_result_free. Returns 0,
 * REINT_ENOMEM, or REINT_EMALFORMED when a row does not have the statement's shape. */
int findicators_decode(const PGresult *res, findicators_result *out);
void findicators_result_free(findicators_result *r);

/* The rows of an indicator statement for f: decoded into r and counted as an audited read
 * (returns 0), or f answered with the error (503 for the store, 500 for a shape that is not
 * the statement's; returns -1, r untouched). */
int findicators_rows(freq *f, const PGresult *res, const char *err, findicators_result *r);

/* Answers f: GET /v1/indicators/<code> when f->ind is set (JSON, or CSV with format=csv),
 * else GET /v1/dataValueSets (every indicator); values exact, or perturbed for the public
 * role. The caller has checked the role's right to the area. Frees f. */
void findicators_answer(freq *f);

#endif
