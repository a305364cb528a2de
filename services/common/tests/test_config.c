/* Tests for config.c: defaults, valid values, and one clear error naming the
 * variable for anything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "redis.h"

static void test_defaults_when_unset(void **state)
{
    (void)state;
    config_errors_t errors = {0};
    unsetenv("TEST_PORT");
    setenv("TEST_EMPTY", "", 1);
    assert_int_equal(config_long(&errors, "TEST_PORT", 8002, 1, 65535), 8002);
    assert_string_equal(config_string("TEST_EMPTY", "fallback"), "fallback");
    assert_int_equal(errors.count, 0);
}

static void test_valid_values_are_read(void **state)
{
    (void)state;
    config_errors_t errors = {0};
    setenv("TEST_PORT", "9000", 1);
    setenv("TEST_RATE", "0.25", 1);
    setenv("TEST_LEVEL", "WARN", 1);
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    assert_int_equal(config_long(&errors, "TEST_PORT", 8002, 1, 65535), 9000);
    assert_true(config_double(&errors, "TEST_RATE", 0, 0, 1) == 0.25);
    assert_int_equal(config_choice(&errors, "TEST_LEVEL", levels, 1), 2);
    assert_int_equal(errors.count, 0);
}

static void test_bad_values_name_the_variable(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *expect;
    } cases[] = {
        {"80a", "invalid TEST_PORT: '80a' is not a whole number"},
        {"0", "invalid TEST_PORT: 0 is outside 1..65535"},
        {"70000", "invalid TEST_PORT: 70000 is outside 1..65535"},
        {"-1", "invalid TEST_PORT: -1 is outside 1..65535"},
        {"99999999999999999999", "invalid TEST_PORT: '99999999999999999999' is not a whole number"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config_errors_t errors = {0};
        setenv("TEST_PORT", cases[i].value, 1);
        assert_int_equal(config_long(&errors, "TEST_PORT", 8002, 1, 65535), 8002);
        assert_int_equal(errors.count, 1);
        assert_string_equal(errors.first, cases[i].expect);
    }
}

static void test_first_error_is_kept(void **state)
{
    (void)state;
    config_errors_t errors = {0};
    setenv("TEST_A", "x", 1);
    setenv("TEST_B", "y", 1);
    config_long(&errors, "TEST_A", 1, 0, 10);
    config_double(&errors, "TEST_B", 1, 0, 10);
    assert_int_equal(errors.count, 2);
    assert_non_null(strstr(errors.first, "TEST_A"));
}

static void test_choice_and_length_errors(void **state)
{
    (void)state;
    config_errors_t errors = {0};
    static const char *const levels[] = {"debug", "info", NULL};
    setenv("TEST_LEVEL", "loud", 1);
    assert_int_equal(config_choice(&errors, "TEST_LEVEL", levels, 1), 1);
    assert_non_null(strstr(errors.first, "TEST_LEVEL"));
    config_errors_t short_token = {0};
    setenv("TEST_TOKEN", "short", 1);
    config_string_checked(&short_token, "TEST_TOKEN", "a-long-enough-default", 16, 256);
    assert_int_equal(short_token.count, 1);
    assert_non_null(strstr(short_token.first, "TEST_TOKEN"));
}

static void test_redis_url_parsing(void **state)
{
    (void)state;
    redis_target_t t;
    char error[128];
    assert_int_equal(redis_parse_url("redis://127.0.0.1:6380/2", &t, error, sizeof(error)), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.database, 2);
    assert_string_equal(t.password, "");
    assert_int_equal(redis_parse_url("redis://:s3cret@cache", &t, error, sizeof(error)), 0);
    assert_string_equal(t.host, "cache");
    assert_int_equal(t.port, 6379);
    assert_string_equal(t.password, "s3cret");
    static const char *const bad[] = {"http://x",     "redis://",      "redis://h:0", "redis://h:99999",
                                      "redis://h/99", "redis://h:12x", NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        if (redis_parse_url(bad[i], &t, error, sizeof(error)) != -1)
            fail_msg("accepted bad REDIS_URL '%s'", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_when_unset),          cmocka_unit_test(test_valid_values_are_read),
        cmocka_unit_test(test_bad_values_name_the_variable), cmocka_unit_test(test_first_error_is_kept),
        cmocka_unit_test(test_choice_and_length_errors),     cmocka_unit_test(test_redis_url_parsing),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
