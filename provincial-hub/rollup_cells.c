/* rollup_cells: the cells of the stored snapshots as an SQL table (an eponymous virtual
 * table over rollup_blobs), for the gap reports and for tests. The engine stores each
 * snapshot's cells as one blob, the packed cells field of a RollupSnapshot (rollup_store.c),
 * since a snapshot is only ever written and sent whole; reading one back as rows decodes its
 * blob.
 *
 * Plans: equality on municipality and on period select the blobs (by the primary key of
 * rollup_blobs when both are given, or municipality alone); every other condition is left to
 * SQLite. An IN on municipality is run by SQLite as one lookup per value. */
#include <stdlib.h>
#include <string.h>

#include "rollup.h"

enum {
    C_MUNICIPALITY,
    C_PERIOD,
    C_INDICATOR,
    C_GROUPING,
    C_KEY,
    C_NUM,
    C_DEN,
    C_CKEY,
    C_CONTRIB,
    C_TOP1,
    C_TOP2,
    C_NKEY
};

/* idxNum bits: which equalities xFilter receives, in this order. */
#define P_MUN    1
#define P_PERIOD 2

typedef struct {
    sqlite3_vtab base;
    sqlite3 *db;
} cells_tab;

typedef struct {
    sqlite3_vtab_cursor base;
    sqlite3_stmt *st;
    Reint__V1__RollupSnapshot *s; /* the current blob, decoded */
    size_t i;                     /* the current cell of s */
    int64_t municipality;
    char *period;
    char key[256]; /* the current cell's key values joined by ',' */
    sqlite3_int64 rowid;
    int eof;
} cells_cur;

static int cells_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **err)
{
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(municipality INTEGER, period TEXT,"
                                      " indicator TEXT, grouping TEXT, key TEXT,"
                                      " numerator INTEGER, denominator INTEGER,"
                                      " cell_key INTEGER, contributors INTEGER,"
                                      " top1 INTEGER, top2 INTEGER, numerator_key INTEGER)");
    if (rc != SQLITE_OK)
        return rc;
    cells_tab *t = sqlite3_malloc(sizeof(*t));
    if (t == NULL)
        return SQLITE_NOMEM;
    memset(t, 0, sizeof(*t));
    t->db = db;
    *out = &t->base;
    return SQLITE_OK;
}

static int cells_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

static int cells_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    (void)vt;
    int at[2] = {-1, -1};
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
            continue;
        if (c->iColumn == C_MUNICIPALITY)
            at[0] = i;
        else if (c->iColumn == C_PERIOD)
            at[1] = i;
    }
    int argv = 1, plan = 0;
    for (int k = 0; k < 2; k++) {
        if (at[k] < 0)
            continue;
        info->aConstraintUsage[at[k]].argvIndex = argv++;
        info->aConstraintUsage[at[k]].omit = 1;
        plan |= k == 0 ? P_MUN : P_PERIOD;
    }
    info->idxNum = plan;
    /* One snapshot, a municipality's snapshots, a period's (a scan), everything. */
    info->estimatedCost = plan == (P_MUN | P_PERIOD) ? 10.0
                          : plan == P_MUN            ? 1000.0
                          : plan == P_PERIOD         ? 100000.0
                                                     : 1000000.0;
    info->estimatedRows = plan == (P_MUN | P_PERIOD) ? 100 : 100000;
    return SQLITE_OK;
}

static int cells_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    (void)vt;
    cells_cur *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    *out = &c->base;
    return SQLITE_OK;
}

static void cells_reset(cells_cur *c)
{
    if (c->s)
        reint__v1__rollup_snapshot__free_unpacked(c->s, NULL);
    c->s = NULL;
    sqlite3_finalize(c->st);
    c->st = NULL;
    sqlite3_free(c->period);
    c->period = NULL;
}

static int cells_close(sqlite3_vtab_cursor *cur)
{
    cells_reset((cells_cur *)cur);
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int cells_fail(cells_cur *c, const char *what)
{
    sqlite3_vtab *vt = c->base.pVtab;
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf("rollup_cells: %s", what);
    return SQLITE_ERROR;
}

/* Moves to the next blob holding at least one cell, or to the end. */
static int cells_next_blob(cells_cur *c)
{
    for (;;) {
        if (c->s)
            reint__v1__rollup_snapshot__free_unpacked(c->s, NULL);
        c->s = NULL;
        c->i = 0;
        int s = sqlite3_step(c->st);
        if (s == SQLITE_DONE) {
            c->eof = 1;
            return SQLITE_OK;
        }
        if (s != SQLITE_ROW)
            return cells_fail(c, sqlite3_errmsg(((cells_tab *)c->base.pVtab)->db));
        c->municipality = sqlite3_column_int64(c->st, 0);
        sqlite3_free(c->period);
        c->period = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(c->st, 1));
        const void *blob = sqlite3_column_blob(c->st, 2);
        size_t len = (size_t)sqlite3_column_bytes(c->st, 2);
        if (c->period == NULL)
            return SQLITE_NOMEM;
        c->s = reint__v1__rollup_snapshot__unpack(NULL, len, blob);
        if (c->s == NULL)
            return cells_fail(c, "a stored snapshot does not decode");
        if (c->s->n_cells > 0)
            return SQLITE_OK;
    }
}

static int cells_filter(sqlite3_vtab_cursor *cur, int plan, const char *idx, int argc,
                        sqlite3_value **argv)
{
    (void)idx;
    (void)argc;
    cells_cur *c = (cells_cur *)cur;
    cells_reset(c);
    c->eof = 0;
    c->rowid = 0;
    static const char *const sql[4] = {
        "SELECT municipality, period, cells FROM rollup_blobs ORDER BY municipality, period",
        "SELECT municipality, period, cells FROM rollup_blobs WHERE municipality=?1"
        " ORDER BY period",
        "SELECT municipality, period, cells FROM rollup_blobs WHERE period=?1"
        " ORDER BY municipality",
        "SELECT municipality, period, cells FROM rollup_blobs WHERE municipality=?1"
        " AND period=?2",
    };
    sqlite3 *db = ((cells_tab *)cur->pVtab)->db;
    if (sqlite3_prepare_v2(db, sql[plan & 3], -1, &c->st, NULL) != SQLITE_OK)
        return cells_fail(c, sqlite3_errmsg(db));
    for (int i = 0; i < argc; i++)
        sqlite3_bind_value(c->st, i + 1, argv[i]);
    return cells_next_blob(c);
}

static int cells_next(sqlite3_vtab_cursor *cur)
{
    cells_cur *c = (cells_cur *)cur;
    c->rowid++;
    if (++c->i < c->s->n_cells)
        return SQLITE_OK;
    return cells_next_blob(c);
}

static int cells_eof(sqlite3_vtab_cursor *cur)
{
    return ((cells_cur *)cur)->eof;
}

static int cells_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    cells_cur *c = (cells_cur *)cur;
    const Reint__V1__RollupCell *cell = c->s->cells[c->i];
    switch (col) {
    case C_MUNICIPALITY:
        sqlite3_result_int64(ctx, c->municipality);
        break;
    case C_PERIOD:
        sqlite3_result_text(ctx, c->period, -1, SQLITE_TRANSIENT);
        break;
    case C_INDICATOR:
        sqlite3_result_text(ctx, cell->indicator, -1, SQLITE_TRANSIENT);
        break;
    case C_GROUPING:
        sqlite3_result_text(ctx, cell->grouping, -1, SQLITE_TRANSIENT);
        break;
    case C_KEY: {
        size_t len = 0;
        c->key[0] = '\0';
        for (size_t k = 0; k < cell->n_key; k++) {
            size_t n = strlen(cell->key[k]);
            if (len + n + 2 > sizeof(c->key))
                return cells_fail(c, "a stored key is too long");
            if (k)
                c->key[len++] = ',';
            memcpy(c->key + len, cell->key[k], n + 1);
            len += n;
        }
        sqlite3_result_text(ctx, c->key, (int)len, SQLITE_TRANSIENT);
        break;
    }
    case C_NUM:
        sqlite3_result_int64(ctx, cell->numerator);
        break;
    case C_DEN:
        sqlite3_result_int64(ctx, cell->denominator);
        break;
    case C_CKEY:
        sqlite3_result_int64(ctx, cell->cell_key);
        break;
    case C_CONTRIB:
        sqlite3_result_int64(ctx, cell->contributors);
        break;
    case C_TOP1:
        sqlite3_result_int64(ctx, cell->top1);
        break;
    case C_TOP2:
        sqlite3_result_int64(ctx, cell->top2);
        break;
    default:
        sqlite3_result_int64(ctx, cell->numerator_key);
        break;
    }
    return SQLITE_OK;
}

static int cells_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = ((cells_cur *)cur)->rowid;
    return SQLITE_OK;
}

static const sqlite3_module cells_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: it exists on every connection that registers it */
    .xConnect = cells_connect,
    .xBestIndex = cells_best_index,
    .xDisconnect = cells_disconnect,
    .xDestroy = cells_disconnect,
    .xOpen = cells_open,
    .xClose = cells_close,
    .xFilter = cells_filter,
    .xNext = cells_next,
    .xEof = cells_eof,
    .xColumn = cells_column,
    .xRowid = cells_rowid,
};

int rollup_cells_register(sqlite3 *db)
{
    return sqlite3_create_module(db, "rollup_cells", &cells_module, NULL);
}
