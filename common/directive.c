#include "directive.h"

#include "frame.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct directive_keyring {
    size_t n;
    char id[DIRECTIVE_MAX_KEYS][64];
    EVP_PKEY *key[DIRECTIVE_MAX_KEYS];
};

static void directive__ossl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
}

/* Writes key's private (0600) or public half to a new file at path, durably (the file, then
 * its directory); a file begun and not finished is removed. */
static int directive__write_pem(const char *path, EVP_PKEY *key, int private)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, private ? 0600 : 0644);
    if (fd < 0)
        return REINT_EKEY;
    FILE *f = fdopen(fd, "w");
    int ok = f != NULL &&
             (private ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                      : PEM_write_PUBKEY(f, key)) == 1 &&
             fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f ? fclose(f) != 0 : close(fd) != 0)
        ok = 0;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = ok ? open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        ok = fsync(dfd) == 0;
        close(dfd);
    }
    if (!ok)
        unlink(path);
    return ok ? 0 : REINT_EKEY;
}

int directive_keygen(const char *priv_path, const char *pub_path)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (key == NULL)
        return REINT_EKEY;
    /* Each file fsync'd: a key lost to a crash after its public half was handed out would
     * leave directives no one can sign. Both or neither: a private key without its public
     * half is removed. */
    int rc = directive__write_pem(priv_path, key, 1);
    if (rc == 0 && (rc = directive__write_pem(pub_path, key, 0)) != 0)
        unlink(priv_path);
    EVP_PKEY_free(key);
    return rc;
}

int directive_keyring_load(directive_keyring **out, const char *spec, char *err, size_t errlen)
{
    directive_keyring *k = calloc(1, sizeof(*k));
    char buf[2048], *save = NULL;
    if (k == NULL)
        return REINT_EKEY;
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL || eq == item || k->n == DIRECTIVE_MAX_KEYS) {
            snprintf(err, errlen, "directive keys: \"%s\" is not key_id=path.pem", item);
            goto fail;
        }
        *eq = '\0';
        FILE *f = fopen(eq + 1, "r");
        if (f == NULL) {
            snprintf(err, errlen, "directive key %s: %s: %s", item, eq + 1, strerror(errno));
            goto fail;
        }
        EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
        if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
            EVP_PKEY_free(key);
            snprintf(err, errlen, "directive key %s: %s is not an Ed25519 public key", item,
                     eq + 1);
            goto fail;
        }
        snprintf(k->id[k->n], sizeof(k->id[0]), "%s", item);
        k->key[k->n++] = key;
    }
    *out = k;
    return 0;
fail:
    directive_keyring_free(k);
    return REINT_EKEY;
}

void directive_keyring_free(directive_keyring *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->key[i]);
    free(k);
}

int directive_sign(const Reint__V1__Directive *d, const char *key_id, const char *priv_path,
                   Reint__V1__SignedDirective *out, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    uint8_t *body = NULL, *sig = NULL;
    size_t siglen = 64;
    int rc = REINT_EKEY;
    FILE *f = fopen(priv_path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", priv_path, strerror(errno));
        return REINT_EKEY;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        snprintf(err, errlen, "%s is not an Ed25519 private key", priv_path);
        goto out;
    }
    size_t n = reint__v1__directive__get_packed_size(d);
    body = malloc(n ? n : 1);
    sig = malloc(siglen);
    md = EVP_MD_CTX_new();
    if (body == NULL || sig == NULL || md == NULL)
        goto out;
    reint__v1__directive__pack(d, body);
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(md, sig, &siglen, body, n) != 1) {
        directive__ossl_err(err, errlen, "signing");
        goto out;
    }
    reint__v1__signed_directive__init(out);
    out->key_id = strdup(key_id);
    out->body.data = body;
    out->body.len = n;
    out->signature.data = sig;
    out->signature.len = siglen;
    body = sig = NULL;
    rc = out->key_id ? 0 : REINT_EKEY;
out:
    free(body);
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return rc;
}

void directive_signed_free(Reint__V1__SignedDirective *sd)
{
    free(sd->key_id);
    free(sd->body.data);
    free(sd->signature.data);
    sd->key_id = NULL;
    sd->body.data = sd->signature.data = NULL;
}

long directive_control_at(const char *s, size_t n, int newlines)
{
    return utf8_unsafe_at(s, n, newlines ? "\n\t" : "");
}

/* A signed directive is checked again where it arrives, so that a key's holder cannot send
 * what the federal tier's API would refuse: a clerk's terminal would run an escape sequence
 * shown by `municipal-node directives`. */
static int directive__text_ok(const char *s, int newlines)
{
    return s == NULL || directive_control_at(s, strlen(s), newlines) < 0;
}

int directive_body_check(const Reint__V1__Directive *d, const uint8_t *body, size_t len, char *why,
                         size_t whylen)
{
    const char *bad = NULL;
    if (frame_check_strings(&reint__v1__directive__descriptor, body, len, why, whylen) != 0)
        return REINT_EMALFORMED;
    if (!directive__text_ok(d->title, 0))
        bad = "Directive.title holds a control character or a mark that reorders text";
    else if (!directive__text_ok(d->text, 1))
        bad = "Directive.text holds a control character other than a newline or a tab, or a mark "
              "that reorders text";
    for (size_t i = 0; bad == NULL && d->eligibility && i < d->eligibility->n_priority_rules; i++)
        if (!directive__text_ok(d->eligibility->priority_rules[i], 0))
            bad =
                "Eligibility.priority_rules holds a control character or a mark that reorders text";
    if (bad == NULL)
        return 0;
    snprintf(why, whylen, "%s", bad);
    return REINT_EMALFORMED;
}

int directive_verify(const directive_keyring *k, const Reint__V1__SignedDirective *sd,
                     uint64_t last_serial, Reint__V1__Directive **out, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    const char *kid = sd->key_id ? sd->key_id : "";
    for (size_t i = 0; k && i < k->n; i++)
        if (strcmp(k->id[i], kid) == 0)
            key = k->key[i];
    if (key == NULL) {
        snprintf(err, errlen, "directive signed by unknown key \"%.60s\"", kid);
        return REINT_EKEY;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(md, sd->signature.data, sd->signature.len, sd->body.data,
                              sd->body.len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errlen, "directive signature does not verify with key \"%.60s\"", kid);
        return REINT_ESIGNATURE;
    }
    Reint__V1__Directive *d = reint__v1__directive__unpack(NULL, sd->body.len, sd->body.data);
    if (d == NULL || d->key_id == NULL || strcmp(d->key_id, kid) != 0) {
        if (d)
            reint__v1__directive__free_unpacked(d, NULL);
        snprintf(err, errlen, "directive body is malformed or names another key");
        return REINT_EMALFORMED;
    }
    char why[160];
    if (directive_body_check(d, sd->body.data, sd->body.len, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "directive %llu refused: %s", (unsigned long long)d->serial, why);
        reint__v1__directive__free_unpacked(d, NULL);
        return REINT_EMALFORMED;
    }
    if (d->serial <= last_serial) {
        snprintf(err, errlen, "directive serial %llu is not above %llu (a replay)",
                 (unsigned long long)d->serial, (unsigned long long)last_serial);
        reint__v1__directive__free_unpacked(d, NULL);
        return REINT_EREPLAY;
    }
    *out = d;
    return 0;
}

int directive_eligible(const Reint__V1__Directive *d, const Reint__V1__Person *p,
                       int32_t registered_day, int age)
{
    const Reint__V1__Eligibility *e = d->eligibility;
    if (e == NULL)
        return 1;
    if (e->n_categories > 0) {
        int found = 0;
        for (size_t i = 0; i < e->n_categories; i++)
            found |= e->categories[i] == p->category;
        if (!found)
            return 0;
    }
    if (e->min_age > 0 || e->max_age > 0) {
        if (age < 0)
            return 0; /* unknown age: not shown as eligible under an age rule */
        if (e->min_age > 0 && age < (int)e->min_age)
            return 0;
        if (e->max_age > 0 && age > (int)e->max_age)
            return 0;
    }
    if (e->registered_after_day > 0 && registered_day <= e->registered_after_day)
        return 0;
    return 1;
}
