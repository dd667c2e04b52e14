/* municipal-node: what a Migration Resource Centre clerk runs. Records the caseload in a
 * local SQLite store, keeps personal data on the node, and syncs coarse records upstream
 * to the provincial hub over mutual TLS. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "api.h"
#include "bscal.h"
#include "clock.h"
#include "config.h"
#include "crlwatch.h"
#include "directives.h"
#include "export.h"
#include "filewatch.h"
#include "followups.h"
#include "geo.h"
#include "hlc.h"
#include "http.h"
#include "import.h"
#include "intake.h"
#include "log.h"
#include "metrics.h"
#include "months.h"
#include "netaddr.h"
#include "outbox.h"
#include "passwords.h"
#include "record.h"
#include "review.h"
#include "utf8.h"
#include "rid.h"
#include "store.h"
#include "sync.h"
#include "testhook.h"
#include "tokens.h"
#include "fsutil.h"
#include "tls.h"
#include "web.h"
#include "webapi.h"
#include "webimport.h"

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_REFUSED_ROWS = 3,
    EXIT_UNSYNCED = 4,
    EXIT_ALARM = 5
};

typedef struct node_config {
    long municipality;
    char data_dir[CONFIG_STR_MAX];
    char calendar[CONFIG_STR_MAX];
    char earliest_date[CONFIG_STR_MAX];
    char hub[CONFIG_STR_MAX];
    char http_listen[CONFIG_STR_MAX];
    char https_cert[CONFIG_STR_MAX], https_key[CONFIG_STR_MAX];
    char tokens[CONFIG_STR_MAX];
    char log_level[CONFIG_STR_MAX];
    long window, batch_records, backoff_base_ms, backoff_cap_ms, max_frame;
    char ca[CONFIG_STR_MAX], cert[CONFIG_STR_MAX], key[CONFIG_STR_MAX], crl[CONFIG_STR_MAX];
    char directive_keys[CONFIG_STR_MAX];
} node_config;

static node_config cfg = {
    .municipality = 0,
    .data_dir = "var/node",
    .calendar = "BS",
    .hub = "127.0.0.1:7401",
    .http_listen = "127.0.0.1:8080",
    .https_cert = "",
    .https_key = "",
    .tokens = "",
    .log_level = "info",
    .window = 8,
    .batch_records = 2000,
    .backoff_base_ms = 250,
    .backoff_cap_ms = 30000,
    .max_frame = 4 * 1024 * 1024,
    .ca = "var/pki/ca.crt",
    .cert = "",
    .key = "",
};

static const config_item items[] = {
    CONFIG_ITEM_INT("node", "municipality", &cfg.municipality,
                    "official local level code of this node (e.g. 10703, Dhankuta Municipality)",
                    10101, 99999),
    CONFIG_ITEM_STR("node", "data_dir", &cfg.data_dir, "directory of the node's SQLite store"),
    CONFIG_ITEM_STR("node", "calendar", &cfg.calendar,
                    "calendar of dates in CSV, JSON and export: BS (Bikram Sambat) or AD"),
    CONFIG_ITEM_STR("node", "earliest_date", &cfg.earliest_date,
                    "earliest date of an event the node takes (registration, service, enterprise, "
                    "offer, the end of a month closed), in the node's calendar; empty: BS "
                    "2064-01-01 (AD 2007-04-14)"),
    CONFIG_ITEM_STR("node", "hub", &cfg.hub, "IPv4:port of the provincial hub's sync port"),
    CONFIG_ITEM_STR("node", "http_listen", &cfg.http_listen,
                    "IP:port of the clerks' API, /healthz and /metrics ([v6]:port); plain HTTP "
                    "on loopback only, HTTPS elsewhere (/metrics then takes a clerk's token)"),
    CONFIG_ITEM_STR("node", "https_cert", &cfg.https_cert,
                    "PEM web certificate (deploy/pki.sh web-issue); set: http_listen is HTTPS "
                    "only"),
    CONFIG_ITEM_STR("node", "https_key", &cfg.https_key, "private key of https_cert (PEM)"),
    CONFIG_ITEM_STR(
        "node", "tokens", &cfg.tokens,
        "file of clerk tokens: one line \"clerk sha256hex\" each (municipal-node token)"),
    CONFIG_ITEM_STR("node", "log_level", &cfg.log_level, "debug, info, warn or error"),
    CONFIG_ITEM_INT("sync", "window", &cfg.window, "batches in flight to the hub", 1, 64),
    CONFIG_ITEM_INT("sync", "batch_records", &cfg.batch_records, "records per batch", 1, 100000),
    CONFIG_ITEM_INT("sync", "backoff_base_ms", &cfg.backoff_base_ms,
                    "first reconnect delay bound (full-jitter exponential backoff)", 10, 600000),
    CONFIG_ITEM_INT("sync", "backoff_cap_ms", &cfg.backoff_cap_ms, "largest reconnect delay bound",
                    100, 86400000),
    CONFIG_ITEM_INT("sync", "max_frame", &cfg.max_frame, "largest frame accepted, in bytes",
                    CONFIG_FRAME_MIN, CONFIG_FRAME_MAX),
    CONFIG_ITEM_STR("tls", "ca", &cfg.ca, "PEM file of the private CA"),
    CONFIG_ITEM_STR("tls", "cert", &cfg.cert, "this node's certificate (municipality:<code>)"),
    CONFIG_ITEM_STR("tls", "key", &cfg.key,
                    "this node's private key (the pair reloaded on SIGHUP)"),
    CONFIG_ITEM_STR("tls", "crl", &cfg.crl,
                    "PEM CRL the hub's certificate is checked against; refreshed from each "
                    "HelloReply, reloaded on SIGHUP and when the file changes (empty: no "
                    "revocation check)"),
    CONFIG_ITEM_STR(
        "directives", "keys", &cfg.directive_keys,
        "federal directive public keys: key_id=path.pem[,key_id=path.pem] (empty: directives "
        "are refused)"),
};
#define N_ITEMS (sizeof(items) / sizeof(items[0]))

static const char *config_path;

static void usage(FILE *f)
{
    fprintf(f, "usage: municipal-node [--config FILE] COMMAND [ARGS]\n"
               "\n"
               "Commands:\n"
               "  init --municipality CODE --dir DIR [--hub HOST:PORT] [--calendar BS|AD]\n"
               "       [--pki DIR] [--http-listen HOST:PORT]\n"
               "                      create a node: DIR/node.ini and its store\n"
               "  serve               the clerks' workspace (pages) and HTTP/JSON API, and\n"
               "                      continuous sync, on one loop\n"
               "  import --kind persons|services|enterprises|availability FILE.csv\n"
               "                      import a spreadsheet (idempotent; bad rows reported)\n"
               "  export --kind KIND [FILE]   CSV with all local data (stdout by default)\n"
               "  status [--json]     backlog, oldest unsynced, last sync, hub, dead letters\n"
               "  sync [--timeout SECONDS]    push everything to the hub, then exit; gives up\n"
               "                      without a session by SECONDS (60), or when the hub\n"
               "                      acks nothing for 180 s after that while what was\n"
               "                      sent to it is not moving\n"
               "  followups [--json]  pending referrals by person, oldest first\n"
               "  close-month YYYY-MM close a reporting month (in the node's calendar)\n"
               "  months [--json]     each month's review: open, closed, approved, returned\n"
               "                      (with the reviewer's comment) or changed since approval\n"
               "  directives          directives in force, with who is eligible under each\n"
               "  token [--revoke | --replace] CLERK\n"
               "                      make a clerk token; prints it once, stores its hash (a\n"
               "                      running serve takes it at once); --revoke withdraws\n"
               "                      CLERK's tokens, --replace gives her a new one instead\n"
               "  password [--remove] CLERK   set (from stdin) or remove the password CLERK signs\n"
               "                      in to the workspace with (or her token); SIGHUP a running\n"
               "                      serve to end the sessions begun before\n"
               "  print-config        every configuration key with its value\n"
               "\n"
               "Exit codes: 0 done; 1 failure; 2 usage or configuration error; 3 import done\n"
               "with refused rows; 4 sync could not finish (hub unreachable); 5 status found\n"
               "an alarm (serve not running, upgrade needed, clock ahead, CRL expired,\n"
               "certificate refused, directives missing, clock skew over 5 minutes).\n"
               "\n"
               "Tests only: --enable-test-hooks [--test-clock FILE] [--test-fault NAME[:N],...]\n"
               "shift the clock by FILE's seconds and inject faults; never in production.\n");
}

static int bs_calendar(void)
{
    return strcasecmp(cfg.calendar, "BS") == 0;
}

/* [node] earliest_date as a day (days before 1970 are negative) into *day,
 * INTAKE_EARLIEST_DEFAULT when empty. Returns 0, or -1 when it is not a date. */
static int earliest_day(int32_t *day)
{
    *day = INTAKE_EARLIEST_DEFAULT;
    return cfg.earliest_date[0] && bscal_parse(cfg.earliest_date, bs_calendar(), day) != 0 ? -1 : 0;
}

static int load_config(void)
{
    char err[512];
    if (config_path && config_load(config_path, items, N_ITEMS, err, sizeof(err)) != 0) {
        fprintf(stderr, "municipal-node: %s\n", err);
        return -1;
    }
    enum log_level lvl = LOG_INFO;
    if (log_parse_level(cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "municipal-node: log_level \"%s\" is not debug, info, warn or error\n",
                cfg.log_level);
        return -1;
    }
    log_init("municipal-node", lvl);
    if (strcasecmp(cfg.calendar, "BS") != 0 && strcasecmp(cfg.calendar, "AD") != 0) {
        fprintf(stderr, "municipal-node: calendar \"%s\" is not BS or AD\n", cfg.calendar);
        return -1;
    }
    int32_t earliest;
    if (earliest_day(&earliest) != 0) {
        fprintf(stderr,
                "municipal-node: earliest_date \"%s\" is not a %s date YYYY-MM-DD of the "
                "calendar table\n",
                cfg.earliest_date, bs_calendar() ? "Bikram Sambat" : "Gregorian");
        return -1;
    }
    return 0;
}

static void store_path(char *out, size_t len)
{
    snprintf(out, len, "%s/node.db", cfg.data_dir);
}

/* The lock `serve` holds while it runs (fsutil.h). */
static void serve_lock_path(char *out, size_t len)
{
    snprintf(out, len, "%s/serve.lock", cfg.data_dir);
}

static int open_store(outbox **ob, intake **in)
{
    char path[CONFIG_STR_MAX + 16], err[512];
    store_path(path, sizeof(path));
    /* A data_dir that holds no store (mistyped, or a node not yet made) or that this user
     * cannot write is the configuration's to fix: exit 2, naming the key. */
    if (fs_dir_usable(cfg.data_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "municipal-node: [node] data_dir: %s (in %s)\n", err,
                config_path ? config_path : "the built-in defaults");
        return EXIT_USAGE;
    }
    if (access(path, F_OK) != 0) {
        fprintf(stderr,
                "municipal-node: [node] data_dir: %s holds no node store (node.db); check "
                "data_dir in %s, or make a node with `municipal-node init`\n",
                cfg.data_dir, config_path ? config_path : "the built-in defaults");
        return EXIT_USAGE;
    }
    if (outbox_open(path, ob, err, sizeof(err)) != 0) {
        fprintf(stderr, "municipal-node: %s\n", err);
        return EXIT_FAIL;
    }
    /* The store keeps the municipality it was made for: a config naming another would put
     * another's name on this one's pages and status. */
    if (outbox_municipality(*ob) != (uint32_t)cfg.municipality) {
        fprintf(stderr,
                "municipal-node: %s belongs to municipality %u, but [node] municipality is %ld "
                "in the config\n",
                path, outbox_municipality(*ob), cfg.municipality);
        outbox_close(*ob);
        *ob = NULL;
        return EXIT_USAGE; /* a configuration error, as --help lists them */
    }
    if (in && intake_open(in, *ob, bs_calendar(), err, sizeof(err)) != 0) {
        fprintf(stderr, "municipal-node: %s\n", err);
        outbox_close(*ob);
        return EXIT_FAIL;
    }
    int32_t earliest = INTAKE_EARLIEST_DEFAULT;
    if (in && earliest_day(&earliest) == 0)
        intake_set_earliest(*in, earliest);
    return EXIT_OK;
}

/* init ------------------------------------------------------------------------------------ */

/* in as an absolute path (the file need not exist yet): node.ini named the store, tokens,
 * certificates and CRL relative to the directory init ran in, so that the node worked from
 * there only (a deployment from the documentation; a systemd unit has another). A symbolic
 * link stays one (resolved, a link swapped to new certificates was not followed). Returns 0,
 * or -1 when it does not fit in outlen or the working directory cannot be read. */
static int init_abs_path(const char *in, char *out, size_t outlen)
{
    char cwd[PATH_MAX];
    int n;
    if (in[0] == '/') {
        n = snprintf(out, outlen, "%s", in);
    } else {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return -1;
        n = snprintf(out, outlen, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, in);
    }
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* The federal directive keys deploy/pki.sh made (directive-ID.pub) in the node's pki
 * directory, as [directives] keys ("ID=PATH,...", sorted by name) into spec: "" when there
 * are none. Returns 0, or EXIT_USAGE after saying which file does not load. */
static int init_directive_keys(const char *pki, char *spec, size_t speclen)
{
    static const char prefix[] = "directive-", suffix[] = ".pub";
    struct dirent **names = NULL;
    char err[256];
    int n = scandir(pki, &names, NULL, alphasort), rc = 0;
    size_t used = 0;
    spec[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name), pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1;
        if (rc == 0 && len > pl + sl && strncmp(name, prefix, pl) == 0 &&
            strcmp(name + len - sl, suffix) == 0) {
            int w = snprintf(spec + used, speclen - used, "%s%.*s=%s/%s", used ? "," : "",
                             (int)(len - pl - sl), name + pl, pki, name);
            if (w < 0 || (size_t)w >= speclen - used) {
                fprintf(stderr, "municipal-node init: too many directive keys in %s\n", pki);
                rc = EXIT_USAGE;
            } else {
                used += (size_t)w;
            }
        }
        free(names[i]);
    }
    free(names);
    directive_keyring *ring = NULL;
    if (rc == 0 && spec[0] && directive_keyring_load(&ring, spec, err, sizeof(err)) != 0) {
        fprintf(stderr, "municipal-node init: the directive keys in %s: %s\n", pki, err);
        rc = EXIT_USAGE;
    }
    directive_keyring_free(ring);
    return rc;
}

static int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {{"municipality", required_argument, NULL, 'm'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"calendar", required_argument, NULL, 'C'},
                                         {"pki", required_argument, NULL, 'p'},
                                         {"http-listen", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *pki = "var/pki";
    char err[512], path[CONFIG_STR_MAX + 16];
    int c, pki_given = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': {
            char *end = NULL;
            cfg.municipality = strtol(optarg, &end, 10);
            if (*end != '\0')
                cfg.municipality = -1;
            break;
        }
        case 'd':
            snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", optarg);
            break;
        case 'H':
            snprintf(cfg.hub, sizeof(cfg.hub), "%s", optarg);
            break;
        case 'C':
            snprintf(cfg.calendar, sizeof(cfg.calendar), "%s", optarg);
            break;
        case 'p':
            pki = optarg;
            pki_given = 1;
            break;
        case 'l':
            snprintf(cfg.http_listen, sizeof(cfg.http_listen), "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            return EXIT_USAGE;
        }
    }
    const geo_local_level *g = cfg.municipality > 0 ? geo_find((uint32_t)cfg.municipality) : NULL;
    if (g == NULL) {
        fprintf(stderr,
                "municipal-node init: --municipality %ld is not an official local "
                "level code (see data/nepal_local_levels.csv)\n",
                cfg.municipality);
        return EXIT_USAGE;
    }
    if (strcasecmp(cfg.calendar, "BS") != 0 && strcasecmp(cfg.calendar, "AD") != 0) {
        fprintf(stderr, "municipal-node init: --calendar must be BS or AD\n");
        return EXIT_USAGE;
    }
    /* What serve would refuse is refused here, before anything is written. */
    struct sockaddr_storage hub_addr;
    if (netaddr_parse(cfg.hub, &hub_addr) != 0) {
        fprintf(stderr,
                "municipal-node init: --hub \"%s\" is not an IP address and port (such as "
                "10.0.0.5:7401)\n",
                cfg.hub);
        return EXIT_USAGE;
    }
    /* A mistyped --pki was taken without a word, and serve then refused to start (without
     * --pki, the missing files are named below: the certificate may come later). */
    struct stat pst;
    int pki_rc = stat(pki, &pst) != 0 ? errno : S_ISDIR(pst.st_mode) ? 0 : ENOTDIR;
    if (pki_given && pki_rc != 0) {
        fprintf(stderr,
                "municipal-node init: --pki %s: %s (the directory of ca.crt and this node's "
                "certificate and key, made by deploy/pki.sh)\n",
                pki, strerror(pki_rc));
        return EXIT_USAGE;
    }
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "municipal-node init: cannot create %s: %s\n", cfg.data_dir,
                strerror(errno));
        return EXIT_FAIL;
    }
    char pki_abs[CONFIG_STR_MAX], dir_abs[CONFIG_STR_MAX];
    if (init_abs_path(cfg.data_dir, dir_abs, sizeof(dir_abs)) != 0 ||
        init_abs_path(pki, pki_abs, sizeof(pki_abs)) != 0) {
        fprintf(stderr, "municipal-node init: %s or %s: the absolute path is too long\n",
                cfg.data_dir, pki);
        return EXIT_USAGE;
    }
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir_abs);
    pki = pki_abs;
    snprintf(cfg.ca, sizeof(cfg.ca), "%s/ca.crt", pki);
    snprintf(cfg.cert, sizeof(cfg.cert), "%s/municipality-%ld.crt", pki, cfg.municipality);
    snprintf(cfg.key, sizeof(cfg.key), "%s/municipality-%ld.key", pki, cfg.municipality);
    /* The certificate may come later than the node is set up; serve refuses to start until
     * it is there, so init says at once which files are missing. */
    const char *need[] = {cfg.ca, cfg.cert, cfg.key};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (access(need[i], F_OK) != 0)
            fprintf(stderr, "municipal-node init: no %s yet: serve and sync need it\n", need[i]);
    /* The node keeps its own copy of the CRL: the hub's HelloReplies replace it. */
    snprintf(path, sizeof(path), "%s/crl.pem", pki);
    if (access(path, R_OK) == 0) {
        char dst[CONFIG_STR_MAX + 16];
        snprintf(dst, sizeof(dst), "%s/crl.pem", cfg.data_dir);
        uint8_t *pem = NULL;
        size_t pem_len = 0;
        int crc = fs_read_all(path, 1 << 20, &pem, &pem_len, err, sizeof(err));
        if (crc == 0)
            crc = fs_write_atomic(dst, pem, pem_len, err, sizeof(err));
        free(pem);
        if (crc != 0) {
            fprintf(stderr, "municipal-node init: %s\n", err);
            return EXIT_FAIL;
        }
        snprintf(cfg.crl, sizeof(cfg.crl), "%s", dst);
    } else {
        fprintf(stderr,
                "municipal-node init: no %s: the hub's certificate will not be checked "
                "for revocation until [tls] crl is set\n",
                path);
    }
    /* The federal directive keys beside the certificates (a deployment from the documentation
     * left them out, and the node refused every directive): listed unless set already, and
     * when they fit the line libinih reads (a directory of old keys may not). */
    if (cfg.directive_keys[0] == '\0') {
        int krc = init_directive_keys(pki, cfg.directive_keys, sizeof(cfg.directive_keys));
        if (krc != 0)
            return krc;
        const config_item keys_only = CONFIG_ITEM_STR("directives", "keys", cfg.directive_keys, "");
        if (cfg.directive_keys[0] && config_printable(&keys_only, 1, err, sizeof(err)) != 0) {
            fprintf(stderr,
                    "municipal-node init: the directive-*.pub in %s are not listed: %s; set "
                    "[directives] keys to the keys in force\n",
                    pki, err);
            cfg.directive_keys[0] = '\0';
        } else if (cfg.directive_keys[0] == '\0') {
            fprintf(stderr,
                    "municipal-node init: no directive-*.pub in %s: national directives are "
                    "refused until [directives] keys is set\n",
                    pki);
        }
    }
    /* The clerks' tokens beside the store, so that `token` works at once (it asked for the
     * key to be set by hand first, which an attack on the demo, as its operator, met). */
    if (cfg.tokens[0] == '\0')
        snprintf(cfg.tokens, sizeof(cfg.tokens), "%s/tokens", cfg.data_dir);
    /* The configuration is written whole and durably, or the new store is removed again:
     * a node.ini cut short by a full disk or a crash, beside a store that makes a second
     * `init` refuse, would leave the office stuck. */
    char ini[CONFIG_STR_MAX + 16], *text = NULL;
    size_t text_len = 0;
    snprintf(ini, sizeof(ini), "%s/node.ini", cfg.data_dir);
    if (access(ini, F_OK) == 0) {
        fprintf(stderr, "municipal-node init: %s already exists; a node is initialised once\n",
                ini);
        return EXIT_FAIL;
    }
    /* A line libinih cuts would make a node.ini serve cannot read (long paths; several
     * directive keys in a deep directory). */
    if (config_printable(items, N_ITEMS, err, sizeof(err)) != 0) {
        fprintf(stderr,
                "municipal-node init: %s: shorter paths, please; nothing was "
                "initialised\n",
                err);
        return EXIT_USAGE;
    }
    FILE *f = open_memstream(&text, &text_len);
    if (f == NULL) {
        fprintf(stderr, "municipal-node init: out of memory\n");
        return EXIT_FAIL;
    }
    fprintf(f, "; municipal-node configuration for %s (%s district, %s province)\n", g->name,
            g->district_name, g->province_name);
    config_print(f, items, N_ITEMS);
    if (ferror(f) | fclose(f)) {
        free(text);
        fprintf(stderr, "municipal-node init: out of memory\n");
        return EXIT_FAIL;
    }
    store_path(path, sizeof(path));
    if (outbox_create(path, (uint32_t)cfg.municipality, err, sizeof(err)) != 0) {
        free(text);
        fprintf(stderr, "municipal-node init: %s\n", err);
        return EXIT_FAIL;
    }
    if (fs_write_atomic(ini, text, text_len, err, sizeof(err)) != 0) {
        static const char *const tails[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
            char p[sizeof(path) + 8];
            snprintf(p, sizeof(p), "%s%s", path, tails[i]);
            unlink(p);
        }
        free(text);
        fprintf(stderr, "municipal-node init: %s; nothing was initialised\n", err);
        return EXIT_FAIL;
    }
    free(text);
    printf("initialised %s (%ld) in %s\nconfig: %s\n", g->name, cfg.municipality, cfg.data_dir,
           ini);
    return EXIT_OK;
}

/* import / export / followups / close-month ----------------------------------------------- */

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int kind = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
        if (c == 'k')
            kind = intake_kind_parse(optarg);
        else if (c == 'h') {
            printf("usage: municipal-node import --kind persons|services|enterprises|"
                   "availability FILE.csv\n");
            return EXIT_OK;
        } else
            return EXIT_USAGE;
    }
    if (kind == 0 || kind == INTAKE_MONTH_CLOSE || optind != argc - 1) {
        fprintf(stderr, "usage: municipal-node import --kind persons|services|enterprises|"
                        "availability FILE.csv\n");
        return EXIT_USAGE;
    }
    outbox *ob;
    intake *in;
    int src = open_store(&ob, &in);
    if (src != EXIT_OK)
        return src;
    import_stats st;
    memset(&st, 0, sizeof(st));
    int rc = import_csv(in, kind, argv[optind], stderr, isatty(2), &st);
    /* Also after a failure: the rows committed before it are stored, in their months. */
    char closed[4096] = "";
    import_closed_months(intake_calendar_bs(in), &st, closed, sizeof(closed));
    intake_close(in);
    outbox_close(ob);
    if (rc == REINT_EINVAL || rc == REINT_EIO) {
        fprintf(stderr, "municipal-node import: %s: nothing more imported\n", argv[optind]);
        fputs(closed, stderr); /* a read error after some commits */
        return EXIT_FAIL;
    }
    if (rc != 0) {
        /* The store failed (a full disk): say so, and how far the import got, on stderr
         * only, so that no summary reads as if every row were stored. */
        fprintf(stderr,
                "municipal-node import: %s: stopped by a store error after %lld rows; the "
                "committed ones are kept, and importing the file again completes it\n",
                argv[optind], st.rows);
        fputs(closed, stderr);
        return EXIT_FAIL;
    }
    printf("%s: %lld rows: %lld new, %lld changed, %lld unchanged, %lld refused\n", argv[optind],
           st.rows, st.inserted, st.updated, st.unchanged, st.refused);
    fputs(closed, stdout);
    return st.refused ? EXIT_REFUSED_ROWS : EXIT_OK;
}

static int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    int kind = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
        if (c == 'k')
            kind = intake_kind_parse(optarg);
        else
            return EXIT_USAGE;
    }
    if (kind == 0 || kind == INTAKE_MONTH_CLOSE || optind < argc - 1) {
        fprintf(stderr, "usage: municipal-node export --kind KIND [FILE]\n");
        return EXIT_USAGE;
    }
    FILE *out = stdout;
    if (optind == argc - 1 && (out = fopen(argv[optind], "w")) == NULL) {
        fprintf(stderr, "municipal-node export: %s: %s\n", argv[optind], strerror(errno));
        return EXIT_FAIL;
    }
    outbox *ob;
    intake *in;
    int src = open_store(&ob, &in);
    if (src != EXIT_OK)
        return src;
    int rc = export_csv(in, kind, out);
    if (out != stdout && fclose(out) != 0)
        rc = -1;
    intake_close(in);
    outbox_close(ob);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_followups(int argc, char **argv)
{
    int as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    outbox *ob;
    intake *in;
    int src = open_store(&ob, &in);
    if (src != EXIT_OK)
        return src;
    int rc;
    if (as_json) {
        json_t *j = NULL;
        rc = followups_json(in, 0, &j);
        if (rc == 0) {
            json_dumpf(j, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(j);
        }
    } else {
        rc = followups_print(in, 0, stdout);
    }
    intake_close(in);
    outbox_close(ob);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_close_month(int argc, char **argv)
{
    int y = 0, m = 0, changed = 0;
    char err[256], extra;
    if (argc != 2 || sscanf(argv[1], "%4d-%2d%c", &y, &m, &extra) != 2) {
        fprintf(stderr, "usage: municipal-node close-month YYYY-MM (in the %s calendar)\n",
                bs_calendar() ? "BS" : "AD");
        return EXIT_USAGE;
    }
    outbox *ob;
    intake *in;
    int src = open_store(&ob, &in);
    if (src != EXIT_OK)
        return src;
    const char *user = getenv("USER");
    int rc = outbox_begin(ob);
    if (rc == 0)
        rc = intake_close_month(in, y, m, user ? user : "cli", &changed, err, sizeof(err));
    if (rc == 0)
        rc = outbox_commit(ob);
    else
        outbox_rollback(ob);
    intake_close(in);
    outbox_close(ob);
    if (rc == REINT_EINVAL) {
        fprintf(stderr, "municipal-node close-month: %s\n", err);
        return EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "municipal-node close-month: could not record the close\n");
        return EXIT_FAIL;
    }
    printf("%s %04d-%02d %s\n", bs_calendar() ? "BS" : "AD", y, m,
           changed ? "closed; it will travel upstream with the next sync" : "was already closed");
    return EXIT_OK;
}

static int cmd_months(int argc, char **argv)
{
    int as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !as_json)) {
        fprintf(stderr, "usage: municipal-node months [--json]\n");
        return EXIT_USAGE;
    }
    outbox *ob;
    int src = open_store(&ob, NULL);
    if (src != EXIT_OK)
        return src;
    int rc = months_init(outbox_db(ob));
    if (rc == 0 && as_json) {
        json_t *j = NULL;
        rc = months_json(outbox_db(ob), bs_calendar(), 0, &j);
        if (rc == 0) {
            json_dumpf(j, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(j);
        }
    } else if (rc == 0) {
        rc = months_print(outbox_db(ob), bs_calendar(), stdout);
    }
    outbox_close(ob);
    if (rc != 0) {
        fprintf(stderr, "municipal-node months: the store could not be read (%s)\n",
                reint_strerror(rc));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* status ---------------------------------------------------------------------------------- */

static void fmt_age(char *out, size_t len, int64_t ms_then, int64_t now)
{
    if (ms_then <= 0) {
        snprintf(out, len, "never");
        return;
    }
    int64_t s = (now - ms_then) / 1000;
    if (s < 120)
        snprintf(out, len, "%llds ago", (long long)s);
    else if (s < 7200)
        snprintf(out, len, "%lldmin ago", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, len, "%lldh ago", (long long)(s / 3600));
    else
        snprintf(out, len, "%lld days ago", (long long)(s / 86400));
}

static int cmd_status(int argc, char **argv)
{
    int as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 1 + as_json) {
        /* A monitoring script that misspelt --json would otherwise parse text. */
        fprintf(stderr,
                "municipal-node status: unknown argument \"%s\" (status takes only --json)\n",
                argv[1 + as_json]);
        return EXIT_USAGE;
    }
    outbox *ob;
    outbox_stats st;
    uint64_t gaps[16];
    size_t n_gaps = 0;
    int64_t all_gaps = 0;
    json_t *returned = NULL;
    int src = open_store(&ob, NULL);
    if (src != EXIT_OK)
        return src;
    int rc = outbox_stats_get(ob, &st);
    if (rc == 0 && (rc = dirstore_open(outbox_db(ob))) == 0 &&
        (rc = dirstore_gaps(outbox_db(ob), gaps, 16, &n_gaps)) == 0)
        rc = dirstore_gap_count(outbox_db(ob), &all_gaps);
    /* Months the reviewer returned come first: they are the clerk's work to do. */
    if (rc == 0 && (rc = months_init(outbox_db(ob))) == 0)
        rc = months_json(outbox_db(ob), bs_calendar(), 1, &returned);
    outbox_close(ob);
    if (rc != 0) {
        fprintf(stderr, "municipal-node status: the store could not be read (%s)\n",
                reint_strerror(rc));
        return EXIT_FAIL;
    }
    int64_t now = (int64_t)clock_now_ms();
    /* Whether serve runs: its lock (a status that looked healthy while serve was down was
     * an attack's finding). */
    char lock[CONFIG_STR_MAX + 16];
    long serve_pid = 0;
    serve_lock_path(lock, sizeof(lock));
    int serving = fs_lock_held(lock, &serve_pid);
    /* When serve started: it writes its pid into the lock then. */
    int64_t serve_since_ms = 0;
    struct stat lock_st;
    if (serving && stat(lock, &lock_st) == 0)
        serve_since_ms = (int64_t)lock_st.st_mtim.tv_sec * 1000 + lock_st.st_mtim.tv_nsec / 1000000;
    /* Reachable: the last attempt succeeded (a failure, or a session lost, records last_error;
     * a session clears it) and either that session is this serve's (its session lasts for
     * hours) or, without serve, it started within the last 10 minutes. The session's start
     * alone said "unreachable" 10 minutes into a live session (an attack on the demo); a
     * session of a serve killed before this one is not this one's (a review). */
    int own_session = serving && st.last_hello_ms >= serve_since_ms;
    int reachable = st.last_error[0] == '\0' && st.last_hello_ms > 0 &&
                    (own_session || (!serving && now - st.last_hello_ms < 10 * 60 * 1000));
    /* The hub refused this node's protocol version: nothing moves until one is upgraded. */
    int upgrade = strncmp(st.last_error, "upgrade needed", 14) == 0;
    /* The hub refused versions from this machine's future: nothing moves until it is fixed. */
    int ahead = strncmp(st.last_error, "clock ahead", 11) == 0;
    /* The CRL is past its next update and no hub offered a newer one: nothing is sent. */
    int crl_expired = strncmp(st.last_error, "CRL expired", 11) == 0;
    /* The hub refused this node's own certificate (revoked, expired): until it is replaced. */
    int cert_refused = strncmp(st.last_error, "certificate refused", 19) == 0;
    int skewed = st.skew_ms > 300000 || st.skew_ms < -300000;
    /* The states an operator must act on: a monitoring script reads them from the exit code
     * (EXIT_ALARM) and, in JSON, by name. An unreachable hub is not one: a node in the hills
     * is offline for days by design, and its backlog and last sync say how long. */
    const char *alarms[7];
    size_t n_alarms = 0;
    if (!serving)
        alarms[n_alarms++] = "serve_not_running";
    if (upgrade)
        alarms[n_alarms++] = "upgrade_needed";
    if (ahead)
        alarms[n_alarms++] = "clock_ahead";
    if (crl_expired)
        alarms[n_alarms++] = "crl_expired";
    if (cert_refused)
        alarms[n_alarms++] = "certificate_refused";
    if (all_gaps)
        alarms[n_alarms++] = "directives_missing";
    if (skewed)
        alarms[n_alarms++] = "clock_skew";
    int exit_code = n_alarms ? EXIT_ALARM : EXIT_OK;
    if (as_json) {
        json_t *j = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:b, s:I, s:I, s:s}",
            "municipality", (json_int_t)cfg.municipality, "backlog", (json_int_t)st.backlog,
            "oldest_unsynced_ms", (json_int_t)st.oldest_unsynced_ms, "records",
            (json_int_t)st.records, "tombstones", (json_int_t)st.tombstones, "dead_letters",
            (json_int_t)st.dead_letters, "last_sync_ms", (json_int_t)st.last_sync_ms,
            "last_hello_ms", (json_int_t)st.last_hello_ms, "hub_reachable", reachable,
            "upgrade_needed", upgrade, "clock_ahead", ahead, "crl_expired", crl_expired,
            "clock_skew_ms", (json_int_t)st.skew_ms, "last_seq", (json_int_t)st.last_seq,
            "last_error", st.last_error);
        json_t *g = json_array();
        for (size_t i = 0; i < n_gaps; i++)
            json_array_append_new(g, json_integer((json_int_t)gaps[i]));
        json_object_set_new(j, "directive_gaps", g);
        json_object_set_new(j, "directive_gaps_total", json_integer(all_gaps));
        json_object_set_new(j, "serve_running", json_boolean(serving));
        json_object_set_new(j, "certificate_refused", json_boolean(cert_refused));
        json_object_set_new(j, "serve_pid", serving ? json_integer(serve_pid) : json_null());
        json_object_set(j, "returned_months", json_object_get(returned, "months"));
        json_t *al = json_array();
        for (size_t i = 0; i < n_alarms; i++)
            json_array_append_new(al, json_string(alarms[i]));
        json_object_set_new(j, "alarms", al);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
        json_decref(returned);
        return exit_code;
    }
    size_t k;
    json_t *m;
    json_array_foreach(json_object_get(returned, "months"), k, m)
    {
        /* The period says its calendar ("BS2083-05", or "2026-07"). The comment on one line
         * of the terminal, its controls and reordering marks as '?', as `months` prints it
         * (it was printed raw: an attack on the demo). */
        char comment[REVIEW_COMMENT_MAX + 1];
        const char *said = json_string_value(json_object_get(m, "comment"));
        utf8_scrub(comment, sizeof(comment), said ? said : "");
        printf("RETURNED        %s by %s: %s\n", json_string_value(json_object_get(m, "period")),
               json_string_value(json_object_get(m, "decided_by")), comment);
    }
    if (json_array_size(json_object_get(returned, "months")))
        printf("                correct the records, then close each month again "
               "(municipal-node close-month)\n");
    json_decref(returned);
    char a1[32], a2[32], a3[32];
    const geo_local_level *g = geo_find((uint32_t)cfg.municipality);
    fmt_age(a1, sizeof(a1), st.oldest_unsynced_ms, now);
    fmt_age(a2, sizeof(a2), st.last_sync_ms, now);
    fmt_age(a3, sizeof(a3), st.last_hello_ms, now);
    printf("node            %ld %s\n", cfg.municipality, g ? g->name : "");
    printf("records         %lld live, %lld deleted\n", (long long)st.records,
           (long long)st.tombstones);
    printf("backlog         %lld entries not yet at the hub%s%s\n", (long long)st.backlog,
           st.backlog ? ", oldest from " : "", st.backlog ? a1 : "");
    printf("last sync       %s\n", a2);
    if (serving)
        printf("serve           running (pid %ld)\n", serve_pid);
    else
        printf("serve           NOT RUNNING: the pages are down and nothing goes to the hub "
               "until `municipal-node serve` is started (or `sync` is run)\n");
    if (upgrade)
        printf("hub             UPGRADE NEEDED: %s; the outbox is kept and sent once the hub "
               "and this node speak a common protocol version\n",
               st.last_error + 16);
    else if (ahead)
        printf("hub             CLOCK AHEAD: the hub refuses versions from this machine's clock "
               "as from the future (%s). Compare this machine's clock with the hub's, which the "
               "hub's message gives: if the hub's is behind, it is the hub's to fix, and this "
               "node sends again by itself; if this machine's ran ahead, see "
               "docs/OPERATIONS.md\n",
               st.last_error + 13);
    else if (crl_expired)
        printf("hub             CRL EXPIRED: nothing is sent until a newer revocation list "
               "arrives (the hub offers its own at each session; or copy the CA's crl.pem to "
               "%s)\n",
               cfg.crl);
    else if (cert_refused)
        printf("hub             CERTIFICATE REFUSED: %s\n", st.last_error + 21);
    else if (!serving && reachable)
        printf("hub             reachable at the last session (%s); no session now: serve is "
               "not running\n",
               a3);
    else if (serving && !own_session && st.last_error[0] == '\0')
        printf("hub             no session yet since serve started (last session %s)\n", a3);
    else
        printf("hub             %s (last session %s)%s%s\n",
               reachable ? "reachable" : "unreachable", a3,
               st.last_error[0] ? "; last error: " : "", st.last_error);
    printf("clock skew      %+lld s%s\n", (long long)(st.skew_ms / 1000),
           skewed ? "  WARNING: over 5 minutes" : "");
    if (all_gaps) {
        printf("directives      %lld MISSING (serial%s", (long long)all_gaps,
               all_gaps == 1 ? "" : "s");
        for (size_t i = 0; i < n_gaps; i++)
            printf(" %llu", (unsigned long long)gaps[i]);
        printf("%s): the hub has not relayed them; they are asked for at every session\n",
               (int64_t)n_gaps < all_gaps ? " ..." : "");
    }
    printf("dead letters    %lld%s\n", (long long)st.dead_letters,
           st.dead_letters ? " (records the hub refused or that are too large to send; see "
                             "`municipal-node export`)"
                           : "");
    if (n_alarms) {
        printf("alarms          %zu:", n_alarms);
        for (size_t i = 0; i < n_alarms; i++)
            printf(" %s", alarms[i]);
        printf(" (exit code %d)\n", EXIT_ALARM);
    }
    return exit_code;
}

/* sync / serve ---------------------------------------------------------------------------- */

static uv_loop_t *loop;
static tls_ctx *tls, *web_tls;
static sync_client *syncer;
static http_server *http;
static api_ctx api;
static uv_signal_t sig_term, sig_int, sig_hup;
static crlwatch crl;
static int crl_watched;
static filewatch tokens_watch;
static int tokens_watched;

/* Another process committing to the store (an import beside serve) writes its WAL: serve
 * then sends the new entries at once rather than at the sync session's next poll. A commit
 * is visible only after its last write and sync, so the session looks twice: WAL_LOOK_MS
 * after the last write of a burst, and WAL_LOOK_AGAIN_MS later for a slow disk's sync. */
#define WAL_LOOK_MS       10
#define WAL_LOOK_AGAIN_MS 100
static uv_fs_event_t wal_watch;
static uv_timer_t wal_look;
static int wal_watched, wal_looks;
static int sync_status = EXIT_UNSYNCED;

static void on_wal_look(uv_timer_t *t)
{
    sync_kick(syncer);
    if (++wal_looks >= 2)
        uv_timer_stop(t);
}

static void on_wal_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)h;
    (void)events;
    if (status != 0 || name == NULL || strcmp(name, "node.db-wal") != 0)
        return;
    wal_looks = 0;
    uv_timer_start(&wal_look, on_wal_look, WAL_LOOK_MS, WAL_LOOK_AGAIN_MS);
}

/* Watches the store's directory (the WAL file is made again after a truncation). Without
 * inotify the session's poll still finds the entries. */
static void start_wal_watch(void)
{
    int rc = uv_fs_event_init(loop, &wal_watch);
    if (rc == 0) {
        uv_timer_init(loop, &wal_look);
        rc = uv_fs_event_start(&wal_watch, on_wal_event, cfg.data_dir, 0);
        if (rc != 0) {
            uv_close((uv_handle_t *)&wal_watch, NULL);
            uv_close((uv_handle_t *)&wal_look, NULL);
        }
    }
    if (rc != 0) {
        log_warn("cannot watch %s for other processes' commits (%s); they are sent at the "
                 "next poll",
                 cfg.data_dir, uv_strerror(rc));
        return;
    }
    wal_watched = 1;
}

static void close_signals(void)
{
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    if (uv_is_active((uv_handle_t *)&sig_hup))
        uv_close((uv_handle_t *)&sig_hup, NULL);
    if (crl_watched)
        crlwatch_stop(&crl);
    crl_watched = 0;
    if (tokens_watched)
        filewatch_stop(&tokens_watch);
    tokens_watched = 0;
    if (wal_watched) {
        uv_close((uv_handle_t *)&wal_watch, NULL);
        uv_close((uv_handle_t *)&wal_look, NULL);
    }
    wal_watched = 0;
}

/* Re-reads the clerks' tokens; a bad file keeps what is loaded. After SIGHUP (signalled) a
 * token or a password may have been withdrawn, so every workspace session ends; after a
 * change of the file seen by its watch, sessions end unless tokens were only added
 * (`municipal-node token` while serve runs). From the watch, a file that does not parse, or
 * is empty when tokens were loaded, may be one being rewritten: 1 asks for another look
 * (filewatch_cb) unless last_try. */
static int reload_tokens(int signalled, int last_try)
{
    char err[512];
    tokens_table *t = NULL;
    /* last_try 2: a file renamed into place (tokens_changed): emptied is taken (the last
     * token withdrawn), one that does not parse is looked at again later, as from the watch. */
    int whole = last_try == 2, wait = !signalled && last_try != 1;
    if (cfg.tokens[0] == '\0') {
        if (signalled && api.sessions)
            session_clear(api.sessions);
        return 0;
    }
    if (tokens_load(&t, cfg.tokens, err, sizeof(err)) != 0) {
        if (wait)
            return 1;
        log_error("tokens not reloaded: %s", err);
        return 0;
    }
    if (wait && !whole && tokens_count(t) == 0 && tokens_count(api.tokens) > 0) {
        tokens_free(t);
        return 1;
    }
    int keep = !signalled && tokens_only_added(api.tokens, t);
    tokens_free(api.tokens);
    api.tokens = t;
    if (!keep && api.sessions)
        session_clear(api.sessions);
    log_info("tokens reloaded from %s; workspace sessions %s", cfg.tokens,
             keep ? "go on (tokens were only added)" : "ended");
    return 0;
}

/* A file renamed into place is whole: taken as it is, even emptied (the last token revoked);
 * one written in place may be half-written, and is looked at again later if it does not
 * parse (reload_tokens). */
static int refresh_tokens(void)
{
    int changed = tokens_changed(api.tokens, cfg.tokens);
    return changed && reload_tokens(0, changed == 2 ? 2 : 0) == 0;
}

static int on_tokens_changed(void *ud, int last_try)
{
    (void)ud;
    return reload_tokens(0, last_try);
}

/* SIGHUP re-reads the clerks' tokens, the CRL, and the certificates and keys (a rotation). */
static void on_hup(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    tls_ctx *ctxs[] = {tls, web_tls};
    tls_ctx_reload_certs(ctxs, 2);
    if (crl_watched)
        crlwatch_reload(&crl);
    (void)reload_tokens(1, 1);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    (void)s;
    log_info("signal %d: stopping", signum);
    sync_stop(syncer);
    syncer = NULL;
    if (http)
        http_server_stop(http);
    http = NULL;
    close_signals();
}

static int start_signals(void)
{
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&sig_int, on_stop_signal, SIGINT);
    return 0;
}

/* EXIT_OK, or EXIT_USAGE when the configured certificate, key, CA or CRL cannot be used. */
static int start_tls(void)
{
    char err[512];
    tls_ctx_opts to = {TLS_MODE_MUTUAL_CLIENT, cfg.ca, cfg.cert, cfg.key,
                       cfg.crl[0] ? cfg.crl : NULL};
    if (tls_ctx_new(&tls, &to, err, sizeof(err)) != 0) {
        log_error("TLS: %s", err);
        return EXIT_USAGE;
    }
    const char *named;
    if (tls_ctx_check_identity(tls, "municipality", cfg.municipality, &named) != 0) {
        log_error("[tls] cert %s names %s, but [node] municipality is %ld: the hub would refuse "
                  "every batch; give this node its own certificate",
                  cfg.cert, named, cfg.municipality);
        tls_ctx_free(tls);
        tls = NULL;
        return EXIT_USAGE;
    }
    if (cfg.crl[0] == '\0')
        log_warn("no [tls] crl configured: a revoked hub certificate would still be trusted");
    return 0;
}

/* The outbox as the sync client's source. */
static int src_read(void *src, uint64_t after, size_t max, sync_entry_cb cb, void *ud)
{
    return outbox_read(src, after, max, cb, ud);
}

static int src_resume(void *src, uint64_t seq, uint64_t version, uint64_t *after)
{
    return outbox_resume_point(src, seq, version, after);
}

static int src_acked(void *src, uint64_t seq, const Reint__V1__Refusal *const *refusals, size_t n)
{
    return outbox_acked(src, seq, refusals, n);
}

static int src_note(void *src, int64_t sync_ms, int64_t hello_ms, int64_t skew_ms, const char *err)
{
    return outbox_note_sync(src, sync_ms, hello_ms, skew_ms, err);
}

static void src_observe(void *src, uint64_t version)
{
    outbox_observe(src, version);
}

static uint64_t src_last_seq(void *src)
{
    return outbox_last_seq(src);
}

static const uint8_t *src_incarnation(void *src)
{
    return outbox_incarnation(src);
}

static int src_oversized(void *src, uint64_t seq, const uint8_t *item, size_t len,
                         const char *reason, uint8_t id[16], int *kind)
{
    (void)item;
    (void)len;
    return outbox_drop(src, seq, reason, id, kind);
}

static directive_keyring *keyring;

/* A directive relayed by the hub: verified against the federal keyring, then stored. */
static int on_directive(void *ud, const Reint__V1__SignedDirective *sd, uint64_t *ack)
{
    char err[256];
    if (keyring == NULL) {
        log_warn("directive refused: no [directives] keys configured");
        return -1;
    }
    int rc = dirstore_receive(outbox_db(ud), keyring, sd, ack, NULL, err, sizeof(err));
    if (rc != 0)
        log_security("directive refused: %s", err);
    return rc;
}

static int64_t directive_gap_count(outbox *ob)
{
    int64_t n = 0;
    return dirstore_gap_count(outbox_db(ob), &n) == 0 ? n : -1;
}

static size_t directive_gaps(void *ud, uint64_t *out, size_t max)
{
    size_t n = 0;
    return dirstore_gaps(outbox_db(ud), out, max, &n) == 0 ? n : 0;
}

/* The monthly review: the hub's changes of this municipality's months, stored before they
 * are acknowledged (months.h). */
static uint64_t reviews_offered; /* the highest change clock the hub holds (its HelloReply) */

static void fill_hello(void *ud, Reint__V1__Hello *h)
{
    uint64_t through = 0;
    if (months_position(outbox_db(ud), &through) != 0)
        return; /* without a position the hub sends nothing this session */
    h->reviews = 1;
    h->reviews_through = through;
}

static void on_session(void *ud, const Reint__V1__HelloReply *r)
{
    (void)ud;
    reviews_offered = r->reviews_through;
}

static int on_message(void *ud, sync_client *s, const Reint__V1__Envelope *env)
{
    char why[300];
    uint64_t through = 0;
    if (env->msg_case != REINT__V1__ENVELOPE__MSG_REVIEWS) {
        log_warn("unexpected message %d from the hub; closing", (int)env->msg_case);
        return -1;
    }
    int rc = months_receive(outbox_db(ud), (uint32_t)cfg.municipality, env->reviews, &through, why,
                            sizeof(why));
    /* Refused with an Error, so that the hub's log says why (it sends them again). */
    if (rc == REINT_EFORBIDDEN || rc == REINT_EINVAL) {
        log_security("review changes from the hub refused: %s", why);
        sync_fail(s,
                  rc == REINT_EFORBIDDEN ? REINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN
                                         : REINT__V1__ERROR_CODE__ERROR_CODE_PROTOCOL,
                  why);
        return -1;
    }
    if (rc == REINT_ERANGE) {
        log_error("review changes from the hub refused: %s; none stored", why);
        sync_fail(s, REINT__V1__ERROR_CODE__ERROR_CODE_PROTOCOL, why);
        return -1;
    }
    if (rc != 0) {
        log_error("review changes from the hub not stored: %s; asked for again", why);
        return -1;
    }
    for (size_t i = 0; i < env->reviews->n_reviews; i++) {
        const Reint__V1__MonthReview *c = env->reviews->reviews[i];
        char p[16];
        review_period(c->calendar == REINT__V1__CALENDAR__CALENDAR_BS, c->month, p, sizeof(p));
        if (c->decision)
            log_info("month %s %s by %s%s%s", p, review_state_name((int)c->state), c->decided_by,
                     c->comment[0] ? ": " : "", c->comment);
    }
    /* A test fault stands for a crash between the durable store and the acknowledgement: the
     * hub sends the same changes again, which change nothing here. */
    if (testhook_fire("review_ack_lost")) {
        log_warn("test fault review_ack_lost: killed before acknowledging the review changes");
        raise(SIGKILL);
    }
    Reint__V1__Envelope ack = REINT__V1__ENVELOPE__INIT;
    Reint__V1__ReviewAck ra = REINT__V1__REVIEW_ACK__INIT;
    ra.through = through;
    ack.msg_case = REINT__V1__ENVELOPE__MSG_REVIEW_ACK;
    ack.review_ack = &ra;
    if (sync_send(s, &ack) != 0)
        return -1;
    sync_kick(s); /* a `sync` run may be waiting for them */
    return 0;
}

/* A `sync` run ends once the changes the hub offered are stored here: a position that cannot
 * be read is not taken for stored (the run ends at its deadline, as failed). */
static int settled(void *ud)
{
    uint64_t through = 0;
    if (months_position(outbox_db(ud), &through) != 0) {
        static int said;
        if (!said++)
            log_error("sync: the review position is not read; the hub's changes may not be stored");
        return 0;
    }
    return through >= reviews_offered;
}

static int start_sync(outbox *ob, int once, long give_up_ms, void (*on_done)(void *, int))
{
    static char identity[32], expect[32];
    const geo_local_level *g = geo_find((uint32_t)cfg.municipality);
    if (g == NULL) {
        log_error("municipality %ld in the config is not an official code", cfg.municipality);
        return -1;
    }
    snprintf(identity, sizeof(identity), "municipality:%ld", cfg.municipality);
    snprintf(expect, sizeof(expect), "province:%u", g->province);
    sync_opts so = {.loop = loop,
                    .source = {.src = ob,
                               .read = src_read,
                               .resume_point = src_resume,
                               .acked = src_acked,
                               .note = src_note,
                               .observe = src_observe,
                               .last_seq = src_last_seq,
                               .incarnation = src_incarnation,
                               .oversized = src_oversized},
                    .payload = SYNC_RECORDS,
                    .calendar = strcasecmp(cfg.calendar, "AD") == 0
                                    ? REINT__V1__CALENDAR__CALENDAR_AD
                                    : REINT__V1__CALENDAR__CALENDAR_BS,
                    .identity = identity,
                    .tls = tls,
                    .hub = cfg.hub,
                    .expect_peer = expect,
                    .window = (int)cfg.window,
                    .batch_records = (int)cfg.batch_records,
                    .backoff_base_ms = cfg.backoff_base_ms,
                    .backoff_cap_ms = cfg.backoff_cap_ms,
                    .max_frame = (size_t)cfg.max_frame,
                    .once = once,
                    .give_up_ms = give_up_ms,
                    .on_done = on_done,
                    .on_directive = on_directive,
                    .directive_gaps = directive_gaps,
                    .fill_hello = fill_hello,
                    .on_session = on_session,
                    .on_message = on_message,
                    .settled = settled,
                    .ud = ob};
    char err[512];
    if (cfg.directive_keys[0] && keyring == NULL &&
        directive_keyring_load(&keyring, cfg.directive_keys, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    if (dirstore_open(outbox_db(ob)) != 0 || months_init(outbox_db(ob)) != 0)
        return -1;
    return sync_start(&syncer, &so) == 0 ? 0 : -1;
}

static void on_sync_done(void *ud, int status)
{
    (void)ud;
    sync_status = status == 0 ? EXIT_OK : EXIT_UNSYNCED;
    syncer = NULL; /* it frees itself */
    close_signals();
}

static int cmd_sync(int argc, char **argv)
{
    long timeout_s = 60;
    if (argc == 3 && strcmp(argv[1], "--timeout") == 0) {
        char *end = NULL;
        timeout_s = strtol(argv[2], &end, 10);
        if (*end != '\0' || timeout_s <= 0) {
            fprintf(stderr, "municipal-node sync: --timeout takes seconds\n");
            return EXIT_USAGE;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: municipal-node sync [--timeout SECONDS]\n");
        return EXIT_USAGE;
    }
    outbox *ob;
    int src = open_store(&ob, NULL);
    if (src != EXIT_OK)
        return src;
    loop = uv_default_loop();
    int trc = start_tls();
    if (trc != EXIT_OK || start_sync(ob, 1, timeout_s * 1000, on_sync_done) != 0) {
        outbox_close(ob);
        return trc != EXIT_OK ? trc : EXIT_FAIL;
    }
    start_signals();
    uv_run(loop, UV_RUN_DEFAULT);
    outbox_close(ob);
    tls_ctx_free(tls);
    return sync_status;
}

static void on_commit(void *ud)
{
    (void)ud;
    sync_kick(syncer);
}

static void status_json(void *ud, json_t *obj)
{
    (void)ud;
    sync_state st;
    if (syncer == NULL)
        return;
    sync_get_state(syncer, &st);
    json_object_set_new(obj, "hub_reachable", json_boolean(st.connected));
    json_object_set_new(obj, "upgrade_needed", json_boolean(st.upgrade_needed));
    json_object_set_new(obj, "clock_ahead", json_boolean(st.clock_ahead));
    json_object_set_new(obj, "crl_expired", json_boolean(st.crl_expired));
    json_object_set_new(obj, "clock_skew_ms", json_integer(st.skew_ms));
    json_object_set_new(obj, "last_error", json_string(st.last_error));
}

static void on_http(http_req *r, void *ud);

static int on_head(http_req *r, void *ud)
{
    /* Pages, /healthz and /metrics take no body: they are answered from the head, and a body
     * sent with one is never read (the connection closes after the answer), so that a POST to
     * a page gets 405 and one to no resource 404, not 413. The API sets its own limits. */
    if (strncmp(http_req_path(r), "/v1/", 4) != 0) {
        http_req_limit_body(r, 0);
        on_http(r, ud);
        return 0;
    }
    return api_on_head(r, &api);
}

static void on_import_done(void *ud)
{
    (void)ud;
    sync_kick(syncer);
}

static void on_http(http_req *r, void *ud)
{
    const char *path = http_req_path(r);
    if ((strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0) &&
        webassets_refuse_method(r))
        return;
    if (strcmp(path, "/healthz") == 0) {
        http_respond(r, 200, "text/plain", "ok\n", 3);
        return;
    }
    /* Served with HTTPS, the clerks' port is reached from the office's network, where live
     * counters (node_records moving as a clerk registers someone) are not everyone's: there
     * /metrics takes a clerk's bearer token, as the API does (the privacy attack's F5). On
     * plain HTTP the port is loopback only, this machine's processes. */
    if (strcmp(path, "/metrics") == 0 && web_tls &&
        api_token_clerk(&api, http_req_header(r, "Authorization")) == NULL) {
        log_warn("GET /metrics from %s refused: no valid bearer token", http_req_peer(r));
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"municipal-node\"");
        http_respond(r, 401, "text/plain",
                     "a clerk's bearer token is required (Authorization: Bearer ...)\n", 63);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        outbox_stats st;
        sync_state ss;
        http_server_stats hs;
        int sync_mode = -1, wal = 0;
        memset(&hs, 0, sizeof(hs));
        if (http)
            http_server_get_stats(http, &hs);
        memset(&ss, 0, sizeof(ss));
        if (outbox_stats_get(ud, &st) != 0) {
            http_respond(r, 500, "text/plain", "the store could not be read\n", 28);
            return;
        }
        store_durability(outbox_db(ud), &sync_mode, &wal);
        if (syncer)
            sync_get_state(syncer, &ss);
        int64_t oldest =
            st.oldest_unsynced_ms ? ((int64_t)clock_now_ms() - st.oldest_unsynced_ms) / 1000 : 0;
        metric rows[] = {
            METRIC_G("node_backlog", "Outbox entries not yet acknowledged by the hub.", st.backlog),
            METRIC_G("node_oldest_unsynced_seconds", "Age of the oldest unacknowledged entry.",
                     oldest),
            METRIC_G("node_records", "Live records.", st.records),
            METRIC_G("node_dead_letters", "Records the hub refused or that cannot be sent.",
                     st.dead_letters),
            METRIC_G("node_hub_connected", "1 while a session with the hub is up.", ss.connected),
            METRIC_G("node_clock_skew_seconds", "Hub clock minus node clock.", ss.skew_ms / 1000),
            METRIC_G("node_clock_ahead", "1 while the hub refuses versions from this clock.",
                     ss.clock_ahead),
            METRICS_HTTP("node_http", hs),
            METRIC_G("node_directive_gaps",
                     "Directives missing below the newest held (asked for at every session).",
                     directive_gap_count(ud)),
            METRIC_G("node_crl_expired",
                     "1 while the CRL is past its next update: no record is sent.", ss.crl_expired),
            METRIC_G("node_certificate_refused",
                     "1 while the hub refuses this node's certificate (revoked, expired): "
                     "nothing moves until a new one is put in place (SIGHUP).",
                     ss.cert_refused),
            METRIC_C("node_records_sent_total", "Records sent upstream (retries included).",
                     ss.records_sent),
            METRIC_G("store_synchronous", "PRAGMA synchronous of the store (2 = FULL).", sync_mode),
            METRIC_G("store_journal_wal", "1 when the store's journal_mode is WAL.", wal),
            METRICS_WALCKPT("node", st.ckpt),
        };
        metrics_respond(r, rows, sizeof(rows) / sizeof(rows[0]),
                        tls ? tls_ctx_crl_next_update(tls) : -1);
        return;
    }
    if (strncmp(path, "/v1/", 4) != 0 && web_handle(r))
        return;
    api_handle(r, &api);
}

/* 1 for a loopback address (127.0.0.0/8, ::1, or 127.x mapped into IPv6), 0 for any other
 * address, -1 when host is not an IP address at all. */
static int host_is_loopback(const char *host)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, 0, &a4) == 0)
        return (ntohl(a4.sin_addr.s_addr) >> 24) == 127;
    if (uv_ip6_addr(host, 0, &a6) == 0) {
        if (IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr) && a6.sin6_addr.s6_addr[12] == 127;
    }
    return -1;
}

/* Reads http_listen into host and port, and makes the HTTPS context when https_cert and
 * https_key are set. The clerks' API carries names, phone numbers and tokens, so plain HTTP
 * is allowed only on a loopback address, where no network can read it; anywhere else the
 * node refuses to start until it has a web certificate. Returns an exit code. */
static int serve_listener(char *host, size_t hostlen, int *port)
{
    char err[512];
    if (netaddr_split(cfg.http_listen, host, hostlen, port) != 0) {
        log_error("http_listen \"%s\" is not HOST:PORT", cfg.http_listen);
        return EXIT_USAGE;
    }
    /* "[::1]:8080" is the usual way to write an IPv6 address with a port. */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    int loopback = host_is_loopback(host);
    if (loopback < 0) {
        log_error("http_listen \"%s\": the host must be an IPv4 or IPv6 address", cfg.http_listen);
        return EXIT_USAGE;
    }
    if ((cfg.https_cert[0] == '\0') != (cfg.https_key[0] == '\0')) {
        log_error("[node] https_cert and https_key go together: set both for HTTPS, or "
                  "neither for plain HTTP on a loopback address");
        return EXIT_USAGE;
    }
    if (cfg.https_cert[0] == '\0') {
        if (!loopback) {
            log_error("http_listen = %s is not a loopback address, and plain HTTP there would "
                      "carry names, phone numbers and tokens in clear text: add [node] "
                      "https_cert and https_key (a web certificate from `deploy/pki.sh "
                      "web-issue`, see docs/OPERATIONS.md), or listen on 127.0.0.1",
                      cfg.http_listen);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    tls_ctx_opts wo = {TLS_MODE_HTTPS_SERVER, NULL, cfg.https_cert, cfg.https_key, NULL};
    if (tls_ctx_new(&web_tls, &wo, err, sizeof(err)) != 0) {
        log_error("HTTPS on http_listen: %s", err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_serve(void)
{
    char host[128], err[512];
    int port = 0, rc;
    outbox *ob;
    intake *in;
    if ((rc = serve_listener(host, sizeof(host), &port)) != EXIT_OK)
        return rc;
    /* One serve a store: two (a manual start beside systemd) replaced each other's session
     * at the hub about 16 times a second. The lock goes with the process; status reads it. */
    char lock[CONFIG_STR_MAX + 16];
    int lock_fd;
    long holder = 0;
    serve_lock_path(lock, sizeof(lock));
    rc = fs_lock_pidfile(lock, &lock_fd, &holder, err, sizeof(err));
    if (rc == REINT_EEXIST) {
        log_error("another `municipal-node serve` runs on %s (pid %ld): stop it first",
                  cfg.data_dir, holder);
        tls_ctx_free(web_tls);
        return EXIT_FAIL;
    }
    if (rc != 0) {
        log_error("%s", err);
        tls_ctx_free(web_tls);
        return EXIT_FAIL;
    }
    int src = open_store(&ob, &in);
    if (src != EXIT_OK) {
        tls_ctx_free(web_tls);
        return src;
    }
    loop = uv_default_loop();
    api.in = in;
    api.ob = ob;
    api.on_commit = on_commit;
    api.tokens_refresh = refresh_tokens;
    api.status_json = status_json;
    api.loop = loop;
    api.municipality = (int)cfg.municipality;
    char db_path[CONFIG_STR_MAX + 16];
    store_path(db_path, sizeof(db_path));
    webimport_opts wo = {.loop = loop,
                         .db_path = db_path,
                         .dir = cfg.data_dir,
                         .bs = bs_calendar(),
                         .earliest = intake_earliest(in),
                         .on_done = on_import_done};
    if (passwords_open(outbox_db(ob)) != 0 ||
        (api.sessions = session_table_new(web_tls != NULL)) == NULL ||
        (api.signin_limits = limiter_new(WEBAPI_SIGNIN_FAILURES, WEBAPI_SIGNIN_WINDOW_S)) == NULL ||
        webimport_new(&api.imports, &wo) != 0) {
        log_error("cannot set up the workspace (out of memory, or the store failed)");
        return EXIT_FAIL;
    }
    if (cfg.tokens[0] == '\0') {
        log_warn("no [node] tokens file configured: every /v1/ request will get 401");
    } else if (access(cfg.tokens, F_OK) != 0) {
        log_warn("no clerk tokens in %s yet (create one with `municipal-node token CLERK`); "
                 "/v1/ requests get 401 until then",
                 cfg.tokens);
    } else if (tokens_load(&api.tokens, cfg.tokens, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return EXIT_USAGE;
    }
    http_server_opts ho = {.host = host,
                           .port = port,
                           .tls = web_tls,
                           .handler = on_http,
                           .on_head = on_head,
                           .max_body = API_MAX_UPLOAD,
                           .ud = ob};
    if ((rc = http_server_start(&http, loop, &ho)) != 0) {
        log_error("cannot listen for %s on %s: %s", web_tls ? "HTTPS" : "HTTP", cfg.http_listen,
                  uv_strerror(rc));
        return EXIT_FAIL;
    }
    int trc = start_tls();
    if (trc != EXIT_OK || start_sync(ob, 0, 0, NULL) != 0)
        return trc != EXIT_OK ? trc : EXIT_FAIL;
    start_signals();
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_hup, on_hup, SIGHUP);
    if (cfg.crl[0] && (rc = crlwatch_start(&crl, loop, cfg.crl, tls, NULL)) != 0)
        log_warn("cannot watch %s for changes (%s); SIGHUP still reloads it", cfg.crl,
                 uv_strerror(rc));
    crl_watched = cfg.crl[0] != '\0';
    if (cfg.tokens[0] &&
        (rc = filewatch_start(&tokens_watch, loop, cfg.tokens, on_tokens_changed, NULL)) != 0)
        log_warn("cannot watch %s for changes (%s); SIGHUP still reloads it", cfg.tokens,
                 uv_strerror(rc));
    tokens_watched = cfg.tokens[0] != '\0';
    start_wal_watch();
    log_info("municipality %ld: workspace and intake on %s://%s:%d/, syncing to %s",
             cfg.municipality, web_tls ? "https" : "http", host, http_server_port(http), cfg.hub);
    fprintf(stdout, "ready http_port=%d https=%d\n", http_server_port(http), web_tls != NULL);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    tokens_free(api.tokens);
    session_table_free(api.sessions);
    limiter_free(api.signin_limits);
    webimport_free(api.imports);
    intake_close(in);
    outbox_close(ob);
    tls_ctx_free(tls);
    tls_ctx_free(web_tls);
    log_info("stopped");
    return EXIT_OK;
}

static int cmd_token(int argc, char **argv)
{
    /* `token [--revoke | --replace] CLERK`, the flag before or after the name. */
    int revoke = 0, replace = 0;
    const char *clerk = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--revoke") == 0)
            revoke++;
        else if (strcmp(argv[i], "--replace") == 0)
            replace++;
        else if (argv[i][0] != '-' && clerk == NULL)
            clerk = argv[i];
        else
            clerk = "";
    }
    if (clerk == NULL || clerk[0] == '\0' || revoke + replace > 1) {
        fprintf(stderr, "usage: municipal-node token [--revoke | --replace] CLERK\n");
        return EXIT_USAGE;
    }
    if (cfg.tokens[0] == '\0') {
        fprintf(stderr, "municipal-node token: set [node] tokens = FILE in the config first\n");
        return EXIT_USAGE;
    }
    /* The token is shown once; only its hash is stored. A running serve takes it at its
     * next request, and a withdrawn one is refused from then on. */
    return tokens_command("municipal-node", cfg.tokens, clerk, revoke, replace, NULL, 0);
}

/* Reads one line of at most max - 1 bytes from stdin into buf, without echo on a terminal
 * (prompt shown there first). Returns 0, or -1 at end of input or for a longer line. */
static int read_secret(const char *prompt, char *buf, size_t max)
{
    struct termios old, quiet;
    int tty = isatty(0) && tcgetattr(0, &old) == 0;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO);
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    char *got = fgets(buf, (int)max, stdin);
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (got == NULL)
        return -1;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(stdin))
        return -1;
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return 0;
}

static int cmd_password(int argc, char **argv)
{
    char pw[PASSWORDS_MAX_LEN + 2], again[PASSWORDS_MAX_LEN + 2], err[256];
    int remove = argc == 3 && strcmp(argv[1], "--remove") == 0;
    if (argc != 2 && !remove) {
        fprintf(stderr, "usage: municipal-node password [--remove] CLERK  (the password is read "
                        "from standard input)\n");
        return EXIT_USAGE;
    }
    const char *clerk = argv[argc - 1];
    outbox *ob;
    int src = open_store(&ob, NULL);
    if (src != EXIT_OK)
        return src;
    int rc = passwords_open(outbox_db(ob));
    if (rc == 0 && remove) {
        rc = passwords_remove(outbox_db(ob), clerk);
        outbox_close(ob);
        if (rc == REINT_ENOTFOUND) {
            fprintf(stderr, "municipal-node password: %s has no password\n", clerk);
            return EXIT_FAIL;
        }
        if (rc == 0)
            printf("%s's password removed; SIGHUP a running serve to end her sessions\n", clerk);
        return rc == 0 ? EXIT_OK : EXIT_FAIL;
    }
    if (rc == 0 && read_secret("password: ", pw, sizeof(pw)) != 0) {
        fprintf(stderr,
                "municipal-node password: no password on standard input (one line of at "
                "most %d characters)\n",
                PASSWORDS_MAX_LEN);
        outbox_close(ob);
        return EXIT_USAGE;
    }
    if (rc == 0 && isatty(0) &&
        (read_secret("again: ", again, sizeof(again)) != 0 || strcmp(pw, again) != 0)) {
        fprintf(stderr, "municipal-node password: the two passwords differ\n");
        outbox_close(ob);
        return EXIT_USAGE;
    }
    if (rc == 0)
        rc = passwords_set(outbox_db(ob), clerk, pw, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "the store could not be read");
    explicit_bzero(pw, sizeof(pw));
    explicit_bzero(again, sizeof(again));
    outbox_close(ob);
    if (rc != 0) {
        fprintf(stderr, "municipal-node password: %s\n", err);
        return rc == REINT_EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    printf("%s can sign in to the workspace with this password\n", clerk);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    int i = 1, test_hooks = 0;
    const char *test_clock = NULL, *test_faults = NULL;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--enable-test-hooks") == 0) {
            test_hooks = 1;
            i++;
        } else if (strcmp(argv[i], "--test-clock") == 0 && i + 1 < argc) {
            test_clock = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--test-fault") == 0 && i + 1 < argc) {
            test_faults = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
            i++;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--print-config") == 0 && i + 1 == argc) {
            /* As the hub and the federal tier spell it (an operator typed one form on the
             * other binary). */
            argv[i] = "print-config";
            break;
        } else {
            fprintf(stderr, "municipal-node: unknown option %s\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    log_init("municipal-node", LOG_INFO);
    if (testhook_setup("municipal-node", test_hooks, test_clock, test_faults, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "municipal-node: %s\n", err);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    for (int k = 1; k < sub_argc; k++) {
        if (strcmp(sub_argv[k], "--help") == 0 && strcmp(cmd, "init") != 0 &&
            strcmp(cmd, "import") != 0) {
            usage(stdout);
            return EXIT_OK;
        }
    }
    if (strcmp(cmd, "init") == 0) {
        log_init("municipal-node", LOG_INFO);
        return cmd_init(sub_argc, sub_argv);
    }
    if (load_config() != 0)
        return EXIT_USAGE;
    if (strcmp(cmd, "print-config") == 0) {
        config_print(stdout, items, N_ITEMS);
        return EXIT_OK;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve();
    if (strcmp(cmd, "import") == 0)
        return cmd_import(sub_argc, sub_argv);
    if (strcmp(cmd, "export") == 0)
        return cmd_export(sub_argc, sub_argv);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(sub_argc, sub_argv);
    if (strcmp(cmd, "sync") == 0)
        return cmd_sync(sub_argc, sub_argv);
    if (strcmp(cmd, "followups") == 0)
        return cmd_followups(sub_argc, sub_argv);
    if (strcmp(cmd, "close-month") == 0)
        return cmd_close_month(sub_argc, sub_argv);
    if (strcmp(cmd, "months") == 0)
        return cmd_months(sub_argc, sub_argv);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(sub_argc, sub_argv);
    if (strcmp(cmd, "password") == 0)
        return cmd_password(sub_argc, sub_argv);
    if (strcmp(cmd, "directives") == 0) {
        outbox *ob;
        int src = open_store(&ob, NULL);
        if (src != EXIT_OK)
            return src;
        int rc = dirstore_open(outbox_db(ob));
        if (rc == 0)
            rc = directives_print(outbox_db(ob), bs_calendar(), clock_today_nepal(), stdout);
        outbox_close(ob);
        return rc == 0 ? EXIT_OK : EXIT_FAIL;
    }
    fprintf(stderr, "municipal-node: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
