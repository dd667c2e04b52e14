/* Validation of the HTTPS API's query parameters, before anything reaches the database:
 * the query's shape by common/query.h (name=value pairs joined by single '&'s, no empty
 * segment, each name once, values at most PARAMS_MAX_VALUE bytes of A-Z a-z 0-9 _ , / -, so
 * no quote, semicolon, space or comment marker gets through), then only known names, each
 * value checked against the period grammar, the geography and the catalogue. The accepted
 * query's normalised spelling is what the audit records. Pure: no I/O. */
#ifndef FEDERAL_API_PARAMS_H
#define FEDERAL_API_PARAMS_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "catalogue.h"
#include "period.h"
#include "query.h"

#define PARAMS_MAX_VALUE QUERY_MAX_VALUE
#define PARAMS_MAX_QUERY QUERY_MAX

enum params_allowed {
    PARAM_PERIOD = 1 << 0,
    PARAM_PROVINCE = 1 << 1,
    PARAM_DISTRICT = 1 << 2,
    PARAM_MUNICIPALITY = 1 << 3,
    PARAM_BY = 1 << 4,
    PARAM_FORMAT = 1 << 5,
    PARAM_EXACT = 1 << 6,
    PARAM_LIMIT = 1 << 7,
    PARAM_APPROVAL = 1 << 8,         /* approval=approved|all (fapprovals.h) */
    PARAM_BY_AREA = 1 << 9,          /* by=province|municipality, for the routes that take it */
    PARAM_PERIOD_OPTIONAL = 1 << 10, /* period= taken but not required */
    PARAM_PAGE = 1 << 11,            /* DHIS2's paging: page=1.. */
    PARAM_PAGE_SIZE = 1 << 12,       /* pageSize=1..PARAMS_MAX_PAGE_SIZE */
    PARAM_ID_SCHEME = 1 << 13,       /* idScheme=UID (default) or CODE */
    PARAM_SERIES = 1 << 14,          /* series=month|quarter|bs_month|trimester|year; with it
                                      * by= may name an area and period= a range A..B */
};

/* by=<area>[,grouping] on /v1/indicators/<code>: one answer per area of that level within the
 * query's filter. */
enum params_area {
    PARAMS_AREA_NONE,
    PARAMS_AREA_PROVINCE,
    PARAMS_AREA_DISTRICT,
    PARAMS_AREA_MUNICIPALITY,
};

/* The most periods one series answers: ten years of months, or 240 years. */
#define PARAMS_MAX_SERIES 240

#define PARAMS_DEFAULT_PAGE_SIZE 10000
#define PARAMS_MAX_PAGE_SIZE     100000

typedef struct params_query {
    int has_period;
    char period[PERIOD_MAX];
    enum period_kind kind;
    int province;          /* 0 when not given; else 1..7 */
    int district;          /* 0 when not given; else an official district code */
    uint32_t municipality; /* 0 when not given */
    int area_province;     /* the province that contains the area asked (0: national) */
    char by[64];           /* normalised declared grouping; "" for the total only (with
                            * PARAM_BY_AREA: "province", "municipality" or "") */
    int approved;          /* approval=approved: approved municipality-months only */
    int csv;               /* format=csv */
    int exact;             /* -1 not given, else 0 or 1 */
    long limit;            /* 0 when not given */
    long page;             /* 1 when not given */
    long page_size;        /* PARAMS_DEFAULT_PAGE_SIZE when not given */
    int id_code;           /* idScheme=CODE: our codes instead of DHIS2 ids */
    int by_area;           /* enum params_area (by=district,sex: by_area DISTRICT, by "sex") */
    int series;            /* -1: none; else the enum period_kind of the series' periods */
    char period_last[PERIOD_MAX]; /* period=A..B: B (period holds A); "" otherwise */
    /* The query as accepted, in its one spelling: decoded "name=value" pairs in the order
     * given, joined by '&' (common/query.h); "" for none. */
    char normalised[QUERY_NORM_MAX];
} params_query;

/* Parses the raw query string (as received, percent-encoded) accepting the parameters in
 * allowed; ind is the indicator for by= (may be NULL when by is not allowed). Returns 0
 * (q->normalised set), or REINT_EINVAL with a message in err naming the parameter and what is
 * wrong (the message never repeats a value that failed the character check). */
int params_parse(const char *raw, unsigned allowed, const catalogue_indicator *ind, params_query *q,
                 char *err, size_t errlen);

/* The periods of q's series (q->series >= 0), in order: every period of kind q->series from
 * the first month of q->period to the last month of q->period_last (or of q->period). Writes
 * at most max into out and returns how many there are (params_parse has checked that they
 * fit PARAMS_MAX_SERIES). */
size_t params_series(const params_query *q, char (*out)[PERIOD_MAX], size_t max);

/* Whether s is a plausible indicator code in a path (1..64 of a-z and _). */
int params_code_ok(const char *s);

#endif
