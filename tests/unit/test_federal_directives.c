/* Validation and rendering of POST /v1/directives bodies (federal-api/fdirectives.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bscal.h"
#include "fdirectives.h"

static const char *full_body =
    "{\"title\":\"Returnee women first\",\"text\":\"Line one.\\nLine two.\","
    "\"effective_from\":\"2026-07-17\",\"expires_at\":\"2027-07-16\","
    "\"eligibility\":{\"categories\":[\"returnee\",\"COMMUNITY\"],\"min_age\":18,"
    "\"max_age\":45,\"registered_after\":\"2026-01-01\",\"priority_rules\":[\"women first\"]},"
    "\"targets\":[{\"indicator\":\"participants_registered\",\"grouping\":\"age_band,sex\","
    "\"key\":[\"25_39\",\"female\"],\"scope\":\"province\",\"scope_code\":3,"
    "\"period\":\"FY2083/84\",\"value\":1200},"
    "{\"indicator\":\"enterprises_active\",\"period\":\"2026-Q3\",\"share\":0.25},"
    "{\"indicator\":\"returnees_registered\",\"grouping\":\"destination_country\","
    "\"key\":[\"qa\"],\"scope\":\"municipality\",\"scope_code\":10101,\"period\":\"2026\","
    "\"value\":10}]}";

static int has_field(const fdir_errors *e, const char *field)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->e[i].field, field) == 0)
            return 1;
    return 0;
}

static int parse(const char *body, fdir_draft **d, fdir_errors *e)
{
    return fdir_parse(body, strlen(body), d, e);
}

static void test_fdir_accepts_a_full_body_and_normalises_it(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    assert_int_equal(parse(full_body, &dr, &e), 0);
    Reint__V1__Directive *d = fdir_directive(dr);
    assert_string_equal(d->title, "Returnee women first");
    assert_string_equal(d->text, "Line one.\nLine two.");
    assert_int_equal(d->effective_from_day, bscal_days_from_ad(2026, 7, 17));
    assert_int_equal(d->expires_at_day, bscal_days_from_ad(2027, 7, 16));
    assert_int_equal(d->eligibility->n_categories, 2);
    assert_int_equal(d->eligibility->categories[0], REINT__V1__CATEGORY__CATEGORY_RETURNEE);
    assert_int_equal(d->eligibility->min_age, 18);
    assert_int_equal(d->eligibility->max_age, 45);
    assert_int_equal(d->eligibility->registered_after_day, bscal_days_from_ad(2026, 1, 1));
    assert_int_equal(d->eligibility->n_priority_rules, 1);
    assert_int_equal(d->n_targets, 3);
    Reint__V1__Target *t = d->targets[0];
    assert_string_equal(t->grouping, "sex,age_band");
    assert_int_equal(t->n_key, 2);
    assert_string_equal(t->key[0], "FEMALE");
    assert_string_equal(t->key[1], "25_39");
    assert_int_equal(t->scope, REINT__V1__TARGET_SCOPE__TARGET_SCOPE_PROVINCE);
    assert_int_equal(t->scope_code, 3);
    assert_int_equal(t->value, 1200);
    assert_true(d->targets[1]->share > 0.249 && d->targets[1]->share < 0.251);
    assert_string_equal(d->targets[1]->grouping, "");
    assert_string_equal(d->targets[2]->key[0], "QA");
    assert_int_equal(d->targets[2]->scope_code, 10101);
    fdir_draft_free(dr);
}

static void test_fdir_refuses_each_bad_field_by_name(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    const char *body =
        "{\"text\":\"\",\"effective_from\":\"2026-02-30\",\"colour\":1,"
        "\"eligibility\":{\"categories\":[\"ALIEN\",\"returnee\",\"RETURNEE\"],\"min_age\":130},"
        "\"targets\":[{\"indicator\":\"participants_registered\",\"grouping\":\"sex,sector\","
        "\"period\":\"2026\",\"value\":1},"
        "{\"indicator\":\"participants_registered\",\"grouping\":\"sex\",\"key\":[\"X\"],"
        "\"period\":\"2026-Q9\",\"scope\":\"province\",\"scope_code\":0,\"value\":1.5}]}";
    assert_int_equal(parse(body, &dr, &e), REINT_EINVAL);
    assert_null(dr);
    const char *fields[] = {"title",
                            "text",
                            "effective_from",
                            "colour",
                            "eligibility.categories[0]",
                            "eligibility.categories[2]",
                            "eligibility.min_age",
                            "targets[0].grouping",
                            "targets[1].key[0]",
                            "targets[1].period",
                            "targets[1].scope_code",
                            "targets[1].value"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (!has_field(&e, fields[i]))
            fail_msg("no error for %s", fields[i]);
    }
    /* A Gregorian date outside the dates taken says which are: from 2000-01-01 to the end of
     * the Bikram Sambat table, 2043-04-13 (every date after it was refused as "must be a
     * Gregorian date YYYY-MM-DD of the years 2000..2099", an attack on the demo found). */
    static const struct {
        const char *date, *reason; /* NULL: taken */
    } dates[] = {
        {"1900-01-01", "is before 2000-01-01"},
        {"1999-12-31", "is before 2000-01-01"},
        {"2000-01-01", NULL},
        {"2043-04-13", NULL},
        {"2043-04-14", "is after 2043-04-13, the end of the Bikram Sambat calendar table"},
        {"2099-12-31", "is after 2043-04-13"},
        {"2043-02-30", "must be a Gregorian date YYYY-MM-DD"},
    };
    int said = 0;
    for (size_t k = 0; k < sizeof(dates) / sizeof(dates[0]); k++) {
        char dbody[160];
        snprintf(dbody, sizeof(dbody), "{\"title\":\"t\",\"text\":\"x\",\"effective_from\":\"%s\"}",
                 dates[k].date);
        int rc = parse(dbody, &dr, &e);
        if (dates[k].reason == NULL) {
            if (rc != 0)
                fail_msg("%s refused: %s", dates[k].date, e.n ? e.e[0].reason : e.message);
            fdir_draft_free(dr);
            continue;
        }
        assert_int_equal(rc, REINT_EINVAL);
        said = 0;
        for (size_t i = 0; i < e.n; i++)
            said |=
                !strcmp(e.e[i].field, "effective_from") && strstr(e.e[i].reason, dates[k].reason);
        if (!said)
            fail_msg("%s: no \"%s\" (%s)", dates[k].date, dates[k].reason,
                     e.n ? e.e[0].reason : e.message);
    }
    /* The text rule directive_verify applies again where a signed directive arrives: no
     * control character in the title, none but newlines and tabs in the text. */
    assert_int_equal(parse("{\"title\":\"a\\u001b[2J\",\"text\":\"x\\u0007\","
                           "\"effective_from\":\"2026-07-17\"}",
                           &dr, &e),
                     REINT_EINVAL);
    said = 0;
    for (size_t i = 0; i < e.n; i++)
        said += (!strcmp(e.e[i].field, "title") && strstr(e.e[i].reason, "at byte 1")) ||
                (!strcmp(e.e[i].field, "text") && strstr(e.e[i].reason, "at byte 1"));
    assert_int_equal(said, 2);
}

static void test_fdir_ratio_takes_share_and_counts_take_value(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    const char *body = "{\"title\":\"t\",\"text\":\"x\",\"effective_from\":\"2026-07-17\","
                       "\"targets\":[{\"indicator\":\"enterprises_active\",\"period\":\"2026\","
                       "\"value\":3},{\"indicator\":\"jobs_created\",\"period\":\"2026\","
                       "\"share\":0.5}]}";
    assert_int_equal(parse(body, &dr, &e), REINT_EINVAL);
    assert_true(has_field(&e, "targets[0].value"));
    assert_true(has_field(&e, "targets[1].share"));
}

static void test_fdir_refuses_a_repeated_target(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    /* The same cell named in the other dimension order, in other letter case. */
    const char *body =
        "{\"title\":\"t\",\"text\":\"x\",\"effective_from\":\"2026-07-17\","
        "\"targets\":[{\"indicator\":\"participants_registered\",\"grouping\":\"sex,category\","
        "\"key\":[\"FEMALE\",\"RETURNEE\"],\"period\":\"2026\",\"value\":3},"
        "{\"indicator\":\"participants_registered\",\"grouping\":\"category,sex\","
        "\"key\":[\"returnee\",\"female\"],\"period\":\"2026\",\"value\":4}]}";
    assert_int_equal(parse(body, &dr, &e), REINT_EINVAL);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.e[0].field, "targets[1]");
}

static void test_fdir_malformed_json_is_not_a_field_error(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    assert_int_equal(parse("{\"title\":", &dr, &e), REINT_EMALFORMED);
    assert_non_null(strstr(e.message, "malformed JSON"));
    assert_int_equal(parse("[]", &dr, &e), REINT_EMALFORMED);
    assert_int_equal(parse("{\"title\":\"a\",\"title\":\"b\"}", &dr, &e), REINT_EMALFORMED);
    char *big = malloc(FDIR_MAX_BODY + 2);
    assert_non_null(big);
    memset(big, ' ', FDIR_MAX_BODY + 1);
    big[FDIR_MAX_BODY + 1] = '\0';
    assert_int_equal(fdir_parse(big, FDIR_MAX_BODY + 1, &dr, &e), REINT_EMALFORMED);
    free(big);
}

static void test_fdir_caps_the_error_list(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    char body[8192];
    size_t o = (size_t)snprintf(body, sizeof(body),
                                "{\"title\":\"t\",\"text\":\"x\","
                                "\"effective_from\":\"2026-07-17\",\"targets\":[");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%s{\"indicator\":\"nope\"}",
                              i ? "," : "");
    snprintf(body + o, sizeof(body) - o, "]}");
    assert_int_equal(parse(body, &dr, &e), REINT_EINVAL);
    assert_int_equal(e.n, FDIR_MAX_ERRORS);
    assert_int_equal(e.dropped, 1);
}

static void test_fdir_renders_a_signed_body_as_json(void **state)
{
    (void)state;
    fdir_draft *dr;
    fdir_errors e;
    assert_int_equal(parse(full_body, &dr, &e), 0);
    Reint__V1__Directive *d = fdir_directive(dr);
    d->serial = 42;
    d->key_id = "k1";
    d->issued_at = 1784246400123ull;
    size_t n = reint__v1__directive__get_packed_size(d);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    reint__v1__directive__pack(d, buf);
    fdir_draft_free(dr);
    Reint__V1__Directive *u = reint__v1__directive__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(u);
    sbuf b;
    sbuf_init(&b, 1 << 16);
    fdir_json_open(&b, u, bscal_days_from_ad(2026, 8, 1));
    sbuf_puts(&b, "}");
    reint__v1__directive__free_unpacked(u, NULL);
    assert_false(b.failed);
    const char *want[] = {"\"serial\":42",
                          "\"key_id\":\"k1\"",
                          "\"issued_at\":\"2026-07-17T00:00:00.123Z\"",
                          "\"effective_from\":\"2026-07-17\"",
                          "\"expires_at\":\"2027-07-16\"",
                          "\"in_force\":true",
                          "\"text\":\"Line one.\\u000aLine two.\"",
                          "\"categories\":[\"RETURNEE\",\"COMMUNITY\"]",
                          "\"registered_after\":\"2026-01-01\"",
                          "\"grouping\":\"sex,age_band\",\"key\":[\"FEMALE\",\"25_39\"]",
                          "\"scope\":\"province\",\"scope_code\":3",
                          "\"share\":0.25",
                          "\"value\":1200"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(b.p, want[i]) == NULL)
            fail_msg("%s not in %s", want[i], b.p);
    sbuf_free(&b);
}

static void test_fdir_key_ids(void **state)
{
    (void)state;
    assert_true(fdir_key_id_ok("fed-2026.1_a"));
    assert_false(fdir_key_id_ok(""));
    assert_false(fdir_key_id_ok("a b"));
    assert_false(fdir_key_id_ok("a=b"));
    assert_false(fdir_key_id_ok("a,b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fdir_accepts_a_full_body_and_normalises_it),
        cmocka_unit_test(test_fdir_refuses_each_bad_field_by_name),
        cmocka_unit_test(test_fdir_ratio_takes_share_and_counts_take_value),
        cmocka_unit_test(test_fdir_refuses_a_repeated_target),
        cmocka_unit_test(test_fdir_malformed_json_is_not_a_field_error),
        cmocka_unit_test(test_fdir_caps_the_error_list),
        cmocka_unit_test(test_fdir_renders_a_signed_body_as_json),
        cmocka_unit_test(test_fdir_key_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
