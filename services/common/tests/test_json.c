/* Tests for json.c: every rejection names the offending field and says why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "utf8.h"

static json_t *parse(const char *text, json_field_error_t *error)
{
    return json_parse_object(text, strlen(text), error);
}

static void test_parse_rejects_non_objects_and_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "[1,2]", "42", "{\"a\":", "{\"a\":1} trailing", "{\"a\":1,\"a\":2}", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        json_field_error_t error = {0};
        json_t *root = parse(bad[i], &error);
        if (root != NULL)
            fail_msg("accepted '%s'", bad[i]);
        assert_true(strlen(error.message) > 0);
    }
}

static void test_malformed_json_reports_position(void **state)
{
    (void)state;
    json_field_error_t error;
    assert_null(parse("{\"order_id\": \"x\",\n \"items\": [}", &error));
    assert_non_null(strstr(error.message, "line 2"));
}

static void test_string_field_rules(void **state)
{
    (void)state;
    json_field_error_t error;
    /* an embedded NUL would cut C strings short: refused at parse time */
    assert_null(parse("{\"nul\":\"a\\u0000b\"}", &error));
    json_t *body = parse("{\"name\":\"abc\",\"n\":5,\"empty\":\"\"}", &error);
    const char *value;
    assert_int_equal(json_read_string(body, "name", true, 1, 10, &value, &error), 0);
    assert_string_equal(value, "abc");
    assert_int_equal(json_read_string(body, "missing", false, 1, 10, &value, &error), 0);
    assert_null(value);

    assert_int_equal(json_read_string(body, "missing", true, 1, 10, &value, &error), -1);
    assert_string_equal(error.field, "missing");
    assert_string_equal(error.message, "missing is required");

    assert_int_equal(json_read_string(body, "n", true, 1, 10, &value, &error), -1);
    assert_string_equal(error.message, "n must be a string, not an integer");

    assert_int_equal(json_read_string(body, "empty", true, 1, 10, &value, &error), -1);
    assert_string_equal(error.field, "empty");

    assert_int_equal(json_read_string(body, "name", true, 1, 2, &value, &error), -1);
    assert_string_equal(error.message, "name must be 1 to 2 characters long");
    json_decref(body);

    /* lengths are characters, not bytes */
    body = parse("{\"e\":\"\\u00e9\\u00e9\\u00e9\"}", &error);
    assert_int_equal(json_read_string(body, "e", true, 1, 3, &value, &error), 0);
    assert_int_equal(json_read_string(body, "e", true, 1, 2, &value, &error), -1);
    json_decref(body);
}

static void test_text_field_refuses_controls_and_blank(void **state)
{
    (void)state;
    json_field_error_t error;
    const char *value;
    json_t *body =
        parse("{\"ok\":\"Zo\\u00eb \\u20ac\",\"c1\":\"a\\u0085b\",\"bidi\":\"a\\u202eb\",\"zw\":\"a\\u200bb\","
              "\"esc\":\"a\\u001bb\",\"blank\":\"   \"}",
              &error);
    assert_int_equal(json_read_text(body, "ok", true, 1, 10, &value, &error), 0);
    assert_string_equal(value, "Zo\xc3\xab \xe2\x82\xac");
    static const char *const refused[] = {"c1", "bidi", "zw", "esc", "blank"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(json_read_text(body, refused[i], true, 1, 10, &value, &error), -1);
        assert_string_equal(error.field, refused[i]);
        assert_null(value);
    }
    assert_int_equal(json_read_text(body, "missing", false, 1, 10, &value, &error), 0);
    assert_null(value);
    assert_int_equal(json_read_text(body, "missing", true, 1, 10, &value, &error), -1);
    json_decref(body);
}

static void test_errors_never_split_a_character(void **state)
{
    (void)state;
    json_field_error_t error;
    /* jansson quotes the text near a parse error and may cut it inside a
     * character (a fuzzing find): only whole characters are kept */
    char broken[64] = "{\"a\": x";
    for (int i = 0; i < 20; i++)
        strcat(broken, "\xc3\xa9");
    assert_null(json_parse_object(broken, strlen(broken), &error));
    assert_true(utf8_valid(error.message, strlen(error.message)));
    assert_non_null(strstr(error.message, "malformed JSON"));
    char key[200] = "a";
    for (int i = 0; i < 80; i++)
        strcat(key, "\xc3\xa9"); /* 161 bytes of é after the a */
    json_fail(&error, key, "unknown field '%s' and more text %s", key, key);
    assert_true(utf8_valid(error.field, strlen(error.field)));
    assert_true(utf8_valid(error.message, strlen(error.message)));
    assert_true(strlen(error.field) >= sizeof(error.field) - 2);
}

static void test_integer_field_rules(void **state)
{
    (void)state;
    json_field_error_t error;
    json_t *body =
        parse("{\"qty\":3,\"zero\":0,\"neg\":-4,\"real\":1.5,\"text\":\"7\",\"big\":9223372036854775807}", &error);
    long long n;
    bool present;
    assert_int_equal(json_read_int(body, "qty", true, 1, 1000, &n, &present, &error), 0);
    assert_int_equal(n, 3);
    assert_true(present);
    assert_int_equal(json_read_int(body, "absent", false, 1, 1000, &n, &present, &error), 0);
    assert_false(present);

    assert_int_equal(json_read_int(body, "zero", true, 1, 1000, &n, NULL, &error), -1);
    assert_string_equal(error.message, "zero must be between 1 and 1000");
    assert_int_equal(json_read_int(body, "neg", true, 1, 1000, &n, NULL, &error), -1);
    assert_string_equal(error.field, "neg");
    assert_int_equal(json_read_int(body, "real", true, 1, 1000, &n, NULL, &error), -1);
    assert_string_equal(error.message, "real must be an integer, not a number with a fraction");
    assert_int_equal(json_read_int(body, "text", true, 1, 1000, &n, NULL, &error), -1);
    assert_string_equal(error.message, "text must be an integer, not a string");
    assert_int_equal(json_read_int(body, "big", true, 1, 1000, &n, NULL, &error), -1);
    json_decref(body);
}

static void test_array_and_unknown_fields(void **state)
{
    (void)state;
    json_field_error_t error;
    json_t *body = parse("{\"items\":[1,2,3],\"quantity\":2}", &error);
    json_t *items;
    assert_int_equal(json_read_array(body, "items", true, 1, 5, &items, &error), 0);
    assert_int_equal(json_array_size(items), 3);
    assert_int_equal(json_read_array(body, "items", true, 1, 2, &items, &error), -1);
    assert_string_equal(error.message, "items must have 1 to 2 items");
    assert_int_equal(json_read_array(body, "quantity", true, 1, 2, &items, &error), -1);
    assert_string_equal(error.message, "quantity must be an array, not an integer");

    static const char *const allowed[] = {"items", "qty", NULL};
    assert_int_equal(json_reject_unknown_fields(body, allowed, &error), -1);
    assert_string_equal(error.field, "quantity");
    assert_string_equal(error.message, "unknown field 'quantity'");
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rejects_non_objects_and_garbage),
        cmocka_unit_test(test_malformed_json_reports_position),
        cmocka_unit_test(test_string_field_rules),
        cmocka_unit_test(test_text_field_refuses_controls_and_blank),
        cmocka_unit_test(test_errors_never_split_a_character),
        cmocka_unit_test(test_integer_field_rules),
        cmocka_unit_test(test_array_and_unknown_fields),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
