/* provincial-hub: receives municipal nodes' records over mutual TLS and keeps the newest
 * version of each; answers /healthz and /metrics. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "geo.h"
#include "http.h"
#include "gaps.h"
#include "ingest.h"
#include "record.h"
#include "tokens.h"
#include "uplink.h"
#include "catalogue.h"
#include "crlwatch.h"
#include "log.h"
#include "netaddr.h"
#include "tls.h"

typedef struct hub_config {
    long province;
    char data_dir[CONFIG_STR_MAX];
    char sync_listen[CONFIG_STR_MAX];
    char http_listen[CONFIG_STR_MAX];
    long max_frame;
    char log_level[CONFIG_STR_MAX];
    char ca[CONFIG_STR_MAX], cert[CONFIG_STR_MAX], key[CONFIG_STR_MAX], crl[CONFIG_STR_MAX];
    char directive_keys[CONFIG_STR_MAX];
    char https_listen[CONFIG_STR_MAX], tokens[CONFIG_STR_MAX];
    char federal[CONFIG_STR_MAX];
    long uplink_window, uplink_batch;
} hub_config;

static hub_config cfg = {
    .province = 1,
    .data_dir = "var/hub",
    .sync_listen = "127.0.0.1:7401",
    .http_listen = "127.0.0.1:8401",
    .max_frame = 4 * 1024 * 1024,
    .log_level = "info",
    .ca = "var/pki/ca.crt",
    .cert = "var/pki/province-1.crt",
    .key = "var/pki/province-1.key",
    .crl = "var/pki/crl.pem",
    .https_listen = "127.0.0.1:8441",
    .tokens = "",
    .federal = "",
    .uplink_window = 8,
    .uplink_batch = 200,
};

static const config_item items[] = {
    {"hub", "province", CONFIG_INT, &cfg.province, "province code 1..7 this hub serves"},
    {"hub", "data_dir", CONFIG_STR, &cfg.data_dir, "directory of the hub's SQLite store"},
    {"hub", "sync_listen", CONFIG_STR, &cfg.sync_listen,
     "IPv4:port where municipal nodes connect (mutual TLS 1.3)"},
    {"hub", "http_listen", CONFIG_STR, &cfg.http_listen,
     "IPv4:port of /healthz and /metrics (plain HTTP; bind to loopback)"},
    {"hub", "max_frame", CONFIG_INT, &cfg.max_frame,
     "largest frame accepted from a node, in bytes (refused before allocation)"},
    {"hub", "log_level", CONFIG_STR, &cfg.log_level, "debug, info, warn or error"},
    {"hub", "https_listen", CONFIG_STR, &cfg.https_listen,
     "IPv4:port of the officers' HTTPS API: /v1/gaps, /v1/indicators (empty: none)"},
    {"hub", "tokens", CONFIG_STR, &cfg.tokens,
     "file of officers' tokens: one line \"name sha256hex\" each (provincial-hub token NAME)"},
    {"uplink", "federal", CONFIG_STR, &cfg.federal,
     "IPv4:port of the federal tier's sync port (empty: no uplink)"},
    {"uplink", "window", CONFIG_INT, &cfg.uplink_window, "snapshot batches in flight"},
    {"uplink", "batch", CONFIG_INT, &cfg.uplink_batch, "snapshots per batch"},
    {"tls", "ca", CONFIG_STR, &cfg.ca, "PEM file of the private CA (deploy/pki.sh init)"},
    {"tls", "cert", CONFIG_STR, &cfg.cert, "this hub's certificate (province:<n>)"},
    {"tls", "key", CONFIG_STR, &cfg.key, "this hub's private key"},
    {"tls", "crl", CONFIG_STR, &cfg.crl,
     "PEM CRL; reloaded on SIGHUP and when the file changes (empty: no revocation check)"},
    {"directives", "keys", CONFIG_STR, &cfg.directive_keys,
     "federal directive public keys: key_id=path.pem[,key_id=path.pem] (empty: directives "
     "are refused)"},
};
#define N_ITEMS (sizeof(items) / sizeof(items[0]))

static uv_loop_t *loop;
static tls_ctx *tls;
static ingest *ing;
static http_server *http, *https;
static tls_ctx *https_tls, *uplink_tls;
static tokens_table *tokens;
static uplink *up;
static uv_signal_t sig_term, sig_int, sig_hup;
static crlwatch crl;

static void usage(FILE *f)
{
    fprintf(f, "usage: provincial-hub [--config FILE] [serve]\n"
               "       provincial-hub --config FILE token NAME   an officer's token (shown once)\n"
               "       provincial-hub --print-config    print every key with its default\n"
               "\n"
               "Receives municipal nodes' records over mutual TLS (identity from the\n"
               "certificate), keeps the newest version of each in a SQLite store and serves\n"
               "GET /healthz and GET /metrics. SIGHUP reloads the CRL; SIGTERM stops.\n");
}

static void on_rolled(void *ud)
{
    (void)ud;
    uplink_kick(up);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (signum == SIGHUP) {
        crlwatch_reload(&crl);
        char err[256];
        tokens_table *t = NULL;
        if (cfg.tokens[0] && tokens_load(&t, cfg.tokens, err, sizeof(err)) == 0) {
            tokens_free(tokens);
            tokens = t;
            log_info("tokens reloaded from %s", cfg.tokens);
        } else if (cfg.tokens[0]) {
            log_error("tokens not reloaded: %s", err);
        }
        return;
    }
    log_info("signal %d: stopping", signum);
    uplink_stop(up);
    up = NULL;
    ingest_stop(ing);
    if (http)
        http_server_stop(http);
    if (https)
        http_server_stop(https);
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_signal_stop(&sig_hup);
    crlwatch_stop(&crl);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void on_http(http_req *r, void *ud)
{
    (void)ud;
    const char *path = http_req_path(r);
    if (strcmp(http_req_method(r), "GET") != 0) {
        http_respond(r, 405, NULL, "{\"error\":\"method not allowed\"}\n", 31);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        ingest_metrics m;
        sync_state ust;
        char buf[6144];
        memset(&ust, 0, sizeof(ust));
        ingest_get_metrics(ing, &m);
        if (up)
            uplink_get_state(up, &ust);
        int n = snprintf(
            buf, sizeof(buf),
            "# HELP hub_connections_total TLS connections accepted.\n"
            "# TYPE hub_connections_total counter\nhub_connections_total %llu\n"
            "# HELP hub_connected Connections open now.\n# TYPE hub_connected gauge\n"
            "hub_connected %d\n"
            "# HELP hub_sessions_total Sessions started with Hello.\n"
            "# TYPE hub_sessions_total counter\nhub_sessions_total %llu\n"
            "# HELP hub_records_stored_total Records durably upserted.\n"
            "# TYPE hub_records_stored_total counter\nhub_records_stored_total %llu\n"
            "# HELP hub_records_refused_total Records refused by validation.\n"
            "# TYPE hub_records_refused_total counter\nhub_records_refused_total %llu\n"
            "# HELP hub_batches_total Batches received.\n# TYPE hub_batches_total counter\n"
            "hub_batches_total %llu\n"
            "# HELP hub_commits_total Group commits.\n# TYPE hub_commits_total counter\n"
            "hub_commits_total %llu\n"
            "# HELP hub_security_events_total Refused identities and forged records.\n"
            "# TYPE hub_security_events_total counter\nhub_security_events_total %llu\n"
            "# HELP hub_protocol_errors_total Sessions closed for protocol errors.\n"
            "# TYPE hub_protocol_errors_total counter\nhub_protocol_errors_total %llu\n"
            "# HELP hub_swept_records_total Records of older incarnations dropped.\n"
            "# TYPE hub_swept_records_total counter\nhub_swept_records_total %llu\n"
            "# HELP tls_crl_next_update_seconds When the loaded CRL expires (Unix time).\n"
            "# TYPE tls_crl_next_update_seconds gauge\ntls_crl_next_update_seconds %lld\n"
            "# HELP store_synchronous PRAGMA synchronous of the store (2 = FULL).\n"
            "# TYPE store_synchronous gauge\nstore_synchronous %d\n"
            "# HELP store_journal_wal 1 when the store's journal_mode is WAL.\n"
            "# TYPE store_journal_wal gauge\nstore_journal_wal %d\n"
            "# HELP hub_uplink_backlog Snapshots not yet acknowledged by the federal tier.\n"
            "# TYPE hub_uplink_backlog gauge\nhub_uplink_backlog %lld\n"
            "# HELP hub_uplink_connected 1 while a session with the federal tier is up.\n"
            "# TYPE hub_uplink_connected gauge\nhub_uplink_connected %d\n"
            "# HELP hub_rollup_dirty Snapshots waiting to be recomputed.\n"
            "# TYPE hub_rollup_dirty gauge\nhub_rollup_dirty %lld\n",
            (unsigned long long)m.connections, m.connected, (unsigned long long)m.sessions,
            (unsigned long long)m.records_stored, (unsigned long long)m.records_refused,
            (unsigned long long)m.batches, (unsigned long long)m.commits,
            (unsigned long long)m.security_events, (unsigned long long)m.protocol_errors,
            (unsigned long long)m.swept_records, (long long)tls_ctx_crl_next_update(tls),
            m.store_synchronous, m.store_wal, up ? (long long)uplink_backlog(up) : -1LL,
            up ? ust.connected : 0, (long long)rollup_dirty_count(ingest_rollup(ing)));
        http_respond(r, 200, "text/plain; version=0.0.4", buf, (size_t)n);
        return;
    }
    http_respond(r, 404, NULL, "{\"error\":\"not found\"}\n", 22);
}

static void respond_json(http_req *r, int status, json_t *o)
{
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (body == NULL)
        http_respond(r, 500, NULL, "{\"error\":\"out of memory\"}", 25);
    else
        http_respond(r, status, NULL, body, strlen(body));
    free(body);
    json_decref(o);
}

static void respond_error(http_req *r, int status, const char *msg)
{
    respond_json(r, status, json_pack("{s:s}", "error", msg));
}

static void respond_report(http_req *r, json_t *o, const char *array)
{
    const char *fmt = http_req_param(r, "format");
    if (fmt && strcmp(fmt, "csv") == 0) {
        char *csv = gaps_csv(o, array);
        http_respond(r, 200, "text/csv; charset=utf-8", csv ? csv : "", csv ? strlen(csv) : 0);
        free(csv);
        json_decref(o);
        return;
    }
    respond_json(r, 200, o);
}

/* The provincial officers' API: token-protected, its own province only. */
static void on_https(http_req *r, void *ud)
{
    (void)ud;
    const char *path = http_req_path(r);
    char err[512];
    json_t *out = NULL;
    if (strcmp(path, "/healthz") == 0) {
        http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    const char *who = tokens_check(tokens, http_req_header(r, "Authorization"));
    if (who == NULL) {
        http_add_header(r, "WWW-Authenticate", "Bearer");
        respond_error(r, 401, "a valid bearer token is required");
        return;
    }
    if (strcmp(http_req_method(r), "GET") != 0) {
        respond_error(r, 405, "only GET is served here");
        return;
    }
    log_info("officer %s: GET %s?%s", who, path, http_req_query(r));
    sqlite3 *db = ingest_db(ing);
    if (strcmp(path, "/v1/gaps") == 0) {
        int rc = gaps_report(db, (unsigned)cfg.province, http_req_param(r, "period"),
                             http_req_param(r, "sort"), record_today(), &out, err, sizeof(err));
        if (rc == GAPS_EINVALID)
            respond_error(r, 400, err);
        else if (rc != 0)
            respond_error(r, 500, "the gap report could not be computed");
        else
            respond_report(r, out, "rows");
        return;
    }
    if (strcmp(path, "/v1/indicators") == 0) {
        size_t n;
        const catalogue_indicator *all = catalogue_all(&n);
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *g = json_array();
            for (int k = 0; all[i].groupings[k]; k++)
                json_array_append_new(g, json_string(all[i].groupings[k]));
            json_array_append_new(list,
                                  json_pack("{s:s, s:s, s:s, s:o}", "code", all[i].code, "title",
                                            all[i].title, "sdg", all[i].sdg, "groupings", g));
        }
        respond_json(r, 200, json_pack("{s:o}", "indicators", list));
        return;
    }
    if (strncmp(path, "/v1/indicators/", 15) == 0) {
        const char *mun = http_req_param(r, "municipality"), *dis = http_req_param(r, "district");
        char *end = NULL;
        unsigned long m = 0, d = 0;
        if (mun && ((m = strtoul(mun, &end, 10)) == 0 || *end != '\0' || m > 99999)) {
            respond_error(r, 400, "municipality must be a local level code");
            return;
        }
        if (dis && ((d = strtoul(dis, &end, 10)) == 0 || *end != '\0' || d > 77)) {
            respond_error(r, 400, "district must be a district code 1..77");
            return;
        }
        int rc = gaps_indicator(db, (unsigned)cfg.province, path + 15, http_req_param(r, "period"),
                                http_req_param(r, "by"), (uint32_t)m, (unsigned)d, &out, err,
                                sizeof(err));
        if (rc == GAPS_EINVALID)
            respond_error(r, 400, err);
        else if (rc != 0)
            respond_error(r, 500, "the indicator could not be computed");
        else
            respond_report(r, out, "cells");
        return;
    }
    respond_error(r, 404, "not found");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    char err[512], db_path[CONFIG_STR_MAX + 16], host[128];
    int port = 0, rc;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"print-config", no_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'p':
            config_print(stdout, items, N_ITEMS);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc && strcmp(argv[optind], "token") == 0) {
        char token[128];
        if (optind + 2 != argc) {
            fprintf(stderr, "usage: provincial-hub --config FILE token NAME\n");
            return 2;
        }
        if (config_path && config_load(config_path, items, N_ITEMS, err, sizeof(err)) != 0) {
            fprintf(stderr, "provincial-hub: %s\n", err);
            return 2;
        }
        if (cfg.tokens[0] == '\0') {
            fprintf(stderr, "provincial-hub token: set [hub] tokens = FILE in the config first\n");
            return 2;
        }
        if (tokens_issue(cfg.tokens, argv[optind + 1], token, sizeof(token), err, sizeof(err)) !=
            0) {
            fprintf(stderr, "provincial-hub token: %s\n", err);
            return 1;
        }
        printf("%s\n", token);
        return 0;
    }
    if (optind < argc && strcmp(argv[optind], "serve") != 0) {
        fprintf(stderr, "provincial-hub: unknown command \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (config_path && config_load(config_path, items, N_ITEMS, err, sizeof(err)) != 0) {
        fprintf(stderr, "provincial-hub: %s\n", err);
        return 2;
    }
    enum log_level lvl = LOG_INFO;
    if (log_parse_level(cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "provincial-hub: log_level \"%s\" is not debug, info, warn or error\n",
                cfg.log_level);
        return 2;
    }
    log_init("provincial-hub", lvl);
    if (cfg.province < 1 || cfg.province > 7) {
        log_error("province %ld is not 1..7", cfg.province);
        return 2;
    }
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", cfg.data_dir, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    tls_ctx_opts to = {TLS_MODE_MUTUAL_SERVER, cfg.ca, cfg.cert, cfg.key,
                       cfg.crl[0] ? cfg.crl : NULL};
    if (tls_ctx_new(&tls, &to, err, sizeof(err)) != 0) {
        log_error("TLS: %s", err);
        return 1;
    }
    directive_keyring *keys = NULL;
    if (cfg.directive_keys[0] &&
        directive_keyring_load(&keys, cfg.directive_keys, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 2;
    }
    snprintf(db_path, sizeof(db_path), "%s/hub.db", cfg.data_dir);
    ingest_opts io = {.loop = loop,
                      .tls = tls,
                      .province = (unsigned)cfg.province,
                      .listen = cfg.sync_listen,
                      .db_path = db_path,
                      .max_frame = (size_t)cfg.max_frame,
                      .directive_keys = keys,
                      .on_rolled = on_rolled};
    if (ingest_start(&ing, &io, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    if (netaddr_split(cfg.http_listen, host, sizeof(host), &port) != 0) {
        log_error("http_listen \"%s\" is not HOST:PORT", cfg.http_listen);
        return 2;
    }
    http_server_opts ho = {.host = host, .port = port, .handler = on_http};
    if ((rc = http_server_start(&http, loop, &ho)) != 0) {
        log_error("cannot listen for HTTP on %s: %s", cfg.http_listen, uv_strerror(rc));
        return 1;
    }
    if (cfg.https_listen[0]) {
        tls_ctx_opts hto = {TLS_MODE_HTTPS_SERVER, cfg.ca, cfg.cert, cfg.key, NULL};
        if (netaddr_split(cfg.https_listen, host, sizeof(host), &port) != 0) {
            log_error("https_listen \"%s\" is not HOST:PORT", cfg.https_listen);
            return 2;
        }
        if (tls_ctx_new(&https_tls, &hto, err, sizeof(err)) != 0) {
            log_error("HTTPS TLS: %s", err);
            return 1;
        }
        if (cfg.tokens[0] && access(cfg.tokens, F_OK) == 0 &&
            tokens_load(&tokens, cfg.tokens, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return 2;
        }
        http_server_opts so = {.host = host, .port = port, .tls = https_tls, .handler = on_https};
        if ((rc = http_server_start(&https, loop, &so)) != 0) {
            log_error("cannot listen for HTTPS on %s: %s", cfg.https_listen, uv_strerror(rc));
            return 1;
        }
    }
    if (cfg.federal[0]) {
        tls_ctx_opts uto = {TLS_MODE_MUTUAL_CLIENT, cfg.ca, cfg.cert, cfg.key, NULL};
        if (tls_ctx_new(&uplink_tls, &uto, err, sizeof(err)) != 0) {
            log_error("uplink TLS: %s", err);
            return 1;
        }
        uplink_opts uo = {.loop = loop,
                          .db = ingest_db(ing),
                          .engine = ingest_rollup(ing),
                          .in = ing,
                          .tls = uplink_tls,
                          .federal = cfg.federal,
                          .province = (unsigned)cfg.province,
                          .window = (int)cfg.uplink_window,
                          .batch_snapshots = (int)cfg.uplink_batch};
        if (uplink_start(&up, &uo, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return 1;
        }
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    if ((rc = crlwatch_start(&crl, loop, cfg.crl, tls, NULL)) != 0)
        log_warn("cannot watch %s for changes (%s); SIGHUP still reloads it", cfg.crl,
                 uv_strerror(rc));
    log_info("province %ld (%s): sync on %s port %d, HTTP on %s:%d, store %s", cfg.province,
             geo_province_name((unsigned)cfg.province), cfg.sync_listen, ingest_port(ing), host,
             http_server_port(http), db_path);
    /* Readiness line for scripts: ports are known now (0 in the config picks free ones). */
    fprintf(stdout, "ready sync_port=%d http_port=%d https_port=%d\n", ingest_port(ing),
            http_server_port(http), https ? http_server_port(https) : 0);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    tls_ctx_free(tls);
    tls_ctx_free(https_tls);
    tls_ctx_free(uplink_tls);
    tokens_free(tokens);
    directive_keyring_free(keys);
    log_info("stopped");
    return 0;
}
