/* Token hashing, bearer parsing and roles (federal-api/auth.c); the failed-attempt limiter
 * is common/limiter.c's (test_limiter.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "limiter.h"

static void test_auth_hash_is_sha256_hex(void **state)
{
    (void)state;
    char h[AUTH_HASH_HEX + 1];
    assert_int_equal(auth_hash_hex("abc", h, sizeof(h)), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_auth_tokens_are_random_and_parse_back(void **state)
{
    (void)state;
    char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1], hdr[100], out[AUTH_TOKEN_LEN + 1];
    assert_int_equal(auth_token_generate(a, sizeof(a)), 0);
    assert_int_equal(auth_token_generate(b, sizeof(b)), 0);
    assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
    assert_string_not_equal(a, b);
    snprintf(hdr, sizeof(hdr), "bearer  %s", a);
    assert_int_equal(auth_parse_bearer(hdr, out, sizeof(out)), 0);
    assert_string_equal(out, a);
}

static void test_auth_refuses_malformed_bearers(void **state)
{
    (void)state;
    char out[AUTH_TOKEN_LEN + 1];
    assert_int_equal(auth_parse_bearer(NULL, out, sizeof(out)), REINT_EINVAL);
    assert_int_equal(auth_parse_bearer("Basic abc", out, sizeof(out)), REINT_EINVAL);
    assert_int_equal(auth_parse_bearer("Bearer fed_' OR 1=1", out, sizeof(out)), REINT_EINVAL);
    assert_int_equal(
        auth_parse_bearer("Bearer fed_00000000000000000000000000000000000000000000000000000000000"
                          "0000G",
                          out, sizeof(out)),
        REINT_EINVAL);
}

static void test_auth_roles(void **state)
{
    (void)state;
    enum auth_role r;
    int p;
    assert_int_equal(auth_parse_role("province", 3, &r, &p), 0);
    assert_int_equal(r, AUTH_PROVINCE);
    assert_int_equal(p, 3);
    assert_int_equal(auth_parse_role("province:7", 0, &r, &p), 0);
    assert_int_equal(p, 7);
    assert_int_equal(auth_parse_role("province", 0, &r, &p), REINT_EINVAL);
    assert_int_equal(auth_parse_role("province:8", 0, &r, &p), REINT_EINVAL);
    assert_int_equal(auth_parse_role("ministry", 2, &r, &p), REINT_EINVAL);
    assert_int_equal(auth_parse_role("public", 0, &r, &p), 0);
    assert_int_equal(r, AUTH_PUBLIC);
    assert_true(auth_name_ok("ministry-of-labour.1"));
    assert_false(auth_name_ok("x y"));
}

/* The limiter keys failures on the token's random part: "fed_" alone would put every token
 * in one of 65,536 prefixes. */
static void test_auth_limiter_prefix_is_of_the_random_part(void **state)
{
    (void)state;
    char tok[AUTH_TOKEN_LEN + 1], hdr[100], p[LIMITER_PREFIX_MAX];
    assert_int_equal(auth_token_generate(tok, sizeof(tok)), 0);
    snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
    limiter_prefix(hdr, AUTH_TOKEN_PREFIX, p);
    assert_int_equal(strlen(p), LIMITER_PREFIX_LEN);
    assert_memory_equal(p, tok + 4, LIMITER_PREFIX_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_hash_is_sha256_hex),
        cmocka_unit_test(test_auth_tokens_are_random_and_parse_back),
        cmocka_unit_test(test_auth_refuses_malformed_bearers),
        cmocka_unit_test(test_auth_roles),
        cmocka_unit_test(test_auth_limiter_prefix_is_of_the_random_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
