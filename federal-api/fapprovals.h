/* The monthly review at the federal tier, the readers' side (issue 14; DESIGN.md, Approval).
 *
 * A municipality-month is one month of the calendar its municipality closes months in (the
 * hub's Coverage says which: AD, or BS, a municipality that did not say counting as BS). For
 * an answer about a period and an area, the municipality-months are those of the area's
 * municipalities that overlap the period; a period of the other calendar, or a longer one,
 * counts as approved for a municipality only when every one of its overlapping months is
 * approved (freviews.h keeps the states the hubs send). Every indicator answer reports its
 * approval coverage:
 *   municipality_months  the area's municipality-months of the period,
 *   contributing         those holding data here (at least one cell of that month),
 *   closed               those closed by their clerk and not returned (closed, approved, or
 *                        changed since approval),
 *   approved             those approved now,
 *   municipalities, municipalities_approved
 *                        the area's municipalities, and those whose every month of the
 *                        period is approved: the ones an approved-only answer adds up.
 * approval=approved restricts an indicator answer to those municipalities (the official
 * figure); the default is every municipality's data (provisional).
 *
 * GET /v1/approvals?period=&by=province|municipality (&province=, &district=, &municipality=)
 * shows that progress by area; the decisions themselves (each month's state, who decided,
 * when, the comment) are shown to the ministry and admin roles only.
 *
 * GET /v1/directives/<serial>/progress?period=&by=province&province=&municipality=
 * &approval=approved shows each target of a directive against its actual: the indicator's
 * value in the target's scope and period (a ratio divided), and the share of the target
 * reached; period= keeps the targets of that period, province= those whose scope lies in the
 * province (the national ones included), municipality= those of that municipality; by=province
 * splits each actual by province. Ministry and admin read every target, a province role those
 * of its province. */
#ifndef FEDERAL_API_FAPPROVALS_H
#define FEDERAL_API_FAPPROVALS_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "freq.h"
#include "sbuf.h"

typedef struct fapprovals_coverage {
    int have; /* the numbers below were read */
    long long municipality_months, contributing, closed, approved;
    long long municipalities, municipalities_approved;
} fapprovals_coverage;

/* Array literals ("{208304,208305}") of the months overlapping period in the BS calendar and
 * in the Gregorian one. Returns 0 or REINT_EINVAL (not a period). */
int fapprovals_months(const char *period, char *bs, size_t bslen, char *ad, size_t adlen);

/* The statement of an approved-only indicator answer: the same rows as findicators' statements
 * (FAUDIT_READ_SQL, $5 provinces, $6 period, $7 indicators, $8 groupings, $9 period kind, $10
 * district, $11 municipality) from the cells of the area's municipalities whose every month of
 * the period is approved; $12 and $13 are fapprovals_months' BS and Gregorian literals. */
extern const char *const fapprovals_cells_sql;
#define FAPPROVALS_CELLS_PARAMS 13

/* Fills out with the coverage of f's area (f->q) and period, then calls done(f, NULL), or
 * done(f, why) when it cannot be read (why: the message for a 503). The coverage comes from
 * f->env->covcache (fcovcache.h) when no commit has touched its months since it was read, and
 * done is then called from inside this call; otherwise a statement reads it (and the cache
 * keeps it). Returns 0, REINT_EINVAL (a bad period), REINT_ENOMEM or db_query's code (done is
 * then not called). */
typedef void (*fapprovals_coverage_cb)(freq *f, const char *why);
int fapprovals_coverage_fetch(freq *f, fapprovals_coverage *out, fapprovals_coverage_cb done);

/* Appends ,"approval":{...} (the coverage and "filter": "approved" or "all") to an answer's
 * JSON object being written; nothing when c->have is 0. For the public (perturbed answers)
 * without "contributing": which municipality-months hold any record is exact, and told that
 * a cell published as 0 was not empty (an attack on the demo). */
void fapprovals_coverage_json(sbuf *b, const fapprovals_coverage *c, int approved_only,
                              int perturbed);
/* The same as the value of the X-Approval-Coverage header of CSV answers. */
void fapprovals_coverage_header(const fapprovals_coverage *c, int approved_only, int perturbed,
                                char *out, size_t outlen);

/* GET /v1/approvals. Answers (audited) and frees f. */
void fapprovals_answer(freq *f);

/* GET /v1/directives/<serial>/progress (f->serial). Answers (audited) and frees f. */
void fapprovals_progress(freq *f);

#endif
