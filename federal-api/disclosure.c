#include "disclosure.h"

#include <math.h>

/* The perturbation table for counts, as weights out of DISCLOSURE_COLUMNS columns per noise
 * value, in column order. Values 1..4 have rows of their own; each moves its value to 0 or to
 * 3 and above (never 1 or 2), keeps its mean, and shows it as 0 with a real chance (2/3, 1/3,
 * 1/4, 1/6), so that a published 0 never certifies an empty cell. From 5 the noise is uniform
 * on -5..+5 (a result below 3 is shown as 0), and from DISCLOSURE_WIDE_BELOW uniform on -3..+3.
 * The noise is that large on purpose: a small cell is also the difference of larger ones (a
 * total and its other categories, a quarter and its other months), and only noise of this
 * size on those makes such differences tell an attacker no more than the small cell's own
 * value (tests/system/test_disclosure_attacks.py measures it). */
typedef struct disclosure_cell {
    int8_t noise;
    int16_t weight;
} disclosure_cell;

#define DISCLOSURE_ROW_MAX 11

static const disclosure_cell disclosure__rows[5][DISCLOSURE_ROW_MAX] = {
    [1] = {{-1, 1232}, {+2, 616}},
    [2] = {{-2, 616}, {+1, 1232}},
    [3] = {{-3, 462}, {0, 616}, {+1, 385}, {+2, 231}, {+3, 154}},
    [4] = {{-4, 308}, {-1, 231}, {0, 462}, {+1, 385}, {+2, 308}, {+3, 154}},
};

/* Sums: the noise is e * f(n) * (top1 + top2), where e comes from the cell key (its sign from
 * the lowest bit, its size uniform on [E_MIN, 1] from the other 31) and f falls with the number
 * of contributors n from F_MAX (few contributors: the differences of small cells would
 * otherwise give a contribution back) to F_MIN (many: the sum stays useful). */
#define DISCLOSURE_E_MIN   0.2
#define DISCLOSURE_F_MAX   1.5
#define DISCLOSURE_F_MIN   0.2
#define DISCLOSURE_F_CONST 6.0 /* f(n) = F_CONST / n between the two */

uint32_t disclosure_mix(uint32_t key)
{
    /* A bijection of 32-bit words whose output bits each depend on every input bit in a way
     * addition cannot follow (C. Wellons' lowbias32). */
    key ^= key >> 16;
    key *= 0x7feb352du;
    key ^= key >> 15;
    key *= 0x846ca68bu;
    key ^= key >> 16;
    return key;
}

unsigned disclosure_column(uint32_t cell_key)
{
    /* Through the mix: a cell's key is the sum of its records' keys, and a column that was the
     * key's own share of the table made the noises add up too (mod 11 and mod 7): "a total
     * minus its other rows" then gave small cells back (an attack on the demo, F2). */
    return (unsigned)(((uint64_t)disclosure_mix(cell_key) * DISCLOSURE_COLUMNS) >> 32);
}

int disclosure_noise(int64_t value, uint32_t cell_key)
{
    if (value <= 0)
        return 0;
    unsigned col = disclosure_column(cell_key);
    if (value >= 5) {
        /* Uniform: equal runs of columns per noise value, lowest noise first. */
        int half = value >= DISCLOSURE_WIDE_BELOW ? 3 : DISCLOSURE_MAX_NOISE;
        unsigned run = DISCLOSURE_COLUMNS / (unsigned)(2 * half + 1);
        return (int)(col / run) - half;
    }
    const disclosure_cell *row = disclosure__rows[value];
    unsigned acc = 0;
    for (int i = 0; i < DISCLOSURE_ROW_MAX && row[i].weight; i++) {
        acc += (unsigned)row[i].weight;
        if (col < acc)
            return row[i].noise;
    }
    return 0; /* not reached: every row's weights add up to DISCLOSURE_COLUMNS */
}

int64_t disclosure_count(int64_t value, uint32_t cell_key)
{
    if (value <= 0)
        return 0;
    int64_t out = value + disclosure_noise(value, cell_key);
    return out < 3 ? 0 : out;
}

int disclosure_sum_level(enum disclosure_area area, enum period_kind kind)
{
    if (area != DISCLOSURE_NATION && area != DISCLOSURE_PROVINCE)
        return 0;
    return kind == PERIOD_QUARTER || kind == PERIOD_YEAR || kind == PERIOD_FISCAL_TRIMESTER ||
           kind == PERIOD_FISCAL_YEAR;
}

int disclosure_sum(int64_t value, int64_t contributors, int64_t top1, int64_t top2,
                   uint32_t cell_key, int64_t *out)
{
    if (contributors < DISCLOSURE_MIN_CONTRIBUTORS || value <= 0 || top1 <= 0 || top2 < 0)
        return 0;
    cell_key = disclosure_mix(cell_key); /* as for counts: no noise that adds up */
    double f = DISCLOSURE_F_CONST / (double)contributors;
    if (f > DISCLOSURE_F_MAX)
        f = DISCLOSURE_F_MAX;
    if (f < DISCLOSURE_F_MIN)
        f = DISCLOSURE_F_MIN;
    double u = (double)(cell_key >> 1) / 2147483648.0; /* [0, 1) */
    double e = DISCLOSURE_E_MIN + (1.0 - DISCLOSURE_E_MIN) * u;
    /* At least 1: a small sum (a few jobs) must not round back to its exact value. */
    long long size = llround(e * f * ((double)top1 + (double)top2));
    int64_t delta = size < 1 ? 1 : (int64_t)size;
    int64_t shown = cell_key & 1 ? value - delta : value + delta;
    *out = shown < 0 ? 0 : shown;
    return 1;
}

int disclosure_ratio(int64_t numerator, uint32_t numerator_key, int64_t denominator,
                     uint32_t denominator_key, int64_t *nu, int64_t *de)
{
    int64_t n = disclosure_count(numerator, numerator_key);
    int64_t d = disclosure_count(denominator, denominator_key);
    if (d < DISCLOSURE_MIN_DENOMINATOR)
        return 0;
    /* A share never exceeds 1, whatever the two noises did. */
    *nu = n > d ? d : n;
    *de = d;
    return 1;
}
