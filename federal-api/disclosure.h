/* Disclosure control for the public role (DESIGN.md, Disclosure control; docs/PRIVACY.md,
 * which states every parameter below: the protection must hold for an attacker who knows
 * them). The methods are the cell-key methods of the Australian Bureau of Statistics (also
 * used by the UK 2021 census): a cell's key, carried in the rollups, is the sum mod 2^32 of
 * its contributors' keys, so the same cell always gets the same noise whatever query asks for
 * it, and the key changes when the cell's contents do.
 *
 *   Counts: the key (mixed: disclosure_mix) picks a column of a fixed perturbation table and
 *   the value picks the row;
 *   zeros stay zero, no 1 or 2 is ever shown, and small counts are shown as 0 with a real
 *   chance, so a 0 never certifies an empty cell.
 *   Magnitudes (sums): noise drawn from the (mixed) key and scaled by the cell's two largest
 *   contributions, never zero for a non-empty cell; a sum of fewer than
 *   DISCLOSURE_MIN_CONTRIBUTORS contributors is not shown, nor any sum of an area or period
 *   finer than disclosure_sum_level() allows.
 *   Ratios: the perturbed numerator over the perturbed denominator, withheld where the
 *   perturbed denominator is below DISCLOSURE_MIN_DENOMINATOR.
 * Pure functions: no state, no I/O. */
#ifndef FEDERAL_API_DISCLOSURE_H
#define FEDERAL_API_DISCLOSURE_H

#include <stdint.h>

#include "period.h"

#define DISCLOSURE_COLUMNS          1848 /* the count table's columns */
#define DISCLOSURE_MAX_NOISE        5    /* largest |noise| of a count above 4 */
#define DISCLOSURE_WIDE_BELOW       100  /* counts 5..99 get noise -5..+5, from 100 -3..+3 */
#define DISCLOSURE_MIN_CONTRIBUTORS 3    /* a sum is shown from this many contributors */
#define DISCLOSURE_MIN_DENOMINATOR  10   /* a ratio is shown from this perturbed denominator */

/* The area a cell belongs to, coarsest first. */
enum disclosure_area {
    DISCLOSURE_NATION,
    DISCLOSURE_PROVINCE,
    DISCLOSURE_DISTRICT,
    DISCLOSURE_MUNICIPALITY,
};

/* The cell key as the tables read it: lowbias32 (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15;
 * x *= 0x846ca68b; x ^= x >> 16, mod 2^32), a bijection that addition does not go through, so
 * that the noises of a total and of its parts (whose keys add up) do not add up. */
uint32_t disclosure_mix(uint32_t key);

/* The column of the count table that cell_key picks:
 * floor(disclosure_mix(cell_key) * COLUMNS / 2^32). */
unsigned disclosure_column(uint32_t cell_key);

/* The noise the table adds to count value under cell_key (0 for value <= 0). */
int disclosure_noise(int64_t value, uint32_t cell_key);

/* The perturbed count: value + noise, 0 for 0, never 1 or 2 (shown as 0), never negative. */
int64_t disclosure_count(int64_t value, uint32_t cell_key);

/* Whether the public sees sums of cells of area and period kind at all (the coarse ones:
 * province and nation, for quarters, trimesters and years). Returns 1 or 0. */
int disclosure_sum_level(enum disclosure_area area, enum period_kind kind);

/* A sum (seed funding, jobs) for the public, from its contributors (distinct persons or
 * owners adding more than 0), its two largest contributions and its cell key. Returns 1 with
 * *out set when shown, 0 when suppressed: fewer than DISCLOSURE_MIN_CONTRIBUTORS
 * contributors, or no top contribution known for a sum above 0 (cells of a sender that does
 * not carry them). */
int disclosure_sum(int64_t value, int64_t contributors, int64_t top1, int64_t top2,
                   uint32_t cell_key, int64_t *out);

/* A ratio for the public: numerator and denominator perturbed as counts, each under its own
 * key. Returns 1 with *nu and *de set (nu <= de) when shown, 0 when withheld (the perturbed
 * denominator below DISCLOSURE_MIN_DENOMINATOR). */
int disclosure_ratio(int64_t numerator, uint32_t numerator_key, int64_t denominator,
                     uint32_t denominator_key, int64_t *nu, int64_t *de);

#endif
