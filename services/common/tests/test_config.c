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
    static const char *const bad[] = {"http://x",        "redis://",
                                      "redis://h:0",     "redis://h:99999",
                                      "redis://h/99",    "redis://h:12x",
                                      "redis://h: 12",   "redis://h:+12",
                                      "redis://h/+1",    "redis://h/ 1",
                                      "redis://h/-0",    "redis://[::1",
                                      "redis://[nope]",  "redis://[::1]x",
                                      "redis://:p%zz@h", "redis://:p%00@h",
                                      "redis://h?db=1",  "redis://h#x",
                                      "redis://",        "redis://@",
                                      "redis://:pw@",    "redis://cache%0a.example",
                                      "redis://ca che",  NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        if (redis_parse_url(bad[i], &t, error, sizeof(error)) != -1)
            fail_msg("accepted bad REDIS_URL '%s'", bad[i]);
}

static void test_redis_url_per_rfc_3986(void **state)
{
    (void)state;
    redis_target_t t;
    char error[128];
    /* userinfo ends at the last '@': a password may hold one */
    assert_int_equal(redis_parse_url("redis://:p@ss@w0rd@cache:6380/1", &t, error, sizeof(error)), 0);
    assert_string_equal(t.password, "p@ss@w0rd");
    assert_string_equal(t.host, "cache");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.database, 1);
    /* percent-encoding is decoded */
    assert_int_equal(redis_parse_url("redis://:a%40b%3Ac%2Fd%25@h", &t, error, sizeof(error)), 0);
    assert_string_equal(t.password, "a@b:c/d%");
    assert_string_equal(t.host, "h");
    /* an ACL user */
    assert_int_equal(redis_parse_url("redis://app:secret@h", &t, error, sizeof(error)), 0);
    assert_string_equal(t.username, "app");
    assert_string_equal(t.password, "secret");
    /* IPv6 in brackets */
    assert_int_equal(redis_parse_url("redis://[::1]:6390/3", &t, error, sizeof(error)), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 6390);
    assert_int_equal(t.database, 3);
    assert_int_equal(redis_parse_url("redis://:pw@[2001:db8::7]", &t, error, sizeof(error)), 0);
    assert_string_equal(t.host, "2001:db8::7");
    assert_int_equal(t.port, 6379);
    assert_string_equal(t.password, "pw");
    /* an empty port or db means the default */
    assert_int_equal(redis_parse_url("redis://h:/", &t, error, sizeof(error)), 0);
    assert_int_equal(t.port, 6379);
    assert_int_equal(t.database, 0);
}

static void test_numbers_are_strict(void **state)
{
    (void)state;
    static const char *const bad_integers[] = {" 8",  "+8", "8 ", "\t8", "0x10",
                                               "8.0", "",   "-",  "1e3", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_integers) / sizeof(bad_integers[0]); i++) {
        config_errors_t errors = {0};
        setenv("TEST_INT", bad_integers[i], 1);
        if (bad_integers[i][0] == '\0')
            continue; /* empty means unset */
        assert_int_equal(config_long(&errors, "TEST_INT", 7, -100, 100), 7);
        if (errors.count != 1)
            fail_msg("accepted '%s' as a whole number", bad_integers[i]);
    }
    long value;
    assert_int_equal(config_parse_long("-42", &value), 0);
    assert_int_equal(value, -42);
    assert_int_equal(config_parse_long("007", &value), 0);
    assert_int_equal(value, 7);
    static const char *const bad_numbers[] = {" 0.5", "+0.5", "0.5 ", "0x1p-1", "inf", "nan", ".5", "5.", "1e", "1e+"};
    for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]); i++) {
        config_errors_t errors = {0};
        setenv("TEST_NUMBER", bad_numbers[i], 1);
        assert_true(config_double(&errors, "TEST_NUMBER", 0.25, -10, 10) == 0.25);
        if (errors.count != 1)
            fail_msg("accepted '%s' as a number", bad_numbers[i]);
    }
    /* the error quotes the value, and stays one line whatever it holds (a fuzzing find) */
    config_errors_t one_line = {0};
    setenv("TEST_INT", "1\n2\r3\x1b", 1);
    config_long(&one_line, "TEST_INT", 7, -100, 100);
    assert_int_equal(one_line.count, 1);
    assert_null(strpbrk(one_line.first, "\n\r\x1b"));
    static const char *const good_numbers[] = {"0.5", "-1", "2e-1", "1.5E+0"};
    for (size_t i = 0; i < sizeof(good_numbers) / sizeof(good_numbers[0]); i++) {
        config_errors_t errors = {0};
        setenv("TEST_NUMBER", good_numbers[i], 1);
        config_double(&errors, "TEST_NUMBER", 0.25, -10, 10);
        assert_int_equal(errors.count, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_when_unset),          cmocka_unit_test(test_valid_values_are_read),
        cmocka_unit_test(test_bad_values_name_the_variable), cmocka_unit_test(test_first_error_is_kept),
        cmocka_unit_test(test_choice_and_length_errors),     cmocka_unit_test(test_redis_url_parsing),
        cmocka_unit_test(test_redis_url_per_rfc_3986),       cmocka_unit_test(test_numbers_are_strict),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
