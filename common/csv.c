/* Streaming CSV reader. Input is pulled with fread in CSV_CHUNK blocks and parsed by a small
 * state machine that copies the unquoted field text into a record buffer, replacing each
 * field separator by a NUL. Every stored byte stands for at least one input byte, so a
 * record buffer of CSV_MAX_RECORD + 1 bytes always suffices for a record within the limit;
 * past it the reader stops storing (it keeps overwriting the start of the buffer) and only
 * follows quotes to find where the record ends. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define CSV_CHUNK       (64 * 1024)
#define CSV_REC_INITIAL 4096
#define CSV_REC_LIMIT   (CSV_MAX_RECORD + 1)

enum csv_state {
    ST_FIELD_START, /* nothing of the current field read yet */
    ST_UNQUOTED,    /* inside a field that did not start with a quote */
    ST_QUOTED,      /* inside quotes */
    ST_QUOTE_SEEN,  /* a quote inside quotes: a doubled quote or the closing one */
};

struct csv_reader {
    FILE *f;
    unsigned char *in; /* CSV_CHUNK bytes */
    size_t in_len, in_pos;
    long long in_base; /* input offset of in[0] */
    int started, eof, done;
    int after_cr; /* the last record ended at a CR; a LF right after it belongs to it */
    char *rec;
    size_t rec_cap;
    long line;      /* physical line of the next unread byte */
    long rec_line;  /* line at which the last returned record began */
    long nul_field; /* the first field of that record holding a NUL byte, or -1 */
    size_t foff[CSV_MAX_FIELDS];
    char *fields[CSV_MAX_FIELDS];
};

csv_reader *csv_open(FILE *f)
{
    csv_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto fail;
    r->in = malloc(CSV_CHUNK);
    r->rec = malloc(CSV_REC_INITIAL);
    if (r->in == NULL || r->rec == NULL)
        goto fail;
    r->f = f;
    r->rec_cap = CSV_REC_INITIAL;
    r->line = 1;
    r->rec_line = 0;
    r->nul_field = -1;
    return r;
fail:
    csv_close(r);
    return NULL;
}

void csv_close(csv_reader *r)
{
    if (r == NULL)
        return;
    free(r->in);
    free(r->rec);
    free(r);
}

long csv_nul_field(const csv_reader *r)
{
    return r->nul_field;
}

long csv_line(const csv_reader *r)
{
    return r->rec_line;
}

long long csv_offset(const csv_reader *r)
{
    return r->in_base + (long long)r->in_pos;
}

/* Returns 1 when bytes are available, 0 at end of input, REINT_EIO on a read error. */
static int refill(csv_reader *r)
{
    if (r->eof)
        return 0;
    r->in_base += (long long)r->in_len;
    r->in_pos = 0;
    r->in_len = fread(r->in, 1, CSV_CHUNK, r->f);
    if (r->in_len < CSV_CHUNK) {
        if (ferror(r->f))
            return REINT_EIO;
        r->eof = 1;
    }
    return r->in_len > 0;
}

/* Makes room for one more byte after w (plus the record's final NUL). Returns 1 when there
 * is room, 0 when the record has gone past CSV_MAX_RECORD, REINT_ENOMEM when growing failed. */
static int reserve(csv_reader *r, size_t w)
{
    if (w + 2 <= r->rec_cap)
        return 1;
    if (r->rec_cap >= CSV_REC_LIMIT)
        return 0;
    size_t cap = r->rec_cap * 2;
    if (cap > CSV_REC_LIMIT)
        cap = CSV_REC_LIMIT;
    char *p = realloc(r->rec, cap);
    if (p == NULL)
        return REINT_ENOMEM;
    r->rec = p;
    r->rec_cap = cap;
    return w + 2 <= r->rec_cap;
}

int csv_next(csv_reader *r, char ***fields, size_t *nfields)
{
    if (r->done)
        return 0;
    if (!r->started) {
        r->started = 1;
        int rc = refill(r);
        if (rc < 0)
            goto io_error;
        /* A BOM, or several: a file saved again by a program that adds one without looking
         * starts with two, and the first column's name would hold the second. */
        while (r->in_len - r->in_pos >= 3 && memcmp(r->in + r->in_pos, "\xEF\xBB\xBF", 3) == 0)
            r->in_pos += 3;
    }

next_record:
    if (r->after_cr) {
        if (r->in_pos == r->in_len) {
            int rc = refill(r);
            if (rc < 0)
                goto io_error;
        }
        if (r->in_pos < r->in_len && r->in[r->in_pos] == '\n')
            r->in_pos++;
        r->after_cr = 0;
    }

    long long start = csv_offset(r);
    long line = r->line;
    r->rec_line = line;
    r->nul_field = -1;
    enum csv_state st = ST_FIELD_START;
    size_t w = 0, nf = 0;
    int overflow = 0; /* too long or too many fields: parse on, store nothing useful */
    char *rec = r->rec;
    r->foff[0] = 0;

    for (;;) {
        if (r->in_pos == r->in_len) {
            int rc = refill(r);
            if (rc < 0) {
                r->line = line;
                goto io_error;
            }
            if (rc == 0) {
                r->done = 1;
                r->line = line;
                if (st == ST_QUOTED)
                    return REINT_EQUOTE;
                if (csv_offset(r) == start)
                    return 0;
                goto end_record;
            }
        }
        const unsigned char *p = r->in + r->in_pos;
        const unsigned char *end = r->in + r->in_len;
        while (p < end) {
            unsigned char c = *p++;
            switch (st) {
            case ST_FIELD_START:
            case ST_UNQUOTED:
                if (c == ',')
                    goto end_field;
                if (c == '\n' || c == '\r') {
                    r->in_pos = (size_t)(p - r->in);
                    r->after_cr = c == '\r';
                    r->line = line + 1;
                    if (st == ST_FIELD_START && nf == 0 && !overflow && csv_offset(r) - 1 == start)
                        goto next_record; /* blank line */
                    goto end_record_at_newline;
                }
                if (c == '"' && st == ST_FIELD_START) {
                    st = ST_QUOTED;
                    continue;
                }
                st = ST_UNQUOTED;
                break;
            case ST_QUOTED:
                if (c == '"') {
                    st = ST_QUOTE_SEEN;
                    continue;
                }
                if (c == '\n')
                    line++;
                break;
            case ST_QUOTE_SEEN:
                if (c == ',')
                    goto end_field;
                if (c == '\n' || c == '\r') {
                    r->in_pos = (size_t)(p - r->in);
                    r->after_cr = c == '\r';
                    r->line = line + 1;
                    goto end_record_at_newline;
                }
                /* A doubled quote stands for one quote; anything else after a closing
                 * quote is kept as text, as spreadsheets do. */
                st = c == '"' ? ST_QUOTED : ST_UNQUOTED;
                break;
            }
            /* Store c. */
            if (w + 2 > r->rec_cap) {
                int rc = reserve(r, w);
                if (rc < 0) {
                    r->in_pos = (size_t)(p - r->in);
                    r->line = line;
                    r->done = 1;
                    return REINT_ENOMEM;
                }
                rec = r->rec;
                if (rc == 0) {
                    overflow = 1;
                    w = 0;
                    nf = 0;
                    r->foff[0] = 0;
                }
            }
            /* Fields are handed on as C strings: a NUL would cut one where it stands. */
            if (c == '\0' && r->nul_field < 0 && !overflow)
                r->nul_field = (long)nf;
            rec[w++] = (char)c;
            continue;
        end_field:
            if (w + 2 > r->rec_cap) {
                int rc = reserve(r, w);
                if (rc < 0) {
                    r->in_pos = (size_t)(p - r->in);
                    r->line = line;
                    r->done = 1;
                    return REINT_ENOMEM;
                }
                rec = r->rec;
                if (rc == 0) {
                    overflow = 1;
                    w = 0;
                    nf = 0;
                }
            }
            rec[w++] = '\0';
            if (nf + 1 == CSV_MAX_FIELDS) {
                overflow = 1;
                w = 0;
                nf = 0;
            } else {
                nf++;
            }
            r->foff[nf] = w;
            st = ST_FIELD_START;
        }
        r->in_pos = r->in_len;
    }

end_record_at_newline:
    /* The terminator is not part of the record's length. */
    if (csv_offset(r) - 1 - start > CSV_MAX_RECORD)
        overflow = 1;
    goto finish;
end_record:
    if (csv_offset(r) - start > CSV_MAX_RECORD)
        overflow = 1;
finish:
    if (overflow)
        return REINT_ETOOLONG;
    r->rec[w] = '\0';
    nf++;
    for (size_t i = 0; i < nf; i++)
        r->fields[i] = r->rec + r->foff[i];
    *fields = r->fields;
    *nfields = nf;
    return 1;

io_error:
    r->done = 1;
    return REINT_EIO;
}

int csv_formula_guarded(const char *s)
{
    s += strspn(s, "'");
    /* Spaces, and characters that show nothing (a no-break or ideographic space, a zero-width
     * one, a BOM): a spreadsheet that trims them runs " =1+1" too. */
    for (;;) {
        const unsigned char *p = (const unsigned char *)s;
        size_t l = p[0] == ' ' ? 1 : p[0] < 0x80 ? 0 : utf8_len(p, strnlen(s, 4));
        if (l == 0 || (l > 1 && !utf8_invisible(utf8_decode(p, l))))
            break;
        s += l;
    }
    if (s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL)
        return 1;
    /* The full-width forms U+FF1D = U+FF0B + U+FF0D - U+FF20 @, which an input method types
     * and a spreadsheet may read as their ASCII. */
    return (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBC &&
           ((unsigned char)s[2] == 0x9D || (unsigned char)s[2] == 0x8B ||
            (unsigned char)s[2] == 0x8D || (unsigned char)s[2] == 0xA0);
}

const char *csv_formula_unguard(const char *s)
{
    return s[0] == '\'' && csv_formula_guarded(s) ? s + 1 : s;
}

void csv_write_field(FILE *f, const char *s)
{
    int quoted = strpbrk(s, ",\"\r\n") != NULL;
    if (quoted)
        putc('"', f);
    if (csv_formula_guarded(s))
        putc('\'', f); /* inside the quotes, where a field's text starts */
    if (!quoted) {
        fputs(s, f);
        return;
    }
    for (; *s != '\0'; s++) {
        if (*s == '"')
            putc('"', f);
        putc(*s, f);
    }
    putc('"', f);
}
