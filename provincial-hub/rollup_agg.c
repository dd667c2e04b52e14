/* The rollup engine's generic aggregator (rollup_internal.h): cells keyed by (indicator,
 * grouping, period slot, dimension values) in an open-addressing hash, the cells the current
 * contributor reached in a second, small one (the rows that need distinct contributors come
 * grouped by contributor), and the finished cells sorted and digested. It knows nothing of
 * records; rollup_indicators.c feeds it. */
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "rollup_internal.h"

uint64_t rollup__mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int rollup__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    void *np = realloc(*p, n * elem);
    if (np == NULL)
        return REINT_ENOMEM;
    *p = np;
    *cap = n;
    return 0;
}

/* Empties the current contributor's table: a new generation (0 marks an empty slot). */
static void rollup__reach_clear(rollup *r)
{
    r->n_reach = 0;
    if (++r->reach_gen == 0) { /* wrapped: really empty the table once */
        if (r->reach_slots)
            memset(r->reach_slots, 0, r->n_reach_slots * sizeof(rollup__slot));
        r->reach_gen = 1;
    }
}

void rollup__agg_reset(rollup *r)
{
    r->n_acc = 0;
    r->has_cur = 0;
    rollup__reach_clear(r); /* also after a computation that failed half way */
    if (++r->gen == 0) {    /* wrapped: really empty the table once */
        if (r->acc_slots)
            memset(r->acc_slots, 0, r->n_acc_slots * sizeof(rollup__slot));
        r->gen = 1;
    }
}

/* Fills a new table of nslots slots (a power of two) with the n entries whose keys key()
 * gives, stamped gen, and replaces *slots with it. Returns 0 or REINT_ENOMEM. */
static int rollup__slots_build(rollup__slot **slots, size_t *n_slots, size_t nslots, uint32_t gen,
                               const rollup *r, size_t n, uint64_t (*key)(const rollup *, size_t))
{
    rollup__slot *s = calloc(nslots, sizeof(rollup__slot));
    if (s == NULL)
        return REINT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)rollup__mix(key(r, i)) & (nslots - 1);
        while (s[j].gen == gen)
            j = (j + 1) & (nslots - 1);
        s[j].gen = gen;
        s[j].index = (uint32_t)i;
    }
    free(*slots);
    *slots = s;
    *n_slots = nslots;
    return 0;
}

static uint64_t rollup__acc_key(const rollup *r, size_t i)
{
    return r->acc[i].k;
}

/* The cell with packed identity k, created when new; NULL when out of memory. */
static rollup__acc *rollup__cell(rollup *r, uint64_t k, uint32_t *index)
{
    if ((r->n_acc + 1) * 2 > r->n_acc_slots &&
        rollup__slots_build(&r->acc_slots, &r->n_acc_slots,
                            r->n_acc_slots ? r->n_acc_slots * 2 : 1024, r->gen, r, r->n_acc,
                            rollup__acc_key) != 0)
        return NULL;
    size_t mask = r->n_acc_slots - 1, j = (size_t)rollup__mix(k) & mask;
    for (; r->acc_slots[j].gen == r->gen; j = (j + 1) & mask) {
        rollup__acc *a = &r->acc[r->acc_slots[j].index];
        if (a->k == k) {
            *index = r->acc_slots[j].index;
            return a;
        }
    }
    if (rollup__grow((void **)&r->acc, &r->cap_acc, r->n_acc + 1, sizeof(rollup__acc)) != 0)
        return NULL;
    rollup__acc *a = &r->acc[r->n_acc];
    memset(a, 0, sizeof(*a));
    a->k = k;
    r->acc_slots[j].gen = r->gen;
    r->acc_slots[j].index = (uint32_t)r->n_acc;
    *index = (uint32_t)r->n_acc++;
    return a;
}

/* Counts what the current contributor adds to the sums it reached: only a contribution above
 * 0 makes a contributor, so that no cell reaches the public's minimum with contributors
 * whose values it would show (an enterprise of no employees). Its distinct cells were
 * counted when first reached. */
static void rollup__reach_flush(rollup *r)
{
    /* A contributor mostly adds the same amount to a period's cells of every grouping. */
    int64_t last_amount = 0;
    uint32_t last_key = 0;
    for (size_t i = 0; i < r->n_reach; i++) {
        const rollup__reach *c = &r->reach[i];
        rollup__acc *a = &r->acc[c->cell];
        if (r->ind[a->k >> 56].agg != CATALOGUE_SUM || c->amount <= 0)
            continue;
        if (c->amount != last_amount) {
            last_amount = c->amount;
            last_key = rollup__contribution_key(r, r->cur_id, c->amount);
        }
        a->contributors++;
        a->ckey += last_key;
        if (c->amount > a->top1) {
            a->top2 = a->top1;
            a->top1 = c->amount;
        } else if (c->amount > a->top2) {
            a->top2 = c->amount;
        }
    }
    rollup__reach_clear(r);
}

void rollup__contributors_end(rollup *r)
{
    if (r->has_cur)
        rollup__reach_flush(r);
    r->has_cur = 0;
}

static uint64_t rollup__reach_key(const rollup *r, size_t i)
{
    return r->reach[i].cell;
}

/* Contributor id reaches cell with amount; returns 1 when the cell is new to it, 0 when it
 * was reached before, or <0. A new contributor first counts what the previous one added. */
static int rollup__reach_add(rollup *r, uint32_t cell, const uint8_t *id, int64_t amount)
{
    int c = r->has_cur ? memcmp(id, r->cur_id, 16) : 1;
    if (c < 0)
        return REINT_EINVAL; /* not grouped by contributor: it would count twice */
    if (c > 0) {
        if (r->has_cur)
            rollup__reach_flush(r);
        memcpy(r->cur_id, id, 16);
        r->has_cur = 1;
    }
    if ((r->n_reach + 1) * 2 > r->n_reach_slots &&
        rollup__slots_build(&r->reach_slots, &r->n_reach_slots,
                            r->n_reach_slots ? r->n_reach_slots * 2 : 256, r->reach_gen, r,
                            r->n_reach, rollup__reach_key) != 0)
        return REINT_ENOMEM;
    size_t mask = r->n_reach_slots - 1, j = (size_t)rollup__mix(cell) & mask;
    for (; r->reach_slots[j].gen == r->reach_gen; j = (j + 1) & mask) {
        rollup__reach *e = &r->reach[r->reach_slots[j].index];
        if (e->cell == cell) {
            e->amount += amount;
            return 0;
        }
    }
    if (rollup__grow((void **)&r->reach, &r->cap_reach, r->n_reach + 1, sizeof(rollup__reach)) != 0)
        return REINT_ENOMEM;
    r->reach_slots[j].gen = r->reach_gen;
    r->reach_slots[j].index = (uint32_t)r->n_reach;
    r->reach[r->n_reach].cell = cell;
    r->reach[r->n_reach].amount = amount;
    r->n_reach++;
    return 1;
}

/* Indicators without dedupe have one contribution per record and period, so their
 * contributors are distinct by construction. A sum's contributors, key and top contributions
 * wait until its contributor's rows end (rollup__reach_flush), since what a contributor adds
 * is known only then. */
int rollup__emit(rollup *r, int ind, int pj, const int dv[D_N], const uint8_t *id, uint32_t ckey,
                 int64_t num, int64_t den)
{
    const rollup__indicator *in = &r->ind[ind];
    for (int g = 0; g < in->n_groupings; g++) {
        const rollup__grouping *gr = &in->g[g];
        uint64_t v0 = gr->n > 0 ? (uint64_t)dv[gr->d[0]] & 0xfffff : 0;
        uint64_t v1 = gr->n > 1 ? (uint64_t)dv[gr->d[1]] & 0xfffff : 0;
        uint64_t k = (uint64_t)ind << 56 | (uint64_t)g << 48 | (uint64_t)pj << 40 | v0 << 20 | v1;
        uint32_t index;
        rollup__acc *a = rollup__cell(r, k, &index);
        if (a == NULL)
            return REINT_ENOMEM;
        a->sum += num;
        a->den += den;
        if (in->agg == CATALOGUE_RATIO && num != 0)
            a->nkey += ckey;
        int added =
            in->dedupe || in->agg == CATALOGUE_SUM ? rollup__reach_add(r, index, id, num) : 1;
        if (added < 0)
            return added;
        if (added && in->agg != CATALOGUE_SUM) {
            a->contributors++;
            a->ckey += ckey;
        }
    }
    return 0;
}

int rollup__emit_all(rollup *r, int ind, uint64_t mask, const int dv[D_N], const uint8_t *id,
                     uint32_t ckey, int64_t num, int64_t den)
{
    for (int pj = 0; mask; pj++, mask >>= 1) {
        if (!(mask & 1))
            continue;
        int rc = rollup__emit(r, ind, pj, dv, id, ckey, num, den);
        if (rc)
            return rc;
    }
    return 0;
}

/* Appends the name of value v of dimension dim to key (of *len bytes so far), truncated to
 * ROLLUP_KEY_MAX - 1 bytes as snprintf would. */
static void rollup__dim_name(int dim, int v, char *key, size_t *len)
{
    char cc[3] = {(char)(v >> 8), (char)(v & 0xff), '\0'};
    const char *name = rollup__dims[dim].desc ? record_enum_name(rollup__dims[dim].desc, v)
                       : v                    ? cc
                                              : "UNKNOWN";
    size_t n = strlen(name);
    if (n > ROLLUP_KEY_MAX - 1 - *len)
        n = ROLLUP_KEY_MAX - 1 - *len;
    memcpy(key + *len, name, n);
    *len += n;
    key[*len] = '\0';
}

static int rollup__out_cmp(const void *a, const void *b)
{
    const rollup__out *x = a, *y = b;
    int c = (x->pj > y->pj) - (x->pj < y->pj);
    if (c == 0) /* the order of (indicator, grouping) by strcmp */
        c = (x->rank > y->rank) - (x->rank < y->rank);
    if (c == 0)
        c = strcmp(x->key, y->key);
    return c;
}

static uint64_t rollup__fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t rollup__digest(const rollup__out *cells, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        const rollup__out *o = &cells[i];
        h = rollup__fnv(h, o->indicator, strlen(o->indicator) + 1);
        h = rollup__fnv(h, o->grouping, strlen(o->grouping) + 1);
        h = rollup__fnv(h, o->key, strlen(o->key) + 1);
        h = rollup__fnv(h, &o->num, sizeof(o->num));
        h = rollup__fnv(h, &o->den, sizeof(o->den));
        h = rollup__fnv(h, &o->ckey, sizeof(o->ckey));
        h = rollup__fnv(h, &o->contributors, sizeof(o->contributors));
        h = rollup__fnv(h, &o->top1, sizeof(o->top1));
        h = rollup__fnv(h, &o->top2, sizeof(o->top2));
        h = rollup__fnv(h, &o->nkey, sizeof(o->nkey));
    }
    return h;
}

int rollup__finish(rollup *r, size_t *n)
{
    if (rollup__grow((void **)&r->out, &r->cap_out, r->n_acc + 1, sizeof(rollup__out)) != 0)
        return REINT_ENOMEM;
    rollup__contributors_end(r); /* the last contributor's sums */
    size_t k = 0;
    for (size_t i = 0; i < r->n_acc; i++) {
        const rollup__acc *a = &r->acc[i];
        int ind = (int)(a->k >> 56), g = (int)(a->k >> 48 & 0xff);
        const rollup__indicator *in = &r->ind[ind];
        const rollup__grouping *gr = &in->g[g];
        rollup__out *o = &r->out[k];
        o->num = in->agg == CATALOGUE_DISTINCT ? a->contributors : a->sum;
        o->den = a->den;
        if (o->num == 0 && o->den == 0)
            continue;
        o->pj = (int)(a->k >> 40 & 0xff);
        o->rank = gr->rank;
        o->indicator = in->code;
        o->grouping = gr->name;
        o->contributors = a->contributors;
        o->ckey = a->ckey;
        o->nkey = a->nkey;
        o->top1 = a->top1;
        o->top2 = a->top2;
        o->key[0] = '\0';
        size_t len = 0;
        if (gr->n > 0)
            rollup__dim_name(gr->d[0], (int)(a->k >> 20 & 0xfffff), o->key, &len);
        if (gr->n > 1) {
            o->key[len++] = ',';
            rollup__dim_name(gr->d[1], (int)(a->k & 0xfffff), o->key, &len);
        }
        k++;
    }
    qsort(r->out, k, sizeof(rollup__out), rollup__out_cmp);
    *n = k;
    return 0;
}
