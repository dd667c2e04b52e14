/* One request to the federal HTTPS API, from its route and bearer token to its answer: who
 * asked (token name, role, province), from which address, what (the printable target), the
 * parsed query, and the answer waiting for its audit row. fapi.c makes it and authenticates
 * it; the module of its route (findicators, faudit, fpublish) answers it exactly once, through
 * freq_finish or faudit_respond, which free it. */
#ifndef FEDERAL_API_FREQ_H
#define FEDERAL_API_FREQ_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "catalogue.h"
#include "db.h"
#include "fingest.h"
#include "fcovcache.h"
#include "ftokcache.h"
#include "fmetrics.h"
#include "http.h"
#include "limiter.h"
#include "params.h"
#include "sbuf.h"

/* A target as received holds the whole request-target (path and raw query), so that a
 * refused query is audited whole; an accepted one is audited as its path and normalised
 * query (params.h), which is never longer than the raw one. */
#define FREQ_TARGET_MAX (HTTP_MAX_URL + 1)
#define FREQ_CODE_MAX   64
_Static_assert(FREQ_TARGET_MAX > PARAMS_MAX_QUERY + 1 + 15 + FREQ_CODE_MAX,
               "the audit target holds the longest accepted path and query");

/* What every request of one server shares; owned by the server (fapi), which outlives its
 * requests. */
typedef struct freq_env {
    db_pool *db;
    fingest *ingest; /* may be NULL */
    fmetrics *m;
    fcovcache *covcache;    /* answers' approval coverage (fcovcache.h); may be NULL */
    ftokcache *tokcache;    /* tokens found valid (ftokcache.h); may be NULL */
    limiter *limiter;       /* failed token attempts per (client address, token prefix) */
    const char *dir_key_id; /* "" when this server does not publish directives */
    const char *dir_key;    /* the Ed25519 private key PEM's path, or "" */
} freq_env;

enum freq_route {
    FREQ_CATALOGUE,
    FREQ_INDICATOR,
    FREQ_DVS,
    FREQ_AUDIT,
    FREQ_DIRECTIVES,
    FREQ_COVERAGE,
    FREQ_APPROVALS, /* GET /v1/approvals (fapprovals.h) */
    FREQ_PROGRESS,  /* GET /v1/directives/<serial>/progress (fapprovals.h) */
    FREQ_METADATA,  /* DHIS2's metadata export */
    FREQ_ADX,       /* the values of dataValueSets as ADX XML */
    FREQ_OPENAPI,   /* the API's OpenAPI description */
    FREQ_SESSION    /* the dashboard's session: GET, POST (sign in), DELETE (fsession.h) */
};

typedef struct freq {
    const freq_env *env;
    http_req *r;
    enum freq_route route;
    int post; /* POST (else GET) */
    /* An anonymous read of the open-data routes (/open/v1/...): role public, counted per
     * route and day by fapi.c instead of an audit row each (faudit.h). */
    int open;
    char csrf[48]; /* the session's CSRF token when f came with a session cookie, else "" */
    char who[AUTH_NAME_MAX + 1]; /* the token's name; "" before authentication */
    char role_label[16];         /* "ministry", "province:3", ...; "" before */
    enum auth_role role;
    int province;                    /* of role province */
    char peer[64];                   /* the client's address, printable ASCII */
    char addr[LIMITER_ADDR_MAX];     /* peer without its port: the limiter's key */
    char prefix[LIMITER_PREFIX_MAX]; /* of the token presented ("none"): the limiter's key */
    uint8_t hash[32];                /* SHA-256 of the token presented, once read */
    uint64_t tok_since;              /* ftokcache_clock when its lookup was sent */
    /* path?query, printable ASCII, for the audit row: as received (whole) until the query is
     * accepted, then the path and the normalised query. */
    char target[FREQ_TARGET_MAX];
    char code[FREQ_CODE_MAX + 1];   /* the indicator code of /v1/indicators/<code> */
    const catalogue_indicator *ind; /* its catalogue entry; NULL for other routes */
    uint64_t serial;                /* the directive of /v1/directives/<serial>/progress */
    params_query q;
    /* The answer waiting for its audit row (faudit.c); body is freed with the request. */
    int status;
    char *body;
    size_t body_len;
    const char *ctype;
    /* What a route keeps across database round trips, freed with the request by
     * state_free (when set). */
    void *state;
    void (*state_free)(void *state);
} freq;

/* A request for r on env: peer and target filled in (as printable ASCII), not yet
 * authenticated. NULL when out of memory. */
freq *freq_new(const freq_env *env, http_req *r, int post);

/* Sets f's audit target to path?query (printable ASCII; "?" left out when query is ""). */
void freq_set_target(freq *f, const char *path, const char *query);

/* Answers f with status and body (copied), counts it, and frees f. */
void freq_finish(freq *f, int status, const char *ctype, const char *body, size_t len);

/* Answers f with {"error": msg} (and WWW-Authenticate for 401) without an audit row, for
 * answers that come before authentication or when the store is unreachable; frees f. */
void freq_error(freq *f, int status, const char *msg);

/* Answers f with b's content (200 or 201), or with 500 when b failed: an answer is never
 * cut short. Frees f; b stays the caller's. */
void freq_finish_sbuf(freq *f, int status, const char *ctype, const sbuf *b);

#endif
