#include "review.h"

#include <stdio.h>
#include <string.h>

#include "bscal.h"
#include "geo.h"
#include "period.h"
#include "utf8.h"

const char *review_state_name(int state)
{
    switch (state) {
    case REINT__V1__MONTH_STATE__MONTH_STATE_OPEN:
        return "open";
    case REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED:
        return "closed";
    case REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED:
        return "approved";
    case REINT__V1__MONTH_STATE__MONTH_STATE_RETURNED:
        return "returned";
    case REINT__V1__MONTH_STATE__MONTH_STATE_CHANGED:
        return "changed";
    default:
        return "unknown";
    }
}

int review_period(int bs, int32_t ym, char *out, size_t outlen)
{
    int32_t first, last;
    if (bscal_month_span(bs, ym, &first, &last) != 0) {
        if (outlen)
            out[0] = '\0';
        return REINT_EINVAL;
    }
    snprintf(out, outlen, "%s%04d-%02d", bs ? "BS" : "", ym / 100, ym % 100);
    return 0;
}

int review_parse_month(const char *period, int *bs, int32_t *ym)
{
    enum period_kind kind;
    int b;
    int32_t first, last;
    if (period == NULL || strlen(period) >= PERIOD_MAX ||
        period_months(period, &kind, &b, &first, &last) != 0 ||
        (kind != PERIOD_MONTH && kind != PERIOD_BS_MONTH) || first != last) {
        /* "BS1970-01" has a month's shape; only the table's range refuses it. */
        int shaped = period && strlen(period) == 9 && !strncmp(period, "BS", 2) &&
                     period[6] == '-' && strspn(period + 2, "0123456789") == 4 &&
                     strspn(period + 7, "0123456789") == 2 && strcmp(period + 7, "00") != 0 &&
                     strcmp(period + 7, "12") <= 0;
        return shaped ? REINT_ERANGE : REINT_EINVAL;
    }
    *bs = b != 0;
    *ym = first;
    return 0;
}

int review_comment_ok(const char *text, size_t len, char *why, size_t whylen)
{
    if (len > REVIEW_COMMENT_MAX) {
        snprintf(why, whylen,
                 "comment is %zu bytes; at most %d are taken (about 330 letters in Devanagari)",
                 len, REVIEW_COMMENT_MAX);
        return REINT_ETOOBIG;
    }
    if (!utf8_valid(text, len)) {
        snprintf(why, whylen, "comment is not valid UTF-8");
        return REINT_EINVAL;
    }
    /* The comment reaches the node's clerk (`municipal-node months`) and the federal tier. */
    long at = utf8_unsafe_at(text, len, "\t\n\r");
    if (at >= 0) {
        snprintf(why, whylen,
                 "comment holds a control character or a mark that reorders text (byte %ld)", at);
        return REINT_EINVAL;
    }
    return 0;
}

/* A received change's comment: the rule before d903c69 (no C0 control but tab and line
 * breaks, no DEL), which every hub's store meets. A comment stored before that commit with a
 * C1 control or a reordering mark must still travel, or its month's changes would be refused
 * at every session for good; where it is shown in a terminal it is scrubbed. */
static int review__received_comment_ok(const char *text, size_t len, char *why, size_t whylen)
{
    if (len > REVIEW_COMMENT_MAX || !utf8_valid(text, len))
        return review_comment_ok(text, len, why, whylen);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            snprintf(why, whylen, "comment holds a control character (byte %zu)", i);
            return REINT_EINVAL;
        }
    }
    return 0;
}

/* A token name as common/tokens.h makes them: 0..REVIEW_WHO_MAX of A-Z a-z 0-9 _ . - */
static int review__who_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > REVIEW_WHO_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int review_check(const Reint__V1__MonthReview *m, char *why, size_t whylen)
{
    char p[PERIOD_MAX];
    if (geo_find(m->municipality) == NULL) {
        snprintf(why, whylen, "municipality %u is not a local level code", m->municipality);
        return REINT_EINVAL;
    }
    if (m->calendar != REINT__V1__CALENDAR__CALENDAR_BS &&
        m->calendar != REINT__V1__CALENDAR__CALENDAR_AD) {
        snprintf(why, whylen, "municipality %u: calendar %d is not BS or AD", m->municipality,
                 (int)m->calendar);
        return REINT_EINVAL;
    }
    if (review_period(m->calendar == REINT__V1__CALENDAR__CALENDAR_BS, m->month, p, sizeof(p)) !=
        0) {
        snprintf(why, whylen, "municipality %u: month %d is not a month of its calendar",
                 m->municipality, m->month);
        return REINT_EINVAL;
    }
    /* A Gregorian month with no day in the BS table holds no figure (records are dated
     * within it) and no answer could ever show it: "0001-01" was stored, never read. */
    int32_t first, last, ad, bsm;
    if (m->calendar == REINT__V1__CALENDAR__CALENDAR_AD &&
        (bscal_month_span(0, m->month, &first, &last) != 0 ||
         (bscal_pair_of_day(first, &ad, &bsm) != 0 && bscal_pair_of_day(last, &ad, &bsm) != 0))) {
        snprintf(why, whylen, "municipality %u: month %s has no day in the BS calendar table",
                 m->municipality, p);
        return REINT_EINVAL;
    }
    if (m->state < REINT__V1__MONTH_STATE__MONTH_STATE_OPEN ||
        m->state > REINT__V1__MONTH_STATE__MONTH_STATE_CHANGED) {
        snprintf(why, whylen, "municipality %u %s: state %d is not a state of a month",
                 m->municipality, p, (int)m->state);
        return REINT_EINVAL;
    }
    if (m->decision && m->state != REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED &&
        m->state != REINT__V1__MONTH_STATE__MONTH_STATE_RETURNED) {
        snprintf(why, whylen, "municipality %u %s: a decision approves or returns", m->municipality,
                 p);
        return REINT_EINVAL;
    }
    if (m->clock == 0 || m->clock > REVIEW_CLOCK_MAX || m->version > REVIEW_CLOCK_MAX ||
        m->decided_at > REVIEW_CLOCK_MAX) {
        snprintf(why, whylen, "municipality %u %s: clock, version or time out of range",
                 m->municipality, p);
        return REINT_EINVAL;
    }
    if (m->decided_by == NULL || !review__who_ok(m->decided_by)) {
        snprintf(why, whylen, "municipality %u %s: decided_by is not a token name", m->municipality,
                 p);
        return REINT_EINVAL;
    }
    char cwhy[120];
    if (m->comment == NULL ||
        review__received_comment_ok(m->comment, strlen(m->comment), cwhy, sizeof(cwhy)) != 0) {
        snprintf(why, whylen, "municipality %u %s: %s", m->municipality, p,
                 m->comment ? cwhy : "no comment field");
        return REINT_EINVAL;
    }
    return 0;
}
