#include "import.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bscal.h"
#include "clock.h"
#include "csv.h"
#include "localrow.h"
#include "log.h"
#include "months.h"
#include "review.h"
#include "testhook.h"

/* The import runs in two threads: a reader parses the CSV and checks each field on its own
 * (the half of the work that needs no store) into chunks of rows, and the caller's thread
 * takes the chunks in file order for the checks against the store and the writes. Without
 * a second thread the caller fills each chunk itself. Memory: ICHUNKS chunks of at most
 * ICHUNK_ROWS rows and ICHUNK_ARENA bytes of values, whatever the file's size, and the keys
 * of the rows stored (ikeys, below). */
#define ICHUNKS      3
#define ICHUNK_ROWS  1024
#define ICHUNK_ARENA (1 << 20)
/* Room one row may take in the arena: its trimmed values, then its local fields. */
#define ICHUNK_ROW_ROOM (2 * FIELD_SCRATCH_MAX + LOCALROW_OVERHEAD * FIELD_MAX)

/* The keys of the file's rows stored so far (or found unchanged), so that a line whose key
 * an earlier line of the file gave is refused: it would replace the earlier one unseen, and
 * a second run of the file, finding the earlier line unchanged, would keep the later. A line
 * refused is not counted, so a corrected line further down is taken. Each key is the first 8
 * bytes of its record id (a keyed hash, so uniform; 0 stands for 1), in open-addressed tables
 * of 2^20 slots (8 MiB), each filled to 4/5 before the next is started, calloc'd so that a
 * small file touches few of their pages: about 10 bytes a row. Two keys sharing 64 bits
 * (about 3 in 10^8 for a file of 1,000,000 rows) would have the later refused. Availability
 * rows are not keyed by an id (service and provider), and a later line of the same pair is
 * taken as the newer state. */
#define IKEYS_BITS   20
#define IKEYS_TABLES 64 /* 53 million rows */

typedef struct ikeys {
    uint64_t *t[IKEYS_TABLES];
    size_t n, used; /* tables started; keys in the last */
} ikeys;

typedef struct islot {
    long line;
    int refused;        /* refused by the reader, whatever the store holds */
    field_errors *errs; /* the reader's errors for this row (malloc'd), or NULL */
    size_t row_off;     /* local fields in the arena (when errs is NULL) */
    size_t row_len;
    int has_id;     /* id holds the row's record id, computed by the reader */
    uint8_t id[16]; /* (a keyed hash: off the writer's thread, on the second core) */
    field_value v[FIELD_MAX];
} islot;

typedef struct ichunk {
    size_t n;
    islot slot[ICHUNK_ROWS];
    char *arena;
    size_t used;
    long long offset; /* bytes of the file read when the chunk was filled */
    int last;         /* the file ends with this chunk */
    int rc;           /* 0, or REINT_EIO / REINT_ENOMEM that ended the reading */
    long rc_line;
} ichunk;

/* What the two threads share. The reader owns the chunks it is filling and the csv reader;
 * the writer owns the chunk it took; full, fill, take, done and stop are read and written
 * under mu only. bs and today_fixed of the intake are read by both, and written by neither
 * while the import runs. */
typedef struct ipipe {
    const intake *in;
    int kind;
    csv_reader *r;
    const int *map;
    size_t nh;
    outbox_idkey *ids; /* the reader's copy of the store's id key */
    ikeys keys;        /* the writer's: ids of the rows stored (or found unchanged) */
    ichunk *chunk[ICHUNKS];
    int full[ICHUNKS];
    size_t fill, take; /* next chunk to fill (reader) and to take (writer), modulo ICHUNKS */
    int done;          /* the reader has handed over its last chunk */
    int stop;          /* the writer gave up: the reader must stop */
    int threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} ipipe;

/* ---- the keys stored -------------------------------------------------------------------- */

static uint64_t ikeys__key(const uint8_t id[16])
{
    uint64_t key;
    memcpy(&key, id, sizeof(key));
    return key + (key == 0);
}

/* Whether id's key was put before. */
static int ikeys_has(const ikeys *k, const uint8_t id[16])
{
    const size_t mask = ((size_t)1 << IKEYS_BITS) - 1;
    uint64_t key = ikeys__key(id);
    for (size_t i = 0; i < k->n; i++)
        for (size_t j = (size_t)key & mask; k->t[i][j]; j = (j + 1) & mask)
            if (k->t[i][j] == key)
                return 1;
    return 0;
}

/* Puts id's key (not put before). Returns 0 or REINT_ENOMEM. */
static int ikeys_put(ikeys *k, const uint8_t id[16])
{
    const size_t mask = ((size_t)1 << IKEYS_BITS) - 1;
    uint64_t key = ikeys__key(id);
    if (k->n == 0 || k->used >= (mask + 1) / 5 * 4) {
        if (k->n == IKEYS_TABLES || (k->t[k->n] = calloc(mask + 1, sizeof(uint64_t))) == NULL)
            return REINT_ENOMEM;
        k->n++;
        k->used = 0;
    }
    size_t j = (size_t)key & mask;
    while (k->t[k->n - 1][j])
        j = (j + 1) & mask;
    k->t[k->n - 1][j] = key;
    k->used++;
    return 0;
}

static void ikeys_free(ikeys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->t[i]);
    memset(k, 0, sizeof(*k));
}

/* ---- reporting ------------------------------------------------------------------------- */

static void import__progress(const char *base, long long done, long long total, long long rows,
                             double secs, int final)
{
    int pct = total > 0 ? (int)(done * 100 / total) : 0;
    int bar = pct / 4;
    char b[26];
    for (int i = 0; i < 25; i++)
        b[i] = i < bar ? '#' : '.';
    b[25] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%%  %lld rows  %.0f rows/s%s", base, b, pct, rows,
            secs > 0 ? (double)rows / secs : 0.0, final ? "\n" : "");
    fflush(stderr);
}

static double import__secs(void)
{
    return (double)clock_mono_ms() / 1e3;
}

static void import__report(FILE *f, const char *base, long line, const field_errors *e)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < e->n; i++) {
        if (e->e[i].field[0])
            fprintf(f, "%s line %ld: %s %s\n", base, line, e->e[i].field, e->e[i].reason);
        else
            fprintf(f, "%s line %ld: %s\n", base, line, e->e[i].reason);
    }
    if (e->dropped)
        fprintf(f, "%s line %ld: %zu more errors\n", base, line, e->dropped);
}

/* Reports a transaction that could not begin or commit, and which rows that loses (line: the
 * row at which it happened, 0 for none in particular). */
static void import__store_failed(FILE *f, const char *base, long line, const char *what, int rc,
                                 const char *lost)
{
    if (f == NULL)
        return;
    if (line > 0)
        fprintf(f, "%s line %ld: cannot %s (%s); %s\n", base, line, what, reint_strerror(rc), lost);
    else
        fprintf(f, "%s: cannot %s (%s); %s\n", base, what, reint_strerror(rc), lost);
}

/* The column of kind a header's name (n bytes at s, blanks around it and case ignored)
 * names, or -1. */
static int import__column(int kind, const char *s, size_t n)
{
    char name[64];
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(name))
        return -1;
    for (size_t c = 0; c < n; c++)
        name[c] = (char)((s[c] >= 'A' && s[c] <= 'Z') ? s[c] + 32 : s[c]);
    name[n] = '\0';
    return field_column_index(kind, name);
}

/* Whether fields[0 .. nf) are all columns of kind (blanks skipped), its required ones among
 * them. */
static int import__all_of(int kind, char **fields, size_t nf)
{
    int seen[FIELD_MAX] = {0};
    for (size_t j = 0; j < nf; j++) {
        int col = import__column(kind, fields[j], strlen(fields[j]));
        if (col >= 0)
            seen[col] = 1;
        else if (fields[j][strspn(fields[j], " \t")] != '\0')
            return 0;
    }
    for (size_t i = 0; i < field_count(kind); i++)
        if (field_required(kind, i) && !seen[i])
            return 0;
    return 1;
}

/* A header that is no list of kind's columns but plainly something else, said in one line
 * instead of a message for each column (the clerk's attack on the demo: a file saved with
 * semicolons, and a file of services imported as persons, each gave a list of "unknown
 * column" lines that did not say what to do). 1 when said. */
static int import__header_hint(int kind, char **fields, size_t nf, FILE *errs_out, const char *base,
                               long line)
{
    if (nf == 1) {
        /* One column holding separators: a spreadsheet set to write ';' (or tabs). */
        static const char seps[] = ";\t|";
        for (const char *sep = seps; *sep; sep++) {
            const char *s = fields[0];
            int known = 0;
            if (strchr(s, *sep) == NULL)
                continue;
            for (const char *p = s;; p++) {
                size_t n = strcspn(p, (char[]){*sep, '\0'});
                known += import__column(kind, p, n) >= 0;
                p += n;
                if (*p == '\0')
                    break;
            }
            if (known == 0)
                continue;
            if (errs_out)
                fprintf(errs_out,
                        "%s line %ld: the columns are separated by %s, not commas: save the "
                        "spreadsheet as \"CSV UTF-8 (comma delimited)\"\n",
                        base, line,
                        *sep == ';'    ? "semicolons"
                        : *sep == '\t' ? "tabs"
                                       : "vertical bars");
            return 1;
        }
    }
    for (int other = INTAKE_PERSON; other <= INTAKE_AVAILABILITY; other++) {
        if (other == kind || !import__all_of(other, fields, nf))
            continue;
        if (errs_out)
            fprintf(errs_out,
                    "%s line %ld: these are the columns of %s, not of %s: import the file as "
                    "%s\n",
                    base, line, field_kind_name(other), field_kind_name(kind),
                    field_kind_name(other));
        return 1;
    }
    return 0;
}

/* Maps the header's columns to fields; reports every problem. Returns 0 or REINT_EINVAL. */
static int import__header(int kind, char **fields, size_t nf, int *map, FILE *errs_out,
                          const char *base, long line)
{
    const char *const *cols = field_columns(kind);
    size_t ncols = field_count(kind);
    int seen[FIELD_MAX] = {0};
    int bad = 0;
    char q[80];
    if (!import__all_of(kind, fields, nf) &&
        import__header_hint(kind, fields, nf, errs_out, base, line))
        return REINT_EINVAL;
    for (size_t j = 0; j < nf; j++) {
        const char *s = fields[j];
        size_t n = strlen(s);
        while (n > 0 && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        map[j] = -1;
        if (n == 0 && j == nf - 1 && nf > 1)
            continue; /* a trailing comma after the last column */
        map[j] = import__column(kind, s, n);
        if (map[j] < 0) {
            if (errs_out) {
                fprintf(errs_out, "%s line %ld: unknown column %s; the %s columns are ", base, line,
                        field_quote(q, sizeof(q), s, n), field_kind_name(kind));
                for (size_t i = 0; i < ncols; i++)
                    fprintf(errs_out, "%s%s", i ? "," : "", cols[i]);
                fputc('\n', errs_out);
            }
            bad = 1;
        } else if (seen[map[j]]++) {
            if (errs_out)
                fprintf(errs_out, "%s line %ld: column %s appears twice\n", base, line,
                        cols[map[j]]);
            bad = 1;
        }
    }
    for (size_t i = 0; i < ncols; i++) {
        if (field_required(kind, i) && !seen[i]) {
            if (errs_out)
                fprintf(errs_out, "%s line %ld: required column %s is missing\n", base, line,
                        cols[i]);
            bad = 1;
        }
    }
    return bad ? REINT_EINVAL : 0;
}

/* ---- the reader's half ------------------------------------------------------------------ */

static void import__chunk_clear(ichunk *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->slot[i].errs);
    c->n = 0;
    c->used = 0;
    c->last = 0;
    c->rc = 0;
}

/* Keeps a row's errors with its slot; 0, or -1 out of memory. */
static int import__slot_errors(islot *sl, const field_errors *errs)
{
    sl->errs = malloc(sizeof(*errs));
    if (sl->errs == NULL)
        return -1;
    memcpy(sl->errs, errs, sizeof(*errs));
    return 0;
}

/* Whether every field of a row is empty or blanks. */
static int import__blank_row(char **fields, size_t nf)
{
    for (size_t j = 0; j < nf; j++)
        if (fields[j][strspn(fields[j], " \t")] != '\0')
            return 0;
    return 1;
}

/* Reads rows into c until it is full or the file ends. */
static void import__chunk_fill(ipipe *p, ichunk *c)
{
    field_errors errs;
    localrow_buf row;
    char **fields;
    size_t nf;
    field_scan sc = {intake_calendar_bs(p->in), intake_today(p->in),   NULL, 0,
                     FIELD_SCRATCH_MAX,         intake_earliest(p->in)};
    localrow_init(&row);
    import__chunk_clear(c);
    while (c->n < ICHUNK_ROWS && ICHUNK_ARENA - c->used >= ICHUNK_ROW_ROOM) {
        int rc = csv_next(p->r, &fields, &nf);
        if (rc == 0) {
            c->last = 1;
            break;
        }
        /* A row of empty fields (",,,,": what a spreadsheet writes for an empty row it once
         * formatted) is skipped as a blank line is (the clerk's attack: each was refused for
         * every required field, and counted as a row with problems). */
        if (rc > 0 && csv_nul_field(p->r) < 0 && import__blank_row(fields, nf))
            continue;
        islot *sl = &c->slot[c->n];
        sl->line = csv_line(p->r);
        sl->refused = 0;
        sl->has_id = 0;
        sl->errs = NULL;
        sl->row_len = 0;
        errs.n = errs.dropped = 0;
        if (rc == REINT_ETOOLONG || rc == REINT_EQUOTE) {
            if (rc == REINT_ETOOLONG)
                field_errors_add(&errs, "", "the row is longer than %d bytes or %d fields",
                                 CSV_MAX_RECORD, CSV_MAX_FIELDS);
            else
                field_errors_add(&errs, "",
                                 "a quoted field is not closed before the end of the file");
            sl->refused = 1;
            c->last = rc == REINT_EQUOTE;
        } else if (rc < 0) {
            c->rc = rc == REINT_ENOMEM ? REINT_ENOMEM : REINT_EIO;
            c->rc_line = sl->line;
            c->last = 1;
            break;
        } else {
            const char *raw[FIELD_MAX] = {0};
            size_t extra = 0; /* 1 + the first column with a value the header names not */
            for (size_t j = 0; j < nf; j++) {
                if (j >= p->nh || p->map[j] < 0) {
                    if (fields[j][0] != '\0' && extra == 0)
                        extra = j + 1;
                    continue;
                }
                /* Without the apostrophe `export` puts before text a spreadsheet would run. */
                raw[p->map[j]] = csv_formula_unguard(fields[j]);
            }
            long nul = csv_nul_field(p->r);
            if (nul >= 0) {
                /* Its field reached here cut at the NUL ("QA\0Ram" read as "QA"). */
                int col = (size_t)nul < p->nh ? p->map[nul] : -1;
                char other[32];
                snprintf(other, sizeof(other), "column %ld", nul + 1);
                field_errors_add_code(&errs, col >= 0 ? field_columns(p->kind)[col] : other,
                                      "control_chars", NULL,
                                      "holds a NUL byte, which text never does (save the file "
                                      "as CSV UTF-8)");
                sl->refused = 1;
            } else if (extra && extra <= p->nh) {
                /* The header's last name is blank (a trailing comma); the counts are equal. */
                field_errors_add(&errs, "",
                                 "column %zu holds a value, but the header names no "
                                 "column there",
                                 extra);
                sl->refused = 1;
            } else if (extra || nf < p->nh) {
                field_errors_add(&errs, "", "the row has %zu fields, the header has %zu", nf,
                                 p->nh);
                sl->refused = 1;
            } else {
                sc.scratch = c->arena + c->used;
                sc.used = 0;
                field_check_row(&sc, p->kind, raw, sl->v, &row, &errs);
                c->used += sc.used;
                if (errs.n == 0) {
                    if (row.failed) {
                        c->rc = REINT_ENOMEM;
                        c->rc_line = sl->line;
                        c->last = 1;
                        break;
                    }
                    memcpy(c->arena + c->used, row.p, row.len);
                    sl->row_off = c->used;
                    sl->row_len = row.len;
                    c->used += row.len;
                    /* Every kind but availability keys its record by its first column. */
                    const field_value *lid = &sl->v[0];
                    sl->has_id = p->kind != INTAKE_AVAILABILITY && lid->ok && lid->s &&
                                 outbox_idkey_id(p->ids, p->kind, lid->s, lid->len, sl->id) == 0;
                }
            }
        }
        if (errs.n && import__slot_errors(sl, &errs) != 0) {
            c->rc = REINT_ENOMEM;
            c->rc_line = sl->line;
            c->last = 1;
            break;
        }
        c->n++;
        if (c->last)
            break;
    }
    c->offset = csv_offset(p->r);
    localrow_free(&row);
}

static void *import__reader(void *arg)
{
    ipipe *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && !p->done) {
        size_t i = p->fill % ICHUNKS;
        if (p->full[i]) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        import__chunk_fill(p, p->chunk[i]);
        pthread_mutex_lock(&p->mu);
        p->full[i] = 1;
        p->fill++;
        p->done = p->chunk[i]->last || p->chunk[i]->rc != 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the ring --------------------------------------------------------------------------- */

/* The next chunk in file order, filled by the reader (or here without one). */
static ichunk *import__chunk_take(ipipe *p)
{
    size_t i = p->take % ICHUNKS;
    if (!p->threaded) {
        import__chunk_fill(p, p->chunk[i]);
        return p->chunk[i];
    }
    pthread_mutex_lock(&p->mu);
    while (!p->full[i])
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return p->chunk[i];
}

static void import__chunk_give_back(ipipe *p)
{
    size_t i = p->take % ICHUNKS;
    p->take++;
    if (!p->threaded)
        return;
    pthread_mutex_lock(&p->mu);
    p->full[i] = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Allocates the ring and starts the reader: 0, or REINT_ENOMEM with *started telling
 * whether the lock and condition were made (import__pipe_stop undoes either case). */
static int import__pipe_start(ipipe *p, int *started)
{
    *started = 0;
    if (outbox_idkey_new(intake_outbox(p->in), &p->ids) != 0)
        return REINT_ENOMEM;
    for (int i = 0; i < ICHUNKS; i++) {
        p->chunk[i] = calloc(1, sizeof(ichunk));
        if (p->chunk[i] == NULL || (p->chunk[i]->arena = malloc(ICHUNK_ARENA)) == NULL)
            return REINT_ENOMEM;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return REINT_ENOMEM;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return REINT_ENOMEM;
    }
    *started = 1;
    p->threaded = pthread_create(&p->thread, NULL, import__reader, p) == 0;
    if (!p->threaded)
        log_info("import: no reader thread; reading and writing in turn");
    return 0;
}

static void import__pipe_stop(ipipe *p, int started)
{
    if (started) {
        if (p->threaded) {
            pthread_mutex_lock(&p->mu);
            p->stop = 1;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            pthread_join(p->thread, NULL);
        }
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    ikeys_free(&p->keys);
    for (int i = 0; i < ICHUNKS; i++) {
        if (p->chunk[i] == NULL)
            continue;
        import__chunk_clear(p->chunk[i]);
        free(p->chunk[i]->arena);
        free(p->chunk[i]);
    }
    outbox_idkey_free(p->ids);
}

void import_closed_months(int bs, const import_stats *st, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < st->n_months && o + 1 < outlen; i++) {
        int state = st->months[i].state;
        char p[16];
        const char *what;
        if (review_period(bs, st->months[i].ym, p, sizeof(p)) != 0)
            continue;
        if (state == REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED)
            what = "closed: the province's reviewer sees the change";
        else if (state == REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED)
            what = "approved: it goes back to the province's reviewer for a new approval";
        else if (state == REINT__V1__MONTH_STATE__MONTH_STATE_CHANGED)
            what = "approved and changed since: it waits for a new approval";
        else
            continue;
        int k = snprintf(out + o, outlen - o, "note: %lld %s dated in %s, which is %s\n",
                         st->months[i].rows,
                         st->months[i].rows == 1 ? "row stored is" : "rows stored are", p, what);
        if (k < 0 || (size_t)k >= outlen - o) {
            out[o] = '\0'; /* no line cut in two */
            break;
        }
        o += (size_t)k;
    }
}

/* ---- the writer's half ------------------------------------------------------------------ */

/* Test hook import_pause: waits (at most 30 s) until a month the import stored rows in is in
 * another state than when it began. */
static void import__pause_for_a_change(outbox *ob, intake *in, const import_stats *st,
                                       const months_states *before)
{
    for (int tries = 0; tries < 300; tries++) {
        months_states *now = NULL;
        int changed = 0;
        if (months_states_load(outbox_db(ob), intake_calendar_bs(in), &now) == 0) {
            for (int i = 0; i < st->n_months && !changed; i++)
                changed = months_states_of(now, st->months[i].ym) !=
                          months_states_of(before, st->months[i].ym);
            months_states_free(now);
        }
        if (changed)
            return;
        usleep(100 * 1000);
    }
}

/* Counts a stored row in the month of its own date (import_stats.months). */
static void import__note_month(import_stats *st, int kind, const field_value *v, int bs,
                               const months_states *before)
{
    int idx = kind == INTAKE_PERSON       ? FIELD_PERSON_REGISTERED_ON
              : kind == INTAKE_SERVICE    ? FIELD_SERVICE_DATE
              : kind == INTAKE_ENTERPRISE ? FIELD_ENTERPRISE_DATE
                                          : -1;
    int32_t ad, bsm;
    if (idx < 0 || !v[idx].ok || bscal_pair_of_day(v[idx].day, &ad, &bsm) != 0)
        return;
    int32_t ym = bs ? bsm : ad;
    int lo = 0, hi = st->n_months;
    while (lo < hi) { /* the first month not before ym */
        int mid = (lo + hi) / 2;
        if (st->months[mid].ym < ym)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < st->n_months && st->months[lo].ym == ym) {
        st->months[lo].rows++;
    } else if (st->n_months == IMPORT_MONTHS) {
        st->months_left_out++;
    } else {
        memmove(&st->months[lo + 1], &st->months[lo],
                (size_t)(st->n_months - lo) * sizeof(st->months[0]));
        st->months[lo].ym = ym;
        st->months[lo].rows = 1;
        st->months[lo].state = months_states_of(before, ym);
        st->n_months++;
    }
}

int import_csv(intake *in, int kind, const char *path, FILE *errors_out, int progress,
               import_stats *st)
{
    import_opts o = {.errors_out = errors_out, .progress = progress};
    return import_csv_opts(in, kind, path, &o, st);
}

int import_csv_opts(intake *in, int kind, const char *path, const import_opts *o, import_stats *st)
{
    FILE *errors_out = o->errors_out;
    int progress = o->progress;
    outbox *ob = intake_outbox(in);
    import_stats local, stored = {0}; /* stored: the counts at the last commit */
    FILE *f = NULL;
    csv_reader *r = NULL;
    char clerk[256];
    int map[CSV_MAX_FIELDS];
    int rc = 0, in_txn = 0, started = 0;
    long long total = 0, batch = 0;
    double t0 = import__secs(), last_draw = 0;
    field_errors errs;
    char **fields;
    size_t nf;
    ipipe pipe_ = {0}, *p = &pipe_;
    months_states *before = NULL;

    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof(*st));
    const char *base = strrchr(path, '/');
    base = o->name ? o->name : base ? base + 1 : path;
    if (field_columns(kind) == NULL) {
        if (errors_out)
            fprintf(errors_out, "%s: unknown kind of rows %d\n", base, kind);
        return REINT_EINVAL;
    }
    const char *user = getenv("USER");
    if (o->clerk)
        snprintf(clerk, sizeof(clerk), "%s", o->clerk);
    else
        snprintf(clerk, sizeof(clerk), "import:%s%s%s", base, user ? ":" : "", user ? user : "");
    f = fopen(path, "r");
    if (f == NULL) {
        if (errors_out)
            fprintf(errors_out, "%s: cannot open: %s\n", path, strerror(errno));
        return REINT_EIO;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0)
        total = (long long)sb.st_size;
    r = csv_open(f);
    if (r == NULL) {
        rc = REINT_ENOMEM;
        if (errors_out)
            fprintf(errors_out, "%s: out of memory\n", base);
        goto out;
    }
    rc = csv_next(r, &fields, &nf);
    if (rc <= 0) {
        if (errors_out)
            fprintf(errors_out, "%s line 1: %s\n", base,
                    rc == 0 ? "the file is empty; a header row naming the columns is expected"
                            : "the header row cannot be read");
        rc = rc == 0 || rc == REINT_ETOOLONG || rc == REINT_EQUOTE ? REINT_EINVAL : REINT_EIO;
        goto out;
    }
    if (csv_nul_field(r) >= 0) {
        if (errors_out)
            fprintf(errors_out,
                    "%s line %ld: column %ld of the header holds a NUL byte, which "
                    "text never does (save the file as CSV UTF-8)\n",
                    base, csv_line(r), csv_nul_field(r) + 1);
        rc = REINT_EINVAL;
        goto out;
    }
    if (nf > 0 && (!strncmp(fields[0], "\xFF\xFE", 2) || !strncmp(fields[0], "\xFE\xFF", 2))) {
        if (errors_out)
            fprintf(errors_out,
                    "%s line 1: the file starts with a UTF-16 byte order mark; save it as CSV "
                    "UTF-8\n",
                    base);
        rc = REINT_EINVAL;
        goto out;
    }
    if ((rc = import__header(kind, fields, nf, map, errors_out, base, csv_line(r))) != 0)
        goto out;
    /* The months as the rows find them, before the first is stored. */
    if ((rc = months_states_load(outbox_db(ob), intake_calendar_bs(in), &before)) != 0) {
        if (errors_out)
            fprintf(errors_out, "%s: the months' states cannot be read (%s); nothing imported\n",
                    base, rc == REINT_ENOMEM ? "out of memory" : "database error");
        goto out;
    }
    p->in = in;
    p->kind = kind;
    p->r = r;
    p->map = map;
    p->nh = nf;
    if ((rc = import__pipe_start(p, &started)) != 0) {
        if (errors_out)
            fprintf(errors_out, "%s: out of memory\n", base);
        goto out;
    }
    if ((rc = outbox_begin(ob)) != 0) {
        import__store_failed(errors_out, base, 0, "begin a transaction", rc, "nothing is imported");
        goto out;
    }
    in_txn = 1;
    for (int last = 0; !last;) {
        ichunk *c = import__chunk_take(p);
        last = c->last;
        intake_refresh_today(in); /* one clock read per chunk, not per row */
        for (size_t i = 0; i < c->n; i++) {
            islot *sl = &c->slot[i];
            st->rows++;
            errs.n = errs.dropped = 0;
            if (sl->errs)
                memcpy(&errs, sl->errs, sizeof(errs));
            if (sl->refused) {
                rc = REINT_EINVAL;
            } else if (!sl->errs && sl->has_id && ikeys_has(&p->keys, sl->id)) {
                char q[80];
                field_errors_add_code(&errs, field_columns(kind)[0], "repeated_in_file", NULL,
                                      "%s was taken from an earlier line of this file: this "
                                      "line is not imported",
                                      field_quote(q, sizeof(q), sl->v[0].s, sl->v[0].len));
                rc = REINT_EINVAL;
            } else {
                intake_result res;
                rc = intake_apply_checked(
                    in, kind, sl->v, sl->errs ? NULL : (const uint8_t *)c->arena + sl->row_off,
                    sl->row_len, sl->has_id ? sl->id : NULL, clerk, &errs, &res);
                if (rc == 0 && sl->has_id && ikeys_put(&p->keys, sl->id) != 0) {
                    rc = REINT_ENOMEM;
                    if (errors_out)
                        fprintf(errors_out,
                                "%s line %ld: out of memory; the rows since the last "
                                "commit are not imported\n",
                                base, sl->line);
                    goto out;
                }
                if (rc == 0) {
                    if (res.changed == INTAKE_INSERTED)
                        st->inserted++;
                    else if (res.changed == INTAKE_UPDATED)
                        st->updated++;
                    else
                        st->unchanged++;
                    if (res.changed != INTAKE_UNCHANGED)
                        import__note_month(st, kind, sl->v, intake_calendar_bs(in), before);
                }
            }
            if (rc == REINT_EINVAL) {
                st->refused++;
                if (o->on_refused)
                    o->on_refused(o->ud, sl->line, &errs);
                else
                    import__report(errors_out, base, sl->line, &errs);
            } else if (rc != 0) {
                if (errors_out)
                    fprintf(errors_out,
                            "%s line %ld: cannot store the row (database error); "
                            "rows of this batch are not imported\n",
                            base, sl->line);
                goto out;
            }
            if (++batch >= IMPORT_BATCH) {
                batch = 0;
                /* A failed COMMIT may leave the transaction open (SQLite does when the
                 * database is busy): in_txn stays set so that it is rolled back. */
                /* Test hook: a commit that fails, its rows rolled back. */
                rc = testhook_fire("import_commit_fails") ? REINT_EFAULT : outbox_commit(ob);
                if (rc != 0) {
                    import__store_failed(errors_out, base, sl->line,
                                         "commit the rows up to this line", rc,
                                         "the rows since the last commit are not imported");
                    goto out;
                }
                in_txn = 0;
                stored = *st;
                /* Test hook: hold still after a commit, so that a test can kill -9 an
                 * import known to be midway (some rows committed, the rest not). */
                if (testhook_fire("import_stall"))
                    sleep(30);
                /* Test hook: a pause after a commit until the hub has heard of its rows and
                 * sent back what they did to a closed month (at most 30 s), before the import
                 * ends: its months' states must still be those it began with. */
                if (testhook_fire("import_pause"))
                    import__pause_for_a_change(ob, in, st, before);
                if ((rc = outbox_begin(ob)) != 0) {
                    import__store_failed(errors_out, base, sl->line, "begin a transaction", rc,
                                         "the rows after this line are not imported");
                    goto out;
                }
                in_txn = 1;
            }
        }
        if (c->rc != 0) {
            rc = c->rc;
            if (errors_out)
                fprintf(errors_out, "%s line %ld: %s\n", base, c->rc_line,
                        rc == REINT_ENOMEM ? "out of memory" : "read error");
            import__chunk_give_back(p);
            goto out;
        }
        if (o->on_progress)
            o->on_progress(o->ud, c->offset, total, st);
        if (progress) {
            double now = import__secs();
            if (now - last_draw > 0.2) {
                import__progress(base, c->offset, total, st->rows, now - t0, 0);
                last_draw = now;
            }
        }
        import__chunk_give_back(p);
    }
    if ((rc = outbox_commit(ob)) != 0) {
        import__store_failed(errors_out, base, 0, "commit the last rows", rc,
                             "the rows since the last commit are not imported");
        goto out;
    }
    in_txn = 0;
    if (o->on_progress)
        o->on_progress(o->ud, total, total, st);
    if (progress)
        import__progress(base, total, total, st->rows, import__secs() - t0, 1);
out:
    if (in_txn) {
        outbox_rollback(ob);
        /* The rolled-back rows are not stored: the counts say what was committed. */
        *st = stored;
    }
    import__pipe_stop(p, started);
    months_states_free(before);
    csv_close(r);
    if (f)
        fclose(f);
    return rc;
}
