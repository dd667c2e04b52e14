/* TLS over libuv TCP with OpenSSL 3 memory BIOs; see tls.h.
 *
 * Bytes from the socket go into rbio; SSL turns them into handshake progress and
 * decrypted data; everything SSL wants to send lands in wbio and tls__flush() moves it to
 * the socket with uv_write. tls__pump() runs after every event that may have changed the
 * SSL state, so no handshake message, ticket or alert is left behind in wbio. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"

#define TLS_DEFAULT_HIGH_WATER ((size_t)8 << 20)
#define TLS_DEFAULT_HARD_LIMIT ((size_t)64 << 20)
/* How long a clean close waits for queued data to reach the kernel before giving up. */
#define TLS_CLOSE_TIMEOUT_MS 5000
/* Largest plaintext handed to one SSL_write; the memory BIO takes it whole. */
#define TLS_WRITE_CHUNK (1 << 20)
#define TLS_READ_CHUNK  (16 * 1024)
#define TLS_SOCK_BUF    (64 * 1024)
#define TLS_CRL_MAX     (1024 * 1024) /* a CRL file above this is refused */
/* TCP keepalive: a connection idle this long is probed every TLS_KEEPALIVE_INTVL_S, and
 * closed after TLS_KEEPALIVE_PROBES unanswered probes, so that a peer gone without a word
 * (a node's mobile link dropped, a NAT that forgot the flow) frees its connection within two
 * minutes instead of never. */
#define TLS_KEEPALIVE_IDLE_S  60
#define TLS_KEEPALIVE_INTVL_S 15
#define TLS_KEEPALIVE_PROBES  4

#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-"            \
    "POLY1305"

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    enum tls_mode mode;
    char *ca_file;
    char *crl_file;
    char *cert_file;
    char *key_file;
    int64_t crl_next_update;
    int64_t crl_this_update; /* the newest lastUpdate of the CRLs in use (epoch s) */
    char identity[32];       /* of its own certificate ("province:1"), or "" */
    uint8_t *crl_pem;        /* the CRL file's bytes the store was built from */
    size_t crl_pem_len;
    void (*on_reload)(void *ud); /* after every successful CRL reload */
    void *on_reload_ud;
};

struct tls_conn {
    uv_tcp_t tcp;
    uv_timer_t close_timer;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    SSL *ssl;
    BIO *rbio; /* owned by ssl */
    BIO *wbio; /* owned by ssl */
    enum tls_mode mode;
    tls_conn_cb cb;
    void *ud;
    tls_limits limits;
    size_t queued;
    int open_handles;   /* handles still to be closed before the conn is freed */
    int closing;        /* close started: no more callbacks except on_close */
    int handles_closed; /* uv_close called on both handles */
    int close_status;
    int silent;    /* creation failed: free without on_close */
    int ready;     /* handshake done and peer accepted */
    int fatal;     /* SSL saw a fatal error: no close_notify */
    int reading;   /* uv_read_start is active */
    int paused;    /* application asked for no on_data */
    int bp_paused; /* socket reads stopped because the write queue is too long */
    int in_pump;
    char *expect_peer;
    char peer[32];
    char serial[48];  /* the peer certificate's serial, hex, for security events */
    char offered[96]; /* the certificate offered, as verification saw it ("municipality:10703,
                         serial 5F..."), for a refusal's log line */
    int superseded;   /* its certificate was refused as revoked with the reason "superseded" */
    char addr[64];
    char err[160];
};

struct tls__write {
    uv_write_t req;
    tls_conn *conn;
    size_t len;
    char data[];
};

static int tls__pump(tls_conn *c);
static void tls__close(tls_conn *c, int status);

/* ---- context ------------------------------------------------------------------------- */

static void tls__errmsg(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", what, reason ? reason : "unknown OpenSSL error");
}

static int tls__cert_identity(X509 *cert, char *out, size_t outlen);

/* A certificate's serial in hex, as security events and `openssl x509 -serial` give it. */
static void tls__serial_hex(X509 *cert, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hexs = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, outlen, "%s", hexs ? hexs : "?");
    OPENSSL_free(hexs);
    BN_free(bn);
}

static int64_t tls__asn1_time_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* 1 when the verification x failed because a CRL revokes its current certificate with the
 * reason "superseded" (what `pki.sh issue --force` writes for a rotation), else 0. Called from
 * a verify callback, where the CRL that revoked it is current. With delta CRLs
 * (X509_V_FLAG_USE_DELTAS, not set by tls__build_store) the current CRL would be the base one,
 * whose reason may not be the delta's: this would then have to look at the delta too. */
static int tls__superseded(X509_STORE_CTX *x)
{
    X509_REVOKED *rev = NULL;
    X509_CRL *crl = X509_STORE_CTX_get0_current_crl(x);
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    if (X509_STORE_CTX_get_error(x) != X509_V_ERR_CERT_REVOKED || crl == NULL || cert == NULL ||
        X509_CRL_get0_by_cert(crl, &rev, cert) != 1 || rev == NULL)
        return 0;
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    int superseded = reason && ASN1_ENUMERATED_get(reason) == CRL_REASON_SUPERSEDED;
    ASN1_ENUMERATED_free(reason);
    return superseded;
}

/* Notes the certificate a peer offers (its identity and serial) on its connection, so that a
 * refusal at the handshake names which one: the session's peer is set only once it passed. */
static int tls__server_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    if (c && !ok && tls__superseded(x))
        c->superseded = 1;
    if (c && leaf && c->offered[0] == '\0') {
        char ident[32], serial[48];
        if (!tls__cert_identity(leaf, ident, sizeof(ident)))
            snprintf(ident, sizeof(ident), "no identity");
        tls__serial_hex(leaf, serial, sizeof(serial));
        snprintf(c->offered, sizeof(c->offered), "%s, serial %s", ident, serial);
    }
    return ok;
}

static int tls__client_verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok && X509_STORE_CTX_get_error(x) == X509_V_ERR_CRL_HAS_EXPIRED)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    if (c && !ok && tls__superseded(x))
        c->superseded = 1;
    return ok;
}

/* 1 when crl is signed by one of the CA certificates in ca_file, else 0. */
static int tls__crl_signed(const char *ca_file, X509_CRL *crl)
{
    int ok = 0;
    X509 *x = NULL;
    BIO *bio = BIO_new_file(ca_file, "r");
    if (bio == NULL)
        return 0;
    while (!ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        ok = X509_NAME_cmp(X509_get_subject_name(x), X509_CRL_get_issuer(crl)) == 0 &&
             X509_CRL_verify(crl, X509_get0_pubkey(x)) == 1;
        X509_free(x);
    }
    BIO_free(bio);
    ERR_clear_error();
    return ok;
}

/* The first CRL of a PEM file, or NULL. */
static X509_CRL *tls__read_crl(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509_CRL *crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    return crl;
}

/* Builds a store holding the CA certificates and, when crl_file is set, its CRLs with
 * revocation checking on. Each CRL must be signed by one of the CAs, so a stray file cannot
 * switch revocation off or make every peer fail. The caller owns *out. */
static int tls__build_store(const tls_ctx *ctx, X509_STORE **out, int64_t *next_update,
                            int64_t *this_update, uint8_t **pem, size_t *pem_len, char *err,
                            size_t errlen)
{
    X509_STORE *store = NULL;
    STACK_OF(X509) *cas = NULL;
    X509 *x = NULL;
    X509_CRL *crl = NULL;
    BIO *bio = NULL;
    int rc = UV_EINVAL;
    int64_t earliest = 0, newest = 0;

    ERR_clear_error();
    store = X509_STORE_new();
    cas = sk_X509_new_null();
    if (!store || !cas) {
        rc = UV_ENOMEM;
        snprintf(err, errlen, "out of memory building the certificate store");
        goto fail;
    }
    errno = 0;
    bio = BIO_new_file(ctx->ca_file, "r");
    if (!bio) {
        rc = errno ? -errno : UV_EINVAL;
        snprintf(err, errlen, "ca_file %s: %s", ctx->ca_file, strerror(errno));
        goto fail;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1 || !sk_X509_push(cas, x)) {
            tls__errmsg(err, errlen, ctx->ca_file);
            X509_free(x);
            goto fail;
        }
    }
    ERR_clear_error(); /* the loop ends with a "no start line" error */
    BIO_free(bio);
    bio = NULL;
    if (sk_X509_num(cas) == 0) {
        snprintf(err, errlen, "ca_file %s: no PEM certificate in it", ctx->ca_file);
        goto fail;
    }

    if (ctx->crl_file) {
        int ncrl = 0;
        /* Read once, parsed from memory: the bytes kept are those the store was built from
         * (tls_ctx_reload_crl puts them back over an older file). */
        char ferr[300];
        if (fs_read_all(ctx->crl_file, TLS_CRL_MAX, pem, pem_len, ferr, sizeof(ferr)) != 0) {
            snprintf(err, errlen, "[tls] crl: %s", ferr);
            goto fail;
        }
        bio = BIO_new_mem_buf(*pem, (int)*pem_len);
        if (!bio) {
            rc = UV_ENOMEM;
            snprintf(err, errlen, "out of memory reading %s", ctx->crl_file);
            goto fail;
        }
        while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
            int signed_ok = 0;
            for (int i = 0; i < sk_X509_num(cas) && !signed_ok; i++) {
                X509 *ca = sk_X509_value(cas, i);
                if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
                    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
                    signed_ok = 1;
            }
            if (!signed_ok) {
                snprintf(err, errlen, "crl_file %s: CRL %d is not signed by a CA in %s",
                         ctx->crl_file, ncrl + 1, ctx->ca_file);
                goto fail;
            }
            int64_t nu = tls__asn1_time_epoch(X509_CRL_get0_nextUpdate(crl));
            if (nu && (!earliest || nu < earliest))
                earliest = nu;
            int64_t lu = tls__asn1_time_epoch(X509_CRL_get0_lastUpdate(crl));
            if (lu > newest)
                newest = lu;
            if (X509_STORE_add_crl(store, crl) != 1) {
                tls__errmsg(err, errlen, ctx->crl_file);
                goto fail;
            }
            X509_CRL_free(crl);
            crl = NULL;
            ncrl++;
        }
        ERR_clear_error();
        if (ncrl == 0) {
            snprintf(err, errlen, "crl_file %s: no PEM CRL in it", ctx->crl_file);
            goto fail;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    rc = 0;
    *out = store;
    store = NULL;
    *next_update = earliest;
    *this_update = newest;
fail:
    if (rc != 0 && pem) {
        free(*pem);
        *pem = NULL;
        *pem_len = 0;
    }
    X509_CRL_free(crl);
    BIO_free(bio);
    sk_X509_pop_free(cas, X509_free);
    X509_STORE_free(store);
    return rc;
}

/* Loads this process's certificate chain and private key from their files into s, and checks
 * that they belong together. Returns 0, or -1 with err naming the file. */
static int tls__load_own(SSL_CTX *s, const char *cert_file, const char *key_file, char *err,
                         size_t errlen)
{
    /* OpenSSL says "system lib" for a file that is not there: say what the system said. */
    for (int i = 0; i < 2; i++) {
        const char *path = i ? key_file : cert_file;
        if (access(path, R_OK) != 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (SSL_CTX_use_certificate_chain_file(s, cert_file) != 1) {
        /* OpenSSL says "PEM lib" for an empty file or a key in its place: say what it is not. */
        char why[200];
        tls__errmsg(why, sizeof(why), "OpenSSL");
        snprintf(err, errlen, "%s: not a PEM certificate (%s)", cert_file, why);
        return -1;
    }
    /* As ssh does: a private key every user of the machine can read is not taken. */
    struct stat key_st;
    if (stat(key_file, &key_st) == 0 && (key_st.st_mode & (S_IROTH | S_IWOTH))) {
        snprintf(err, errlen,
                 "%s: this private key can be read by every user of this machine (mode %04o): "
                 "chmod 600 it (or 640, for a group that runs the daemon)",
                 key_file, (unsigned)(key_st.st_mode & 07777));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(s, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, errlen, "%s: key does not match certificate %s", key_file, cert_file);
        } else {
            char why[200];
            tls__errmsg(why, sizeof(why), "OpenSSL");
            snprintf(err, errlen, "%s: not a PEM private key (%s)", key_file, why);
        }
        return -1;
    }
    if (SSL_CTX_check_private_key(s) != 1) {
        snprintf(err, errlen, "%s: key does not match certificate %s", key_file, cert_file);
        return -1;
    }
    return 0;
}

/* 1 when every DNS name and address old names is named by new too (a renewal may add). */
static int tls__names_kept(X509 *old, X509 *new)
{
    GENERAL_NAMES *a = X509_get_ext_d2i(old, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAMES *b = X509_get_ext_d2i(new, NID_subject_alt_name, NULL, NULL);
    int ok = 1;
    for (int i = 0; ok && i < sk_GENERAL_NAME_num(a); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(a, i);
        if (g->type != GEN_DNS && g->type != GEN_IPADD)
            continue;
        ok = 0;
        for (int j = 0; !ok && j < sk_GENERAL_NAME_num(b); j++)
            ok = GENERAL_NAME_cmp(g, sk_GENERAL_NAME_value(b, j)) == 0;
    }
    GENERAL_NAMES_free(a);
    GENERAL_NAMES_free(b);
    return ok;
}

/* Whether cert (with chain and key) may replace the context's own: valid now, of the same key
 * type (OpenSSL keeps one certificate per key type: another type would leave the old one in
 * use beside it), and, for mutual TLS, chaining to the CA and not revoked by the CRL in use;
 * for HTTPS, naming every name and address the old one did. 0, or -1 with err. */
static int tls__may_replace(tls_ctx *ctx, X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
                            char *err, size_t errlen)
{
    const char *file = ctx->cert_file;
    EVP_PKEY *old_key = SSL_CTX_get0_privatekey(ctx->ssl_ctx);
    X509 *old = SSL_CTX_get0_certificate(ctx->ssl_ctx);
    if (old_key && EVP_PKEY_get_base_id(old_key) != EVP_PKEY_get_base_id(key)) {
        snprintf(err, errlen,
                 "%s has a key of another type (%s) than the one in use (%s): a restart takes it",
                 file, OBJ_nid2sn(EVP_PKEY_get_base_id(key)),
                 OBJ_nid2sn(EVP_PKEY_get_base_id(old_key)));
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
        snprintf(err, errlen, "%s is not valid yet", file);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
        snprintf(err, errlen, "%s has expired", file);
        return -1;
    }
    if (ctx->mode == TLS_MODE_HTTPS_SERVER) {
        if (old && !tls__names_kept(old, cert)) {
            snprintf(err, errlen,
                     "%s does not name every name and address the certificate in use names "
                     "(another site's?)",
                     file);
            return -1;
        }
        return 0;
    }
    /* As a peer would check it: the CA, and the CRL in use (an expired CRL still lists). */
    X509_STORE_CTX *vx = X509_STORE_CTX_new();
    int ok = vx && X509_STORE_CTX_init(vx, SSL_CTX_get_cert_store(ctx->ssl_ctx), cert, chain) == 1;
    if (ok) {
        /* For what the context presents it: a server's, a client's (the hub's uplink). */
        X509_STORE_CTX_set_purpose(vx, ctx->mode == TLS_MODE_MUTUAL_CLIENT
                                           ? X509_PURPOSE_SSL_CLIENT
                                           : X509_PURPOSE_SSL_SERVER);
        X509_STORE_CTX_set_verify_cb(vx, tls__client_verify_cb);
        ok = X509_verify_cert(vx) == 1;
        if (!ok)
            snprintf(err, errlen, "%s: %s", file,
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(vx)));
    } else {
        snprintf(err, errlen, "%s: cannot be checked (out of memory)", file);
    }
    X509_STORE_CTX_free(vx);
    return ok ? 0 : -1;
}

int tls_ctx_reload_cert(tls_ctx *ctx, char *serial, size_t serial_len, char *err, size_t errlen)
{
    char ident[sizeof(ctx->identity)];
    int rc = UV_EINVAL;
    if (err && errlen)
        err[0] = '\0';
    if (serial && serial_len)
        serial[0] = '\0';
    ERR_clear_error();
    /* Loaded aside first: a file half-copied, a key of another certificate or one named for
     * another place leaves the context as it was, and this process serving. */
    SSL_CTX *scratch = SSL_CTX_new(TLS_method());
    if (scratch == NULL) {
        tls__errmsg(err, errlen, "SSL_CTX_new");
        return UV_ENOMEM;
    }
    if (tls__load_own(scratch, ctx->cert_file, ctx->key_file, err, errlen) != 0)
        goto done;
    X509 *cert = SSL_CTX_get0_certificate(scratch);
    EVP_PKEY *key = SSL_CTX_get0_privatekey(scratch);
    STACK_OF(X509) *chain = NULL;
    if (cert == NULL || key == NULL || SSL_CTX_get0_chain_certs(scratch, &chain) != 1) {
        tls__errmsg(err, errlen, ctx->cert_file);
        goto done;
    }
    if (!tls__cert_identity(cert, ident, sizeof(ident)))
        ident[0] = '\0';
    if (strcmp(ident, ctx->identity) != 0) {
        snprintf(err, errlen,
                 "%s names %s, but this process serves as %s: not taken (a certificate of "
                 "another place is never taken; this one's configuration names %s)",
                 ctx->cert_file, ident[0] ? ident : "no identity",
                 ctx->identity[0] ? ctx->identity : "no identity",
                 ctx->identity[0] ? ctx->identity : "no identity");
        goto done;
    }
    if (tls__may_replace(ctx, cert, chain, key, err, errlen) != 0)
        goto done;
    /* Connections already open keep the certificate they were made with; the next ones
     * present this one. */
    if (SSL_CTX_use_cert_and_key(ctx->ssl_ctx, cert, key, chain, 1) != 1) {
        tls__errmsg(err, errlen, ctx->cert_file);
        goto done;
    }
    if (serial && serial_len)
        tls__serial_hex(cert, serial, serial_len);
    rc = 0;
done:
    ERR_clear_error();
    SSL_CTX_free(scratch);
    return rc;
}

void tls_ctx_reload_certs(tls_ctx *const *ctxs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char serial[48], err[600];
        if (ctxs[i] == NULL)
            continue;
        if (tls_ctx_reload_cert(ctxs[i], serial, sizeof(serial), err, sizeof(err)) != 0) {
            log_error("[tls] certificate not reloaded: %s; the one in use is kept", err);
            continue;
        }
        /* One line a file: a hub's sync, HTTPS and uplink contexts share theirs. */
        int said = 0;
        for (size_t j = 0; j < i; j++)
            said |= ctxs[j] && strcmp(ctxs[j]->cert_file, ctxs[i]->cert_file) == 0;
        if (!said)
            log_info("[tls] certificate %s reloaded (serial %s): new connections present it",
                     ctxs[i]->cert_file, serial);
    }
}

int tls_ctx_new(tls_ctx **out, const tls_ctx_opts *opts, char *err, size_t errlen)
{
    tls_ctx *ctx = NULL;
    int rc = UV_EINVAL;
    int mutual = opts->mode == TLS_MODE_MUTUAL_SERVER || opts->mode == TLS_MODE_MUTUAL_CLIENT;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!opts->cert_file || !opts->key_file) {
        snprintf(err, errlen, "tls: cert_file and key_file are required");
        return UV_EINVAL;
    }
    if (mutual && !opts->ca_file) {
        snprintf(err, errlen, "tls: ca_file is required for mutual TLS");
        return UV_EINVAL;
    }
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return UV_ENOMEM;
    ctx->mode = opts->mode;
    if ((opts->ca_file && !(ctx->ca_file = strdup(opts->ca_file))) ||
        (opts->crl_file && !(ctx->crl_file = strdup(opts->crl_file))) ||
        !(ctx->cert_file = strdup(opts->cert_file)) || !(ctx->key_file = strdup(opts->key_file))) {
        rc = UV_ENOMEM;
        goto fail;
    }

    ERR_clear_error();
    ctx->ssl_ctx = SSL_CTX_new(opts->mode == TLS_MODE_MUTUAL_CLIENT ? TLS_client_method()
                                                                    : TLS_server_method());
    if (!ctx->ssl_ctx) {
        tls__errmsg(err, errlen, "SSL_CTX_new");
        rc = UV_ENOMEM;
        goto fail;
    }
    SSL_CTX *s = ctx->ssl_ctx;
    SSL_CTX_set_options(s, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_clear_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE);

    if (mutual) {
        /* Send the certificate file's chain as it is, not one OpenSSL builds from the
         * verification store: that would add the CA, which every peer already holds and
         * which the peer then keeps parsed for the life of the session (about 4 KiB of each
         * idle connection on a hub). A deployment with intermediate CAs lists them in
         * cert_file after the certificate. */
        SSL_CTX_set_mode(s, SSL_MODE_NO_AUTO_CHAIN);
        if (SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) != 1) {
            tls__errmsg(err, errlen, "tls: restricting to TLS 1.3");
            goto fail;
        }
        X509_STORE *store = NULL;
        rc = tls__build_store(ctx, &store, &ctx->crl_next_update, &ctx->crl_this_update,
                              &ctx->crl_pem, &ctx->crl_pem_len, err, errlen);
        if (rc < 0)
            goto fail;
        SSL_CTX_set_cert_store(s, store);
        rc = UV_EINVAL;
        if (opts->mode == TLS_MODE_MUTUAL_SERVER) {
            SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                               tls__server_verify_cb);
            /* A resumed session skips certificate verification, and with it the CRL:
             * every connection must present its certificate again. */
            SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_num_tickets(s, 0);
            SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
        } else {
            /* A CRL past its nextUpdate still lists what it revoked: a sender checks the
             * receiver with it, then takes a fresh one from the HelloReply (sync.c) and
             * sends no record while its CRL stays expired. */
            SSL_CTX_set_verify(s, SSL_VERIFY_PEER, tls__client_verify_cb);
        }
    } else {
        if (SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_cipher_list(s, TLS12_CIPHERS) != 1) {
            tls__errmsg(err, errlen, "tls: setting TLS 1.2 ciphers");
            goto fail;
        }
        SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
        SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
    }

    if (tls__load_own(s, ctx->cert_file, ctx->key_file, err, errlen) != 0)
        goto fail;
    X509 *own = SSL_CTX_get0_certificate(s);
    if (own == NULL || !tls__cert_identity(own, ctx->identity, sizeof(ctx->identity)))
        ctx->identity[0] = '\0';
    ERR_clear_error();
    *out = ctx;
    return 0;
fail:
    ERR_clear_error();
    tls_ctx_free(ctx);
    return rc;
}

int tls_ctx_reload_crl(tls_ctx *ctx, char *err, size_t errlen)
{
    X509_STORE *store = NULL;
    int64_t next_update = 0;

    if (err && errlen)
        err[0] = '\0';
    if (!ctx->crl_file || ctx->mode == TLS_MODE_HTTPS_SERVER)
        return 0;
    int64_t this_update = 0;
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    int rc = tls__build_store(ctx, &store, &next_update, &this_update, &pem, &pem_len, err, errlen);
    if (rc < 0)
        return rc;
    /* An older CRL (yesterday's copy from a backup, another directory's) would lift every
     * revocation made since: it is refused, and the file put back as it was, so that a
     * restart or the CRL sent down to the nodes does not take it either. */
    if (this_update < ctx->crl_this_update) {
        char werr[300] = "";
        X509_STORE_free(store);
        free(pem);
        int put_back = ctx->crl_pem && fs_write_atomic(ctx->crl_file, ctx->crl_pem,
                                                       ctx->crl_pem_len, werr, sizeof(werr)) == 0;
        snprintf(err, errlen,
                 "crl_file %s: this CRL was issued before the one in use (%lld s earlier); an "
                 "older CRL would lift the revocations made since: %s%s",
                 ctx->crl_file, (long long)(ctx->crl_this_update - this_update),
                 put_back ? "the file is put back as it was" : "the file could not be put back: ",
                 put_back ? "" : werr);
        return UV_EINVAL;
    }
    free(ctx->crl_pem);
    ctx->crl_pem = pem;
    ctx->crl_pem_len = pem_len;
    /* Frees the old store; handshakes in progress look the store up again when they verify,
     * and nothing else keeps a pointer to it. */
    SSL_CTX_set_cert_store(ctx->ssl_ctx, store);
    ctx->crl_next_update = next_update;
    ctx->crl_this_update = this_update;
    if (ctx->on_reload)
        ctx->on_reload(ctx->on_reload_ud);
    return 0;
}

int tls_ctx_crl_pem(const tls_ctx *ctx, uint8_t **out, size_t *len)
{
    char err[300];
    *out = NULL;
    *len = 0;
    if (!ctx->crl_file)
        return 0;
    return fs_read_all(ctx->crl_file, TLS_CRL_MAX, out, len, err, sizeof(err));
}

int tls_ctx_install_crl(tls_ctx *ctx, const uint8_t *pem, size_t len, char *err, size_t errlen)
{
    if (!ctx->crl_file || len == 0 || len >= TLS_CRL_MAX)
        return 0;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_CRL *offered = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (offered == NULL) {
        snprintf(err, errlen, "the CRL offered is not a PEM CRL");
        return REINT_EMALFORMED;
    }
    if (!tls__crl_signed(ctx->ca_file, offered)) {
        snprintf(err, errlen, "the CRL offered is not signed by a CA in %s", ctx->ca_file);
        X509_CRL_free(offered);
        return REINT_ESIGNATURE;
    }
    X509_CRL *held = tls__read_crl(ctx->crl_file);
    int newer = held == NULL || ASN1_TIME_compare(X509_CRL_get0_lastUpdate(offered),
                                                  X509_CRL_get0_lastUpdate(held)) > 0;
    X509_CRL_free(held);
    X509_CRL_free(offered);
    if (!newer)
        return 0;
    int rc = fs_write_atomic(ctx->crl_file, pem, len, err, errlen);
    if (rc == 0)
        rc = tls_ctx_reload_crl(ctx, err, errlen);
    return rc == 0 ? 1 : rc;
}

void tls_ctx_on_reload(tls_ctx *ctx, void (*cb)(void *ud), void *ud)
{
    ctx->on_reload = cb;
    ctx->on_reload_ud = ud;
}

const char *tls_ctx_identity(const tls_ctx *ctx)
{
    return ctx->identity;
}

int tls_ctx_check_identity(const tls_ctx *ctx, const char *kind, long number, const char **named)
{
    char want[sizeof(ctx->identity)];
    if (number < 0)
        snprintf(want, sizeof(want), "%s", kind);
    else
        snprintf(want, sizeof(want), "%s:%ld", kind, number);
    *named = ctx->identity[0] ? ctx->identity : "no identity";
    return strcmp(ctx->identity, want) == 0 ? 0 : REINT_EFORBIDDEN;
}

int64_t tls_ctx_crl_next_update(const tls_ctx *ctx)
{
    return ctx->crl_next_update;
}

void tls_ctx_free(tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx->ca_file);
    free(ctx->crl_file);
    free(ctx->cert_file);
    free(ctx->key_file);
    free(ctx->crl_pem);
    free(ctx);
}

/* ---- connection lifecycle ------------------------------------------------------------ */

static void tls__set_error(tls_conn *c, const char *fmt, const char *arg);

int tls_conn_verify_again(tls_conn *c, tls_ctx *ctx)
{
    if (c->closing || c->ssl == NULL || ctx->mode == TLS_MODE_HTTPS_SERVER)
        return 0;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL)
        return 0; /* no handshake yet: it will be verified against the current store */
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl);
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    int rc = UV_ENOMEM;
    ERR_clear_error();
    if (vc && X509_STORE_CTX_init(vc, SSL_CTX_get_cert_store(ctx->ssl_ctx), peer, chain) == 1) {
        /* The handshake's callback notes a revocation's reason (the CRL is known only then). */
        c->superseded = 0;
        X509_STORE_CTX_set_ex_data(vc, SSL_get_ex_data_X509_STORE_CTX_idx(), c->ssl);
        X509_STORE_CTX_set_verify_cb(vc, tls__server_verify_cb);
        rc = X509_verify_cert(vc) == 1 ? 0 : UV_EPERM;
        if (rc != 0) {
            c->err[0] = '\0';
            tls__set_error(c, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
        }
    }
    X509_STORE_CTX_free(vc);
    ERR_clear_error();
    return rc;
}

static void tls__handle_closed(uv_handle_t *h)
{
    tls_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (!c->silent && c->cb.on_close)
        c->cb.on_close(c, c->close_status, c->ud);
    SSL_free(c->ssl);
    free(c->expect_peer);
    free(c);
}

static void tls__close_handles(tls_conn *c)
{
    if (c->handles_closed)
        return;
    c->handles_closed = 1;
    uv_close((uv_handle_t *)&c->tcp, tls__handle_closed);
    uv_close((uv_handle_t *)&c->close_timer, tls__handle_closed);
}

static void tls__close_timeout(uv_timer_t *t)
{
    tls__close_handles(t->data);
}

static void tls__shutdown_done(uv_shutdown_t *req, int status)
{
    (void)status;
    tls__close_handles(req->data);
}

static void tls__set_error(tls_conn *c, const char *fmt, const char *arg)
{
    if (c->err[0] == '\0')
        snprintf(c->err, sizeof(c->err), fmt, arg);
}

/* Records why the SSL call failed: a certificate verification result if there is one,
 * else the OpenSSL reason (which names received alerts, e.g. "tlsv13 alert certificate
 * revoked"). */
static void tls__record_ssl_error(tls_conn *c, int ssl_err)
{
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_last_error();
    c->fatal = 1;
    if (v != X509_V_OK) {
        char why[200];
        snprintf(why, sizeof(why), "%s%s%s%s%s", X509_verify_cert_error_string(v),
                 c->superseded ? " as superseded by a newer one" : "", c->offered[0] ? " (" : "",
                 c->offered, c->offered[0] ? ")" : "");
        tls__set_error(c, "%s", why);
    } else if (e) {
        const char *r = ERR_reason_error_string(e);
        tls__set_error(c, "%s", r ? r : "TLS error");
    } else if (ssl_err == SSL_ERROR_SYSCALL) {
        tls__set_error(c, "%s", "unexpected end of stream");
    } else {
        tls__set_error(c, "%s", "TLS protocol error");
    }
}

/* ---- socket I/O ---------------------------------------------------------------------- */

static void tls__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* One buffer per thread is enough: tls__on_read copies it into rbio before anything
     * else can run. */
    static _Thread_local char sockbuf[TLS_SOCK_BUF];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(sockbuf, sizeof(sockbuf));
}

static void tls__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Starts or stops socket reads to match the pause and backpressure state. */
static void tls__update_reading(tls_conn *c)
{
    int want = !c->closing && !c->paused && !c->bp_paused;
    if (want && !c->reading) {
        int r = uv_read_start((uv_stream_t *)&c->tcp, tls__alloc, tls__on_read);
        if (r < 0) {
            tls__set_error(c, "socket read: %s", uv_strerror(r));
            tls__close(c, r);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void tls__on_write(uv_write_t *req, int status)
{
    struct tls__write *w = (struct tls__write *)req;
    tls_conn *c = w->conn;
    c->queued -= w->len;
    free(w);
    /* Closing the handle fires queued write callbacks with UV_ECANCELED; the conn is still
     * allocated then, but it must not be driven any further. */
    if (c->closing)
        return;
    if (status < 0) {
        tls__set_error(c, "socket write: %s", uv_strerror(status));
        c->fatal = 1;
        tls__close(c, status);
        return;
    }
    if (c->bp_paused && c->queued < c->limits.high_water / 2) {
        c->bp_paused = 0;
        tls__update_reading(c);
        if (!c->closing && c->cb.on_drain)
            c->cb.on_drain(c, c->ud);
    }
}

static size_t tls__bio_capacity(BIO *b)
{
    BUF_MEM *bm = NULL;
    return BIO_get_mem_ptr(b, &bm) == 1 && bm ? bm->max : 0;
}

/* A fresh empty memory BIO for one above TLS_BIO_KEEP that nothing waits in (the old one is
 * freed by SSL_set0_*bio); an allocation failure keeps the old one. */
static void tls__trim_bios(tls_conn *c)
{
    if (BIO_ctrl_pending(c->rbio) == 0 && tls__bio_capacity(c->rbio) > TLS_BIO_KEEP) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b) {
            BIO_set_mem_eof_return(b, -1);
            SSL_set0_rbio(c->ssl, b);
            c->rbio = b;
        }
    }
    if (BIO_ctrl_pending(c->wbio) == 0 && tls__bio_capacity(c->wbio) > TLS_BIO_KEEP) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b) {
            SSL_set0_wbio(c->ssl, b);
            c->wbio = b;
        }
    }
    ERR_clear_error();
}

size_t tls_conn_buffered(const tls_conn *c)
{
    return tls__bio_capacity(c->rbio) + tls__bio_capacity(c->wbio);
}

static void tls__idle(uv_timer_t *t)
{
    tls_conn *c = t->data;
    if (!c->closing)
        tls__trim_bios(c);
}

/* Traffic: the BIOs' buffers are given back once the connection has been quiet for
 * TLS_IDLE_TRIM_MS (trimming after every read would free and fault in a 64 KiB read's
 * buffer again and again during a bulk transfer). While open, close_timer serves this; a
 * close restarts it with its own deadline or closes it. */
static void tls__touch(tls_conn *c)
{
    if (!c->closing && !c->handles_closed)
        uv_timer_start(&c->close_timer, tls__idle, TLS_IDLE_TRIM_MS, 0);
}

/* Moves everything SSL has produced from wbio to the socket in one uv_write. */
static int tls__flush(tls_conn *c)
{
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (pending == 0 || c->handles_closed)
        return 0;
    struct tls__write *w = malloc(sizeof(*w) + pending);
    if (!w)
        return UV_ENOMEM;
    int n = BIO_read(c->wbio, w->data, (int)pending);
    if (n <= 0) {
        free(w);
        return 0;
    }
    w->conn = c;
    w->len = (size_t)n;
    uv_buf_t b = uv_buf_init(w->data, (unsigned int)n);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tls__on_write);
    if (r < 0) {
        free(w);
        return r;
    }
    c->queued += w->len;
    if (!c->closing && c->queued > c->limits.high_water && !c->bp_paused) {
        c->bp_paused = 1;
        tls__update_reading(c);
    }
    tls__touch(c);
    return 0;
}

/* Starts closing once: sends close_notify after a good handshake, then closes the socket.
 * A clean close lets queued data drain first (bounded by TLS_CLOSE_TIMEOUT_MS). */
static void tls__close(tls_conn *c, int status)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_status = status;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    if (c->ready && !c->fatal) {
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl);
    }
    ERR_clear_error();
    /* Also sends the alert that a failed handshake left in wbio. */
    (void)tls__flush(c);
    c->shutdown_req.data = c;
    if (status == 0 && c->queued > 0 &&
        uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, tls__shutdown_done) == 0) {
        uv_timer_start(&c->close_timer, tls__close_timeout, TLS_CLOSE_TIMEOUT_MS, 0);
        return;
    }
    tls__close_handles(c);
}

static void tls__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tls_conn *c = s->data;
    if (c->closing)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && c->ready) {
            tls__close(c, 0);
        } else {
            tls__set_error(c, "connection: %s",
                           nread == UV_EOF ? "closed by peer during handshake"
                                           : uv_strerror((int)nread));
            c->fatal = 1;
            tls__close(c, nread == UV_EOF ? UV_ECONNRESET : (int)nread);
        }
        return;
    }
    if (nread == 0)
        return;
    if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
        tls__set_error(c, "%s", "out of memory buffering input");
        c->fatal = 1;
        tls__close(c, UV_ENOMEM);
        return;
    }
    tls__touch(c);
    (void)tls__pump(c);
}

/* ---- handshake and peer identity ------------------------------------------------------ */

static int tls__all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* True when the n bytes at s (not NUL-terminated) are one of our identities. */
static int tls__is_identity(const char *s, size_t n)
{
    static const char muni[] = "municipality:", prov[] = "province:";
    if (n == 7 && memcmp(s, "federal", 7) == 0)
        return 1;
    if (n == sizeof(prov) && memcmp(s, prov, sizeof(prov) - 1) == 0)
        return s[n - 1] >= '1' && s[n - 1] <= '7';
    if (n == sizeof(muni) - 1 + 5 && memcmp(s, muni, sizeof(muni) - 1) == 0)
        return tls__all_digits(s + sizeof(muni) - 1, 5);
    return 0;
}

/* The first URI SAN of cert that is an identity, into out (outlen bytes). Returns 1 when
 * found, 0 when not. */
static int tls__cert_identity(X509 *cert, char *out, size_t outlen)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_URI)
            continue;
        const char *s = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        if (len > 0 && (size_t)len < outlen && tls__is_identity(s, (size_t)len)) {
            memcpy(out, s, (size_t)len);
            out[len] = '\0';
            found = 1;
        }
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return found;
}

/* Sets c->peer from the first URI SAN that is an identity. Returns 0 or UV_EPERM. */
static int tls__check_peer(tls_conn *c)
{
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    int found = 0;

    if (!cert) {
        tls__set_error(c, "%s", "peer sent no certificate");
        return UV_EPERM;
    }
    tls__serial_hex(cert, c->serial, sizeof(c->serial));
    found = tls__cert_identity(cert, c->peer, sizeof(c->peer));
    if (!found) {
        tls__set_error(c, "%s", "peer certificate has no identity URI SAN");
        return UV_EPERM;
    }
    if (c->expect_peer && strcmp(c->peer, c->expect_peer) != 0) {
        snprintf(c->err, sizeof(c->err), "peer is %s, expected %s", c->peer, c->expect_peer);
        c->peer[0] = '\0';
        return UV_EPERM;
    }
    return 0;
}

/* Drives the handshake, delivers all decrypted data (unless paused) and flushes wbio.
 * Returns 0, or the negative code the conn is being closed with. */
static int tls__pump(tls_conn *c)
{
    int r;
    if (c->closing || c->in_pump)
        return 0;
    c->in_pump = 1;

    if (!c->ready) {
        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls__record_ssl_error(c, e);
                c->in_pump = 0;
                tls__close(c, UV_EPROTO);
                return UV_EPROTO;
            }
            goto flush;
        }
        if (c->mode != TLS_MODE_HTTPS_SERVER) {
            r = tls__check_peer(c);
            if (r < 0) {
                /* Tell the peer why instead of a bare TCP close. */
                ERR_clear_error();
                (void)SSL_shutdown(c->ssl);
                c->fatal = 1;
                c->in_pump = 0;
                tls__close(c, r);
                return r;
            }
        }
        c->ready = 1;
        /* Flush before on_ready so the client's Finished precedes any application data. */
        r = tls__flush(c);
        if (r < 0)
            goto fail_io;
        if (c->cb.on_ready)
            c->cb.on_ready(c, c->ud);
    }

    while (!c->closing && !c->paused) {
        uint8_t buf[TLS_READ_CHUNK];
        ERR_clear_error();
        r = SSL_read(c->ssl, buf, (int)sizeof(buf));
        if (r > 0) {
            if (c->cb.on_data)
                c->cb.on_data(c, buf, (size_t)r, c->ud);
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        c->in_pump = 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            tls__close(c, 0); /* the peer sent close_notify */
            return 0;
        }
        tls__record_ssl_error(c, e);
        tls__close(c, UV_EPROTO);
        return UV_EPROTO;
    }

flush:
    c->in_pump = 0;
    if (c->closing)
        return c->close_status;
    r = tls__flush(c);
    if (r < 0)
        goto fail_io;
    return 0;
fail_io:
    c->in_pump = 0;
    tls__set_error(c, "socket write: %s", uv_strerror(r));
    c->fatal = 1;
    tls__close(c, r);
    return r;
}

/* ---- creating connections ------------------------------------------------------------ */

static int tls__conn_new(tls_conn **out, tls_ctx *ctx, uv_loop_t *loop, const tls_conn_cb *cb,
                         void *ud)
{
    tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    ERR_clear_error();
    c->ssl = SSL_new(ctx->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return UV_ENOMEM;
    }
    /* An empty rbio means "wait for more bytes", not end of stream. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    c->mode = ctx->mode;
    c->cb = *cb;
    c->ud = ud;
    c->limits.high_water = TLS_DEFAULT_HIGH_WATER;
    c->limits.hard_limit = TLS_DEFAULT_HARD_LIMIT;
    /* Both handles are initialised here, so every path out closes both. */
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->close_timer);
    c->tcp.data = c;
    c->close_timer.data = c;
    c->open_handles = 2;
    *out = c;
    return 0;
}

/* Drops a conn that never reached the caller: no on_close, freed once the handles close. */
static int tls__abandon(tls_conn *c, int rc)
{
    c->silent = 1;
    c->closing = 1;
    tls__close_handles(c);
    return rc;
}

static void tls__format_addr(tls_conn *c, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    if (uv_ip_name(sa, ip, sizeof(ip)) != 0)
        snprintf(ip, sizeof(ip), "?");
    snprintf(c->addr, sizeof(c->addr), sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* Small writes go at once; an idle connection is probed (TLS_KEEPALIVE_*). Best effort: a
 * socket that refuses an option works without it. */
static void tls__socket_options(tls_conn *c)
{
    uv_os_fd_t fd;
    int intvl = TLS_KEEPALIVE_INTVL_S, probes = TLS_KEEPALIVE_PROBES;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_keepalive(&c->tcp, 1, TLS_KEEPALIVE_IDLE_S) != 0 ||
        uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

/* The server side of a connection whose socket c->tcp holds: its peer's address, then the
 * handshake awaited. Returns 0 with *out set, or a negative code (c is then freed). */
static int tls__accepted(tls_conn *c, tls_conn **out)
{
    struct sockaddr_storage ss;
    int sslen = (int)sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
        tls__format_addr(c, (const struct sockaddr *)&ss);
    tls__socket_options(c);
    SSL_set_accept_state(c->ssl);
    tls__update_reading(c);
    if (c->closing)
        return tls__abandon(c, UV_EIO);
    *out = c;
    return 0;
}

int tls_conn_accept(tls_conn **out, tls_ctx *ctx, uv_stream_t *server, const tls_conn_cb *cb,
                    void *ud)
{
    tls_conn *c = NULL;
    *out = NULL;
    if (ctx->mode == TLS_MODE_MUTUAL_CLIENT)
        return UV_EINVAL;
    int r = tls__conn_new(&c, ctx, server->loop, cb, ud);
    if (r < 0)
        return r;
    r = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (r < 0)
        return tls__abandon(c, r);
    return tls__accepted(c, out);
}

int tls_conn_accept_sock(tls_conn **out, tls_ctx *ctx, uv_loop_t *loop, uv_os_sock_t sock,
                         const tls_conn_cb *cb, void *ud)
{
    tls_conn *c = NULL;
    *out = NULL;
    int r = ctx->mode == TLS_MODE_MUTUAL_CLIENT ? UV_EINVAL : tls__conn_new(&c, ctx, loop, cb, ud);
    if (r < 0) {
        close(sock);
        return r;
    }
    r = uv_tcp_open(&c->tcp, sock);
    if (r < 0) {
        close(sock);
        return tls__abandon(c, r);
    }
    return tls__accepted(c, out);
}

static void tls__on_connect(uv_connect_t *req, int status)
{
    tls_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        tls__set_error(c, "connect: %s", uv_strerror(status));
        c->fatal = 1;
        tls__close(c, status);
        return;
    }
    tls__socket_options(c);
    tls__update_reading(c);
    (void)tls__pump(c); /* sends the ClientHello */
}

int tls_conn_connect(tls_conn **out, tls_ctx *ctx, uv_loop_t *loop, const struct sockaddr *addr,
                     const char *expect_peer, const tls_conn_cb *cb, void *ud)
{
    tls_conn *c = NULL;

    *out = NULL;
    if (ctx->mode != TLS_MODE_MUTUAL_CLIENT)
        return UV_EINVAL;
    int r = tls__conn_new(&c, ctx, loop, cb, ud);
    if (r < 0)
        return r;
    if (expect_peer && !(c->expect_peer = strdup(expect_peer)))
        return tls__abandon(c, UV_ENOMEM);
    tls__format_addr(c, addr);
    SSL_set_connect_state(c->ssl);
    c->connect_req.data = c;
    r = uv_tcp_connect(&c->connect_req, &c->tcp, addr, tls__on_connect);
    if (r < 0)
        return tls__abandon(c, r);
    *out = c;
    return 0;
}

/* ---- application interface ----------------------------------------------------------- */

int tls_conn_write(tls_conn *c, const uint8_t *buf, size_t len)
{
    if (c->closing || !c->ready)
        return UV_ENOTCONN;
    if (c->queued > c->limits.hard_limit || len > c->limits.hard_limit - c->queued)
        return UV_ENOBUFS;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < TLS_WRITE_CHUNK ? len - off : TLS_WRITE_CHUNK;
        ERR_clear_error();
        int r = SSL_write(c->ssl, buf + off, (int)n);
        if (r <= 0) {
            /* A memory BIO never fills, so this is a real failure. */
            tls__record_ssl_error(c, SSL_get_error(c->ssl, r));
            tls__close(c, UV_EPROTO);
            return UV_EPROTO;
        }
        off += (size_t)r;
    }
    int r = tls__flush(c);
    if (r < 0) {
        tls__set_error(c, "socket write: %s", uv_strerror(r));
        c->fatal = 1;
        tls__close(c, r);
        return r;
    }
    return 0;
}

size_t tls_conn_queued(const tls_conn *c)
{
    return c->queued;
}

size_t tls_conn_unacked(const tls_conn *c)
{
    uv_os_fd_t fd;
    int outq = 0;
    if (c->handles_closed || uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0 ||
        ioctl(fd, SIOCOUTQ, &outq) != 0 || outq < 0)
        outq = 0;
    return c->queued + (size_t)outq;
}

void tls_conn_set_limits(tls_conn *c, const tls_limits *limits)
{
    c->limits.high_water = limits->high_water ? limits->high_water : TLS_DEFAULT_HIGH_WATER;
    c->limits.hard_limit = limits->hard_limit ? limits->hard_limit : TLS_DEFAULT_HARD_LIMIT;
    if (c->closing)
        return;
    if (!c->bp_paused && c->queued > c->limits.high_water) {
        c->bp_paused = 1;
        tls__update_reading(c);
    } else if (c->bp_paused && c->queued < c->limits.high_water / 2) {
        c->bp_paused = 0;
        tls__update_reading(c);
    }
}

void tls_conn_pause(tls_conn *c)
{
    if (c->closing || c->paused)
        return;
    c->paused = 1;
    tls__update_reading(c);
}

void tls_conn_resume(tls_conn *c)
{
    if (c->closing || !c->paused)
        return;
    c->paused = 0;
    /* Inside on_data the running pump picks up where it stopped. Otherwise deliver what
     * SSL already decrypted or buffered before reading more from the socket. */
    if (!c->in_pump)
        (void)tls__pump(c);
    if (!c->closing)
        tls__update_reading(c);
}

void tls_conn_close(tls_conn *c)
{
    tls__close(c, 0);
}

const char *tls_conn_peer(const tls_conn *c)
{
    return c->ready && c->peer[0] ? c->peer : NULL;
}

const char *tls_conn_peer_serial(const tls_conn *c)
{
    return c->ready && c->serial[0] ? c->serial : "";
}

const char *tls_conn_addr(const tls_conn *c)
{
    return c->addr;
}

int tls_conn_superseded(const tls_conn *c)
{
    return c->superseded;
}

const char *tls_conn_error(const tls_conn *c)
{
    return c->err;
}

int tls_conn_is_closing(const tls_conn *c)
{
    return c->closing;
}

void *tls_conn_data(const tls_conn *c)
{
    return c->ud;
}

void tls_conn_set_data(tls_conn *c, void *ud)
{
    c->ud = ud;
}
