/* Tests for uuid.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>

#include <cmocka.h>

#include "uuid.h"

static void test_canonical_uuids_in_either_case(void **state)
{
    (void)state;
    assert_true(uuid_is_valid("123e4567-e89b-12d3-a456-426614174000"));
    assert_true(uuid_is_valid("123E4567-E89B-12D3-A456-426614174000"));
    assert_true(uuid_is_valid("00000000-0000-0000-0000-000000000000"));
}

static void test_everything_else_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "123e4567e89b12d3a456426614174000",      /* no dashes */
        "123e4567-e89b-12d3-a456-42661417400",   /* short */
        "123e4567-e89b-12d3-a456-4266141740000", /* long */
        "123e4567-e89b-12d3-a456_426614174000",  /* wrong separator */
        "123e4567-e89b-12d3-a456-42661417400g",  /* not hex */
        "{123e4567-e89b-12d3-a456-426614174000}",
        "123e4567-e89b-12d3-a4564-26614174000", /* dash moved */
        " 23e4567-e89b-12d3-a456-426614174000",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(uuid_is_valid(bad[i]));
}

static void test_generated_uuids_are_version_4_and_distinct(void **state)
{
    (void)state;
    char a[UUID_TEXT_LEN + 1], b[UUID_TEXT_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        uuid_generate_v4(a);
        uuid_generate_v4(b);
        assert_true(uuid_is_valid(a));
        assert_int_equal(a[14], '4');            /* the version nibble */
        assert_non_null(strchr("89ab", a[19]));  /* the variant bits */
        for (const char *p = a; *p != '\0'; p++) /* lower case */
            assert_false(*p >= 'A' && *p <= 'F');
        assert_string_not_equal(a, b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_uuids_in_either_case),
        cmocka_unit_test(test_everything_else_is_refused),
        cmocka_unit_test(test_generated_uuids_are_version_4_and_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
