/* TLS over libuv TCP with OpenSSL memory BIOs.
 *
 * One tls_conn owns one uv_tcp_t and one SSL with two memory BIOs. Every SSL call is
 * followed by tls__pump() inside tls.c, which flushes the output BIO to the socket (handshake
 * messages, tickets and alerts come from calls other than SSL_write). Reads are paused while
 * the write queue is above the high-water mark (backpressure), and tls_conn_write refuses
 * data past the hard limit. A tls_conn is freed only in its uv_close callback, after
 * on_close has run. */
#ifndef COMMON_TLS_H
#define COMMON_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

enum tls_mode {
    TLS_MODE_MUTUAL_SERVER, /* TLS 1.3 only, client certificate required and verified */
    TLS_MODE_MUTUAL_CLIENT, /* TLS 1.3 only, presents a certificate, verifies the server */
    TLS_MODE_HTTPS_SERVER,  /* TLS 1.2+, ECDHE + AEAD only, no client certificate */
};

typedef struct tls_ctx_opts {
    enum tls_mode mode;
    const char *ca_file;   /* PEM CA certificate(s) that peers must chain to */
    const char *cert_file; /* PEM certificate chain of this process */
    const char *key_file;  /* PEM private key of this process */
    const char *crl_file;  /* PEM CRL; may be NULL (then no revocation check) */
} tls_ctx_opts;

/* Creates a context from PEM files. Returns 0, or a negative UV_E* code with a message in
 * err (NUL-terminated, at most errlen bytes). The caller frees with tls_ctx_free. */
int tls_ctx_new(tls_ctx **out, const tls_ctx_opts *opts, char *err, size_t errlen);

/* Reloads the CRL file into a fresh X509_STORE; connections accepted or started afterwards
 * are checked against it. Returns 0 or a negative code with a message in err (the previous
 * store then stays in use). A CRL not signed by a CA in ca_file is refused. Without a
 * crl_file (or in HTTPS_SERVER mode) there is nothing to reload and it returns 0. */
int tls_ctx_reload_crl(tls_ctx *ctx, char *err, size_t errlen);

/* Reloads this process's certificate and key from the files it was made with (a rotation:
 * `pki.sh issue --force`, or a renewal): connections started or accepted afterwards present
 * them. The new certificate must name the same identity, be valid now, have a key of the
 * same type, and (mutual TLS) chain to the CA and not be revoked by the CRL in use, or
 * (HTTPS) name every name and address the old one did. Returns 0 with the new
 * certificate's serial (hex) in serial, or a negative code with err set; the context then
 * keeps what it had. */
int tls_ctx_reload_cert(tls_ctx *ctx, char *serial, size_t serial_len, char *err, size_t errlen);
/* tls_ctx_reload_cert on each non-NULL context of ctxs, logged (SIGHUP at every tier). */
void tls_ctx_reload_certs(tls_ctx *const *ctxs, size_t n);

/* Calls cb(ud) after every successful tls_ctx_reload_crl, so that the owner of the open
 * connections can check them again (one callback per context; NULL removes it). */
void tls_ctx_on_reload(tls_ctx *ctx, void (*cb)(void *ud), void *ud);

/* The current CRL file's bytes (PEM) into a malloc'd buffer (*out NULL and *len 0 when the
 * context has no CRL). Returns 0 or a negative code. */
int tls_ctx_crl_pem(const tls_ctx *ctx, uint8_t **out, size_t *len);
/* Takes a CRL offered by a peer (PEM, len bytes): when it is signed by a CA of ca_file and
 * newer (lastUpdate) than the one held, it replaces the crl_file (atomically) and is loaded.
 * Returns 1 when installed, 0 when not newer (or the context keeps no CRL), or a negative
 * code with err set. */
int tls_ctx_install_crl(tls_ctx *ctx, const uint8_t *pem, size_t len, char *err, size_t errlen);

/* Seconds since the epoch at which the loaded CRL's nextUpdate falls (0 if no CRL). */
int64_t tls_ctx_crl_next_update(const tls_ctx *ctx);

void tls_ctx_free(tls_ctx *ctx);

typedef struct tls_conn_cb {
    /* The handshake finished and the peer certificate verified; tls_conn_peer() is set. */
    void (*on_ready)(tls_conn *c, void *ud);
    /* Decrypted application bytes; valid only during the call. */
    void (*on_data)(tls_conn *c, const uint8_t *buf, size_t len, void *ud);
    /* The socket write queue fell back below the low-water mark. May be NULL. */
    void (*on_drain)(tls_conn *c, void *ud);
    /* Called exactly once, from the uv_close callback, with 0 for a clean close or a
     * negative code; the conn is freed right after it returns. */
    void (*on_close)(tls_conn *c, int status, void *ud);
} tls_conn_cb;

typedef struct tls_limits {
    size_t high_water; /* queued bytes above which reads pause (default 8 MiB) */
    size_t hard_limit; /* queued bytes above which tls_conn_write refuses (default 64 MiB) */
} tls_limits;

/* Accepts a pending connection on server and starts the server handshake. cb is copied.
 * Returns 0 or a negative code (the pending connection is then dropped). */
int tls_conn_accept(tls_conn **out, tls_ctx *ctx, uv_stream_t *server, const tls_conn_cb *cb,
                    void *ud);

/* Like tls_conn_accept, for a socket the caller accepted and read from already (a PROXY
 * protocol header before the handshake). The conn owns sock from the call on and closes it,
 * also when this fails. */
int tls_conn_accept_sock(tls_conn **out, tls_ctx *ctx, uv_loop_t *loop, uv_os_sock_t sock,
                         const tls_conn_cb *cb, void *ud);

/* Connects to addr and starts the client handshake. When expect_peer is not NULL the
 * server certificate must carry that identity (e.g. "province:1"), or the connection is
 * closed with UV_EPERM. cb is copied; expect_peer is copied. */
int tls_conn_connect(tls_conn **out, tls_ctx *ctx, uv_loop_t *loop, const struct sockaddr *addr,
                     const char *expect_peer, const tls_conn_cb *cb, void *ud);

/* Encrypts and queues len bytes (copied). Returns 0, UV_ENOBUFS past the hard limit,
 * UV_ENOTCONN before on_ready or after close started. */
int tls_conn_write(tls_conn *c, const uint8_t *buf, size_t len);

/* Bytes encrypted and queued to the socket but not yet written by the kernel. */
size_t tls_conn_queued(const tls_conn *c);
/* Those, and the bytes the kernel holds that the peer has not acknowledged yet (SIOCOUTQ):
 * everything sent that has not reached the peer. */
size_t tls_conn_unacked(const tls_conn *c);

/* A connection's memory BIOs keep the largest buffer they held; once the connection has been
 * quiet for TLS_IDLE_TRIM_MS, one above TLS_BIO_KEEP that nothing waits in is given back, so
 * that an idle connection holds little beyond OpenSSL's own state (about 26 KiB for a mutual
 * TLS 1.3 server connection, measured with SSL_free). */
#define TLS_BIO_KEEP     (2u * 1024u)
#define TLS_IDLE_TRIM_MS 1000

/* Bytes the connection's two memory BIOs hold allocated (their capacity). */
size_t tls_conn_buffered(const tls_conn *c);

void tls_conn_set_limits(tls_conn *c, const tls_limits *limits);

/* Stops or restarts delivering on_data (application-level backpressure). */
void tls_conn_pause(tls_conn *c);
void tls_conn_resume(tls_conn *c);

/* Sends close_notify (if the handshake finished), then closes the socket without waiting
 * for the peer's. Safe to call more than once; on_close follows once. */
void tls_conn_close(tls_conn *c);

/* The identity of ctx's own certificate, from its URI SAN ("province:1"), or "" when it
 * names none (a web certificate). A daemon checks it against its configuration at start. */
const char *tls_ctx_identity(const tls_ctx *ctx);
/* Whether ctx's own certificate names kind:number ("province:1"; kind alone, "federal", when
 * number is negative): 0, or REINT_EFORBIDDEN with *named what it names ("no identity" when
 * nothing), for the daemon's message. */
int tls_ctx_check_identity(const tls_ctx *ctx, const char *kind, long number, const char **named);

/* The identity from the peer certificate's URI SAN ("municipality:10703", "province:1",
 * "federal"), or NULL before on_ready (and always in HTTPS_SERVER mode). Owned by the conn. */
const char *tls_conn_peer(const tls_conn *c);

/* The serial number of the peer's certificate in hex ("1A2F"), or "" before on_ready. For
 * security events: it names the key that acted. Owned by the conn. */
const char *tls_conn_peer_serial(const tls_conn *c);

/* The peer's address as text ("127.0.0.1:5431"), for logs. Owned by the conn. */
const char *tls_conn_addr(const tls_conn *c);

/* Why the connection failed, for logs: the certificate verification error ("certificate
 * revoked", "unable to get local issuer certificate"), the TLS alert or protocol error, or
 * the identity check that refused the peer. Empty string when there was none. Owned by the
 * conn; valid until on_close returns. */
const char *tls_conn_error(const tls_conn *c);
/* 1 when the peer's certificate was refused (at the handshake, by either side, or by
 * tls_conn_verify_again) as revoked with the reason "superseded": replaced by a newer one, a
 * rotation. */
int tls_conn_superseded(const tls_conn *c);

int tls_conn_is_closing(const tls_conn *c);

/* Verifies the peer's certificate chain of an established connection again, against ctx's
 * current store (its CRL included): 0 when it still verifies, UV_EPERM when not (the reason
 * in tls_conn_error), UV_ENOMEM. A connection not yet handshaken answers 0. */
int tls_conn_verify_again(tls_conn *c, tls_ctx *ctx);

void *tls_conn_data(const tls_conn *c);
void tls_conn_set_data(tls_conn *c, void *ud);

#endif
