/* GET /v1/coverage: what each province's hub reports of its municipalities' delivery (the
 * Coverage message of protocol version 2, kept in table coverage): live records held, records
 * that could not be delivered (refused, or dropped by the node as too large for one frame, and
 * not replaced since), the last batch, and the calendar each closes its months in. Ministry and
 * admin read every province (or one, with province=), a province role its own. */
#ifndef FEDERAL_API_FCOVERAGE_H
#define FEDERAL_API_FCOVERAGE_H

#include "freq.h"

/* Answers and frees f (audited); the caller has parsed province= into f->q and checked the
 * role may read f->q.area_province (0: every province). */
void fcoverage_answer(freq *f);

#endif
