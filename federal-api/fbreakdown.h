/* Geography and time in one query: GET /v1/indicators/<code> with by=<area>[,grouping] (an
 * answer for every province, district or municipality within the query's filter) and/or
 * series=<kind> (an answer for every period of that kind within period=, which may then be a
 * range A..B of years or fiscal years).
 *
 * One statement reads the cells of every area and period asked, grouped by area and period
 * exactly as a single answer groups its own (the same sums, cell keys and numerator keys mod
 * 2^32, contributors, and the two largest contributions of the area's municipalities), and
 * every (area, period) is rendered by the single answer's renderer (frender.h) with the query
 * that area and period would have alone. So each answer of a breakdown equals, value for
 * value and perturbed or exact, what GET /v1/indicators/<code>?period=<p>&<area>=<code> gives.
 * Every area of the level is listed, with or without data, so that presence says nothing.
 *
 * JSON: {"indicator", "title", "by", "series" (null without), "period", "period_last" (with a
 * range), "disclosure", "answers": [<the single answer of each area and period: areas in code
 * order, each area's periods in order>]}. CSV: one header, then the rows of every answer.
 * approval=approved is not combined with a breakdown (params.c refuses it). */
#ifndef FEDERAL_API_FBREAKDOWN_H
#define FEDERAL_API_FBREAKDOWN_H

#include "freq.h"

/* Whether f's query asks for a breakdown (by=<area> or series=). */
int fbreakdown_wanted(const freq *f);

/* Answers f (the caller has checked the role's right to the query's filter area). Frees f. */
void fbreakdown_answer(freq *f);

#endif
