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

#include "clock.h"
#include "config.h"
#include "fsutil.h"
#include "geo.h"
#include "http.h"
#include "ingest.h"
#include "officers.h"
#include "record.h"
#include "tokens.h"
#include "uplink.h"
#include "webassets.h"
#include "catalogue.h"
#include "crlwatch.h"
#include "filewatch.h"
#include "log.h"
#include "loopwatch.h"
#include "metrics.h"
#include "netaddr.h"
#include "testhook.h"
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
    char https_listen[CONFIG_STR_MAX], tokens[CONFIG_STR_MAX], proxy_from[CONFIG_STR_MAX];
    char https_cert[CONFIG_STR_MAX], https_key[CONFIG_STR_MAX];
    char federal[CONFIG_STR_MAX];
    long uplink_window, uplink_batch, coverage_seconds;
    long rollup_queue, cache_mb;
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
    .coverage_seconds = 10,
    .rollup_queue = 2000000,
    .cache_mb = 256,
};

static const config_item items[] = {
    CONFIG_ITEM_INT("hub", "province", &cfg.province, "province code 1..7 this hub serves", 1, 7),
    CONFIG_ITEM_STR("hub", "data_dir", &cfg.data_dir, "directory of the hub's SQLite store"),
    CONFIG_ITEM_STR("hub", "sync_listen", &cfg.sync_listen,
                    "IPv4:port where municipal nodes connect (mutual TLS 1.3)"),
    CONFIG_ITEM_STR("hub", "http_listen", &cfg.http_listen,
                    "IPv4:port of /healthz and /metrics (plain HTTP; bind to loopback)"),
    CONFIG_ITEM_INT("hub", "max_frame", &cfg.max_frame,
                    "largest frame accepted from a node, in bytes (refused before allocation)",
                    CONFIG_FRAME_MIN, CONFIG_FRAME_MAX),
    CONFIG_ITEM_STR("hub", "log_level", &cfg.log_level, "debug, info, warn or error"),
    CONFIG_ITEM_INT("hub", "cache_mb", &cfg.cache_mb,
                    "SQLite page cache of the hub store, in MiB (record ids arrive in no order: "
                    "their index is written at random places)",
                    8, 16384),
    CONFIG_ITEM_INT("hub", "rollup_queue", &cfg.rollup_queue,
                    "committed records waiting for the rollups before nodes are held", 1000,
                    10000000),
    CONFIG_ITEM_STR("hub", "https_listen", &cfg.https_listen,
                    "IPv4:port of the officers' HTTPS API: /v1/gaps, /v1/indicators (empty: none)"),
    CONFIG_ITEM_STR(
        "hub", "https_cert", &cfg.https_cert,
        "PEM web certificate of the officers' pages, for their browsers (deploy/pki.sh "
        "web-issue DIR province-P NAME); empty: the hub's [tls] certificate, which only "
        "clients given ca.crt trust"),
    CONFIG_ITEM_STR("hub", "https_key", &cfg.https_key, "private key of https_cert (PEM)"),
    CONFIG_ITEM_STR("hub", "proxy_from", &cfg.proxy_from,
                    "addresses of TCP load balancers in front of the HTTPS API, which must send a "
                    "PROXY protocol v2 header (comma-separated; empty: none, clients connect "
                    "directly)"),
    CONFIG_ITEM_STR(
        "hub", "tokens", &cfg.tokens,
        "file of officers' tokens: one line \"name sha256hex [role]\" each, role officer (when "
        "absent), reviewer or admin (provincial-hub token NAME --role ROLE)"),
    CONFIG_ITEM_STR("uplink", "federal", &cfg.federal,
                    "IPv4:port of the federal tier's sync port (empty: no uplink)"),
    CONFIG_ITEM_INT("uplink", "window", &cfg.uplink_window, "snapshot batches in flight", 1, 64),
    CONFIG_ITEM_INT("uplink", "batch", &cfg.uplink_batch, "snapshots per batch", 1, 2000),
    CONFIG_ITEM_INT("uplink", "coverage_seconds", &cfg.coverage_seconds,
                    "the nodes' coverage goes up at most this often while it changes", 1, 3600),
    CONFIG_ITEM_STR("tls", "ca", &cfg.ca, "PEM file of the private CA (deploy/pki.sh init)"),
    CONFIG_ITEM_STR("tls", "cert", &cfg.cert, "this hub's certificate (province:<n>)"),
    CONFIG_ITEM_STR("tls", "key", &cfg.key, "this hub's private key (the pair reloaded on SIGHUP)"),
    CONFIG_ITEM_STR(
        "tls", "crl", &cfg.crl,
        "PEM CRL; reloaded on SIGHUP and when the file changes (empty: no revocation check)"),
    CONFIG_ITEM_STR(
        "directives", "keys", &cfg.directive_keys,
        "federal directive public keys: key_id=path.pem[,key_id=path.pem] (empty: directives "
        "are refused)"),
};
#define N_ITEMS (sizeof(items) / sizeof(items[0]))

static uv_loop_t *loop;
static tls_ctx *tls;
static ingest *ing;
static http_server *http, *https;
static tls_ctx *https_tls, *uplink_tls;
static officers *off;
static uplink *up;
static uv_signal_t sig_term, sig_int, sig_hup;
static crlwatch crl;
static filewatch tokens_watch;
static loopwatch loopw;

/* An admin's decision on a sweep, from the officers' API (on the loop). */
static int on_sweep_decide(void *ud, int64_t id, int undo, const char *who, uint32_t *municipality)
{
    return ingest_sweep_decide(ud, id, undo, who, municipality);
}

/* A reviewer's decision on a month, from the officers' API (on the loop). */
static int on_review_decide(void *ud, uint32_t municipality, int bs, int32_t ym, int approve,
                            const reviews_seen *seen, const char *who, const char *comment,
                            const haudit_row *audit, reviews_month *out)
{
    return ingest_review_decide(ud, municipality, bs, ym, approve, seen, who, comment, audit, out);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: provincial-hub [--config FILE] [serve]\n"
               "       provincial-hub --config FILE token NAME [--role officer|reviewer|admin]\n"
               "                                  [--replace]\n"
               "                                  a token for the officers' API (shown once;\n"
               "                                  default role officer); --replace withdraws\n"
               "                                  NAME's tokens and gives a new one (of their\n"
               "                                  role, unless --role)\n"
               "       provincial-hub --config FILE token NAME --revoke\n"
               "                                  withdraws NAME's tokens (the pages' sessions\n"
               "                                  end: everyone signs in again)\n"
               "       provincial-hub [--config FILE] --print-config\n"
               "                                  every key with its value: the file's, or\n"
               "                                  its default\n"
               "\n"
               "Receives municipal nodes' records over mutual TLS (identity from the\n"
               "certificate), keeps the newest version of each in a SQLite store and serves\n"
               "GET /healthz and GET /metrics. SIGHUP reloads the CRL, the officers' tokens and\n"
               "[tls] cert and key (a rotation: new connections present the new one); SIGTERM\n"
               "stops.\n"
               "\n"
               "Tests only: --enable-test-hooks [--test-clock FILE] [--test-fault NAME[:N],...]\n"
               "shift the clock by FILE's seconds and inject faults; never in production.\n");
}

static void on_rolled(void *ud)
{
    (void)ud;
    uplink_kick(up);
}

static int on_tokens_changed(void *ud, int last_try)
{
    (void)ud;
    return off ? officers_reload_tokens(off, 0, last_try) : 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (signum == SIGHUP) {
        tls_ctx *ctxs[] = {tls, https_tls, uplink_tls};
        tls_ctx_reload_certs(ctxs, 3);
        crlwatch_reload(&crl);
        if (off)
            (void)officers_reload_tokens(off, 1, 1);
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
    officers_stop(off);
    off = NULL;
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_signal_stop(&sig_hup);
    crlwatch_stop(&crl);
    filewatch_stop(&tokens_watch);
    loopwatch_stop(&loopw);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void on_http(http_req *r, void *ud)
{
    (void)ud;
    const char *path = http_req_path(r);
    if (webassets_refuse_method(r))
        return;
    if (strcmp(path, "/healthz") == 0) {
        http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        ingest_metrics m;
        sync_state ust;
        memset(&ust, 0, sizeof(ust));
        ingest_get_metrics(ing, &m);
        http_server_stats hs, hss;
        memset(&hss, 0, sizeof(hss));
        http_server_get_stats(http, &hs);
        if (https)
            http_server_get_stats(https, &hss);
        if (up)
            uplink_get_state(up, &ust);
        metric rows[] = {
            METRIC_C("hub_connections_total", "TLS connections accepted.", m.rx.connections),
            METRIC_G("hub_connected", "Connections open now.", m.rx.connected),
            METRIC_C("hub_sessions_total", "Sessions started with Hello.", m.rx.sessions),
            METRIC_C("hub_sessions_revoked_total",
                     "Open sessions closed because a CRL reload revoked their certificate.",
                     m.rx.revoked_closed),
            METRIC_C("hub_sessions_aged_total",
                     "Sessions closed at their maximum age (the peer handshakes again).",
                     m.rx.sessions_aged),
            METRIC_C("hub_connections_refused_total",
                     "Connections refused over the sync port's caps.", m.rx.conns_refused),
            METRIC_C("hub_handshakes_refused_total",
                     "Connections whose certificate was refused (revoked, of another CA, "
                     "expired), each logged as a SECURITY line with its address.",
                     m.rx.handshakes_refused),
            METRIC_C("hub_clock_refusals_total",
                     "Batches or Hellos refused for versions or clocks ahead of this hub.",
                     m.rx.clock_refusals),
            METRIC_C("hub_records_stored_total", "Records durably upserted.", m.records_stored),
            METRIC_C("hub_records_refused_total", "Records refused by validation.",
                     m.records_refused),
            METRIC_C("hub_batches_total", "Batches received.", m.batches),
            METRIC_C("hub_commits_total", "Group commits.", m.commits),
            METRIC_C("hub_security_events_total", "Refused identities and forged records.",
                     m.security_events),
            METRIC_C("hub_protocol_errors_total", "Sessions closed for protocol errors.",
                     m.rx.protocol_errors),
            METRIC_C("hub_swept_records_total",
                     "Records of older incarnations set aside by sweeps (they stop counting).",
                     m.swept_records),
            METRIC_C("hub_sweeps_total", "Full resends completed (each a sweep).", m.sweeps),
            METRIC_G("hub_sweeps_pending",
                     "Sweeps that set records aside and wait for a hub admin to confirm or undo.",
                     m.sweeps_pending),
            METRIC_G("hub_swept_records_kept", "Records set aside by pending sweeps.",
                     m.swept_kept),
            METRIC_C("hub_sweeps_undone_total",
                     "Sweeps undone (by an admin, or when the displaced incarnation reconnected).",
                     m.sweeps_undone),
            METRIC_C("hub_incarnation_returns_total",
                     "Hellos from a store incarnation seen before: two stores alternating under "
                     "one municipality (a security event).",
                     m.incarnation_returns),
            METRIC_H("hub_loop_busy_seconds",
                     "Time each turn of the event loop ran callbacks (not waiting for I/O).",
                     &loopw.busy),
            METRIC_H("hub_loop_cpu_seconds",
                     "CPU time of the event loop's thread in each turn (less than busy: it "
                     "waited for a core).",
                     &loopw.cpu),
            METRICS_HTTP("hub_http", hs),
            METRICS_HTTP("hub_https", hss),
            METRIC_G("hub_directive_gaps",
                     "Directives missing below the newest held: a relay skipped them; they are "
                     "asked for at every uplink session until they arrive.",
                     m.directive_gaps),
            METRIC_G("hub_nodes_silent",
                     "Enrolled nodes whose last record came 30 days ago or more (or never): the "
                     "gap report's enrolled_silent.",
                     m.nodes_silent),
            METRIC_G("hub_nodes_offline",
                     "Enrolled nodes not heard from (no Hello, no batch) for 30 days or more: "
                     "the gap report's enrolled_offline.",
                     m.nodes_offline),
            METRIC_C("hub_sessions_replaced_total",
                     "Sessions closed because a newer one of the same municipality started.",
                     m.rx.sessions_replaced),
            METRIC_C("hub_records_dropped_total",
                     "Records nodes could not send (each alone above the frame limit).",
                     m.records_dropped),
            METRIC_C("hub_version_refusals_total",
                     "Hellos refused for a protocol version this hub does not speak.",
                     m.rx.version_refusals),
            METRIC_G("hub_rollup_queue", "Committed records not yet noted by the rollups.",
                     m.roll_queue),
            METRIC_G("hub_rollup_queue_max",
                     "Bound of that queue; at it, nodes are not read until it drains.",
                     m.roll_queue_max),
            METRIC_C("hub_rollup_queue_holds_total", "Times the bound held every node.",
                     m.roll_queue_holds),
            METRIC_G("hub_rollup_queue_peak", "Largest length of that queue since the start.",
                     m.roll_queue_peak),
            METRIC_G("store_synchronous", "PRAGMA synchronous of the store (2 = FULL).",
                     m.store_synchronous),
            METRIC_G("store_journal_wal", "1 when the store's journal_mode is WAL.", m.store_wal),
            METRICS_WALCKPT("hub", m.ckpt),
            METRIC_G("hub_uplink_backlog", "Snapshots not yet acknowledged by the federal tier.",
                     up ? uplink_backlog(up) : -1),
            METRIC_G("hub_uplink_connected", "1 while a session with the federal tier is up.",
                     up ? ust.connected : 0),
            METRIC_C("hub_uplink_refusals_total",
                     "Snapshots the federal tier refused since the start (each logged with its "
                     "field and reason): it keeps the previous revision until the next.",
                     ust.refusals),
            METRIC_C("hub_uplink_parts_sent_total",
                     "Snapshot parts sent (snapshots too large for one federal frame).",
                     ust.parts_sent),
            METRIC_G("hub_uplink_upgrade_needed",
                     "1 while the federal tier refuses this hub's protocol version.",
                     ust.upgrade_needed),
            METRIC_G("hub_uplink_clock_ahead",
                     "1 while the federal tier refuses versions from this hub's clock.",
                     ust.clock_ahead),
            METRIC_G("hub_uplink_crl_expired",
                     "1 while the CRL is past its next update: no snapshot is sent.",
                     ust.crl_expired),
            METRIC_G("hub_rollup_dirty", "Snapshots waiting to be recomputed.",
                     rollup_dirty_count(ingest_rollup(ing))),
        };
        metrics_respond(r, rows, sizeof(rows) / sizeof(rows[0]), tls_ctx_crl_next_update(tls));
        return;
    }
    http_respond(r, 404, NULL, "{\"error\":\"not found\"}\n", 22);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    char err[512], db_path[CONFIG_STR_MAX + 16], host[128], https_host[128];
    int port = 0, rc;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},     {"help", no_argument, NULL, 'h'},
        {"print-config", no_argument, NULL, 'p'},     {"enable-test-hooks", no_argument, NULL, 'T'},
        {"test-clock", required_argument, NULL, 'C'}, {"test-fault", required_argument, NULL, 'F'},
        {"role", required_argument, NULL, 'r'},       {"revoke", no_argument, NULL, 'R'},
        {"replace", no_argument, NULL, 'P'},          {NULL, 0, NULL, 0}};
    int test_hooks = 0, print = 0, revoke = 0, replace = 0;
    const char *test_clock = NULL, *test_faults = NULL, *role = NULL;
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
        case 'r':
            role = optarg;
            break;
        case 'R':
            revoke = 1;
            break;
        case 'P':
            replace = 1;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    /* With --config, what the hub would run with: the file's values over the defaults.
     * print-config as a command too, as municipal-node spells it. */
    if (optind + 1 == argc && strcmp(argv[optind], "print-config") == 0)
        print = 1;
    if (print) {
        if (config_path && config_load(config_path, items, N_ITEMS, err, sizeof(err)) != 0) {
            fprintf(stderr, "provincial-hub: %s\n", err);
            return 2;
        }
        config_print(stdout, items, N_ITEMS);
        return 0;
    }
    if (optind < argc && strcmp(argv[optind], "token") == 0) {
        enum tokens_role tr = TOKENS_OFFICER;
        if (optind + 2 != argc || (revoke && (replace || role))) {
            fprintf(stderr, "usage: provincial-hub --config FILE token NAME [--role ROLE] "
                            "[--replace]\n"
                            "       provincial-hub --config FILE token NAME --revoke\n");
            return 2;
        }
        if (role && tokens_role_parse(role, &tr) != 0) {
            fprintf(stderr, "provincial-hub token: role \"%s\" is not officer, reviewer or admin\n",
                    role);
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
        return tokens_command("provincial-hub", cfg.tokens, argv[optind + 1], revoke, replace,
                              role ? &tr : NULL, 1);
    }
    if (role || revoke || replace) {
        fprintf(stderr, "provincial-hub: --role, --revoke and --replace go with the token "
                        "command\n");
        return 2;
    }
    if (optind < argc && (strcmp(argv[optind], "serve") != 0 || optind + 1 < argc)) {
        fprintf(stderr, "provincial-hub: unknown command \"%s\"\n",
                argv[strcmp(argv[optind], "serve") == 0 ? optind + 1 : optind]);
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
    if (testhook_setup("provincial-hub", test_hooks, test_clock, test_faults, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "provincial-hub: %s\n", err);
        return 2;
    }
    if (cfg.province < 1 || cfg.province > 7) {
        log_error("province %ld is not 1..7", cfg.province);
        return 2;
    }
    /* A data_dir that cannot be made or written is the configuration's to fix (exit 2). */
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("[hub] data_dir: cannot create %s: %s", cfg.data_dir, strerror(errno));
        return 2;
    }
    if (fs_dir_usable(cfg.data_dir, err, sizeof(err)) != 0) {
        log_error("[hub] data_dir: %s", err);
        return 2;
    }
    /* One hub a store: a second on the same hub.db (a manual start beside systemd) fought
     * the first for the federal session. The lock goes with the process. */
    {
        char lock[CONFIG_STR_MAX + 16];
        int lock_fd;
        long holder = 0;
        snprintf(lock, sizeof(lock), "%s/hub.lock", cfg.data_dir);
        rc = fs_lock_pidfile(lock, &lock_fd, &holder, err, sizeof(err));
        if (rc == REINT_EEXIST) {
            log_error("another provincial-hub runs on %s (pid %ld): stop it first", cfg.data_dir,
                      holder);
            return 1;
        }
        if (rc != 0) {
            log_error("%s", err);
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    if (loopwatch_start(&loopw, loop) != 0)
        log_warn("cannot measure the event loop's busy time; /metrics shows none");
    tls_ctx_opts to = {TLS_MODE_MUTUAL_SERVER, cfg.ca, cfg.cert, cfg.key,
                       cfg.crl[0] ? cfg.crl : NULL};
    if (tls_ctx_new(&tls, &to, err, sizeof(err)) != 0) {
        log_error("TLS: %s", err);
        return 2; /* the configured files: a configuration error */
    }
    /* A hub with another province's certificate (or another province's number) took the
     * real hub's federal session, or refused its own nodes: it does not start. */
    const char *named;
    if (tls_ctx_check_identity(tls, "province", cfg.province, &named) != 0) {
        log_error("[tls] cert %s names %s, but [hub] province is %ld: give this hub its "
                  "province's certificate, or the province its certificate names",
                  cfg.cert, named, cfg.province);
        return 2;
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
                      .roll_queue_max = (size_t)cfg.rollup_queue,
                      .cache_mib = cfg.cache_mb,
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
    http_server_opts ho = {
        .host = host, .port = port, .handler = on_http, .max_body = HTTP_MAX_BODY_NONE};
    if ((rc = http_server_start(&http, loop, &ho)) != 0) {
        log_error("cannot listen for HTTP on %s: %s", cfg.http_listen, uv_strerror(rc));
        return 1;
    }
    if (cfg.https_listen[0]) {
        /* The officers' browsers trust a web CA (a name-constrained one they may import),
         * not the private CA of the tiers' links (deployment from the documentation: the
         * pages presented the province's certificate, trusted only by importing ca.crt). */
        if ((cfg.https_cert[0] == '\0') != (cfg.https_key[0] == '\0')) {
            log_error("[hub] https_cert and https_key go together: set both, or neither");
            return 2;
        }
        int web = cfg.https_cert[0] != '\0';
        tls_ctx_opts hto = {TLS_MODE_HTTPS_SERVER, web ? NULL : cfg.ca,
                            web ? cfg.https_cert : cfg.cert, web ? cfg.https_key : cfg.key, NULL};
        /* Its own buffer: the start's log line names the HTTP host (an attack on the demo
         * read 127.0.0.1 there for http_listen = 0.0.0.0). */
        if (netaddr_split(cfg.https_listen, https_host, sizeof(https_host), &port) != 0) {
            log_error("https_listen \"%s\" is not HOST:PORT", cfg.https_listen);
            return 2;
        }
        if (tls_ctx_new(&https_tls, &hto, err, sizeof(err)) != 0) {
            log_error("HTTPS TLS: %s", err);
            return 2; /* the configured files: a configuration error */
        }
        officers_opts oo = {.loop = loop,
                            .db_path = db_path,
                            .province = (unsigned)cfg.province,
                            .tokens = cfg.tokens,
                            .sweep_decide = on_sweep_decide,
                            .review_decide = on_review_decide,
                            .ud = ing};
        if (officers_start(&off, &oo, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return 2;
        }
        http_server_opts so = {.host = https_host,
                               .port = port,
                               .tls = https_tls,
                               .handler = officers_handle,
                               .on_head = officers_on_head,
                               .ud = off,
                               /* Only a decision on a month takes a body: its JSON, with a
                                * comment of at most 1000 bytes (escaped, up to 6 bytes a
                                * character). */
                               .max_body = 8 * 1024,
                               .proxy_from = cfg.proxy_from};
        if ((rc = http_server_start(&https, loop, &so)) != 0) {
            log_error("cannot listen for HTTPS on %s: %s", cfg.https_listen, uv_strerror(rc));
            return 1;
        }
    }
    if (cfg.federal[0]) {
        /* The uplink checks the federal tier against the same CRL, which the federal tier's
         * HelloReplies keep fresh (nodes then get it from this hub's). */
        tls_ctx_opts uto = {TLS_MODE_MUTUAL_CLIENT, cfg.ca, cfg.cert, cfg.key,
                            cfg.crl[0] ? cfg.crl : NULL};
        if (tls_ctx_new(&uplink_tls, &uto, err, sizeof(err)) != 0) {
            log_error("uplink TLS: %s", err);
            return 2; /* the configured files: a configuration error */
        }
        uplink_opts uo = {.loop = loop,
                          .db = ingest_db(ing),
                          .engine = ingest_rollup(ing),
                          .in = ing,
                          .tls = uplink_tls,
                          .federal = cfg.federal,
                          .province = (unsigned)cfg.province,
                          .window = (int)cfg.uplink_window,
                          .batch_snapshots = (int)cfg.uplink_batch,
                          .coverage_ms = cfg.coverage_seconds * 1000};
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
    if ((rc = crlwatch_start(&crl, loop, cfg.crl, tls, uplink_tls)) != 0)
        log_warn("cannot watch %s for changes (%s); SIGHUP still reloads it", cfg.crl,
                 uv_strerror(rc));
    if ((rc = filewatch_start(&tokens_watch, loop, off ? cfg.tokens : "", on_tokens_changed,
                              NULL)) != 0)
        log_warn("cannot watch %s for changes (%s); SIGHUP still reloads it", cfg.tokens,
                 uv_strerror(rc));
    char sync_at[300];
    log_info("province %ld (%s): sync on %s, HTTP on %s:%d, store %s", cfg.province,
             geo_province_name((unsigned)cfg.province),
             netaddr_bound(cfg.sync_listen, ingest_port(ing), sync_at, sizeof(sync_at)), host,
             http_server_port(http), db_path);
    /* Readiness line for scripts: ports are known now (0 in the config picks free ones). */
    fprintf(stdout, "ready sync_port=%d http_port=%d https_port=%d\n", ingest_port(ing),
            http_server_port(http), https ? http_server_port(https) : 0);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    tls_ctx_free(tls);
    tls_ctx_free(https_tls);
    tls_ctx_free(uplink_tls);
    directive_keyring_free(keys);
    log_info("stopped");
    return 0;
}
