#include "disclosure.h"

/* The perturbation table, as weights out of 256 cell-key columns per noise value. Row r is
 * used for value r (1..4) and row 5 for every value from 5 up. Rows 1 and 2 only move
 * values to 0 or 3; no row moves a value to 1 or 2; every row's mean noise is close to 0. */
typedef struct disclosure_cell {
    int8_t noise;
    uint8_t weight;
} disclosure_cell;

static const disclosure_cell disclosure__rows[6][6] = {
    [1] = {{-1, 171}, {+2, 85}},
    [2] = {{-2, 85}, {+1, 171}},
    [3] = {{-3, 36}, {0, 140}, {+1, 60}, {+2, 20}},
    [4] = {{-4, 4}, {-1, 60}, {0, 128}, {+1, 52}, {+2, 12}},
    [5] = {{-2, 16}, {-1, 48}, {0, 128}, {+1, 48}, {+2, 16}},
};

/* The column: the cell key's top byte (the keys are uniform over 2^32). */
static unsigned disclosure__column(uint32_t cell_key)
{
    return cell_key >> 24;
}

int disclosure_noise(int64_t value, uint32_t cell_key)
{
    if (value <= 0)
        return 0;
    const disclosure_cell *row = disclosure__rows[value >= 5 ? 5 : value];
    unsigned col = disclosure__column(cell_key), acc = 0;
    for (int i = 0; i < 6 && row[i].weight; i++) {
        acc += row[i].weight;
        if (col < acc)
            return row[i].noise;
    }
    return 0;
}

int64_t disclosure_count(int64_t value, uint32_t cell_key)
{
    if (value <= 0)
        return 0;
    int64_t out = value + disclosure_noise(value, cell_key);
    return out < 3 ? 0 : out;
}

int disclosure_sum(int64_t value, int64_t contributors, uint32_t cell_key, int64_t *out)
{
    if (contributors < DISCLOSURE_MIN_CONTRIBUTORS)
        return 0;
    int n = disclosure_noise(5, cell_key);
    /* value * n / 100, rounded half away from zero. */
    int64_t delta = (value * n + (n >= 0 ? 50 : -50)) / 100;
    *out = value + delta;
    return 1;
}
