#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hlc.h"
#include "record.h"
#include "rid.h"

static uint8_t id[16];
static Reint__V1__Record rec;
static Reint__V1__Person person;

static int setup(void **state)
{
    (void)state;
    rid_new(id, 1700000000000ull);
    reint__v1__record__init(&rec);
    reint__v1__person__init(&person);
    rec.id.data = id;
    rec.id.len = 16;
    rec.municipality = 10703;
    rec.version = 1;
    rec.body_case = REINT__V1__RECORD__BODY_PERSON;
    rec.person = &person;
    person.registered_day = 19000;
    person.years_abroad = -1;
    return 0;
}

static void test_record_valid_person_passes(void **state)
{
    (void)state;
    record_error e;
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
}

static void test_record_future_date_refused_naming_field(void **state)
{
    (void)state;
    record_error e;
    person.registered_day = 20002;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_day");
    assert_non_null(strstr(e.reason, "future"));
}

static void test_record_date_before_table_refused(void **state)
{
    (void)state;
    record_error e;
    person.registered_day = RECORD_MIN_DAY - 1;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_day");
}

static void test_record_unknown_enum_value_accepted(void **state)
{
    (void)state;
    record_error e;
    person.sex = (Reint__V1__Sex)42; /* a value a newer node may send */
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
    assert_string_equal(record_enum_name(&reint__v1__sex__descriptor, 42), "UNKNOWN");
}

static void test_record_bad_country_refused(void **state)
{
    (void)state;
    record_error e;
    person.destination_country = "qa";
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.destination_country");
}

static void test_record_bad_id_length_refused(void **state)
{
    (void)state;
    record_error e;
    rec.id.len = 15;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "id");
}

static void test_record_missing_body_refused(void **state)
{
    (void)state;
    record_error e;
    rec.body_case = REINT__V1__RECORD__BODY__NOT_SET;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "body");
}

static void test_record_service_negative_amount_refused(void **state)
{
    (void)state;
    record_error e;
    Reint__V1__Service s = REINT__V1__SERVICE__INIT;
    s.person_id.data = id;
    s.person_id.len = 16;
    s.day = 19000;
    s.amount_npr = -5;
    rec.body_case = REINT__V1__RECORD__BODY_SERVICE;
    rec.service = &s;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "service.amount_npr");
    s.amount_npr = -1; /* unknown */
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
}

static void test_record_enum_parse_is_case_insensitive(void **state)
{
    (void)state;
    int v = 0;
    assert_int_equal(record_enum_parse(&reint__v1__sex__descriptor, "female", &v), 0);
    assert_int_equal(v, REINT__V1__SEX__SEX_FEMALE);
    assert_int_equal(record_enum_parse(&reint__v1__service_type__descriptor, "Seed_Funding", &v),
                     0);
    assert_int_equal(v, REINT__V1__SERVICE_TYPE__SERVICE_TYPE_SEED_FUNDING);
    assert_int_equal(record_enum_parse(&reint__v1__sex__descriptor, "unknown", &v), REINT_EINVAL);
    assert_int_equal(record_enum_parse(&reint__v1__sex__descriptor, "F?", &v), REINT_EINVAL);
    char list[128];
    record_enum_list(&reint__v1__sex__descriptor, list, sizeof(list));
    assert_string_equal(list, "FEMALE, MALE, OTHER");
}

static void test_hlc_never_goes_back(void **state)
{
    (void)state;
    hlc c = {0};
    uint64_t a = hlc_next(&c, 1000);
    uint64_t b = hlc_next(&c, 1000);
    uint64_t d = hlc_next(&c, 900); /* the wall clock stepped back */
    assert_true(b > a && d > b);
    hlc_observe(&c, (5000ull << 16) + 7);
    assert_true(hlc_next(&c, 1000) > (5000ull << 16) + 7);
    assert_int_equal(hlc_ms(hlc_next(&c, 9000)), 9000);
}

static void test_rid_is_time_ordered_uuidv7(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    char s[RID_HEX_LEN + 1];
    uint8_t back[16];
    rid_new(a, 1700000000000ull);
    rid_new(b, 1700000000001ull);
    assert_true(memcmp(a, b, 16) < 0);
    assert_int_equal(a[6] >> 4, 7);
    assert_int_equal(a[8] >> 6, 2);
    rid_format(a, s);
    assert_int_equal(rid_parse(s, back), 0);
    assert_memory_equal(a, back, 16);
    assert_int_equal(rid_parse("not-a-uuid", back), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_record_valid_person_passes, setup),
        cmocka_unit_test_setup(test_record_future_date_refused_naming_field, setup),
        cmocka_unit_test_setup(test_record_date_before_table_refused, setup),
        cmocka_unit_test_setup(test_record_unknown_enum_value_accepted, setup),
        cmocka_unit_test_setup(test_record_bad_country_refused, setup),
        cmocka_unit_test_setup(test_record_bad_id_length_refused, setup),
        cmocka_unit_test_setup(test_record_missing_body_refused, setup),
        cmocka_unit_test_setup(test_record_service_negative_amount_refused, setup),
        cmocka_unit_test(test_record_enum_parse_is_case_insensitive),
        cmocka_unit_test(test_hlc_never_goes_back),
        cmocka_unit_test(test_rid_is_time_ordered_uuidv7),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
