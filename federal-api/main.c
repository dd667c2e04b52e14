/* federal-api: the national tier. Receives provincial hubs' rollup snapshots over mutual
 * TLS into PostgreSQL and serves national indicators over HTTPS to ministries, provinces,
 * the public (cell-key perturbed) and admins. Commands: serve (default), migrate, token. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "directive.h"
#include "fapi.h"
#include "fcovcache.h"
#include "ftokcache.h"
#include "fdirectives.h"
#include "fingest.h"
#include "hlc.h"
#include "crlwatch.h"
#include "log.h"
#include "netaddr.h"
#include "loopwatch.h"
#include "migrate.h"
#include "testhook.h"
#include "tls.h"

typedef struct fed_config {
    char sync_listen[CONFIG_STR_MAX];
    char https_listen[CONFIG_STR_MAX];
    char http_listen[CONFIG_STR_MAX];
    char proxy_from[CONFIG_STR_MAX];
    char pg[CONFIG_STR_MAX];
    long pool_size;
    long max_frame;
    long start_wait_s;
    long auth_max_failures;
    long auth_window_s;
    long open_max_reads;
    long open_window_s;
    char migrations[CONFIG_STR_MAX];
    char log_level[CONFIG_STR_MAX];
    char ca[CONFIG_STR_MAX], cert[CONFIG_STR_MAX], key[CONFIG_STR_MAX], crl[CONFIG_STR_MAX];
    char https_cert[CONFIG_STR_MAX], https_key[CONFIG_STR_MAX];
    char directive_key_id[CONFIG_STR_MAX], directive_key[CONFIG_STR_MAX];
} fed_config;

static fed_config cfg = {
    .sync_listen = "127.0.0.1:7500",
    .https_listen = "127.0.0.1:8443",
    .http_listen = "127.0.0.1:8500",
    .pg = "host=/var/run/postgresql dbname=reintegration",
    .pool_size = 4,
    .max_frame = 4 * 1024 * 1024,
    .start_wait_s = 30,
    .auth_max_failures = 20,
    .auth_window_s = 60,
    .open_max_reads = 600,
    .open_window_s = 60,
    .migrations = "",
    .log_level = "info",
    .ca = "var/pki/ca.crt",
    .cert = "var/pki/federal.crt",
    .key = "var/pki/federal.key",
    .crl = "var/pki/crl.pem",
    .directive_key_id = "",
    .directive_key = "",
};

static const config_item items[] = {
    CONFIG_ITEM_STR("federal", "sync_listen", &cfg.sync_listen,
                    "IPv4:port where provincial hubs connect (mutual TLS 1.3)"),
    CONFIG_ITEM_STR("federal", "https_listen", &cfg.https_listen,
                    "IPv4:port of the HTTPS API (TLS 1.2+, ECDHE + AEAD only; bearer tokens)"),
    CONFIG_ITEM_STR("federal", "https_cert", &cfg.https_cert,
                    "PEM web certificate of the HTTPS API and the ministry's pages, for browsers "
                    "(deploy/pki.sh web-issue DIR federal NAME); empty: the [tls] certificate, "
                    "which only clients given ca.crt trust"),
    CONFIG_ITEM_STR("federal", "https_key", &cfg.https_key, "private key of https_cert (PEM)"),
    CONFIG_ITEM_STR(
        "federal", "http_listen", &cfg.http_listen,
        "IPv4:port of plain /healthz, /metrics and /crl (bind to loopback; empty: none)"),
    CONFIG_ITEM_STR("federal", "proxy_from", &cfg.proxy_from,
                    "addresses of TCP load balancers in front of the HTTPS API, which must send a "
                    "PROXY protocol v2 header (comma-separated; empty: none, clients connect "
                    "directly); the failed-token limiter then keys on the client's address"),
    CONFIG_ITEM_STR("federal", "pg", &cfg.pg, "libpq connection string of the federal database"),
    CONFIG_ITEM_INT("federal", "pool_size", &cfg.pool_size, "PostgreSQL connections in the pool", 1,
                    64),
    CONFIG_ITEM_INT("federal", "max_frame", &cfg.max_frame,
                    "largest frame accepted from a hub, in bytes (refused before allocation)",
                    CONFIG_FRAME_MIN, CONFIG_FRAME_MAX),
    CONFIG_ITEM_INT("federal", "start_wait_s", &cfg.start_wait_s,
                    "seconds to wait at start for the database to accept connections", 0, 3600),
    CONFIG_ITEM_INT("federal", "auth_max_failures", &cfg.auth_max_failures,
                    "failed token attempts per (client address, token prefix) per window before "
                    "429; a valid token is never refused",
                    1, 1000000),
    CONFIG_ITEM_INT("federal", "auth_window_s", &cfg.auth_window_s,
                    "window of the failed-attempt limit, in seconds; also the first 429's "
                    "Retry-After, doubled at each later block of the same pair",
                    1, 86400),
    CONFIG_ITEM_INT("federal", "open_max_reads", &cfg.open_max_reads,
                    "anonymous reads of the open-data routes per client address per window "
                    "before 429 (they are counted per route and day, not audited one by one)",
                    1, 1000000),
    CONFIG_ITEM_INT("federal", "open_window_s", &cfg.open_window_s,
                    "window of the open-data read limit, in seconds; also the first 429's "
                    "Retry-After",
                    1, 86400),
    CONFIG_ITEM_STR(
        "federal", "migrations", &cfg.migrations,
        "directory of NNNN_*.sql migrations, for a schema under development (empty: those "
        "compiled into federal-api)"),
    CONFIG_ITEM_STR("federal", "log_level", &cfg.log_level, "debug, info, warn or error"),
    CONFIG_ITEM_STR("tls", "ca", &cfg.ca, "PEM file of the private CA (deploy/pki.sh init)"),
    CONFIG_ITEM_STR("tls", "cert", &cfg.cert, "this service's certificate (federal)"),
    CONFIG_ITEM_STR("tls", "key", &cfg.key,
                    "this service's private key (the pair reloaded on SIGHUP)"),
    CONFIG_ITEM_STR(
        "tls", "crl", &cfg.crl,
        "PEM CRL: checked on hub connections, served at GET /crl, reloaded on SIGHUP and when "
        "the file changes (empty: no revocation check)"),
    CONFIG_ITEM_STR(
        "directives", "key_id", &cfg.directive_key_id,
        "key id named in each published directive; hubs and nodes list it in their [directives] "
        "keys as key_id=path.pub"),
    CONFIG_ITEM_STR(
        "directives", "private_key", &cfg.directive_key,
        "Ed25519 private key PEM that signs POST /v1/directives (deploy/pki.sh directive-key); "
        "empty: directives cannot be published (503)"),
};
#define N_ITEMS (sizeof(items) / sizeof(items[0]))

static uv_loop_t *loop;
static tls_ctx *sync_tls, *https_tls;
static db_pool *db;
static fingest *ing;
static fcovcache *covcache;
static ftokcache *tokcache;

/* The pool's notifications and listening events, for both caches. */
static void fed__on_notify(void *ud, const char *channel, const char *payload)
{
    (void)ud;
    fcovcache_notify(covcache, channel, payload);
    ftokcache_notify(tokcache, channel, payload);
}
static fapi *api;
static uv_signal_t sig_term, sig_int, sig_hup;
static crlwatch crl;
static loopwatch loopw;

static void usage(FILE *f)
{
    fprintf(f, "usage: federal-api [--config FILE] [serve]\n"
               "       federal-api [--config FILE] migrate\n"
               "       federal-api [--config FILE] token create --role ROLE [--province P] NAME\n"
               "       federal-api [--config FILE] token list\n"
               "       federal-api [--config FILE] token revoke NAME\n"
               "       federal-api [--config FILE] --print-config\n"
               "                                  every key with its value: the file's, or\n"
               "                                  its default\n"
               "\n"
               "serve    applies pending migrations, then receives provincial hubs' rollup\n"
               "         snapshots over mutual TLS into PostgreSQL and serves the HTTPS API:\n"
               "         GET /v1/indicators, /v1/indicators/CODE?period=&province=&district=\n"
               "         &municipality=&by=&format=json|csv, /v1/dataValueSets?period=,\n"
               "         /v1/audit (admin), GET /v1/directives, POST /v1/directives (admin;\n"
               "         signed with [directives] private_key, pushed to connected hubs),\n"
               "         /crl, /healthz, /metrics (plain port).\n"
               "         SIGHUP reloads the CRL and [tls] cert and key (a rotation); SIGTERM\n"
               "         stops.\n"
               "migrate  applies the migrations compiled in (federal-api/migrations/NNNN_*.sql\n"
               "         as built) in order, each in a transaction, versions in\n"
               "         schema_migrations, and loads the geography.\n"
               "token    ROLE is ministry, province (with --province P) or province:P, public\n"
               "         or admin. create prints the new token once; only its SHA-256 is kept.\n\n"
               "Tests only: --enable-test-hooks [--test-clock FILE] [--test-fault NAME[:N],...]\n"
               "shift the clock by FILE's seconds and inject faults; never in production.\n");
}

static PGconn *connect_sync(void)
{
    PGconn *c = PQconnectdb(cfg.pg);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "federal-api: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* [federal] migrations, or NULL: those compiled in. */
static const char *migrations_dir(void)
{
    return cfg.migrations[0] ? cfg.migrations : NULL;
}

static int cmd_migrate(void)
{
    char err[1024];
    PGconn *c = connect_sync();
    if (c == NULL)
        return 1;
    int n = migrate_run(c, migrations_dir(), err, sizeof(err));
    PQfinish(c);
    if (n < 0) {
        fprintf(stderr, "federal-api: migrate: %s\n", err);
        return 1;
    }
    printf("%d migration%s applied from %s\n", n, n == 1 ? "" : "s",
           migrations_dir() ? migrations_dir() : "those compiled in");
    return 0;
}

static int cmd_token(int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[0];
    const char *role_s = NULL, *name = NULL;
    long province = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role_s = argv[++i];
        } else if (strcmp(argv[i], "--province") == 0 && i + 1 < argc) {
            char *end = NULL;
            province = strtol(argv[++i], &end, 10);
            if (*end != '\0' || province < 1 || province > 7) {
                fprintf(stderr, "federal-api: --province \"%s\" is not 1..7\n", argv[i]);
                return 2;
            }
        } else if (name == NULL && argv[i][0] != '-') {
            name = argv[i];
        } else {
            fprintf(stderr, "federal-api: token: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    PGconn *c = NULL;
    PGresult *r = NULL;
    int rc = 1;
    if (strcmp(sub, "create") == 0) {
        enum auth_role role;
        int prov = 0;
        char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_HEX + 1], provs[8];
        if (role_s == NULL || name == NULL) {
            fprintf(stderr, "federal-api: token create --role ROLE [--province P] NAME\n");
            return 2;
        }
        if (auth_parse_role(role_s, province, &role, &prov) != 0) {
            fprintf(stderr,
                    "federal-api: role \"%s\" is not ministry, province (with "
                    "--province 1..7), province:P, public or admin\n",
                    role_s);
            return 2;
        }
        if (!auth_name_ok(name)) {
            fprintf(stderr, "federal-api: token name must be 1..64 of A-Z a-z 0-9 _ . -\n");
            return 2;
        }
        if (auth_token_generate(token, sizeof(token)) != 0 ||
            auth_hash_hex(token, hash, sizeof(hash)) != 0) {
            fprintf(stderr, "federal-api: cannot make a random token\n");
            return 1;
        }
        snprintf(provs, sizeof(provs), "%d", prov);
        const char *v[4] = {name, auth_role_name(role), prov ? provs : NULL, hash};
        if ((c = connect_sync()) == NULL)
            return 1;
        r = PQexecParams(c,
                         "INSERT INTO tokens(name, role, province, hash)"
                         " VALUES ($1, $2, $3::smallint, decode($4, 'hex'))",
                         4, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "federal-api: token create: %s", PQerrorMessage(c));
            goto out;
        }
        printf("%s\n", token);
        rc = 0;
    } else if (strcmp(sub, "list") == 0) {
        if ((c = connect_sync()) == NULL)
            return 1;
        r = PQexecParams(c,
                         "SELECT name, role, coalesce(province::text, ''), created_at::text,"
                         " coalesce(revoked_at::text, '') FROM tokens ORDER BY name",
                         0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "federal-api: token list: %s", PQerrorMessage(c));
            goto out;
        }
        printf("name\trole\tprovince\tcreated\trevoked\n");
        for (int i = 0; i < PQntuples(r); i++)
            printf("%s\t%s\t%s\t%s\t%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                   PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
        rc = 0;
    } else if (strcmp(sub, "revoke") == 0) {
        if (name == NULL) {
            fprintf(stderr, "federal-api: token revoke NAME\n");
            return 2;
        }
        if ((c = connect_sync()) == NULL)
            return 1;
        const char *v[1] = {name};
        r = PQexecParams(c,
                         "UPDATE tokens SET revoked_at = now() WHERE name = $1"
                         " AND revoked_at IS NULL",
                         1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "federal-api: token revoke: %s", PQerrorMessage(c));
            goto out;
        }
        if (strcmp(PQcmdTuples(r), "1") != 0) {
            fprintf(stderr, "federal-api: no active token named \"%s\"\n", name);
            goto out;
        }
        printf("revoked %s\n", name);
        rc = 0;
    } else {
        fprintf(stderr, "federal-api: token: unknown subcommand \"%s\"\n", sub);
        usage(stderr);
        return 2;
    }
out:
    PQclear(r);
    PQfinish(c);
    return rc;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (signum == SIGHUP) {
        tls_ctx *ctxs[] = {sync_tls, https_tls};
        tls_ctx_reload_certs(ctxs, 2);
        crlwatch_reload(&crl);
        return;
    }
    log_info("signal %d: stopping", signum);
    fingest_stop(ing);
    fapi_stop(api);
    db_pool_stop(db);
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_signal_stop(&sig_hup);
    crlwatch_stop(&crl);
    loopwatch_stop(&loopw);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
}

/* Migrations and the geography, before the loop starts (blocking is fine here), waiting
 * for the database to come up for at most start_wait_s. */
static int start_migrate(void)
{
    char err[1024];
    uint64_t deadline = clock_mono_ms() + (uint64_t)cfg.start_wait_s * 1000;
    for (;;) {
        PGconn *c = PQconnectdb(cfg.pg);
        if (PQstatus(c) == CONNECTION_OK) {
            int n = migrate_run(c, migrations_dir(), err, sizeof(err));
            PQfinish(c);
            if (n < 0) {
                log_error("migrate: %s", err);
                return -1;
            }
            return 0;
        }
        if (clock_mono_ms() > deadline) {
            log_error("database not reachable: %s", PQerrorMessage(c));
            PQfinish(c);
            return -1;
        }
        PQfinish(c);
        usleep(250 * 1000);
    }
}

/* A signing key that cannot sign is found at start, not at the first publication. */
static int check_directive_key(void)
{
    char err[512];
    if (cfg.directive_key[0] == '\0' && cfg.directive_key_id[0] == '\0') {
        log_info("no [directives] private_key: POST /v1/directives answers 503");
        return 0;
    }
    if (!fdir_key_id_ok(cfg.directive_key_id)) {
        log_error("[directives] key_id \"%.64s\" must be 1..%d of A-Z a-z 0-9 _ . - (and is "
                  "required with private_key)",
                  cfg.directive_key_id, FDIR_KEY_ID_MAX);
        return -1;
    }
    if (cfg.directive_key[0] == '\0') {
        log_error("[directives] key_id is set but private_key is empty");
        return -1;
    }
    Reint__V1__Directive d = REINT__V1__DIRECTIVE__INIT;
    Reint__V1__SignedDirective sd = REINT__V1__SIGNED_DIRECTIVE__INIT;
    d.key_id = cfg.directive_key_id;
    if (directive_sign(&d, cfg.directive_key_id, cfg.directive_key, &sd, err, sizeof(err)) != 0) {
        log_error("[directives] private_key: %s", err);
        return -1;
    }
    directive_signed_free(&sd);
    log_info("directives are signed with key \"%s\" (%s)", cfg.directive_key_id, cfg.directive_key);
    return 0;
}

static int cmd_serve(void)
{
    char err[512];
    if (check_directive_key() != 0)
        return 1;
    if (start_migrate() != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    if (loopwatch_start(&loopw, loop) != 0)
        log_warn("cannot measure the event loop's busy time; /metrics shows none");
    tls_ctx_opts so = {TLS_MODE_MUTUAL_SERVER, cfg.ca, cfg.cert, cfg.key,
                       cfg.crl[0] ? cfg.crl : NULL};
    /* Browsers trust a web CA they may import, not the tiers' private CA (as at the hub). */
    if ((cfg.https_cert[0] == '\0') != (cfg.https_key[0] == '\0')) {
        log_error("[federal] https_cert and https_key go together: set both, or neither");
        return 2;
    }
    int web = cfg.https_cert[0] != '\0';
    tls_ctx_opts ho = {TLS_MODE_HTTPS_SERVER, web ? NULL : cfg.ca, web ? cfg.https_cert : cfg.cert,
                       web ? cfg.https_key : cfg.key, NULL};
    if (tls_ctx_new(&sync_tls, &so, err, sizeof(err)) != 0 ||
        tls_ctx_new(&https_tls, &ho, err, sizeof(err)) != 0) {
        log_error("TLS: %s", err);
        return 2; /* the configured files: a configuration error */
    }
    const char *named;
    if (tls_ctx_check_identity(sync_tls, "federal", -1, &named) != 0) {
        log_error("[tls] cert %s names %s, not federal: give federal-api the federal tier's "
                  "certificate",
                  cfg.cert, named);
        return 2;
    }
    /* Made before the pool, whose connections feed it as they LISTEN. */
    covcache = fcovcache_new();
    tokcache = ftokcache_new();
    if (covcache == NULL || tokcache == NULL) {
        log_error("out of memory");
        return 1;
    }
    db_opts dbo = {.loop = loop,
                   .conninfo = cfg.pg,
                   .size = (int)cfg.pool_size,
                   .listen = FCOVCACHE_CHANNEL,
                   .on_notify = fed__on_notify,
                   .notify_ud = NULL};
    if (db_pool_start(&db, &dbo) != 0) {
        log_error("cannot start the database pool");
        return 1;
    }
    fingest_opts io = {.loop = loop,
                       .tls = sync_tls,
                       .db = db,
                       .listen = cfg.sync_listen,
                       .max_frame = (size_t)cfg.max_frame};
    if (fingest_start(&ing, &io, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    fapi_opts ao = {.loop = loop,
                    .db = db,
                    .https_tls = https_tls,
                    .sync_tls = sync_tls,
                    .ingest = ing,
                    .covcache = covcache,
                    .tokcache = tokcache,
                    .loopwatch = &loopw,
                    .https_listen = cfg.https_listen,
                    .http_listen = cfg.http_listen,
                    .crl_file = cfg.crl,
                    .proxy_from = cfg.proxy_from,
                    .auth_max_failures = (unsigned)cfg.auth_max_failures,
                    .auth_window_s = (unsigned)cfg.auth_window_s,
                    .open_max_reads = (unsigned)cfg.open_max_reads,
                    .open_window_s = (unsigned)cfg.open_window_s,
                    .directive_key_id = cfg.directive_key_id,
                    .directive_key = cfg.directive_key};
    if (fapi_start(&api, &ao, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    if (crlwatch_start(&crl, loop, cfg.crl, sync_tls, NULL) != 0)
        log_warn("cannot watch %s for changes; SIGHUP still reloads it", cfg.crl);
    char sync_at[300];
    log_info("sync on %s, HTTPS on port %d, HTTP on port %d, pool of %ld",
             netaddr_bound(cfg.sync_listen, fingest_port(ing), sync_at, sizeof(sync_at)),
             fapi_https_port(api), fapi_http_port(api), cfg.pool_size);
    fprintf(stdout, "ready sync_port=%d https_port=%d http_port=%d\n", fingest_port(ing),
            fapi_https_port(api), fapi_http_port(api));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    tls_ctx_free(sync_tls);
    tls_ctx_free(https_tls);
    fcovcache_free(covcache);
    ftokcache_free(tokcache);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    char err[512];
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"print-config", no_argument, NULL, 'p'},
                                         {"enable-test-hooks", no_argument, NULL, 'T'},
                                         {"test-clock", required_argument, NULL, 'C'},
                                         {"test-fault", required_argument, NULL, 'F'},
                                         {NULL, 0, NULL, 0}};
    int test_hooks = 0, print = 0;
    const char *test_clock = NULL, *test_faults = NULL;
    int c;
    /* "+" stops at the first command so that its own options (token --role) stay put. */
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'p':
            print = 1;
            break;
        case 'T':
            test_hooks = 1;
            break;
        case 'C':
            test_clock = optarg;
            break;
        case 'F':
            test_faults = optarg;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (config_path && config_load(config_path, items, N_ITEMS, err, sizeof(err)) != 0) {
        fprintf(stderr, "federal-api: %s\n", err);
        return 2;
    }
    /* With --config, what federal-api would run with: the file's values over the defaults.
     * print-config as a command too, as municipal-node spells it (an operator typed one
     * form on the other binary). */
    if (optind + 1 == argc && strcmp(argv[optind], "print-config") == 0)
        print = 1;
    if (print) {
        config_print(stdout, items, N_ITEMS);
        return 0;
    }
    enum log_level lvl = LOG_INFO;
    if (log_parse_level(cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "federal-api: log_level \"%s\" is not debug, info, warn or error\n",
                cfg.log_level);
        return 2;
    }
    log_init("federal-api", lvl);
    if (testhook_setup("federal-api", test_hooks, test_clock, test_faults, err, sizeof(err)) != 0) {
        fprintf(stderr, "federal-api: %s\n", err);
        return 2;
    }
    if (cfg.pool_size < 1 || cfg.pool_size > 64) {
        fprintf(stderr, "federal-api: pool_size %ld is not 1..64\n", cfg.pool_size);
        return 2;
    }
    const char *cmd = optind < argc ? argv[optind] : "serve";
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve();
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate();
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - optind - 1, argv + optind + 1);
    fprintf(stderr, "federal-api: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
