#include "freviews.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcovcache.h"
#include "geo.h"
#include "review.h"
#include "sbuf.h"

/* A Reviews message holds at most REVIEW_PAGE changes of at most about 1.2 KB each. */
#define FREVIEWS_ARG_MAX (1u << 20)

enum { R_CLOCK, R_MUN, R_BS, R_YM, R_STATE, R_VERSION, R_DECISION, R_BY, R_AT, R_COMMENT, R_N };

/* Appends s to a PostgreSQL array literal as a quoted element: '"' and '\' escaped. */
static void freviews__text(sbuf *b, const char *s)
{
    sbuf_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sbuf_add(b, "\\", 1);
        sbuf_add(b, s, 1);
    }
    sbuf_add(b, "\"", 1);
}

int freviews_apply(db_pool *db, int province, const Reint__V1__Reviews *r, uint64_t *through,
                   db_cb cb, void *ud, char *why, size_t whylen)
{
    *through = 0;
    for (size_t i = 0; i < r->n_reviews; i++) {
        const Reint__V1__MonthReview *c = r->reviews[i];
        if (review_check(c, why, whylen) != 0)
            return REINT_EINVAL;
        const geo_local_level *g = geo_find(c->municipality);
        if (g == NULL || (int)g->province != province) {
            snprintf(why, whylen, "a review change of municipality %u, which is not of province %d",
                     c->municipality, province);
            return REINT_EFORBIDDEN;
        }
        if (c->clock > *through)
            *through = c->clock;
    }
    /* The months whose state may change: every federal-api process forgets the answers'
     * coverage of those months when the call commits (fcovcache.h). */
    uint8_t months[(FCOVCACHE_SLOTS + 7) / 8] = {0};
    for (size_t i = 0; i < r->n_reviews; i++)
        fcovcache_mark(months,
                       fcovcache_slot(r->reviews[i]->calendar == REINT__V1__CALENDAR__CALENDAR_BS,
                                      (int)r->reviews[i]->month));
    char payload[FCOVCACHE_PAYLOAD];
    fcovcache_payload(months, payload, sizeof(payload));
    sbuf a[R_N];
    for (int k = 0; k < R_N; k++) {
        sbuf_init(&a[k], FREVIEWS_ARG_MAX);
        sbuf_add(&a[k], "{", 1);
    }
    for (size_t i = 0; i < r->n_reviews; i++) {
        const Reint__V1__MonthReview *c = r->reviews[i];
        const char *sep = i ? "," : "";
        sbuf_printf(&a[R_CLOCK], "%s%" PRIu64, sep, c->clock);
        sbuf_printf(&a[R_MUN], "%s%u", sep, c->municipality);
        sbuf_printf(&a[R_BS], "%s%s", sep,
                    c->calendar == REINT__V1__CALENDAR__CALENDAR_BS ? "true" : "false");
        sbuf_printf(&a[R_YM], "%s%d", sep, c->month);
        sbuf_printf(&a[R_STATE], "%s%d", sep, (int)c->state);
        sbuf_printf(&a[R_VERSION], "%s%" PRIu64, sep, c->version);
        sbuf_printf(&a[R_DECISION], "%s%s", sep, c->decision ? "true" : "false");
        sbuf_puts(&a[R_BY], sep);
        freviews__text(&a[R_BY], c->decided_by);
        sbuf_printf(&a[R_AT], "%s%" PRIu64, sep, c->decided_at);
        sbuf_puts(&a[R_COMMENT], sep);
        freviews__text(&a[R_COMMENT], c->comment);
    }
    char prov[8];
    snprintf(prov, sizeof(prov), "%d", province);
    const char *v[1 + R_N + 1] = {prov};
    int failed = 0;
    for (int k = 0; k < R_N; k++) {
        sbuf_add(&a[k], "}", 1);
        failed |= a[k].failed;
        v[1 + k] = a[k].p;
    }
    v[1 + R_N] = payload;
    int rc = failed ? REINT_ENOMEM
                    : db_query(db,
                               "SELECT fed_apply_reviews($1::smallint, $2::bigint[], $3::integer[],"
                               " $4::boolean[], $5::integer[], $6::smallint[], $7::bigint[],"
                               " $8::boolean[], $9::text[], $10::bigint[], $11::text[]),"
                               " CASE WHEN $12::text <> '' THEN pg_notify('" FCOVCACHE_CHANNEL
                               "', $12::text) END",
                               1 + R_N + 1, v, cb, ud);
    for (int k = 0; k < R_N; k++)
        sbuf_free(&a[k]);
    return rc;
}

int freviews_load(db_pool *db, int province, uint64_t after, db_cb cb, void *ud)
{
    char prov[8], a[24], lim[8];
    snprintf(prov, sizeof(prov), "%d", province);
    snprintf(a, sizeof(a), "%" PRIu64, after > REVIEW_CLOCK_MAX ? REVIEW_CLOCK_MAX : after);
    snprintf(lim, sizeof(lim), "%d", REVIEW_PAGE);
    const char *v[3] = {prov, a, lim};
    return db_query(db,
                    "SELECT clock, municipality, bs, ym, state, version, decision, decided_by,"
                    " decided_at_ms, comment FROM approval_log"
                    " WHERE province = $1::smallint AND clock > $2::bigint ORDER BY clock"
                    " LIMIT $3::integer",
                    3, v, cb, ud);
}

void freviews_free(Reint__V1__Reviews *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_reviews; i++) {
        free(r->reviews[i]->decided_by);
        free(r->reviews[i]->comment);
        free(r->reviews[i]);
    }
    free(r->reviews);
    free(r);
}

/* A decimal in [0, max]. */
static int freviews__u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

int freviews_decode(const PGresult *res, Reint__V1__Reviews **out)
{
    int rows = PQntuples(res);
    *out = NULL;
    if (PQnfields(res) != R_N || rows > REVIEW_PAGE)
        return REINT_EMALFORMED;
    Reint__V1__Reviews *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return REINT_ENOMEM;
    reint__v1__reviews__init(r);
    if (rows && (r->reviews = calloc((size_t)rows, sizeof(*r->reviews))) == NULL) {
        free(r);
        return REINT_ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        Reint__V1__MonthReview *m = calloc(1, sizeof(*m));
        uint64_t clock, mun, ym, state, version, at;
        if (m == NULL) {
            freviews_free(r);
            return REINT_ENOMEM;
        }
        reint__v1__month_review__init(m);
        r->reviews[r->n_reviews++] = m;
        m->decided_by = strdup(PQgetvalue(res, i, R_BY));
        m->comment = strdup(PQgetvalue(res, i, R_COMMENT));
        if (m->decided_by == NULL || m->comment == NULL) {
            freviews_free(r);
            return REINT_ENOMEM;
        }
        if (freviews__u64(PQgetvalue(res, i, R_CLOCK), REVIEW_CLOCK_MAX, &clock) ||
            freviews__u64(PQgetvalue(res, i, R_MUN), UINT32_MAX, &mun) ||
            freviews__u64(PQgetvalue(res, i, R_YM), 999999, &ym) ||
            freviews__u64(PQgetvalue(res, i, R_STATE), 5, &state) ||
            freviews__u64(PQgetvalue(res, i, R_VERSION), REVIEW_CLOCK_MAX, &version) ||
            freviews__u64(PQgetvalue(res, i, R_AT), REVIEW_CLOCK_MAX, &at)) {
            freviews_free(r);
            return REINT_EMALFORMED;
        }
        m->clock = clock;
        m->municipality = (uint32_t)mun;
        m->calendar = PQgetvalue(res, i, R_BS)[0] == 't' ? REINT__V1__CALENDAR__CALENDAR_BS
                                                         : REINT__V1__CALENDAR__CALENDAR_AD;
        m->month = (int32_t)ym;
        m->state = (Reint__V1__MonthState)state;
        m->version = version;
        m->decision = PQgetvalue(res, i, R_DECISION)[0] == 't';
        m->decided_at = at;
    }
    *out = r;
    return 0;
}
