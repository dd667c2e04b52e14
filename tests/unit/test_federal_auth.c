/* Token hashing, bearer parsing, roles and the failed-attempt limiter (federal-api/auth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"

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

static void test_auth_limiter_blocks_after_max_failures_per_address(void **state)
{
    (void)state;
    auth_limiter *l = auth_limiter_new(3, 60);
    for (int i = 0; i < 3; i++) {
        assert_false(auth_limiter_blocked(l, "10.0.0.1:4000", 1000));
        auth_limiter_fail(l, "10.0.0.1:4000", 1000);
    }
    assert_true(auth_limiter_blocked(l, "10.0.0.1:5000", 2000)); /* any port */
    assert_false(auth_limiter_blocked(l, "10.0.0.2:4000", 2000));
    assert_false(auth_limiter_blocked(l, "10.0.0.1:4000", 1000 + 60000)); /* window over */
    auth_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_hash_is_sha256_hex),
        cmocka_unit_test(test_auth_tokens_are_random_and_parse_back),
        cmocka_unit_test(test_auth_refuses_malformed_bearers),
        cmocka_unit_test(test_auth_roles),
        cmocka_unit_test(test_auth_limiter_blocks_after_max_failures_per_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
