/* Field rules: the columns of each kind of row (DESIGN.md's CSV columns), the grammar of each
 * value (identifiers, text, phone numbers, enumerations by name, booleans, dates and birth
 * years in the node's calendar, whole numbers in a range, ISO 3166 country codes), and the
 * errors that name a field and say what is wrong in a clerk's words.
 *
 * Nothing here touches the store: each field of a row is checked on its own. That is why the
 * CSV import's reader thread can check rows while the caller's thread writes them; every
 * function is pure or writes only into what its caller passes, and the tables are constant.
 *
 * Kinds are the proto's RecordKind values (intake.h names them INTAKE_PERSON ..
 * INTAKE_AVAILABILITY); a month close has no columns. */
#ifndef MUNICIPAL_NODE_FIELD_H
#define MUNICIPAL_NODE_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include "localrow.h"
#include "reintegration.pb-c.h"

/* ---- errors ----------------------------------------------------------------------------- */

#define FIELD_MAX_ERRORS 32

typedef struct field_error {
    char field[48];   /* column name, e.g. "sex"; empty for an error of the whole row */
    char reason[224]; /* in a clerk's words: "\"F?\" is not one of FEMALE, MALE, OTHER" */
    /* What kind of problem it is, for a page that words it in the clerk's language
     * ("required", "date_invalid", "int_range", ...: FIELD_CODES lists them), and the one
     * value its wording needs ("1..99", today's date), or "" (code "" for any other). */
    char code[32]; /* the longest of FIELD_CODES with its NUL (test_intake checks) */
    char arg[48];
} field_error;

/* Every code an error may carry, for the pages' catalogues (a test checks both have each). */
#define FIELD_CODES                                                                                \
    "required", "too_long", "not_utf8", "control_chars", "phone", "enum", "bool", "date_range",    \
        "date_invalid", "date_early", "date_future", "int", "int_range", "country",                \
        "row_too_long", "birth_after_registration", "age_over_120", "return_after_registration",   \
        "not_registered", "unknown_column", "given_twice", "record", "invisible_chars",            \
        "date_before_start", "repeated_in_file", "return_before_birth", "day_past_month"

/* The errors of one row, printed as "<field> <reason>". Errors past FIELD_MAX_ERRORS are
 * counted in dropped. The caller sets n and dropped to 0 before the first error. */
typedef struct field_errors {
    size_t n, dropped;
    field_error e[FIELD_MAX_ERRORS];
} field_errors;

/* Adds an error naming field (sanitised and cut to 40 bytes) with a printf-style reason. */
void field_errors_add(field_errors *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with its code (one of FIELD_CODES) and the value its wording needs (arg, may be
 * NULL; cut to fit). */
void field_errors_add_code(field_errors *e, const char *field, const char *code, const char *arg,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Writes the quoted, sanitised form of the n bytes at s for a message ("F?" with its quotes;
 * control characters and invalid UTF-8 become '?', at most 40 bytes then "...") into buf and
 * returns buf. */
const char *field_quote(char *buf, size_t len, const char *s, size_t n);

/* "YYYY-MM-DD" of day in BS (bs non-zero) or Gregorian, Gregorian when the day is outside
 * the BS table. */
void field_format_day(int bs, int32_t day, char out[16]);

/* ---- columns ---------------------------------------------------------------------------- */

/* Column positions of each kind, in CSV order: indexes into the values of a row. */
enum field_person_col {
    FIELD_PERSON_LOCAL_ID,
    FIELD_PERSON_CATEGORY,
    FIELD_PERSON_SEX,
    FIELD_PERSON_BIRTH_YEAR,
    FIELD_PERSON_CASTE,
    FIELD_PERSON_DISABILITY,
    FIELD_PERSON_REGISTERED_ON,
    FIELD_PERSON_COUNTRY,
    FIELD_PERSON_YEARS_ABROAD,
    FIELD_PERSON_RETURN_DATE,
    FIELD_PERSON_INTENTION,
    FIELD_PERSON_FAMILY_ABROAD,
    FIELD_PERSON_CONSENT,
    FIELD_PERSON_FULL_NAME,
    FIELD_PERSON_PHONE,
    FIELD_PERSON_CITIZENSHIP,
    FIELD_PERSON_WARD,
    FIELD_PERSON_ADDRESS,
    FIELD_PERSON_N
};
enum field_service_col {
    FIELD_SERVICE_LOCAL_ID,
    FIELD_SERVICE_PERSON,
    FIELD_SERVICE_TYPE,
    FIELD_SERVICE_STATUS,
    FIELD_SERVICE_DATE,
    FIELD_SERVICE_PROVIDER,
    FIELD_SERVICE_PROGRAMME,
    FIELD_SERVICE_AMOUNT,
    FIELD_SERVICE_N
};
enum field_enterprise_col {
    FIELD_ENTERPRISE_LOCAL_ID,
    FIELD_ENTERPRISE_OWNER,
    FIELD_ENTERPRISE_ACTION,
    FIELD_ENTERPRISE_SECTOR,
    FIELD_ENTERPRISE_DATE,
    FIELD_ENTERPRISE_REGISTERED,
    FIELD_ENTERPRISE_EMPLOYEES,
    FIELD_ENTERPRISE_STATUS,
    FIELD_ENTERPRISE_N
};
enum field_availability_col {
    FIELD_AVAILABILITY_SERVICE,
    FIELD_AVAILABILITY_PROVIDER,
    FIELD_AVAILABILITY_AVAILABLE,
    FIELD_AVAILABILITY_AS_OF,
    FIELD_AVAILABILITY_N
};

/* The most columns a kind has (persons). */
#define FIELD_MAX FIELD_PERSON_N
/* The longest value of a short field (an enumeration name, a number, a date, a flag), and so
 * of each half of an availability's "SERVICE/PROVIDER". */
#define FIELD_SHORT_MAX 48
/* Room for the trimmed values of one row: every column's maximum length in bytes (limits
 * count characters, of up to four bytes each) plus its NUL. */
#define FIELD_SCRATCH_MAX 8192

/* "persons", "services", "enterprises", "availability", or NULL for another kind. */
const char *field_kind_name(int kind);
/* Kind from "persons"/"person"/"services"/... (any case), or 0. */
int field_kind_parse(const char *name);
/* Column names of a kind in CSV order (NULL-terminated, static), or NULL. */
const char *const *field_columns(int kind);
/* Number of columns of a kind, 0 for another kind. */
size_t field_count(int kind);
/* Position of column name among field_columns(kind), or -1. */
int field_column_index(int kind, const char *name);
/* 1 when column i of kind must have a value. */
int field_required(int kind, size_t i);

/* What a page needs to build a form field for a column and check it as the clerk types, with
 * the rules below rather than a copy of them. */
typedef struct field_info {
    const char *name; /* the column's name */
    const char *type; /* "id", "text", "phone", "enum", "bool", "date", "int" or "country" */
    int required;
    unsigned maxlen;                   /* longest value, in bytes */
    long long min, max;                /* an "int"'s range */
    const ProtobufCEnumDescriptor *en; /* an "enum"'s values (record_enum_name names them) */
} field_info;

/* Describes column i of kind into *out (static strings). Returns 0, or REINT_EINVAL when
 * kind has no column i. */
int field_describe(int kind, size_t i, field_info *out);
/* The country codes a "country" column takes (ISO 3166-1 alpha-2, sorted), two letters each
 * with nothing between them: "ADAEAF...". */
const char *field_countries(void);

/* ---- checking a row --------------------------------------------------------------------- */

/* One field of a row after checking. */
typedef struct field_value {
    const char *s; /* trimmed text (in the scan's scratch), NULL when unknown */
    size_t len;
    long long i; /* enumeration value, boolean 1/0, integer */
    int32_t day; /* dates, as Gregorian days since 1970-01-01 */
    int ok;      /* known and valid */
} field_value;

/* What checking a row needs: the calendar (bs non-zero: Bikram Sambat), today (no date may be
 * after it), where the trimmed values go (cap bytes at scratch, of which used are taken), and
 * the earliest day of an event (a registration, a service, an enterprise's action, an offer:
 * none before it; INT32_MIN: no such limit). The values in field_value.s point into scratch, which
 * the caller keeps as long as them. */
typedef struct field_scan {
    int bs;
    int32_t today;
    char *scratch;
    size_t used, cap;
    int32_t earliest;
} field_scan;

/* Checks every field of a row of kind (raw[i] is the text of column i, NULL or blank when
 * unknown) into v[0 .. field_count(kind)), adding each problem to errs. When no field has
 * an error, row is reset to the normalised values (enumerations by name, booleans as
 * true/false, numbers in decimal, text as entered and trimmed) in column order, the local
 * row that the node keeps; row->failed then says it could not grow. kind must be one of
 * the four with columns. */
void field_check_row(field_scan *c, int kind, const char *const *raw, field_value *v,
                     localrow_buf *row, field_errors *errs);

#endif
