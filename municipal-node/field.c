#include "field.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bscal.h"
#include "error.h"
#include "record.h"
#include "utf8.h"

/* The official ISO 3166-1 alpha-2 list (249 codes), sorted, two letters each. */
static const char field__countries[] =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ"
    "CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFR"
    "GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJO"
    "JPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMR"
    "MSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERO"
    "RSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTV"
    "TWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";
_Static_assert(sizeof(field__countries) == 2 * 249 + 1, "249 ISO 3166-1 alpha-2 codes");

/* Field types: how raw text is checked and how it is written in the local row. */
enum field__type { F_ID, F_TEXT, F_PHONE, F_ENUM, F_BOOL, F_DATE, F_INT, F_COUNTRY };

typedef struct field__def {
    unsigned char type;
    unsigned char required;
    unsigned short maxlen;
    const ProtobufCEnumDescriptor *en;
    long long min, max;  /* an F_INT's bounds; an F_TEXT with min 1 takes line breaks and tabs */
    unsigned char event; /* an F_DATE of the programme's events: the scan's earliest applies */
} field__def;

#define LOCAL_ID_MAX 64
#define SHORT_MAX    FIELD_SHORT_MAX

static const char *const field__person_cols[] = {"local_id",
                                                 "category",
                                                 "sex",
                                                 "birth_year",
                                                 "caste_group",
                                                 "disability",
                                                 "registered_on",
                                                 "destination_country",
                                                 "years_abroad",
                                                 "return_date",
                                                 "remigration_intention",
                                                 "family_member_abroad",
                                                 "consent",
                                                 "full_name",
                                                 "phone",
                                                 "citizenship_no",
                                                 "ward",
                                                 "address",
                                                 NULL};
static const field__def field__person_defs[FIELD_PERSON_N] = {
    [FIELD_PERSON_LOCAL_ID] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0, 0},
    [FIELD_PERSON_CATEGORY] = {F_ENUM, 1, SHORT_MAX, &reint__v1__category__descriptor, 0, 0, 0},
    [FIELD_PERSON_SEX] = {F_ENUM, 1, SHORT_MAX, &reint__v1__sex__descriptor, 0, 0, 0},
    [FIELD_PERSON_BIRTH_YEAR] = {F_INT, 0, SHORT_MAX, NULL, 1800, 2200, 0},
    [FIELD_PERSON_CASTE] = {F_ENUM, 0, SHORT_MAX, &reint__v1__caste_group__descriptor, 0, 0, 0},
    [FIELD_PERSON_DISABILITY] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_PERSON_REGISTERED_ON] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0, 1},
    [FIELD_PERSON_COUNTRY] = {F_COUNTRY, 0, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_PERSON_YEARS_ABROAD] = {F_INT, 0, SHORT_MAX, NULL, 0, 80, 0},
    [FIELD_PERSON_RETURN_DATE] = {F_DATE, 0, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_PERSON_INTENTION] = {F_ENUM, 0, SHORT_MAX, &reint__v1__remigration_intention__descriptor,
                                0, 0, 0},
    [FIELD_PERSON_FAMILY_ABROAD] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_PERSON_CONSENT] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_PERSON_FULL_NAME] = {F_TEXT, 0, 200, NULL, 0, 0, 0},
    [FIELD_PERSON_PHONE] = {F_PHONE, 0, 40, NULL, 0, 0, 0},
    [FIELD_PERSON_CITIZENSHIP] = {F_TEXT, 0, 64, NULL, 0, 0, 0},
    [FIELD_PERSON_WARD] = {F_INT, 0, SHORT_MAX, NULL, 1, 99, 0},
    [FIELD_PERSON_ADDRESS] = {F_TEXT, 0, 300, NULL, 1, 0, 0}, /* several lines */
};

static const char *const field__service_cols[] = {
    "local_id", "person_local_id", "service",    "status", "date",
    "provider", "programme",       "amount_npr", NULL};
static const field__def field__service_defs[FIELD_SERVICE_N] = {
    [FIELD_SERVICE_LOCAL_ID] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0, 0},
    [FIELD_SERVICE_PERSON] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0, 0},
    [FIELD_SERVICE_TYPE] = {F_ENUM, 1, SHORT_MAX, &reint__v1__service_type__descriptor, 0, 0, 0},
    [FIELD_SERVICE_STATUS] = {F_ENUM, 1, SHORT_MAX, &reint__v1__service_status__descriptor, 0, 0,
                              0},
    [FIELD_SERVICE_DATE] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0, 1},
    [FIELD_SERVICE_PROVIDER] = {F_ENUM, 0, SHORT_MAX, &reint__v1__provider__descriptor, 0, 0, 0},
    [FIELD_SERVICE_PROGRAMME] = {F_ENUM, 0, SHORT_MAX, &reint__v1__programme__descriptor, 0, 0, 0},
    [FIELD_SERVICE_AMOUNT] = {F_INT, 0, SHORT_MAX, NULL, 0, 100000000000LL, 0},
};

static const char *const field__enterprise_cols[] = {"local_id",  "owner_local_id", "action",
                                                     "sector",    "date",           "registered",
                                                     "employees", "status",         NULL};
static const field__def field__enterprise_defs[FIELD_ENTERPRISE_N] = {
    [FIELD_ENTERPRISE_LOCAL_ID] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0, 0},
    [FIELD_ENTERPRISE_OWNER] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0, 0},
    [FIELD_ENTERPRISE_ACTION] = {F_ENUM, 1, SHORT_MAX, &reint__v1__enterprise_action__descriptor, 0,
                                 0, 0},
    [FIELD_ENTERPRISE_SECTOR] = {F_ENUM, 1, SHORT_MAX, &reint__v1__sector__descriptor, 0, 0, 0},
    [FIELD_ENTERPRISE_DATE] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0, 1},
    [FIELD_ENTERPRISE_REGISTERED] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_ENTERPRISE_EMPLOYEES] = {F_INT, 0, SHORT_MAX, NULL, 0, 100000, 0},
    [FIELD_ENTERPRISE_STATUS] = {F_ENUM, 0, SHORT_MAX, &reint__v1__enterprise_status__descriptor, 0,
                                 0, 0},
};

static const char *const field__availability_cols[] = {"service", "provider", "available", "as_of",
                                                       NULL};
static const field__def field__availability_defs[FIELD_AVAILABILITY_N] = {
    [FIELD_AVAILABILITY_SERVICE] = {F_ENUM, 1, SHORT_MAX, &reint__v1__service_type__descriptor, 0,
                                    0, 0},
    [FIELD_AVAILABILITY_PROVIDER] = {F_ENUM, 1, SHORT_MAX, &reint__v1__provider__descriptor, 0, 0,
                                     0},
    [FIELD_AVAILABILITY_AVAILABLE] = {F_BOOL, 1, SHORT_MAX, NULL, 0, 0, 0},
    [FIELD_AVAILABILITY_AS_OF] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0, 1},
};

/* The names above and the positions in field.h are two lists of one set of columns. */
#define FIELD__COUNT(a) (sizeof(a) / sizeof((a)[0]) - 1)
_Static_assert(FIELD__COUNT(field__person_cols) == FIELD_PERSON_N, "person columns");
_Static_assert(FIELD__COUNT(field__service_cols) == FIELD_SERVICE_N, "service columns");
_Static_assert(FIELD__COUNT(field__enterprise_cols) == FIELD_ENTERPRISE_N, "enterprise columns");
_Static_assert(FIELD__COUNT(field__availability_cols) == FIELD_AVAILABILITY_N,
               "availability columns");

typedef struct field__kind {
    const char *name;
    const char *singular;
    const char *const *cols;
    const field__def *defs;
    size_t n;
} field__kind;

#define K_PERSON       REINT__V1__RECORD_KIND__RECORD_KIND_PERSON
#define K_SERVICE      REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE
#define K_ENTERPRISE   REINT__V1__RECORD_KIND__RECORD_KIND_ENTERPRISE
#define K_AVAILABILITY REINT__V1__RECORD_KIND__RECORD_KIND_AVAILABILITY

static const field__kind field__kinds[] = {
    [K_PERSON] = {"persons", "person", field__person_cols, field__person_defs, FIELD_PERSON_N},
    [K_SERVICE] = {"services", "service", field__service_cols, field__service_defs,
                   FIELD_SERVICE_N},
    [K_ENTERPRISE] = {"enterprises", "enterprise", field__enterprise_cols, field__enterprise_defs,
                      FIELD_ENTERPRISE_N},
    [K_AVAILABILITY] = {"availability", "availability", field__availability_cols,
                        field__availability_defs, FIELD_AVAILABILITY_N},
};
_Static_assert(K_PERSON == 1 && K_AVAILABILITY == 4, "kinds with columns are 1..4");

static const field__kind *field__kind_get(int kind)
{
    if (kind < K_PERSON || kind > K_AVAILABILITY)
        return NULL;
    return &field__kinds[kind];
}

/* ---- text ------------------------------------------------------------------------------- */

/* Copies at most max bytes of s into out as printable, valid UTF-8 (invalid bytes and each
 * character utf8_unsafe or utf8_invisible names become '?'), adding "..." when cut. */
static void field__sanitize(char *out, size_t outlen, const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    if (outlen == 0)
        return;
    while (i < n && i < max && o + 5 < outlen) {
        size_t l = utf8_len(p + i, n - i);
        unsigned long cp = l ? utf8_decode(p + i, l) : 0;
        if (l == 0 || utf8_unsafe(cp) || utf8_invisible(cp)) {
            out[o++] = '?';
            i += l ? l : 1;
            continue;
        }
        if (i + l > max || o + l + 4 >= outlen)
            break;
        memcpy(out + o, p + i, l);
        o += l;
        i += l;
    }
    if (i < n && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void field__vadd(field_errors *e, const char *field, const char *code, const char *arg,
                        const char *fmt, va_list ap)
{
    if (e->n >= FIELD_MAX_ERRORS) {
        e->dropped++;
        return;
    }
    field_error *x = &e->e[e->n++];
    field__sanitize(x->field, sizeof(x->field), field, strlen(field), 40);
    vsnprintf(x->reason, sizeof(x->reason), fmt, ap);
    snprintf(x->code, sizeof(x->code), "%s", code);
    field__sanitize(x->arg, sizeof(x->arg), arg ? arg : "", arg ? strlen(arg) : 0, 40);
}

void field_errors_add(field_errors *e, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    field__vadd(e, field, "", NULL, fmt, ap);
    va_end(ap);
}

void field_errors_add_code(field_errors *e, const char *field, const char *code, const char *arg,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    field__vadd(e, field, code, arg, fmt, ap);
    va_end(ap);
}

const char *field_quote(char *buf, size_t len, const char *s, size_t n)
{
    char tmp[64];
    field__sanitize(tmp, sizeof(tmp), s, n, 40);
    snprintf(buf, len, "\"%s\"", tmp);
    return buf;
}

void field_format_day(int bs, int32_t day, char out[16])
{
    if (bscal_format(day, bs, out, 16) != 0)
        bscal_format(day, 0, out, 16);
}

const char *field_countries(void)
{
    return field__countries;
}

static int field__country_known(const char cc[2])
{
    size_t lo = 0, hi = (sizeof(field__countries) - 1) / 2;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(field__countries + 2 * mid, cc, 2);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static const char *field__cal_name(int bs)
{
    return bs ? "Bikram Sambat" : "Gregorian";
}

/* ---- columns ---------------------------------------------------------------------------- */

const char *field_kind_name(int kind)
{
    const field__kind *k = field__kind_get(kind);
    return k ? k->name : NULL;
}

int field_kind_parse(const char *name)
{
    for (int k = K_PERSON; k <= K_AVAILABILITY; k++)
        if (!strcasecmp(name, field__kinds[k].name) || !strcasecmp(name, field__kinds[k].singular))
            return k;
    return 0;
}

const char *const *field_columns(int kind)
{
    const field__kind *k = field__kind_get(kind);
    return k ? k->cols : NULL;
}

size_t field_count(int kind)
{
    const field__kind *k = field__kind_get(kind);
    return k ? k->n : 0;
}

int field_column_index(int kind, const char *name)
{
    const field__kind *k = field__kind_get(kind);
    for (size_t i = 0; k && i < k->n; i++)
        if (!strcmp(k->cols[i], name))
            return (int)i;
    return -1;
}

int field_required(int kind, size_t i)
{
    const field__kind *k = field__kind_get(kind);
    return k && i < k->n && k->defs[i].required;
}

int field_describe(int kind, size_t i, field_info *out)
{
    static const char *const types[] = {
        [F_ID] = "id",     [F_TEXT] = "text", [F_PHONE] = "phone", [F_ENUM] = "enum",
        [F_BOOL] = "bool", [F_DATE] = "date", [F_INT] = "int",     [F_COUNTRY] = "country"};
    const field__kind *k = field__kind_get(kind);
    if (k == NULL || i >= k->n)
        return REINT_EINVAL;
    const field__def *d = &k->defs[i];
    out->name = k->cols[i];
    out->type = types[d->type];
    out->required = d->required;
    out->maxlen = d->maxlen;
    out->min = d->min;
    out->max = d->max;
    out->en = d->en;
    return 0;
}

/* ---- the local row ---------------------------------------------------------------------- */

/* Decimal text of v into out (at least 21 bytes); returns its length. */
static size_t field__itoa(long long v, char *out)
{
    char tmp[24];
    size_t n = 0, o = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[o++] = '-';
    while (n)
        out[o++] = tmp[--n];
    return o;
}

/* Writes the normalised values (enumerations by name, booleans as true/false, numbers in
 * decimal, text as entered and trimmed), known columns in CSV order. */
static void field__row_encode(localrow_buf *row, const field__kind *k, const field_value *v)
{
    char num[24];
    localrow_reset(row);
    for (size_t i = 0; i < k->n; i++) {
        const field__def *d = &k->defs[i];
        if (!v[i].ok) {
            localrow_put(row, NULL, 0);
            continue;
        }
        switch (d->type) {
        case F_ENUM: {
            const char *nm = record_enum_name(d->en, (int)v[i].i);
            localrow_put(row, nm, strlen(nm));
            break;
        }
        case F_BOOL:
            localrow_put(row, v[i].i ? "true" : "false", v[i].i ? 4 : 5);
            break;
        case F_INT:
            localrow_put(row, num, field__itoa(v[i].i, num));
            break;
        default:
            localrow_put(row, v[i].s, v[i].len);
            break;
        }
    }
}

/* ---- field checks ----------------------------------------------------------------------- */

/* The first character of s (n bytes of well-formed UTF-8) that a text field refuses, as its
 * code point with its place in *at (counted in characters), or -1.
 * - What utf8_unsafe names, in any text: names reach a clerk's terminal (`municipal-node
 *   directives`, `followups`), where ESC [2J clears it, a line break forges a line, U+009B
 *   is a CSI to some terminals and U+202E turns the rest of a line around. An address
 *   (lines) keeps line breaks and tabs.
 * - In an id (id), which people tell apart by eye, also what utf8_invisible names, so that no
 *   two ids look the same. A name keeps the zero-width (non-)joiners Devanagari writes with. */
static long field__refused_char(const char *s, size_t n, int id, int lines, size_t *at)
{
    const unsigned char *p = (const unsigned char *)s;
    *at = 0;
    for (size_t i = 0; i < n; (*at)++) {
        if (p[i] >= 0x20 && p[i] < 0x7F) { /* printable ASCII, most of every file: no decoding */
            i++;
            continue;
        }
        size_t l = utf8_len(p + i, n - i);
        if (l == 0)
            return p[i]; /* not reached: the caller has checked the UTF-8 */
        unsigned long cp = utf8_decode(p + i, l);
        i += l;
        if (cp < 0x20 && lines && (cp == '\n' || cp == '\r' || cp == '\t'))
            continue;
        if (utf8_unsafe(cp) || (id && utf8_invisible(cp)))
            return (long)cp;
    }
    return -1;
}

/* Checks one raw value against its definition; errors go to errs. */
/* Devanagari digits (U+0966..U+096F, as a Nepali keyboard types them) in s (n bytes, NUL
 * after) as their ASCII, in place, as the pages do for every number; the new length. */
static size_t field__ascii_digits(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        if (i + 2 < n && u[0] == 0xE0 && u[1] == 0xA5 && u[2] >= 0xA6 && u[2] <= 0xAF) {
            s[w++] = (char)('0' + (u[2] - 0xA6));
            i += 3;
        } else {
            s[w++] = s[i++];
        }
    }
    s[w] = '\0';
    return w;
}

/* A date as offices write it, "2083/8/5", "2083.08.05" or "2083-8-5", as YYYY-MM-DD in
 * place (s has room for 10 bytes and a NUL); anything else is left for the parser to name.
 * The new length. */
static size_t field__date_shape(char *s, size_t n)
{
    unsigned y = 0, m = 0, d = 0;
    size_t i = 0, k;
    for (k = 0; k < 4 && i < n && s[i] >= '0' && s[i] <= '9'; k++)
        y = y * 10 + (unsigned)(s[i++] - '0');
    if (k != 4 || i >= n || !strchr("-/.", s[i]))
        return n;
    char sep = s[i++];
    for (k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '9'; k++)
        m = m * 10 + (unsigned)(s[i++] - '0');
    if (k == 0 || i >= n || s[i] != sep)
        return n;
    i++;
    for (k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '9'; k++)
        d = d * 10 + (unsigned)(s[i++] - '0');
    if (k == 0 || i != n)
        return n;
    return (size_t)snprintf(s, 11, "%04u-%02u-%02u", y, m, d);
}

/* 1 when s (n bytes) is a whole number whose digits are grouped by commas as Nepal writes
 * them (1,00,000: the last three, then twos) or as English does (100,000: threes), else 0:
 * a comma anywhere else ("1,5" years abroad, ward "1,2") is no grouping, and is refused. */
static int field__grouped(const char *s, size_t n)
{
    size_t groups[16], ng = 0, len = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (ng == sizeof(groups) / sizeof(groups[0]) || len == 0)
                return 0;
            groups[ng++] = len;
            len = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            len++;
        } else {
            return 0;
        }
    }
    if (ng < 2 || groups[ng - 1] != 3 || groups[0] > 3)
        return 0;
    int nepal = 1, english = 1;
    for (size_t i = 1; i + 1 < ng; i++) {
        nepal &= groups[i] == 2;
        english &= groups[i] == 3;
    }
    return (nepal && groups[0] <= 2) || english;
}

static void field__check(field_scan *c, const char *name, const field__def *d, const char *raw,
                         field_value *v, field_errors *errs)
{
    char q[80];
    memset(v, 0, sizeof(*v));
    if (raw == NULL)
        raw = "";
    size_t n = strlen(raw);
    while (n > 0 && (raw[0] == ' ' || raw[0] == '\t')) {
        raw++;
        n--;
    }
    while (n > 0 &&
           (raw[n - 1] == ' ' || raw[n - 1] == '\t' || raw[n - 1] == '\r' || raw[n - 1] == '\n'))
        n--;
    if (n == 0) {
        if (d->required)
            field_errors_add_code(errs, name, "required", NULL, "is required");
        return;
    }
    if (!utf8_valid(raw, n)) {
        field_errors_add_code(errs, name, "not_utf8", NULL,
                              "%s is not valid UTF-8 text (save the file as CSV UTF-8)",
                              field_quote(q, sizeof(q), raw, n));
        return;
    }
    /* Characters, as the message and the pages' count of characters left count them: bytes would
     * give a name in Devanagari (three bytes a letter) a third of the letters. */
    if (utf8_chars(raw, n) > d->maxlen) {
        char lim[16];
        snprintf(lim, sizeof(lim), "%u", (unsigned)d->maxlen);
        field_errors_add_code(errs, name, "too_long", lim, "%s is longer than %u characters",
                              field_quote(q, sizeof(q), raw, n), (unsigned)d->maxlen);
        return;
    }
    /* A date may grow to YYYY-MM-DD ("2083-8-5" has 8 bytes). */
    size_t room = d->type == F_DATE && n < 10 ? 11 : n + 1;
    if (c->used + room > c->cap) {
        field_errors_add_code(errs, name, "row_too_long", NULL, "the row is too long");
        return;
    }
    char *s = c->scratch + c->used;
    memcpy(s, raw, n);
    s[n] = '\0';
    c->used += room;
    /* Numbers and dates as offices write them (the pages' attack: the form took ०१२ in a
     * date, an import refused it; 1,00,000 and 2083/08/10 were refused): Devanagari digits,
     * grouping commas in a whole number, and other separators and one-digit months and days
     * in a date are taken, and kept in one spelling. */
    /* Errors quote the value as it was written (the clerk looks for that in the file). */
    const char *orig = raw;
    size_t orig_n = n;
    if (d->type == F_PHONE || d->type == F_INT || d->type == F_DATE)
        n = field__ascii_digits(s, n);
    if (d->type == F_INT && field__grouped(s, n)) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] != ',')
                s[w++] = s[i];
        s[w] = '\0';
        n = w;
    }
    if (d->type == F_DATE)
        n = field__date_shape(s, n);
    v->s = s;
    v->len = n;

    switch (d->type) {
    case F_ID:
    case F_TEXT: {
        size_t at = 0;
        long cp = field__refused_char(s, n, d->type == F_ID, d->min != 0, &at);
        if (cp < 0)
            break;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            field_errors_add_code(
                errs, name, "control_chars", NULL, "%s must not contain control characters%s",
                field_quote(q, sizeof(q), s, n), d->min ? " other than line breaks and tabs" : "");
        else
            field_errors_add_code(errs, name, "invisible_chars", NULL,
                                  "%s holds U+%04lX at character %zu, which is not seen or "
                                  "reorders the text around it",
                                  field_quote(q, sizeof(q), s, n), (unsigned long)cp, at + 1);
        return;
    }
    case F_PHONE: {
        int digits = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = s[i];
            if (ch >= '0' && ch <= '9')
                digits++;
            else if (!strchr(" +-()/.", ch)) {
                digits = -1;
                break;
            }
        }
        if (digits < 6) {
            field_errors_add_code(errs, name, "phone", NULL,
                                  "%s is not a phone number (at least 6 digits; spaces and + - "
                                  "( ) / allowed)",
                                  field_quote(q, sizeof(q), orig, orig_n));
            return;
        }
        break;
    }
    case F_ENUM: {
        /* The limit above counts characters, and a character takes up to four bytes: a value
         * longer in bytes than norm holds names no value (the names are ASCII). */
        char norm[SHORT_MAX + 1];
        int val = 0;
        if (n < sizeof(norm))
            for (size_t i = 0; i <= n; i++)
                norm[i] = (s[i] == ' ' || s[i] == '-') ? '_' : s[i];
        if (n >= sizeof(norm) || record_enum_parse(d->en, norm, &val) != 0) {
            char list[400];
            record_enum_list(d->en, list, sizeof(list));
            field_errors_add_code(errs, name, "enum", NULL, "%s is not one of %s",
                                  field_quote(q, sizeof(q), s, n), list);
            return;
        }
        v->i = val;
        break;
    }
    case F_BOOL:
        if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1"))
            v->i = 1;
        else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0"))
            v->i = 0;
        else {
            field_errors_add_code(errs, name, "bool", NULL,
                                  "%s is not one of true, false, yes, no, 1, 0",
                                  field_quote(q, sizeof(q), s, n));
            return;
        }
        break;
    case F_DATE: {
        int rc = bscal_parse(s, c->bs, &v->day);
        if (rc == REINT_ERANGE) {
            if (c->bs)
                field_errors_add_code(errs, name, "date_range", "2000-01-01..2099-12-30",
                                      "%s is outside the Bikram Sambat calendar table (%d-01-01 "
                                      ".. %d-12-30)",
                                      field_quote(q, sizeof(q), orig, orig_n), BSCAL_FIRST_YEAR,
                                      BSCAL_LAST_YEAR);
            else
                field_errors_add_code(errs, name, "date_range", "1943-04-14..2043-04-13",
                                      "%s is outside the dates kept (1943-04-14 .. 2043-04-13, "
                                      "the Bikram Sambat table's range)",
                                      field_quote(q, sizeof(q), orig, orig_n));
            return;
        }
        if (rc != 0) {
            /* A day past its month's end says the month's length: BS months have 29 to 32
             * days, changing from year to year (the clerk attack: 2083-08-30 was "not a real
             * date" in Mangsir 2083, which has 29). */
            int y = 0, m = 0, dd = 0, len = 0;
            if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d", &y, &m, &dd) == 3 && m >= 1 &&
                m <= 12 && dd > 28 &&
                (len = c->bs ? bscal_bs_month_days(y, m) : bscal_ad_month_days(y, m)) > 0 &&
                dd > len) {
                char arg[24];
                snprintf(arg, sizeof(arg), "%s%04d-%02d/%d", c->bs ? "BS" : "", y, m, len);
                field_errors_add_code(
                    errs, name, "day_past_month", arg, "%s: %s month %04d-%02d has %d days",
                    field_quote(q, sizeof(q), orig, orig_n), field__cal_name(c->bs), y, m, len);
                return;
            }
            field_errors_add_code(errs, name, "date_invalid", c->bs ? "BS" : "AD",
                                  "%s is not a %s date (YYYY-MM-DD)",
                                  field_quote(q, sizeof(q), orig, orig_n), field__cal_name(c->bs));
            return;
        }
        if (v->day < RECORD_MIN_DAY) {
            field_errors_add_code(errs, name, "date_early", NULL,
                                  "%s is before 1943-04-14 (BS 2000-01-01), the earliest date "
                                  "kept",
                                  field_quote(q, sizeof(q), orig, orig_n));
            return;
        }
        if (d->event && v->day < c->earliest) {
            /* A Gregorian year typed on a BS node (2026-12-01 is BS, 1970 AD) is a real date
             * decades before any of the programme's events. */
            char t[16];
            field_format_day(c->bs, c->earliest, t);
            field_errors_add_code(errs, name, "date_before_start", t,
                                  "%s is before %s, the earliest date this node takes "
                                  "(earliest_date in its config)",
                                  field_quote(q, sizeof(q), orig, orig_n), t);
            return;
        }
        if (v->day > c->today) {
            char t[16];
            field_format_day(c->bs, c->today, t);
            field_errors_add_code(errs, name, "date_future", t, "%s is in the future (today is %s)",
                                  field_quote(q, sizeof(q), orig, orig_n), t);
            return;
        }
        break;
    }
    case F_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' ||
            !((s[0] >= '0' && s[0] <= '9') || s[0] == '-')) {
            field_errors_add_code(errs, name, "int", NULL, "%s is not a whole number",
                                  field_quote(q, sizeof(q), orig, orig_n));
            return;
        }
        if (x < d->min || x > d->max) {
            char range[48];
            snprintf(range, sizeof(range), "%lld..%lld", d->min, d->max);
            field_errors_add_code(errs, name, "int_range", range, "%s is outside %s",
                                  field_quote(q, sizeof(q), orig, orig_n), range);
            return;
        }
        v->i = x;
        break;
    }
    case F_COUNTRY: {
        char cc[2];
        if (n != 2 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') ||
            !((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z')) {
            field_errors_add_code(errs, name, "country", NULL,
                                  "%s is not an ISO 3166 country code (two letters, e.g. QA, MY, "
                                  "AE)",
                                  field_quote(q, sizeof(q), s, n));
            return;
        }
        cc[0] = (char)(s[0] & ~0x20);
        cc[1] = (char)(s[1] & ~0x20);
        if (!field__country_known(cc)) {
            field_errors_add_code(errs, name, "country", NULL, "%s is not an ISO 3166 country code",
                                  field_quote(q, sizeof(q), s, n));
            return;
        }
        s[0] = cc[0];
        s[1] = cc[1];
        break;
    }
    default:
        break;
    }
    v->ok = 1;
}

void field_check_row(field_scan *c, int kind, const char *const *raw, field_value *v,
                     localrow_buf *row, field_errors *errs)
{
    const field__kind *k = field__kind_get(kind);
    if (k == NULL) {
        field_errors_add(errs, "kind", "%d is not a kind of row", kind);
        return;
    }
    for (size_t i = 0; i < k->n; i++)
        field__check(c, k->cols[i], &k->defs[i], raw[i], &v[i], errs);
    if (errs->n == 0)
        field__row_encode(row, k, v);
}
