#include "intake.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "bscal.h"
#include "csv.h"
#include "localrow.h"
#include "log.h"
#include "record.h"
#include "rid.h"
#include "store.h"

/* The official ISO 3166-1 alpha-2 list (249 codes), sorted, two letters each. */
static const char intake__countries[] =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ"
    "CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFR"
    "GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJO"
    "JPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMR"
    "MSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERO"
    "RSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTV"
    "TWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";
_Static_assert(sizeof(intake__countries) == 2 * 249 + 1, "249 ISO 3166-1 alpha-2 codes");

/* Referrals and deliveries by local id, for follow-ups; the rest of a record lives in the
 * outbox's records table (kind, local_id, fields). */
static const char *intake__schema =
    "CREATE TABLE IF NOT EXISTS local_services(local_id TEXT PRIMARY KEY,"
    " person_local_id TEXT NOT NULL, service INTEGER NOT NULL, status INTEGER NOT NULL,"
    " day INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS local_services_delivered"
    " ON local_services(person_local_id, service, day) WHERE status=2;";

enum { ST_SVC_PUT, ST_SVC_DEL, ST_N };

static const char *intake__sql[ST_N] = {
    [ST_SVC_PUT] = "INSERT OR REPLACE INTO local_services(local_id, person_local_id, service,"
                   " status, day) VALUES(?1,?2,?3,?4,?5)",
    [ST_SVC_DEL] = "DELETE FROM local_services WHERE local_id=?1",
};

/* Field types: how raw text is checked and how it is written in the canonical JSON. */
enum ftype { F_ID, F_TEXT, F_PHONE, F_ENUM, F_BOOL, F_DATE, F_INT, F_COUNTRY };

typedef struct fdef {
    unsigned char type;
    unsigned char required;
    unsigned short maxlen;
    const ProtobufCEnumDescriptor *en;
    long long min, max;
} fdef;

enum {
    P_LOCAL_ID,
    P_CATEGORY,
    P_SEX,
    P_BIRTH_YEAR,
    P_CASTE,
    P_DISABILITY,
    P_REGISTERED_ON,
    P_COUNTRY,
    P_YEARS_ABROAD,
    P_RETURN_DATE,
    P_INTENTION,
    P_FAMILY_ABROAD,
    P_CONSENT,
    P_FULL_NAME,
    P_PHONE,
    P_CITIZENSHIP,
    P_WARD,
    P_ADDRESS,
    P_N
};
enum { S_LOCAL_ID, S_PERSON, S_SERVICE, S_STATUS, S_DATE, S_PROVIDER, S_PROGRAMME, S_AMOUNT, S_N };
enum { E_LOCAL_ID, E_OWNER, E_ACTION, E_SECTOR, E_DATE, E_REGISTERED, E_EMPLOYEES, E_STATUS, E_N };
enum { A_SERVICE, A_PROVIDER, A_AVAILABLE, A_AS_OF, A_N };
#define MAX_FIELDS P_N

#define LOCAL_ID_MAX 64
#define SHORT_MAX    48

static const char *const person_cols[] = {"local_id",
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
static const fdef person_defs[P_N] = {
    [P_LOCAL_ID] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0},
    [P_CATEGORY] = {F_ENUM, 1, SHORT_MAX, &reint__v1__category__descriptor, 0, 0},
    [P_SEX] = {F_ENUM, 1, SHORT_MAX, &reint__v1__sex__descriptor, 0, 0},
    [P_BIRTH_YEAR] = {F_INT, 0, SHORT_MAX, NULL, 1800, 2200},
    [P_CASTE] = {F_ENUM, 0, SHORT_MAX, &reint__v1__caste_group__descriptor, 0, 0},
    [P_DISABILITY] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0},
    [P_REGISTERED_ON] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0},
    [P_COUNTRY] = {F_COUNTRY, 0, SHORT_MAX, NULL, 0, 0},
    [P_YEARS_ABROAD] = {F_INT, 0, SHORT_MAX, NULL, 0, 80},
    [P_RETURN_DATE] = {F_DATE, 0, SHORT_MAX, NULL, 0, 0},
    [P_INTENTION] = {F_ENUM, 0, SHORT_MAX, &reint__v1__remigration_intention__descriptor, 0, 0},
    [P_FAMILY_ABROAD] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0},
    [P_CONSENT] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0},
    [P_FULL_NAME] = {F_TEXT, 0, 200, NULL, 0, 0},
    [P_PHONE] = {F_PHONE, 0, 40, NULL, 0, 0},
    [P_CITIZENSHIP] = {F_TEXT, 0, 64, NULL, 0, 0},
    [P_WARD] = {F_INT, 0, SHORT_MAX, NULL, 1, 99},
    [P_ADDRESS] = {F_TEXT, 0, 300, NULL, 0, 0},
};

static const char *const service_cols[] = {"local_id", "person_local_id", "service",   "status",
                                           "date",     "provider",        "programme", "amount_npr",
                                           NULL};
static const fdef service_defs[S_N] = {
    [S_LOCAL_ID] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0},
    [S_PERSON] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0},
    [S_SERVICE] = {F_ENUM, 1, SHORT_MAX, &reint__v1__service_type__descriptor, 0, 0},
    [S_STATUS] = {F_ENUM, 1, SHORT_MAX, &reint__v1__service_status__descriptor, 0, 0},
    [S_DATE] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0},
    [S_PROVIDER] = {F_ENUM, 0, SHORT_MAX, &reint__v1__provider__descriptor, 0, 0},
    [S_PROGRAMME] = {F_ENUM, 0, SHORT_MAX, &reint__v1__programme__descriptor, 0, 0},
    [S_AMOUNT] = {F_INT, 0, SHORT_MAX, NULL, 0, 100000000000LL},
};

static const char *const enterprise_cols[] = {"local_id",  "owner_local_id", "action",
                                              "sector",    "date",           "registered",
                                              "employees", "status",         NULL};
static const fdef enterprise_defs[E_N] = {
    [E_LOCAL_ID] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0},
    [E_OWNER] = {F_ID, 1, LOCAL_ID_MAX, NULL, 0, 0},
    [E_ACTION] = {F_ENUM, 1, SHORT_MAX, &reint__v1__enterprise_action__descriptor, 0, 0},
    [E_SECTOR] = {F_ENUM, 1, SHORT_MAX, &reint__v1__sector__descriptor, 0, 0},
    [E_DATE] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0},
    [E_REGISTERED] = {F_BOOL, 0, SHORT_MAX, NULL, 0, 0},
    [E_EMPLOYEES] = {F_INT, 0, SHORT_MAX, NULL, 0, 100000},
    [E_STATUS] = {F_ENUM, 0, SHORT_MAX, &reint__v1__enterprise_status__descriptor, 0, 0},
};

static const char *const availability_cols[] = {"service", "provider", "available", "as_of", NULL};
static const fdef availability_defs[A_N] = {
    [A_SERVICE] = {F_ENUM, 1, SHORT_MAX, &reint__v1__service_type__descriptor, 0, 0},
    [A_PROVIDER] = {F_ENUM, 1, SHORT_MAX, &reint__v1__provider__descriptor, 0, 0},
    [A_AVAILABLE] = {F_BOOL, 1, SHORT_MAX, NULL, 0, 0},
    [A_AS_OF] = {F_DATE, 1, SHORT_MAX, NULL, 0, 0},
};

typedef struct kdef {
    const char *name;
    const char *const *cols;
    const fdef *defs;
    size_t n;
} kdef;

static const kdef intake__kinds[] = {
    [INTAKE_PERSON] = {"persons", person_cols, person_defs, P_N},
    [INTAKE_SERVICE] = {"services", service_cols, service_defs, S_N},
    [INTAKE_ENTERPRISE] = {"enterprises", enterprise_cols, enterprise_defs, E_N},
    [INTAKE_AVAILABILITY] = {"availability", availability_cols, availability_defs, A_N},
};

static const kdef *intake__kind(int kind)
{
    if (kind < INTAKE_PERSON || kind > INTAKE_AVAILABILITY)
        return NULL;
    return &intake__kinds[kind];
}

/* One field of a row after checking. */
typedef struct fval {
    const char *s; /* trimmed text (in the intake's scratch), NULL when unknown */
    size_t len;
    long long i; /* enumeration value, boolean 1/0, integer */
    int32_t day; /* dates */
    int ok;      /* known and valid */
} fval;

/* Bound on the scratch copy of one row's trimmed values: every field's maxlen plus NUL. */
#define SCRATCH_MAX 4096

/* What checking a row's fields needs: the calendar, today, and where the trimmed values go
 * (the intake's scratch for one row, or a chunk's arena in a pipelined import). */
typedef struct fscan {
    int bs;
    int32_t today;
    char *scratch;
    size_t used, cap;
} fscan;

struct intake {
    outbox *ob;
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    int bs;
    int32_t today_fixed;
    int32_t today; /* set at the start of each public call */
    char scratch[SCRATCH_MAX];
    localrow_buf row;       /* the local fields of the row in hand (API, close-month) */
    const uint8_t *cur_row; /* the local fields intake__store writes */
    size_t cur_len;
};

/* ---- small helpers --------------------------------------------------------------------- */

static void intake__set_now(intake *in)
{
    in->today = in->today_fixed ? in->today_fixed : clock_today_local();
}

void intake_set_today(intake *in, int32_t today)
{
    in->today_fixed = today;
}

static int intake__step_done(intake *in, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("intake: %s", sqlite3_errmsg(in->db));
        return REINT_EDB;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t intake__utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0xFFu >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int intake__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = intake__utf8_len(p + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* Copies at most max bytes of s into out as printable, valid UTF-8 (control characters
 * and invalid bytes become '?'), adding "..." when cut. */
static void intake__sanitize(char *out, size_t outlen, const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    if (outlen == 0)
        return;
    while (i < n && i < max && o + 5 < outlen) {
        size_t l = intake__utf8_len(p + i, n - i);
        if (l == 0 || (l == 1 && (p[i] < 0x20 || p[i] == 0x7F))) {
            out[o++] = '?';
            i++;
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

__attribute__((format(printf, 3, 4))) static void intake__err(intake_errors *e, const char *field,
                                                              const char *fmt, ...)
{
    if (e->n >= INTAKE_MAX_ERRORS) {
        e->dropped++;
        return;
    }
    intake_error *x = &e->e[e->n++];
    intake__sanitize(x->field, sizeof(x->field), field, strlen(field), 40);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->reason, sizeof(x->reason), fmt, ap);
    va_end(ap);
}

/* Quoted, sanitised form of a value for messages: "F?". */
static const char *intake__q(char *buf, size_t len, const char *s, size_t n)
{
    char tmp[64];
    intake__sanitize(tmp, sizeof(tmp), s, n, 40);
    snprintf(buf, len, "\"%s\"", tmp);
    return buf;
}

static int intake__country_known(const char cc[2])
{
    size_t lo = 0, hi = (sizeof(intake__countries) - 1) / 2;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(intake__countries + 2 * mid, cc, 2);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int intake__year_of(int bs, int32_t day)
{
    int y = 0, m = 0, d = 0;
    if (bs) {
        if (bscal_bs_from_days(day, &y, &m, &d) != 0)
            return 0;
    } else {
        bscal_ad_from_days(day, &y, &m, &d);
    }
    return y;
}

static void intake__fmt_day(int bs, int32_t day, char out[16])
{
    if (bscal_format(day, bs, out, 16) != 0)
        bscal_format(day, 0, out, 16);
}

/* ---- the local row ----------------------------------------------------------------------- */

/* Decimal text of v into out (at least 21 bytes); returns its length. */
static size_t intake__itoa(long long v, char *out)
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
static void intake__row_fields(localrow_buf *row, const kdef *k, const fval *v)
{
    char num[24];
    localrow_reset(row);
    for (size_t i = 0; i < k->n; i++) {
        const fdef *d = &k->defs[i];
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
            localrow_put(row, num, intake__itoa(v[i].i, num));
            break;
        default:
            localrow_put(row, v[i].s, v[i].len);
            break;
        }
    }
}

/* A digest of the clerk's values, to tell a changed row from the same row again: eight
 * bytes a step (a byte-at-a-time FNV was a visible part of an import's cost). */
static uint64_t intake__hash(int kind, const uint8_t *p, size_t n)
{
    uint64_t h = (uint64_t)0x9E3779B97F4A7C15 ^ (uint64_t)kind ^ ((uint64_t)n << 8), w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * (uint64_t)0xff51afd7ed558ccd;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * (uint64_t)0xc4ceb9fe1a85ec53;
    return h ^ (h >> 29);
}

/* ---- field checks ----------------------------------------------------------------------- */

static const char *intake__cal_name(int bs)
{
    return bs ? "Bikram Sambat" : "Gregorian";
}

/* Checks one raw value against its definition; errors go to errs. */
static void intake__field(fscan *c, const char *name, const fdef *d, const char *raw, fval *v,
                          intake_errors *errs)
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
            intake__err(errs, name, "is required");
        return;
    }
    if (n > d->maxlen) {
        intake__err(errs, name, "%s is longer than %u characters", intake__q(q, sizeof(q), raw, n),
                    (unsigned)d->maxlen);
        return;
    }
    if (!intake__utf8_valid(raw, n)) {
        intake__err(errs, name, "%s is not valid UTF-8 text (save the file as CSV UTF-8)",
                    intake__q(q, sizeof(q), raw, n));
        return;
    }
    if (c->used + n + 1 > c->cap) {
        intake__err(errs, name, "the row is too long");
        return;
    }
    char *s = c->scratch + c->used;
    memcpy(s, raw, n);
    s[n] = '\0';
    c->used += n + 1;
    v->s = s;
    v->len = n;

    switch (d->type) {
    case F_ID:
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) {
                intake__err(errs, name, "%s must not contain control characters",
                            intake__q(q, sizeof(q), s, n));
                return;
            }
        }
        break;
    case F_TEXT:
        break;
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
            intake__err(errs, name,
                        "%s is not a phone number (at least 6 digits; spaces and + - ( ) / "
                        "allowed)",
                        intake__q(q, sizeof(q), s, n));
            return;
        }
        break;
    }
    case F_ENUM: {
        char norm[SHORT_MAX + 1];
        int val = 0;
        for (size_t i = 0; i <= n; i++)
            norm[i] = (s[i] == ' ' || s[i] == '-') ? '_' : s[i];
        if (record_enum_parse(d->en, norm, &val) != 0) {
            char list[400];
            record_enum_list(d->en, list, sizeof(list));
            intake__err(errs, name, "%s is not one of %s", intake__q(q, sizeof(q), s, n), list);
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
            intake__err(errs, name, "%s is not one of true, false, yes, no, 1, 0",
                        intake__q(q, sizeof(q), s, n));
            return;
        }
        break;
    case F_DATE: {
        int rc = bscal_parse(s, c->bs, &v->day);
        if (rc == REINT_ERANGE) {
            if (c->bs)
                intake__err(errs, name,
                            "%s is outside the Bikram Sambat calendar table (%d-01-01 .. "
                            "%d-12-30)",
                            intake__q(q, sizeof(q), s, n), BSCAL_FIRST_YEAR, BSCAL_LAST_YEAR);
            else
                intake__err(errs, name,
                            "%s is outside the dates kept (1943-04-14 .. 2043-04-13, the "
                            "Bikram Sambat table's range)",
                            intake__q(q, sizeof(q), s, n));
            return;
        }
        if (rc != 0) {
            intake__err(errs, name, "%s is not a %s date (YYYY-MM-DD)",
                        intake__q(q, sizeof(q), s, n), intake__cal_name(c->bs));
            return;
        }
        if (v->day < RECORD_MIN_DAY) {
            intake__err(errs, name,
                        "%s is before 1943-04-14 (BS 2000-01-01), the earliest date kept",
                        intake__q(q, sizeof(q), s, n));
            return;
        }
        if (v->day > c->today) {
            char t[16];
            intake__fmt_day(c->bs, c->today, t);
            intake__err(errs, name, "%s is in the future (today is %s)",
                        intake__q(q, sizeof(q), s, n), t);
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
            intake__err(errs, name, "%s is not a whole number", intake__q(q, sizeof(q), s, n));
            return;
        }
        if (x < d->min || x > d->max) {
            intake__err(errs, name, "%s is outside %lld..%lld", intake__q(q, sizeof(q), s, n),
                        d->min, d->max);
            return;
        }
        v->i = x;
        break;
    }
    case F_COUNTRY: {
        char cc[2];
        if (n != 2 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') ||
            !((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z')) {
            intake__err(errs, name,
                        "%s is not an ISO 3166 country code (two letters, e.g. QA, MY, AE)",
                        intake__q(q, sizeof(q), s, n));
            return;
        }
        cc[0] = (char)(s[0] & ~0x20);
        cc[1] = (char)(s[1] & ~0x20);
        if (!intake__country_known(cc)) {
            intake__err(errs, name, "%s is not an ISO 3166 country code",
                        intake__q(q, sizeof(q), s, n));
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

/* Finds the live person with this local_id. Returns 0 with id set or INTAKE_ENOTFOUND. */
static int intake__person(intake *in, const char *local_id, uint8_t id[16])
{
    outbox_row row;
    if (outbox_find(in->ob, INTAKE_PERSON, local_id, &row) != 1 || !row.live)
        return INTAKE_ENOTFOUND;
    memcpy(id, row.id, 16);
    return 0;
}

static Reint__V1__Flag intake__flag(const fval *v)
{
    if (!v->ok)
        return REINT__V1__FLAG__FLAG_UNKNOWN;
    return v->i ? REINT__V1__FLAG__FLAG_YES : REINT__V1__FLAG__FLAG_NO;
}

static Reint__V1__AgeBand intake__age_band(int age)
{
    if (age < 15)
        return REINT__V1__AGE_BAND__AGE_BAND_0_14;
    if (age < 25)
        return REINT__V1__AGE_BAND__AGE_BAND_15_24;
    if (age < 40)
        return REINT__V1__AGE_BAND__AGE_BAND_25_39;
    if (age < 60)
        return REINT__V1__AGE_BAND__AGE_BAND_40_59;
    return REINT__V1__AGE_BAND__AGE_BAND_60_PLUS;
}

/* Writes the record with its local row. Called once all fields are valid. */
static int intake__store(intake *in, int kind, const char *local_id, Reint__V1__Record *r,
                         const char *clerk, const fval *v, intake_errors *errs, intake_result *res)
{
    static const uint8_t placeholder[16];
    outbox_put_result put;
    int rc;
    if (in->cur_row == NULL)
        return REINT_ENOMEM;
    uint64_t hash = intake__hash(kind, in->cur_row, in->cur_len);
    /* record_validate wants an id and a version; outbox_put assigns the real ones. */
    r->id.data = (uint8_t *)placeholder;
    r->id.len = 16;
    r->version = 1;
    record_error re;
    int32_t rtoday = clock_today_utc();
    if (record_validate(r, in->today > rtoday ? in->today : rtoday, &re) != 0) {
        intake__err(errs, re.field, "%s", re.reason);
        return REINT_EINVAL;
    }
    if ((rc = outbox_put(in->ob, kind, local_id, r, hash, clerk, in->cur_row, in->cur_len, &put)) !=
        0)
        return rc;
    if (res) {
        memcpy(res->id, put.id, 16);
        size_t n = strlen(local_id);
        if (n >= sizeof(res->local_id))
            n = sizeof(res->local_id) - 1;
        memcpy(res->local_id, local_id, n);
        res->local_id[n] = '\0';
        res->version = put.version;
        res->changed = put.change == OUTBOX_UNCHANGED ? INTAKE_UNCHANGED
                       : put.change == OUTBOX_UPDATED ? INTAKE_UPDATED
                                                      : INTAKE_INSERTED;
    }
    if (put.change == OUTBOX_UNCHANGED || kind != INTAKE_SERVICE)
        return 0;
    sqlite3_stmt *st = in->st[ST_SVC_PUT];
    sqlite3_bind_text(st, 1, local_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v[S_PERSON].s, (int)v[S_PERSON].len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, v[S_SERVICE].i);
    sqlite3_bind_int64(st, 4, v[S_STATUS].i);
    sqlite3_bind_int(st, 5, v[S_DATE].day);
    return intake__step_done(in, st);
}

static int intake__person_row(intake *in, const fval *v, const char *clerk, intake_errors *errs,
                              intake_result *res)
{
    char q[80];
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    int reg_year = v[P_REGISTERED_ON].ok ? intake__year_of(in->bs, v[P_REGISTERED_ON].day) : 0;
    if (v[P_BIRTH_YEAR].ok && reg_year) {
        long long age = reg_year - v[P_BIRTH_YEAR].i;
        if (age < 0)
            intake__err(errs, "birth_year", "%lld is after the registration year %d",
                        v[P_BIRTH_YEAR].i, reg_year);
        else if (age > 120)
            intake__err(errs, "birth_year",
                        "%lld would make the person %lld years old at registration (0..120)",
                        v[P_BIRTH_YEAR].i, age);
    }
    if (v[P_RETURN_DATE].ok && v[P_REGISTERED_ON].ok &&
        v[P_RETURN_DATE].day > v[P_REGISTERED_ON].day)
        intake__err(errs, "return_date", "%s is after registered_on \"%s\"",
                    intake__q(q, sizeof(q), v[P_RETURN_DATE].s, v[P_RETURN_DATE].len),
                    v[P_REGISTERED_ON].s);
    if (errs->n)
        return REINT_EINVAL;
    p.category = (Reint__V1__Category)v[P_CATEGORY].i;
    p.sex = (Reint__V1__Sex)v[P_SEX].i;
    p.caste_group = (Reint__V1__CasteGroup)v[P_CASTE].i;
    p.remigration_intention = (Reint__V1__RemigrationIntention)v[P_INTENTION].i;
    p.family_member_abroad = intake__flag(&v[P_FAMILY_ABROAD]);
    p.disability = intake__flag(&v[P_DISABILITY]);
    p.consent = intake__flag(&v[P_CONSENT]);
    p.registered_day = v[P_REGISTERED_ON].day;
    if (v[P_BIRTH_YEAR].ok)
        p.age_band = intake__age_band((int)(reg_year - v[P_BIRTH_YEAR].i));
    char cc[3] = "";
    if (v[P_COUNTRY].ok)
        memcpy(cc, v[P_COUNTRY].s, 3);
    p.destination_country = cc;
    p.years_abroad = v[P_YEARS_ABROAD].ok ? (int32_t)v[P_YEARS_ABROAD].i : -1;
    if (v[P_RETURN_DATE].ok) {
        int y, m, d;
        bscal_ad_from_days(v[P_RETURN_DATE].day, &y, &m, &d);
        p.return_month = y * 100 + m;
    }
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_PERSON;
    r.person = &p;
    return intake__store(in, INTAKE_PERSON, v[P_LOCAL_ID].s, &r, clerk, v, errs, res);
}

static int intake__service_row(intake *in, const fval *v, const char *clerk, intake_errors *errs,
                               intake_result *res)
{
    char q[80];
    uint8_t person[16];
    if (v[S_PERSON].ok && intake__person(in, v[S_PERSON].s, person) != 0)
        intake__err(errs, "person_local_id", "%s is not a registered person",
                    intake__q(q, sizeof(q), v[S_PERSON].s, v[S_PERSON].len));
    if (errs->n)
        return REINT_EINVAL;
    Reint__V1__Service s = REINT__V1__SERVICE__INIT;
    s.person_id.data = person;
    s.person_id.len = 16;
    s.type = (Reint__V1__ServiceType)v[S_SERVICE].i;
    s.status = (Reint__V1__ServiceStatus)v[S_STATUS].i;
    s.day = v[S_DATE].day;
    s.provider = (Reint__V1__Provider)v[S_PROVIDER].i;
    s.programme = (Reint__V1__Programme)v[S_PROGRAMME].i;
    s.amount_npr = v[S_AMOUNT].ok ? v[S_AMOUNT].i : -1;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_SERVICE;
    r.service = &s;
    return intake__store(in, INTAKE_SERVICE, v[S_LOCAL_ID].s, &r, clerk, v, errs, res);
}

static int intake__enterprise_row(intake *in, const fval *v, const char *clerk, intake_errors *errs,
                                  intake_result *res)
{
    char q[80];
    uint8_t owner[16];
    if (v[E_OWNER].ok && intake__person(in, v[E_OWNER].s, owner) != 0)
        intake__err(errs, "owner_local_id", "%s is not a registered person",
                    intake__q(q, sizeof(q), v[E_OWNER].s, v[E_OWNER].len));
    if (errs->n)
        return REINT_EINVAL;
    Reint__V1__Enterprise e = REINT__V1__ENTERPRISE__INIT;
    e.owner_id.data = owner;
    e.owner_id.len = 16;
    e.action = (Reint__V1__EnterpriseAction)v[E_ACTION].i;
    e.sector = (Reint__V1__Sector)v[E_SECTOR].i;
    e.day = v[E_DATE].day;
    e.registered = intake__flag(&v[E_REGISTERED]);
    e.employees = v[E_EMPLOYEES].ok ? (int32_t)v[E_EMPLOYEES].i : -1;
    e.status = (Reint__V1__EnterpriseStatus)v[E_STATUS].i;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_ENTERPRISE;
    r.enterprise = &e;
    return intake__store(in, INTAKE_ENTERPRISE, v[E_LOCAL_ID].s, &r, clerk, v, errs, res);
}

static int intake__availability_row(intake *in, const fval *v, const char *clerk,
                                    intake_errors *errs, intake_result *res)
{
    char local_id[2 * SHORT_MAX + 2];
    if (errs->n)
        return REINT_EINVAL;
    snprintf(local_id, sizeof(local_id), "%s/%s",
             record_enum_name(&reint__v1__service_type__descriptor, (int)v[A_SERVICE].i),
             record_enum_name(&reint__v1__provider__descriptor, (int)v[A_PROVIDER].i));
    Reint__V1__Availability a = REINT__V1__AVAILABILITY__INIT;
    a.service = (Reint__V1__ServiceType)v[A_SERVICE].i;
    a.provider = (Reint__V1__Provider)v[A_PROVIDER].i;
    a.available = v[A_AVAILABLE].i != 0;
    a.as_of_day = v[A_AS_OF].day;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_AVAILABILITY;
    r.availability = &a;
    return intake__store(in, INTAKE_AVAILABILITY, local_id, &r, clerk, v, errs, res);
}

/* The checks of each field on its own (no store needed): fills v, and row with the local
 * fields when every field is valid. */
static void intake__check(fscan *c, const kdef *k, const char *const *raw, fval *v,
                          localrow_buf *row, intake_errors *errs)
{
    for (size_t i = 0; i < k->n; i++)
        intake__field(c, k->cols[i], &k->defs[i], raw[i], &v[i], errs);
    if (errs->n == 0)
        intake__row_fields(row, k, v);
}

/* The rest of a row: the checks across fields and against the store, then the write. The
 * cross-field checks run even after single-field errors, so that the clerk sees every
 * problem of the row at once. */
static int intake__finish(intake *in, int kind, const fval *v, const uint8_t *row, size_t rowlen,
                          const char *clerk, intake_errors *errs, intake_result *res)
{
    in->cur_row = row;
    in->cur_len = rowlen;
    switch (kind) {
    case INTAKE_PERSON:
        return intake__person_row(in, v, clerk, errs, res);
    case INTAKE_SERVICE:
        return intake__service_row(in, v, clerk, errs, res);
    case INTAKE_ENTERPRISE:
        return intake__enterprise_row(in, v, clerk, errs, res);
    default:
        return intake__availability_row(in, v, clerk, errs, res);
    }
}

/* One row whose values are indexed by field (NULL = column absent). */
static int intake__row(intake *in, int kind, const char *const *raw, const char *clerk,
                       intake_errors *errs, intake_result *res)
{
    fval v[MAX_FIELDS];
    fscan c = {in->bs, in->today, in->scratch, 0, sizeof(in->scratch)};
    intake__check(&c, intake__kind(kind), raw, v, &in->row, errs);
    return intake__finish(in, kind, v, in->row.failed ? NULL : (const uint8_t *)in->row.p,
                          in->row.len, clerk, errs, res);
}

/* ---- public API -------------------------------------------------------------------------- */

const char *const *intake_columns(int kind)
{
    const kdef *k = intake__kind(kind);
    return k ? k->cols : NULL;
}

int intake_column_index(int kind, const char *name)
{
    const kdef *k = intake__kind(kind);
    for (size_t i = 0; k && i < k->n; i++)
        if (!strcmp(k->cols[i], name))
            return (int)i;
    return -1;
}

const char *intake_kind_name(int kind)
{
    const kdef *k = intake__kind(kind);
    return k ? k->name : NULL;
}

int intake_kind_parse(const char *name)
{
    static const char *const singular[] = {NULL, "person", "service", "enterprise", "availability"};
    for (int k = INTAKE_PERSON; k <= INTAKE_AVAILABILITY; k++)
        if (!strcasecmp(name, intake__kinds[k].name) || !strcasecmp(name, singular[k]))
            return k;
    return 0;
}

int intake_open(intake **out, outbox *ob, int bs_calendar, char *err, size_t errlen)
{
    intake *in = calloc(1, sizeof(*in));
    char *msg = NULL;
    if (in == NULL) {
        snprintf(err, errlen, "out of memory");
        return REINT_ENOMEM;
    }
    in->ob = ob;
    in->db = outbox_db(ob);
    in->bs = bs_calendar != 0;
    localrow_init(&in->row);
    if (sqlite3_exec(in->db, intake__schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot create the intake tables: %s",
                 msg ? msg : sqlite3_errmsg(in->db));
        sqlite3_free(msg);
        goto fail;
    }
    for (int i = 0; i < ST_N; i++) {
        in->st[i] = store_prepare(in->db, intake__sql[i]);
        if (in->st[i] == NULL) {
            snprintf(err, errlen, "intake: %s", sqlite3_errmsg(in->db));
            goto fail;
        }
    }
    *out = in;
    return 0;
fail:
    intake_close(in);
    return REINT_EDB;
}

void intake_close(intake *in)
{
    if (in == NULL)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(in->st[i]);
    localrow_free(&in->row);
    free(in);
}

int intake_apply_ex(intake *in, int kind, const char *const *names, const char *const *values,
                    size_t n, const char *clerk, intake_errors *errs, intake_result *res)
{
    const kdef *k = intake__kind(kind);
    const char *raw[MAX_FIELDS] = {0};
    intake_errors local;
    if (errs == NULL)
        errs = &local;
    errs->n = errs->dropped = 0;
    if (k == NULL) {
        intake__err(errs, "kind", "%d is not a kind of row", kind);
        return REINT_EINVAL;
    }
    if (sqlite3_get_autocommit(in->db)) {
        log_error("intake_apply called outside a transaction");
        return REINT_EDB;
    }
    intake__set_now(in);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k->n && strcmp(names[i], k->cols[j]) != 0)
            j++;
        if (j == k->n) {
            char list[400];
            size_t o = 0;
            list[0] = '\0';
            for (size_t c = 0; c < k->n && o < sizeof(list); c++) {
                int w = snprintf(list + o, sizeof(list) - o, "%s%s", c ? ", " : "", k->cols[c]);
                if (w < 0)
                    break;
                o += (size_t)w;
            }
            intake__err(errs, names[i], "is not a column of %s (columns: %s)", k->name, list);
        } else if (raw[j] != NULL) {
            intake__err(errs, names[i], "is given twice");
        } else {
            raw[j] = values[i] ? values[i] : "";
        }
    }
    if (errs->n)
        return REINT_EINVAL;
    return intake__row(in, kind, raw, clerk, errs, res);
}

int intake_apply(intake *in, int kind, const char *const *names, const char *const *values,
                 size_t n, const char *clerk, intake_errors *errs, int *changed)
{
    intake_result res;
    int rc = intake_apply_ex(in, kind, names, values, n, clerk, errs, &res);
    if (changed)
        *changed = rc == 0 ? res.changed : INTAKE_UNCHANGED;
    return rc;
}

int intake_lookup(intake *in, int kind, const char *local_id, uint8_t id[16], uint64_t *version)
{
    outbox_row row;
    if (outbox_find(in->ob, kind, local_id, &row) != 1 || !row.live)
        return INTAKE_ENOTFOUND;
    memcpy(id, row.id, 16);
    if (version)
        *version = row.version;
    return 0;
}

int intake_delete(intake *in, int kind, const char *local_id, const char *clerk)
{
    int rc;
    if (intake__kind(kind) == NULL || local_id == NULL)
        return INTAKE_ENOTFOUND;
    if ((rc = outbox_delete(in->ob, kind, local_id, clerk)) != 0)
        return rc == REINT_ENOTFOUND ? INTAKE_ENOTFOUND : rc;
    if (kind == INTAKE_SERVICE) {
        sqlite3_stmt *st = in->st[ST_SVC_DEL];
        sqlite3_bind_text(st, 1, local_id, -1, SQLITE_STATIC);
        if ((rc = intake__step_done(in, st)) != 0)
            return rc;
    }
    return 0;
}

int intake_close_month(intake *in, int year, int month, const char *clerk, int *changed, char *err,
                       size_t errlen)
{
    int32_t first, next;
    char local_id[16], t[16];
    intake_errors errs = {0};
    intake__set_now(in);
    if (changed)
        *changed = 0;
    if (month < 1 || month > 12) {
        snprintf(err, errlen, "month %d is not 1..12", month);
        return REINT_EINVAL;
    }
    if (in->bs) {
        int days = bscal_bs_month_days(year, month);
        if (days < 0 || bscal_days_from_bs(year, month, 1, &first) != 0) {
            snprintf(err, errlen, "BS %d-%02d is outside the Bikram Sambat calendar table", year,
                     month);
            return REINT_EINVAL;
        }
        next = first + days;
    } else {
        if (year < 1943 || year > 2100) {
            snprintf(err, errlen, "year %d is outside 1943..2100", year);
            return REINT_EINVAL;
        }
        first = bscal_days_from_ad(year, month, 1);
        next = month == 12 ? bscal_days_from_ad(year + 1, 1, 1)
                           : bscal_days_from_ad(year, month + 1, 1);
    }
    (void)first;
    if (in->today < next) {
        intake__fmt_day(in->bs, next - 1, t);
        snprintf(err, errlen, "%s %d-%02d has not ended yet (its last day is %s)",
                 in->bs ? "BS month" : "month", year, month, t);
        return REINT_EINVAL;
    }
    snprintf(local_id, sizeof(local_id), "%04d-%02d", year, month);
    localrow_reset(&in->row);
    localrow_put(&in->row, local_id, strlen(local_id));
    localrow_put(&in->row, in->bs ? "BS" : "AD", 2);
    in->cur_row = in->row.failed ? NULL : (const uint8_t *)in->row.p;
    in->cur_len = in->row.len;
    Reint__V1__MonthClose mc = REINT__V1__MONTH_CLOSE__INIT;
    mc.year = year;
    mc.month = month;
    mc.bikram_sambat = in->bs;
    mc.closed_day = in->today;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_MONTH_CLOSE;
    r.month_close = &mc;
    intake_result res;
    int rc = intake__store(in, INTAKE_MONTH_CLOSE, local_id, &r, clerk, NULL, &errs, &res);
    if (rc == REINT_EINVAL)
        snprintf(err, errlen, "%s %s", errs.e[0].field, errs.e[0].reason);
    else if (rc != 0)
        snprintf(err, errlen, "cannot store the month close (database error)");
    else if (changed)
        *changed = res.changed != INTAKE_UNCHANGED;
    return rc;
}

/* ---- CSV import --------------------------------------------------------------------------- */

static void intake__progress(const char *base, long long done, long long total, long long rows,
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

static double intake__secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void intake__report(FILE *f, const char *base, long line, const intake_errors *e)
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

/* Maps the header's columns to fields; reports every problem. Returns 0 or REINT_EINVAL. */
static int intake__header(const kdef *k, char **fields, size_t nf, int *map, FILE *errs_out,
                          const char *base, long line)
{
    int seen[MAX_FIELDS] = {0};
    int bad = 0;
    char q[80];
    for (size_t j = 0; j < nf; j++) {
        char name[64];
        const char *s = fields[j];
        size_t n = strlen(s);
        while (n > 0 && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        map[j] = -1;
        if (n == 0 && j == nf - 1 && nf > 1)
            continue; /* a trailing comma after the last column */
        if (n < sizeof(name)) {
            for (size_t c = 0; c < n; c++)
                name[c] = (char)((s[c] >= 'A' && s[c] <= 'Z') ? s[c] + 32 : s[c]);
            name[n] = '\0';
            for (size_t i = 0; i < k->n; i++) {
                if (strcmp(name, k->cols[i]) == 0) {
                    map[j] = (int)i;
                    break;
                }
            }
        }
        if (map[j] < 0) {
            if (errs_out) {
                fprintf(errs_out, "%s line %ld: unknown column %s; the %s columns are ", base, line,
                        intake__q(q, sizeof(q), s, n), k->name);
                for (size_t i = 0; i < k->n; i++)
                    fprintf(errs_out, "%s%s", i ? "," : "", k->cols[i]);
                fputc('\n', errs_out);
            }
            bad = 1;
        } else if (seen[map[j]]++) {
            if (errs_out)
                fprintf(errs_out, "%s line %ld: column %s appears twice\n", base, line,
                        k->cols[map[j]]);
            bad = 1;
        }
    }
    for (size_t i = 0; i < k->n; i++) {
        if (k->defs[i].required && !seen[i]) {
            if (errs_out)
                fprintf(errs_out, "%s line %ld: required column %s is missing\n", base, line,
                        k->cols[i]);
            bad = 1;
        }
    }
    return bad ? REINT_EINVAL : 0;
}

/* The import runs in two threads: a reader parses the CSV and checks each field on its own
 * (the half of the work that needs no store) into chunks of rows, and the caller's thread
 * takes the chunks in file order for the checks against the store and the writes. Without
 * a second thread the caller fills each chunk itself. Memory: ICHUNKS chunks of at most
 * ICHUNK_ROWS rows and ICHUNK_ARENA bytes of values, whatever the file's size. */
#define ICHUNKS      3
#define ICHUNK_ROWS  1024
#define ICHUNK_ARENA (1 << 20)
/* Room one row may take in the arena: its trimmed values, then its local fields. */
#define ICHUNK_ROW_ROOM (2 * SCRATCH_MAX + LOCALROW_OVERHEAD * MAX_FIELDS)

typedef struct islot {
    long line;
    int refused;         /* refused by the reader, whatever the store holds */
    intake_errors *errs; /* the reader's errors for this row (malloc'd), or NULL */
    size_t row_off;      /* local fields in the arena (when errs is NULL) */
    size_t row_len;
    fval v[MAX_FIELDS];
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

typedef struct ipipe {
    const intake *in;
    const kdef *k;
    csv_reader *r;
    const int *map;
    size_t nh;
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

static void intake__chunk_clear(ichunk *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->slot[i].errs);
    c->n = 0;
    c->used = 0;
    c->last = 0;
    c->rc = 0;
}

/* Keeps a row's errors with its slot; 0, or -1 out of memory. */
static int intake__slot_errors(islot *sl, const intake_errors *errs)
{
    sl->errs = malloc(sizeof(*errs));
    if (sl->errs == NULL)
        return -1;
    memcpy(sl->errs, errs, sizeof(*errs));
    return 0;
}

/* Reads rows into c until it is full or the file ends. */
static void intake__chunk_fill(ipipe *p, ichunk *c)
{
    intake_errors errs;
    localrow_buf row;
    char **fields;
    size_t nf;
    fscan sc = {p->in->bs, p->in->today_fixed ? p->in->today_fixed : clock_today_local(), NULL, 0,
                SCRATCH_MAX};
    localrow_init(&row);
    intake__chunk_clear(c);
    while (c->n < ICHUNK_ROWS && ICHUNK_ARENA - c->used >= ICHUNK_ROW_ROOM) {
        int rc = csv_next(p->r, &fields, &nf);
        if (rc == 0) {
            c->last = 1;
            break;
        }
        islot *sl = &c->slot[c->n];
        sl->line = csv_line(p->r);
        sl->refused = 0;
        sl->errs = NULL;
        sl->row_len = 0;
        errs.n = errs.dropped = 0;
        if (rc == REINT_ETOOLONG || rc == REINT_EQUOTE) {
            if (rc == REINT_ETOOLONG)
                intake__err(&errs, "", "the row is longer than %d bytes or %d fields",
                            CSV_MAX_RECORD, CSV_MAX_FIELDS);
            else
                intake__err(&errs, "", "a quoted field is not closed before the end of the file");
            sl->refused = 1;
            c->last = rc == REINT_EQUOTE;
        } else if (rc < 0) {
            c->rc = rc == REINT_ENOMEM ? REINT_ENOMEM : REINT_EIO;
            c->rc_line = sl->line;
            c->last = 1;
            break;
        } else {
            const char *raw[MAX_FIELDS] = {0};
            int extra = 0;
            for (size_t j = 0; j < nf; j++) {
                if (j >= p->nh || p->map[j] < 0) {
                    if (fields[j][0] != '\0')
                        extra = 1;
                    continue;
                }
                raw[p->map[j]] = fields[j];
            }
            if (extra || nf < p->nh) {
                intake__err(&errs, "", "the row has %zu fields, the header has %zu", nf, p->nh);
                sl->refused = 1;
            } else {
                sc.scratch = c->arena + c->used;
                sc.used = 0;
                intake__check(&sc, p->k, raw, sl->v, &row, &errs);
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
                }
            }
        }
        if (errs.n && intake__slot_errors(sl, &errs) != 0) {
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

static void *intake__reader(void *arg)
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
        intake__chunk_fill(p, p->chunk[i]);
        pthread_mutex_lock(&p->mu);
        p->full[i] = 1;
        p->fill++;
        p->done = p->chunk[i]->last || p->chunk[i]->rc != 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The next chunk in file order, filled by the reader (or here without one). */
static ichunk *intake__chunk_take(ipipe *p)
{
    size_t i = p->take % ICHUNKS;
    if (!p->threaded) {
        intake__chunk_fill(p, p->chunk[i]);
        return p->chunk[i];
    }
    pthread_mutex_lock(&p->mu);
    while (!p->full[i])
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return p->chunk[i];
}

static void intake__chunk_give_back(ipipe *p)
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

static int intake__pipe_start(ipipe *p)
{
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
    p->threaded = pthread_create(&p->thread, NULL, intake__reader, p) == 0;
    if (!p->threaded)
        log_info("import: no reader thread; reading and writing in turn");
    return 0;
}

static void intake__pipe_stop(ipipe *p, int started)
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
    for (int i = 0; i < ICHUNKS; i++) {
        if (p->chunk[i] == NULL)
            continue;
        intake__chunk_clear(p->chunk[i]);
        free(p->chunk[i]->arena);
        free(p->chunk[i]);
    }
}

int intake_import_csv(intake *in, int kind, const char *path, FILE *errors_out, int progress,
                      intake_import_stats *st)
{
    const kdef *k = intake__kind(kind);
    intake_import_stats local;
    FILE *f = NULL;
    csv_reader *r = NULL;
    char clerk[256];
    int map[CSV_MAX_FIELDS];
    int rc = 0, in_txn = 0, started = 0;
    long long total = 0, batch = 0;
    double t0 = intake__secs(), last_draw = 0;
    intake_errors errs;
    char **fields;
    size_t nf;
    ipipe pipe_ = {0}, *p = &pipe_;

    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof(*st));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (k == NULL) {
        if (errors_out)
            fprintf(errors_out, "%s: unknown kind of rows %d\n", base, kind);
        return REINT_EINVAL;
    }
    const char *user = getenv("USER");
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
    if ((rc = intake__header(k, fields, nf, map, errors_out, base, csv_line(r))) != 0)
        goto out;
    p->in = in;
    p->k = k;
    p->r = r;
    p->map = map;
    p->nh = nf;
    if ((rc = intake__pipe_start(p)) != 0)
        goto out;
    started = 1;
    if ((rc = outbox_begin(in->ob)) != 0)
        goto out;
    in_txn = 1;
    for (int last = 0; !last;) {
        ichunk *c = intake__chunk_take(p);
        last = c->last;
        for (size_t i = 0; i < c->n; i++) {
            islot *sl = &c->slot[i];
            st->rows++;
            errs.n = errs.dropped = 0;
            if (sl->errs)
                memcpy(&errs, sl->errs, sizeof(errs));
            if (batch == 0)
                intake__set_now(in);
            if (sl->refused) {
                rc = REINT_EINVAL;
            } else {
                intake_result res;
                rc = intake__finish(in, kind, sl->v,
                                    sl->errs ? NULL : (const uint8_t *)c->arena + sl->row_off,
                                    sl->row_len, clerk, &errs, &res);
                if (rc == 0) {
                    if (res.changed == INTAKE_INSERTED)
                        st->inserted++;
                    else if (res.changed == INTAKE_UPDATED)
                        st->updated++;
                    else
                        st->unchanged++;
                }
            }
            if (rc == REINT_EINVAL) {
                st->refused++;
                intake__report(errors_out, base, sl->line, &errs);
            } else if (rc != 0) {
                if (errors_out)
                    fprintf(errors_out,
                            "%s line %ld: cannot store the row (database error); "
                            "rows of this batch are not imported\n",
                            base, sl->line);
                goto out;
            }
            if (++batch >= INTAKE_IMPORT_BATCH) {
                batch = 0;
                in_txn = 0;
                if ((rc = outbox_commit(in->ob)) != 0 || (rc = outbox_begin(in->ob)) != 0)
                    goto out;
                in_txn = 1;
            }
        }
        if (c->rc != 0) {
            rc = c->rc;
            if (errors_out)
                fprintf(errors_out, "%s line %ld: %s\n", base, c->rc_line,
                        rc == REINT_ENOMEM ? "out of memory" : "read error");
            intake__chunk_give_back(p);
            goto out;
        }
        if (progress) {
            double now = intake__secs();
            if (now - last_draw > 0.2) {
                intake__progress(base, c->offset, total, st->rows, now - t0, 0);
                last_draw = now;
            }
        }
        intake__chunk_give_back(p);
    }
    in_txn = 0;
    rc = outbox_commit(in->ob);
    if (progress)
        intake__progress(base, total, total, st->rows, intake__secs() - t0, 1);
out:
    if (in_txn)
        outbox_rollback(in->ob);
    intake__pipe_stop(p, started);
    csv_close(r);
    if (f)
        fclose(f);
    return rc;
}

/* ---- export ------------------------------------------------------------------------------- */

int intake_export(intake *in, int kind, FILE *out)
{
    const kdef *k = intake__kind(kind);
    sqlite3_stmt *st = NULL;
    char val[SCRATCH_MAX];
    int rc = 0;
    if (k == NULL)
        return REINT_EINVAL;
    st = store_prepare(in->db, "SELECT fields FROM records WHERE kind=?1 AND live=1"
                               " ORDER BY local_id");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int(st, 1, kind);
    fputs("\xEF\xBB\xBF", out);
    for (size_t i = 0; i < k->n; i++)
        fprintf(out, "%s%s", i ? "," : "", k->cols[i]);
    fputs("\r\n", out);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *row = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        for (size_t i = 0; i < k->n; i++) {
            const char *v;
            size_t n;
            if (i)
                fputc(',', out);
            if (!localrow_get(row, len, i, &v, &n))
                continue;
            if (n >= sizeof(val))
                n = sizeof(val) - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            csv_write_field(out, val);
        }
        fputs("\r\n", out);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_error("intake export: %s", sqlite3_errmsg(in->db));
        return REINT_EDB;
    }
    return ferror(out) ? REINT_EIO : 0;
}

/* ---- follow-ups --------------------------------------------------------------------------- */

/* local_field(fields, i): value i of a local row (localrow.c); ?1 = the service's provider
 * column, ?2 and ?3 = the person's full_name and phone columns. */
static const char *intake__followups_sql =
    "SELECT s.person_local_id, s.day, s.service, s.local_id,"
    " local_field(r.fields, ?1), p.local_id,"
    " local_field(p.fields, ?2), local_field(p.fields, ?3)"
    " FROM local_services s"
    " JOIN records r ON r.kind = 2 AND r.local_id = s.local_id AND r.live = 1"
    " JOIN records p ON p.kind = 1 AND p.local_id = s.person_local_id AND p.live = 1"
    " WHERE s.status = 1 AND NOT EXISTS (SELECT 1 FROM local_services d"
    "  WHERE d.person_local_id = s.person_local_id AND d.service = s.service"
    "  AND d.status = 2 AND d.day >= s.day)"
    " ORDER BY s.day, s.person_local_id, s.local_id";

static json_t *intake__jtext(const unsigned char *s)
{
    return s ? json_string((const char *)s) : json_null();
}

int intake_followups(intake *in, int32_t today, json_t **out)
{
    char d[16];
    int rc;
    intake__set_now(in);
    if (today == 0)
        today = in->today;
    sqlite3_stmt *st = store_prepare(in->db, intake__followups_sql);
    json_t *root = json_object(), *persons = json_array(), *index = json_object();
    if (st == NULL || root == NULL || persons == NULL || index == NULL)
        goto fail;
    sqlite3_bind_int(st, 1, S_PROVIDER);
    sqlite3_bind_int(st, 2, P_FULL_NAME);
    sqlite3_bind_int(st, 3, P_PHONE);
    intake__fmt_day(in->bs, today, d);
    json_object_set_new(root, "today", json_string(d));
    json_object_set(root, "persons", persons);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *pkey = (const char *)sqlite3_column_text(st, 0);
        if (pkey == NULL)
            continue;
        int32_t day = sqlite3_column_int(st, 1);
        json_t *p = json_object_get(index, pkey);
        if (p == NULL) {
            p = json_object();
            if (p == NULL)
                goto fail;
            json_object_set_new(p, "local_id", intake__jtext(sqlite3_column_text(st, 5)));
            json_object_set_new(p, "full_name", intake__jtext(sqlite3_column_text(st, 6)));
            json_object_set_new(p, "phone", intake__jtext(sqlite3_column_text(st, 7)));
            json_object_set_new(p, "days_waiting", json_integer(today - day));
            json_object_set_new(p, "referrals", json_array());
            json_array_append_new(persons, p);
            json_object_set(index, pkey, p);
        }
        json_t *ref = json_object();
        if (ref == NULL)
            goto fail;
        intake__fmt_day(in->bs, day, d);
        json_object_set_new(ref, "local_id", intake__jtext(sqlite3_column_text(st, 3)));
        json_object_set_new(ref, "service",
                            json_string(record_enum_name(&reint__v1__service_type__descriptor,
                                                         sqlite3_column_int(st, 2))));
        json_object_set_new(ref, "date", json_string(d));
        json_object_set_new(ref, "days_waiting", json_integer(today - day));
        json_object_set_new(ref, "provider", intake__jtext(sqlite3_column_text(st, 4)));
        json_array_append_new(json_object_get(p, "referrals"), ref);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    json_decref(index);
    json_decref(persons);
    *out = root;
    return 0;
fail:
    log_error("intake followups: %s", sqlite3_errmsg(in->db));
    sqlite3_finalize(st);
    json_decref(index);
    json_decref(persons);
    json_decref(root);
    return REINT_EDB;
}

int intake_followups_print(intake *in, int32_t today, FILE *f)
{
    json_t *root = NULL;
    int rc = intake_followups(in, today, &root);
    if (rc != 0)
        return rc;
    json_t *persons = json_object_get(root, "persons");
    size_t np = json_array_size(persons), nr = 0, i, j;
    json_t *p, *ref;
    json_array_foreach(persons, i, p) nr += json_array_size(json_object_get(p, "referrals"));
    if (np == 0) {
        fprintf(f, "No pending referrals on %s.\n",
                json_string_value(json_object_get(root, "today")));
        json_decref(root);
        return 0;
    }
    fprintf(f, "Pending referrals on %s: %zu for %zu persons, longest waiting first.\n\n",
            json_string_value(json_object_get(root, "today")), nr, np);
    json_array_foreach(persons, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "full_name"));
        const char *phone = json_string_value(json_object_get(p, "phone"));
        fprintf(f, "%s  %s  %s  (waiting %lld days)\n",
                json_string_value(json_object_get(p, "local_id")), name ? name : "(no name)",
                phone ? phone : "(no phone)",
                (long long)json_integer_value(json_object_get(p, "days_waiting")));
        json_array_foreach(json_object_get(p, "referrals"), j, ref)
        {
            const char *prov = json_string_value(json_object_get(ref, "provider"));
            fprintf(f, "    %-12s %-27s referred %s  %4lld days  %s\n",
                    json_string_value(json_object_get(ref, "local_id")),
                    json_string_value(json_object_get(ref, "service")),
                    json_string_value(json_object_get(ref, "date")),
                    (long long)json_integer_value(json_object_get(ref, "days_waiting")),
                    prov ? prov : "");
        }
    }
    json_decref(root);
    return ferror(f) ? REINT_EIO : 0;
}
