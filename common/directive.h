/* Signed national directives: Ed25519 over the exact serialized Directive bytes (OpenSSL).
 * Every tier verifies before it stores or relays: a known key id, a valid signature, and a
 * serial above the last one it holds. Key rotation adds a key id to the keyring. */
#ifndef COMMON_DIRECTIVE_H
#define COMMON_DIRECTIVE_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"

#define DIRECTIVE_MAX_KEYS 16

typedef struct directive_keyring directive_keyring;

/* Makes an Ed25519 key pair: private key PEM at priv_path (mode 0600), public at pub_path.
 * Returns 0 or REINT_EKEY. */
int directive_keygen(const char *priv_path, const char *pub_path);

/* Loads public keys: a comma-separated list of "key_id=path.pem". Returns 0 or
 * REINT_EKEY with a message in err. Free with directive_keyring_free. */
int directive_keyring_load(directive_keyring **out, const char *spec, char *err, size_t errlen);
void directive_keyring_free(directive_keyring *k);

/* Signs d (d->key_id must be key_id) with the private key at priv_path into a
 * SignedDirective whose body and signature are malloc'd (free with
 * directive_signed_free). Returns 0 or a negative code. */
int directive_sign(const Reint__V1__Directive *d, const char *key_id, const char *priv_path,
                   Reint__V1__SignedDirective *out, char *err, size_t errlen);
void directive_signed_free(Reint__V1__SignedDirective *sd);

/* The text rule of a directive's strings (the federal tier's POST /v1/directives, and
 * directive_verify where a signed one arrives): no character utf8_unsafe names (controls,
 * marks that reorder text), but for newlines and tabs where newlines is non-zero. Returns the
 * first offending byte's offset in the n bytes at s, or -1. */
long directive_control_at(const char *s, size_t n, int newlines);

/* Whether the Directive d, decoded from the len bytes at body, holds only what the federal
 * API accepts: every string UTF-8 without NUL, and the text rule above in its title, text and
 * priority rules. Returns 0, or REINT_EMALFORMED with why naming the field. Also for
 * directives a node stored before it checked them. */
int directive_body_check(const Reint__V1__Directive *d, const uint8_t *body, size_t len, char *why,
                         size_t whylen);

/* Verifies sd against the keyring and the last serial held (0 if none): the key id must be
 * known, the signature valid over the exact body bytes, the body a Directive whose key_id
 * matches, whose text passes directive_body_check and whose serial is above last_serial. On
 * success *out is the decoded Directive (free with reint__v1__directive__free_unpacked).
 * Returns 0 or DIRECTIVE_E* with err. */
int directive_verify(const directive_keyring *k, const Reint__V1__SignedDirective *sd,
                     uint64_t last_serial, Reint__V1__Directive **out, char *err, size_t errlen);

/* Whether a person is eligible under d: category, age in [min_age, max_age] and registration
 * date. The age (in years, -1 when unknown: not eligible under an age rule) and the
 * registration day (days since 1970-01-01) are the node's own, from its local data: upstream
 * records carry only an age band at registration, whose overlap with the range listed people
 * up to 14 years outside it, and the registration's months. Returns 1 or 0. */
int directive_eligible(const Reint__V1__Directive *d, const Reint__V1__Person *p,
                       int32_t registered_day, int age);

#endif
