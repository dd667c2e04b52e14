#include "fdirectives.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bscal.h"
#include "catalogue.h"
#include "directive.h"
#include "geo.h"
#include "period.h"
#include "record.h"
#include "utf8.h"

#define FDIR_KEYVAL_MAX 40
/* Bytes that hold a text of max characters of UTF-8, and its NUL. */
#define FDIR_BYTES(max)     (4 * (max) + 1)
#define FDIR_MAX_CATEGORIES 8
#define FDIR_VALUE_MAX      INT64_C(1000000000000)
#define FDIR_FIRST_YEAR     2000

struct fdir_draft {
    Reint__V1__Directive d;
    Reint__V1__Eligibility elig;
    Reint__V1__Category cats[FDIR_MAX_CATEGORIES];
    char *rule_p[FDIR_MAX_RULES];
    char rules[FDIR_MAX_RULES][FDIR_BYTES(FDIR_RULE_MAX)];
    Reint__V1__Target targets[FDIR_MAX_TARGETS];
    Reint__V1__Target *target_p[FDIR_MAX_TARGETS];
    char *key_p[FDIR_MAX_TARGETS][2];
    char keys[FDIR_MAX_TARGETS][2][FDIR_KEYVAL_MAX + 1];
    char periods[FDIR_MAX_TARGETS][PERIOD_MAX];
    char title[FDIR_BYTES(FDIR_TITLE_MAX)];
    char text[FDIR_BYTES(FDIR_TEXT_MAX)];
    char empty[1];
};

/* The value set of each dimension a grouping may name (as the hub writes its keys); NULL:
 * an ISO 3166 alpha-2 country code. */
static const struct {
    const char *name;
    const ProtobufCEnumDescriptor *desc;
} fdir__dims[] = {
    {"category", &reint__v1__category__descriptor},
    {"sex", &reint__v1__sex__descriptor},
    {"age_band", &reint__v1__age_band__descriptor},
    {"caste_group", &reint__v1__caste_group__descriptor},
    {"disability", &reint__v1__flag__descriptor},
    {"destination_country", NULL},
    {"service_type", &reint__v1__service_type__descriptor},
    {"programme", &reint__v1__programme__descriptor},
    {"provider", &reint__v1__provider__descriptor},
    {"action", &reint__v1__enterprise_action__descriptor},
    {"sector", &reint__v1__sector__descriptor},
    {"owner_sex", &reint__v1__sex__descriptor},
    {"owner_category", &reint__v1__category__descriptor},
};

static void fdir__err(fdir_errors *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fdir__err(fdir_errors *errs, const char *field, const char *fmt, ...)
{
    if (errs->n == FDIR_MAX_ERRORS) {
        errs->dropped = 1;
        return;
    }
    fdir_error *e = &errs->e[errs->n++];
    snprintf(e->field, sizeof(e->field), "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
    va_end(ap);
}

/* Whether the object o holds only the names in allowed (NULL-terminated); each other name
 * is reported under prefix. */
static void fdir__only(fdir_errors *errs, json_t *o, const char *prefix, const char *const *allowed,
                       const char *list)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char field[64];
            snprintf(field, sizeof(field), "%s%.40s", prefix, k);
            fdir__err(errs, field, "unknown field (allowed: %s)", list);
        }
    }
}

/* A required or optional string value v of 1..max characters (code points, as the OpenAPI
 * document's maxLength counts them: a title in Devanagari gets as many letters as one in Latin
 * script) into out, of FDIR_BYTES(max) bytes; returns 1 when set. */
static int fdir__string_v(fdir_errors *errs, json_t *v, const char *field, size_t max, int required,
                          int allow_newlines, char *out)
{
    if (v == NULL || json_is_null(v)) {
        if (required)
            fdir__err(errs, field, "is required");
        return 0;
    }
    if (!json_is_string(v)) {
        fdir__err(errs, field, "must be a string");
        return 0;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t chars = utf8_chars(s, n); /* jansson has checked the UTF-8 */
    if (n == 0 || chars > max || n >= FDIR_BYTES(max) || strlen(s) != n) {
        fdir__err(errs, field, "must be 1..%zu characters of text (is %zu)", max, chars);
        return 0;
    }
    long at = directive_control_at(s, n, allow_newlines);
    if (at >= 0) {
        fdir__err(errs, field, "holds a control character or a mark that reorders text at byte %ld",
                  at);
        return 0;
    }
    if (utf8_blank(s, n)) {
        fdir__err(errs, field, "holds no visible character");
        return 0;
    }
    memcpy(out, s, n + 1);
    return 1;
}

static int fdir__string(fdir_errors *errs, json_t *o, const char *name, const char *field,
                        size_t max, int required, int allow_newlines, char *out)
{
    return fdir__string_v(errs, json_object_get(o, name), field, max, required, allow_newlines,
                          out);
}

/* A "YYYY-MM-DD" Gregorian date from FDIR_FIRST_YEAR to the end of the Bikram Sambat table
 * (2043-04-13), which every tier reads dates in; returns 1 when set. */
static int fdir__date(fdir_errors *errs, json_t *o, const char *name, const char *field,
                      int required, int32_t *day)
{
    json_t *v = json_object_get(o, name);
    int y, m, d, rc;
    if (v == NULL || json_is_null(v)) {
        if (required)
            fdir__err(errs, field, "is required (YYYY-MM-DD, Gregorian)");
        return 0;
    }
    if (!json_is_string(v) || (rc = bscal_parse(json_string_value(v), 0, day)) == REINT_EINVAL) {
        fdir__err(errs, field, "must be a Gregorian date YYYY-MM-DD");
        return 0;
    }
    /* Out of the table's range: bscal_parse checked the shape, so the year is four digits. */
    const char *ys = json_string_value(v);
    int year = (ys[0] - '0') * 1000 + (ys[1] - '0') * 100 + (ys[2] - '0') * 10 + (ys[3] - '0');
    if (rc != 0 && year >= FDIR_FIRST_YEAR) {
        char last[16] = "?";
        int32_t end = 0;
        if (bscal_days_from_bs(BSCAL_LAST_YEAR, 12, bscal_bs_month_days(BSCAL_LAST_YEAR, 12),
                               &end) == 0)
            bscal_format(end, 0, last, sizeof(last));
        fdir__err(errs, field,
                  "is after %s, the end of the Bikram Sambat calendar table (BS %d-12), which "
                  "every tier reads dates in",
                  last, BSCAL_LAST_YEAR);
        return 0;
    }
    if (rc == 0)
        bscal_ad_from_days(*day, &y, &m, &d);
    if (rc != 0 || y < FDIR_FIRST_YEAR) {
        fdir__err(errs, field, "is before %d-01-01", FDIR_FIRST_YEAR);
        return 0;
    }
    return 1;
}

/* An integer lo..hi; returns 1 when set. */
static int fdir__int(fdir_errors *errs, json_t *o, const char *name, const char *field,
                     json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        fdir__err(errs, field, "must be an integer %" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                  lo, hi);
        return 0;
    }
    *out = json_integer_value(v);
    return 1;
}

static void fdir__eligibility(fdir_draft *dr, fdir_errors *errs, json_t *o)
{
    static const char *const allowed[] = {"categories",       "min_age",        "max_age",
                                          "registered_after", "priority_rules", NULL};
    char field[64];
    Reint__V1__Eligibility *e = &dr->elig;
    if (!json_is_object(o)) {
        fdir__err(errs, "eligibility", "must be an object");
        return;
    }
    fdir__only(errs, o, "eligibility.", allowed,
               "categories, min_age, max_age, registered_after, priority_rules");
    json_t *cats = json_object_get(o, "categories");
    if (cats && !json_is_null(cats)) {
        if (!json_is_array(cats) || json_array_size(cats) > FDIR_MAX_CATEGORIES) {
            fdir__err(errs, "eligibility.categories", "must be an array of at most %d names",
                      FDIR_MAX_CATEGORIES);
        } else {
            char list[200];
            record_enum_list(&reint__v1__category__descriptor, list, sizeof(list));
            for (size_t i = 0; i < json_array_size(cats); i++) {
                json_t *c = json_array_get(cats, i);
                int v = 0, dup = 0;
                snprintf(field, sizeof(field), "eligibility.categories[%zu]", i);
                if (!json_is_string(c) || json_string_length(c) > 40 ||
                    record_enum_parse(&reint__v1__category__descriptor, json_string_value(c), &v) !=
                        0) {
                    fdir__err(errs, field, "is not one of %s", list);
                    continue;
                }
                for (size_t k = 0; k < e->n_categories; k++)
                    dup |= (int)e->categories[k] == v;
                if (dup) {
                    fdir__err(errs, field, "%s is listed twice",
                              record_enum_name(&reint__v1__category__descriptor, v));
                    continue;
                }
                dr->cats[e->n_categories++] = (Reint__V1__Category)v;
            }
        }
    }
    json_int_t lo = 0, hi = 0;
    int has_lo = fdir__int(errs, o, "min_age", "eligibility.min_age", 0, 120, &lo);
    int has_hi = fdir__int(errs, o, "max_age", "eligibility.max_age", 0, 120, &hi);
    if (has_lo && has_hi && lo > 0 && hi > 0 && lo > hi)
        fdir__err(errs, "eligibility.max_age",
                  "%" JSON_INTEGER_FORMAT " is below min_age %" JSON_INTEGER_FORMAT, hi, lo);
    e->min_age = (int32_t)lo;
    e->max_age = (int32_t)hi;
    int32_t day = 0;
    if (fdir__date(errs, o, "registered_after", "eligibility.registered_after", 0, &day))
        e->registered_after_day = day;
    json_t *rules = json_object_get(o, "priority_rules");
    if (rules && !json_is_null(rules)) {
        if (!json_is_array(rules) || json_array_size(rules) > FDIR_MAX_RULES) {
            fdir__err(errs, "eligibility.priority_rules", "must be an array of at most %d strings",
                      FDIR_MAX_RULES);
        } else {
            for (size_t i = 0; i < json_array_size(rules); i++) {
                snprintf(field, sizeof(field), "eligibility.priority_rules[%zu]", i);
                if (fdir__string_v(errs, json_array_get(rules, i), field, FDIR_RULE_MAX, 1, 0,
                                   dr->rules[e->n_priority_rules])) {
                    dr->rule_p[e->n_priority_rules] = dr->rules[e->n_priority_rules];
                    e->n_priority_rules++;
                }
            }
        }
    }
}

static const ProtobufCEnumDescriptor *fdir__dim_desc(const char *dim, int *known)
{
    for (size_t i = 0; i < sizeof(fdir__dims) / sizeof(fdir__dims[0]); i++) {
        if (strcmp(fdir__dims[i].name, dim) == 0) {
            *known = 1;
            return fdir__dims[i].desc;
        }
    }
    *known = 0;
    return NULL;
}

/* Checks one key value of dimension dim and writes its canonical form into out. */
static int fdir__key_value(fdir_errors *errs, const char *field, const char *dim, json_t *v,
                           char out[FDIR_KEYVAL_MAX + 1])
{
    int known = 0, ev = 0;
    const ProtobufCEnumDescriptor *desc = fdir__dim_desc(dim, &known);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    if (s == NULL || n == 0 || n > FDIR_KEYVAL_MAX || strlen(s) != n) {
        fdir__err(errs, field, "must be a value of %s (1..%d bytes)", dim, FDIR_KEYVAL_MAX);
        return 0;
    }
    if (desc) {
        if (record_enum_parse(desc, s, &ev) != 0) {
            char list[400];
            record_enum_list(desc, list, sizeof(list));
            fdir__err(errs, field, "is not a %s: one of %s", dim, list);
            return 0;
        }
        snprintf(out, FDIR_KEYVAL_MAX + 1, "%s", record_enum_name(desc, ev));
        return 1;
    }
    if (known) { /* a country */
        if (n != 2 || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1])) {
            fdir__err(errs, field, "%s must be an ISO 3166 alpha-2 code", dim);
            return 0;
        }
        out[0] = (char)toupper((unsigned char)s[0]);
        out[1] = (char)toupper((unsigned char)s[1]);
        out[2] = '\0';
        return 1;
    }
    /* A dimension this build has no value set for: the shape the ingest accepts. */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-')) {
            fdir__err(errs, field, "must be A-Z a-z 0-9 _ + - only");
            return 0;
        }
    }
    memcpy(out, s, n + 1);
    return 1;
}

static int fdir__target_same(const Reint__V1__Target *a, const Reint__V1__Target *b)
{
    if (strcmp(a->indicator, b->indicator) != 0 || strcmp(a->grouping, b->grouping) != 0 ||
        a->scope != b->scope || a->scope_code != b->scope_code ||
        strcmp(a->period, b->period) != 0 || a->n_key != b->n_key)
        return 0;
    for (size_t k = 0; k < a->n_key; k++)
        if (strcmp(a->key[k], b->key[k]) != 0)
            return 0;
    return 1;
}

/* Validates targets[i]; appends it to the draft when every field passed. */
static void fdir__target(fdir_draft *dr, fdir_errors *errs, json_t *o, size_t i)
{
    static const char *const allowed[] = {"indicator", "grouping", "key",   "scope", "scope_code",
                                          "period",    "value",    "share", NULL};
    char prefix[32], field[64];
    size_t before = errs->n;
    int dropped_before = errs->dropped;
    size_t slot = dr->d.n_targets;
    Reint__V1__Target *t = &dr->targets[slot];
    reint__v1__target__init(t);
    t->grouping = dr->empty;
    snprintf(prefix, sizeof(prefix), "targets[%zu].", i);
#define FDIR_FIELD(name) (snprintf(field, sizeof(field), "%s%s", prefix, name), field)
    if (!json_is_object(o)) {
        snprintf(field, sizeof(field), "targets[%zu]", i);
        fdir__err(errs, field, "must be an object");
        return;
    }
    fdir__only(errs, o, prefix, allowed,
               "indicator, grouping, key, scope, scope_code, period, value, share");
    json_t *v = json_object_get(o, "indicator");
    const catalogue_indicator *ind = NULL;
    if (v == NULL || !json_is_string(v))
        fdir__err(errs, FDIR_FIELD("indicator"), "is required: a code of GET /v1/indicators");
    else if ((ind = catalogue_find(json_string_value(v))) == NULL)
        fdir__err(errs, FDIR_FIELD("indicator"), "\"%.40s\" is not in the catalogue",
                  json_string_value(v));
    else
        t->indicator = (char *)ind->code;

    v = json_object_get(o, "grouping");
    const char *given = "";
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) >= 64)
            fdir__err(errs, FDIR_FIELD("grouping"), "must be a string of at most 63 bytes");
        else
            given = json_string_value(v);
    }
    char norm[64] = "";
    int ndims = -1;
    if (ind) {
        if (!catalogue_grouping(ind, given, norm, sizeof(norm))) {
            char list[400];
            size_t o2 = 0;
            list[0] = '\0';
            for (int g = 0; ind->groupings[g] && o2 < sizeof(list); g++) {
                int w = snprintf(list + o2, sizeof(list) - o2, "%s\"%s\"", g ? ", " : "",
                                 ind->groupings[g]);
                if (w < 0)
                    break;
                o2 += (size_t)w;
            }
            fdir__err(errs, FDIR_FIELD("grouping"), "\"%.40s\" is not declared for %s: %s", given,
                      ind->code, list);
        } else {
            for (int g = 0; ind->groupings[g]; g++)
                if (strcmp(ind->groupings[g], norm) == 0)
                    t->grouping = (char *)ind->groupings[g];
            ndims = norm[0] == '\0' ? 0 : strchr(norm, ',') ? 2 : 1;
        }
    }

    v = json_object_get(o, "key");
    if (ndims >= 0) {
        size_t nk = v && json_is_array(v) ? json_array_size(v) : 0;
        if (v && !json_is_null(v) && !json_is_array(v)) {
            fdir__err(errs, FDIR_FIELD("key"), "must be an array of strings");
        } else if (nk != (size_t)ndims) {
            fdir__err(errs, FDIR_FIELD("key"), "grouping \"%s\" needs %d value%s, not %zu", norm,
                      ndims, ndims == 1 ? "" : "s", nk);
        } else if (ndims > 0) {
            char dims[2][40];
            const char *comma = strchr(norm, ',');
            if (comma) {
                snprintf(dims[0], sizeof(dims[0]), "%.*s", (int)(comma - norm), norm);
                snprintf(dims[1], sizeof(dims[1]), "%s", comma + 1);
            } else {
                snprintf(dims[0], sizeof(dims[0]), "%s", norm);
            }
            /* Keys follow the grouping as given; the stored order is the normalised one. */
            size_t first_len = strcspn(given, ",");
            int swapped = ndims == 2 &&
                          (first_len != strlen(dims[0]) || strncmp(given, dims[0], first_len) != 0);
            int ok = 1;
            for (int k = 0; k < ndims; k++) {
                int src = swapped ? 1 - k : k;
                char f2[64];
                snprintf(f2, sizeof(f2), "%skey[%d]", prefix, src);
                ok &= fdir__key_value(errs, f2, dims[k], json_array_get(v, (size_t)src),
                                      dr->keys[slot][k]);
                dr->key_p[slot][k] = dr->keys[slot][k];
            }
            if (ok) {
                t->n_key = (size_t)ndims;
                t->key = dr->key_p[slot];
            }
        }
    }

    v = json_object_get(o, "scope");
    const char *scope = "national";
    if (v && !json_is_null(v)) {
        if (json_is_string(v))
            scope = json_string_value(v);
        else
            scope = "?";
    }
    json_t *code = json_object_get(o, "scope_code");
    int has_code = code && !json_is_null(code);
    json_int_t cv = has_code && json_is_integer(code) ? json_integer_value(code) : -1;
    if (strcmp(scope, "national") == 0) {
        t->scope = REINT__V1__TARGET_SCOPE__TARGET_SCOPE_NATIONAL;
        if (has_code && cv != 0)
            fdir__err(errs, FDIR_FIELD("scope_code"), "must be absent for a national target");
    } else if (strcmp(scope, "province") == 0) {
        t->scope = REINT__V1__TARGET_SCOPE__TARGET_SCOPE_PROVINCE;
        if (cv < 1 || cv > 7)
            fdir__err(errs, FDIR_FIELD("scope_code"), "must be a province 1..7");
        else
            t->scope_code = (uint32_t)cv;
    } else if (strcmp(scope, "municipality") == 0) {
        t->scope = REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY;
        if (cv < 1 || cv > 99999 || geo_find((uint32_t)cv) == NULL)
            fdir__err(errs, FDIR_FIELD("scope_code"), "must be an official municipality code");
        else
            t->scope_code = (uint32_t)cv;
    } else {
        fdir__err(errs, FDIR_FIELD("scope"),
                  "must be \"national\", \"province\" or "
                  "\"municipality\"");
    }

    v = json_object_get(o, "period");
    enum period_kind kind;
    int32_t first, last;
    if (v == NULL || !json_is_string(v))
        fdir__err(errs, FDIR_FIELD("period"), "is required (e.g. \"FY2083/84\", \"2026-Q3\")");
    else if (json_string_length(v) >= PERIOD_MAX ||
             period_parse(json_string_value(v), &kind, &first, &last) != 0)
        fdir__err(errs, FDIR_FIELD("period"),
                  "\"%.20s\" is not a period (2026, 2026-Q3, 2026-07, BS2083-04, FY2083/84-T1, "
                  "FY2083/84)",
                  json_string_value(v));
    else {
        snprintf(dr->periods[slot], PERIOD_MAX, "%s", json_string_value(v));
        t->period = dr->periods[slot];
    }

    json_t *val = json_object_get(o, "value"), *share = json_object_get(o, "share");
    int has_val = val && !json_is_null(val), has_share = share && !json_is_null(share);
    if (ind && ind->agg == CATALOGUE_RATIO) {
        if (has_val)
            fdir__err(errs, FDIR_FIELD("value"), "%s is a ratio: give its target as share",
                      ind->code);
        else if (!has_share)
            fdir__err(errs, FDIR_FIELD("share"), "is required for the ratio %s (0..1)", ind->code);
        else if (!json_is_number(share) || !(json_number_value(share) >= 0.0) ||
                 !(json_number_value(share) <= 1.0))
            fdir__err(errs, FDIR_FIELD("share"), "must be a number in [0, 1]");
        else
            t->share = json_number_value(share);
    } else if (ind) {
        if (has_share)
            fdir__err(errs, FDIR_FIELD("share"), "%s is not a ratio: give its target as value",
                      ind->code);
        else if (!has_val)
            fdir__err(errs, FDIR_FIELD("value"), "is required (an integer 0..10^12)");
        else if (!json_is_integer(val) || json_integer_value(val) < 0 ||
                 json_integer_value(val) > FDIR_VALUE_MAX)
            fdir__err(errs, FDIR_FIELD("value"), "must be an integer 0..10^12");
        else
            t->value = (int64_t)json_integer_value(val);
    }
#undef FDIR_FIELD
    if (errs->n != before || errs->dropped != dropped_before)
        return;
    for (size_t k = 0; k < slot; k++) {
        if (fdir__target_same(&dr->targets[k], t)) {
            snprintf(field, sizeof(field), "targets[%zu]", i);
            fdir__err(errs, field,
                      "repeats an earlier target (same indicator, grouping, key, "
                      "scope and period)");
            return;
        }
    }
    dr->target_p[slot] = t;
    dr->d.n_targets++;
}

int fdir_parse(const char *body, size_t len, fdir_draft **out, fdir_errors *errs)
{
    static const char *const allowed[] = {
        "title", "text", "effective_from", "expires_at", "eligibility", "targets", NULL};
    json_error_t je;
    memset(errs, 0, sizeof(*errs));
    *out = NULL;
    if (len > FDIR_MAX_BODY) {
        snprintf(errs->message, sizeof(errs->message), "the body is larger than %d bytes",
                 FDIR_MAX_BODY);
        return REINT_EMALFORMED;
    }
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        snprintf(errs->message, sizeof(errs->message),
                 "malformed JSON at line %d column %d: %.120s", je.line, je.column, je.text);
        return REINT_EMALFORMED;
    }
    if (!json_is_object(o)) {
        snprintf(errs->message, sizeof(errs->message), "the body must be a JSON object");
        json_decref(o);
        return REINT_EMALFORMED;
    }
    fdir_draft *dr = calloc(1, sizeof(*dr));
    if (dr == NULL) {
        snprintf(errs->message, sizeof(errs->message), "out of memory");
        json_decref(o);
        return REINT_ENOMEM;
    }
    reint__v1__directive__init(&dr->d);
    reint__v1__eligibility__init(&dr->elig);
    dr->d.key_id = dr->empty;
    dr->d.title = dr->title;
    dr->d.text = dr->text;
    dr->d.eligibility = &dr->elig;
    dr->elig.categories = dr->cats;
    dr->elig.priority_rules = dr->rule_p;
    dr->d.targets = dr->target_p;

    fdir__only(errs, o, "", allowed,
               "title, text, effective_from, expires_at, eligibility, targets");
    fdir__string(errs, o, "title", "title", FDIR_TITLE_MAX, 1, 0, dr->title);
    fdir__string(errs, o, "text", "text", FDIR_TEXT_MAX, 1, 1, dr->text);
    int32_t from = 0, until = 0;
    int has_from = fdir__date(errs, o, "effective_from", "effective_from", 1, &from);
    if (fdir__date(errs, o, "expires_at", "expires_at", 0, &until)) {
        if (has_from && until < from)
            fdir__err(errs, "expires_at", "is before effective_from");
        dr->d.expires_at_day = until;
    }
    dr->d.effective_from_day = from;
    json_t *el = json_object_get(o, "eligibility");
    if (el && !json_is_null(el))
        fdir__eligibility(dr, errs, el);
    json_t *ts = json_object_get(o, "targets");
    if (ts && !json_is_null(ts)) {
        if (!json_is_array(ts) || json_array_size(ts) > FDIR_MAX_TARGETS)
            fdir__err(errs, "targets", "must be an array of at most %d targets", FDIR_MAX_TARGETS);
        else
            for (size_t i = 0; i < json_array_size(ts); i++)
                fdir__target(dr, errs, json_array_get(ts, i), i);
    }
    json_decref(o);
    if (errs->n || errs->dropped) {
        free(dr);
        return REINT_EINVAL;
    }
    *out = dr;
    return 0;
}

Reint__V1__Directive *fdir_directive(fdir_draft *d)
{
    return &d->d;
}

void fdir_draft_free(fdir_draft *d)
{
    free(d);
}

static void fdir__day(sbuf *b, int32_t day)
{
    char s[16];
    if (day == 0 || bscal_format(day, 0, s, sizeof(s)) != 0) {
        sbuf_puts(b, "null");
        return;
    }
    sbuf_printf(b, "\"%s\"", s);
}

static void fdir__str(sbuf *b, const char *s)
{
    sbuf_json_str(b, s ? s : "");
}

void fdir_json_open(sbuf *b, const Reint__V1__Directive *d, int32_t today)
{
    char at[40] = "";
    time_t secs = (time_t)(d->issued_at / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm))
        snprintf(at, sizeof(at), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)(d->issued_at % 1000));
    int in_force =
        d->effective_from_day <= today && (d->expires_at_day == 0 || today <= d->expires_at_day);
    sbuf_printf(b, "{\"serial\":%" PRIu64 ",\"key_id\":", d->serial);
    fdir__str(b, d->key_id);
    sbuf_puts(b, ",\"issued_at\":");
    fdir__str(b, at);
    sbuf_puts(b, ",\"effective_from\":");
    fdir__day(b, d->effective_from_day);
    sbuf_puts(b, ",\"expires_at\":");
    fdir__day(b, d->expires_at_day);
    sbuf_printf(b, ",\"in_force\":%s,\"title\":", in_force ? "true" : "false");
    fdir__str(b, d->title);
    sbuf_puts(b, ",\"text\":");
    fdir__str(b, d->text);
    sbuf_puts(b, ",\"eligibility\":{\"categories\":[");
    const Reint__V1__Eligibility *e = d->eligibility;
    for (size_t i = 0; e && i < e->n_categories; i++)
        sbuf_printf(b, "%s\"%s\"", i ? "," : "",
                    record_enum_name(&reint__v1__category__descriptor, (int)e->categories[i]));
    sbuf_printf(b, "],\"min_age\":%d,\"max_age\":%d,\"registered_after\":", e ? (int)e->min_age : 0,
                e ? (int)e->max_age : 0);
    fdir__day(b, e ? e->registered_after_day : 0);
    sbuf_puts(b, ",\"priority_rules\":[");
    for (size_t i = 0; e && i < e->n_priority_rules; i++) {
        if (i)
            sbuf_puts(b, ",");
        fdir__str(b, e->priority_rules[i]);
    }
    sbuf_puts(b, "]},\"targets\":[");
    for (size_t i = 0; i < d->n_targets; i++) {
        const Reint__V1__Target *t = d->targets[i];
        const catalogue_indicator *ind = catalogue_find(t->indicator ? t->indicator : "");
        sbuf_puts(b, i ? ",{\"indicator\":" : "{\"indicator\":");
        fdir__str(b, t->indicator);
        sbuf_puts(b, ",\"grouping\":");
        fdir__str(b, t->grouping);
        sbuf_puts(b, ",\"key\":[");
        for (size_t k = 0; k < t->n_key; k++) {
            if (k)
                sbuf_puts(b, ",");
            fdir__str(b, t->key[k]);
        }
        const char *scope = t->scope == REINT__V1__TARGET_SCOPE__TARGET_SCOPE_PROVINCE ? "province"
                            : t->scope == REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY
                                ? "municipality"
                                : "national";
        sbuf_printf(b, "],\"scope\":\"%s\",\"scope_code\":%u,\"period\":", scope, t->scope_code);
        fdir__str(b, t->period);
        if (ind && ind->agg == CATALOGUE_RATIO)
            sbuf_printf(b, ",\"share\":%.6g}", isfinite(t->share) ? t->share : 0.0);
        else
            sbuf_printf(b, ",\"value\":%" PRId64 "}", t->value);
    }
    sbuf_puts(b, "]");
}

int fdir_key_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FDIR_KEY_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}
