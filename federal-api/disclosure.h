/* Cell-key perturbation for the public role (DESIGN.md, Disclosure control; the method of
 * the Australian Bureau of Statistics and the UK 2021 census). A cell's key (the sum mod 2^32
 * of its contributors' record keys, carried in the rollups) picks a column of a fixed
 * perturbation table; the cell's value picks the row. The same cell therefore always gets
 * the same noise, zeros stay zero, and no 1 or 2 is ever shown. */
#ifndef FEDERAL_API_DISCLOSURE_H
#define FEDERAL_API_DISCLOSURE_H

#include <stdint.h>

#define DISCLOSURE_MIN_CONTRIBUTORS 5 /* sums are shown to the public only from here */
#define DISCLOSURE_MAX_NOISE        4 /* largest |noise| any row of the table adds */

/* The noise the table adds to count value under cell_key (0 for value <= 0). */
int disclosure_noise(int64_t value, uint32_t cell_key);

/* The perturbed count: value + noise, 0 for 0, never 1 or 2, never negative. */
int64_t disclosure_count(int64_t value, uint32_t cell_key);

/* A sum of amounts (seed funding, jobs) for the public: shown only with at least
 * DISCLOSURE_MIN_CONTRIBUTORS contributors, then moved by the table's noise in percent.
 * Returns 1 and sets *out when shown, 0 when suppressed. */
int disclosure_sum(int64_t value, int64_t contributors, uint32_t cell_key, int64_t *out);

#endif
