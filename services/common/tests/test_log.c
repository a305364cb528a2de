/* Tests for log.c: every line is one JSON object with DESIGN's fields, and
 * hostile field values cannot break the line. */
#define _GNU_SOURCE /* memmem */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static json_t *format_line(const trace_context_t *trace, const char *msg, const log_field_t *fields, size_t count,
                           size_t size)
{
    char buf[16384];
    size_t len = log_format(buf, size, LOG_WARN, trace, msg, fields, count);
    assert_true(len > 0 && len <= size);
    assert_int_equal(buf[len - 1], '\n');
    assert_null(memchr(buf, '\n', len - 1)); /* exactly one line */
    json_error_t error;
    json_t *line = json_loadb(buf, len, 0, &error);
    if (line == NULL)
        fail_msg("not JSON (%s): %.*s", error.text, (int)len, buf);
    return line;
}

static void test_line_has_design_fields(void **state)
{
    (void)state;
    log_init("inventory", LOG_INFO);
    trace_context_t trace;
    trace_start_server_span(&trace, NULL, 0);
    const log_field_t fields[] = {LOG_STRING("route", "/x"), LOG_INT("status", 201), LOG_DOUBLE("duration_ms", 1.5)};
    json_t *line = format_line(&trace, "request", fields, 3, 16384);
    const char *ts = json_string_value(json_object_get(line, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-22T01:02:03.456Z */
    assert_int_equal(ts[23], 'Z');
    assert_string_equal(json_string_value(json_object_get(line, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(line, "service")), "inventory");
    assert_string_equal(json_string_value(json_object_get(line, "msg")), "request");
    assert_string_equal(json_string_value(json_object_get(line, "trace_id")), trace.trace_id);
    assert_string_equal(json_string_value(json_object_get(line, "span_id")), trace.span_id);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 201);
    assert_true(json_real_value(json_object_get(line, "duration_ms")) == 1.5);
    json_decref(line);
}

static void test_hostile_values_are_escaped(void **state)
{
    (void)state;
    const char *evil = "quote\" backslash\\ newline\n tab\t ctrl\x01 end";
    const log_field_t fields[] = {LOG_STRING("value", evil), LOG_STRING("null", NULL)};
    json_t *line = format_line(NULL, "msg with \"quotes\"\n", fields, 2, 16384);
    assert_string_equal(json_string_value(json_object_get(line, "value")), evil);
    assert_true(json_is_null(json_object_get(line, "null")));
    assert_string_equal(json_string_value(json_object_get(line, "trace_id")), "");
    json_decref(line);
}

static void test_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    const log_field_t fields[] = {LOG_STRING("path", "/caf\xc3\xa9/\xff\xfe/\xe2\x82"),
                                  LOG_STRING("ok", "\xe2\x82\xac")};
    json_t *line = format_line(NULL, "utf8", fields, 2, 16384);
    assert_string_equal(json_string_value(json_object_get(line, "path")),
                        "/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(line, "ok")), "\xe2\x82\xac");
    json_decref(line);
}

static void test_invalid_lead_bytes_and_line_breaking_controls(void **state)
{
    (void)state;
    /* 0xF6 followed by continuation bytes is no character (found by
     * fuzzing the writer: it used to be copied raw); U+0085 and U+2028 are
     * valid JSON but line breaks to many readers, so they are escaped */
    const log_field_t fields[] = {LOG_STRING("path", "/\xf6\x8b\x8b"),
                                  LOG_STRING("c1", "a\xc2\x85"
                                                   "b"),
                                  LOG_STRING("ls", "a\xe2\x80\xa8"
                                                   "b")};
    char buf[4096];
    size_t len = log_format(buf, sizeof(buf), LOG_INFO, NULL, "utf8", fields, 3);
    assert_non_null(memmem(buf, len, "\\u0085", 6));
    assert_non_null(memmem(buf, len, "\\u2028", 6));
    assert_null(memmem(buf, len, "\xc2\x85", 2));
    assert_null(memmem(buf, len, "\xe2\x80\xa8", 3));
    json_t *line = format_line(NULL, "utf8", fields, 3, 16384);
    assert_string_equal(json_string_value(json_object_get(line, "path")), "/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(line, "c1")), "a\xc2\x85"
                                                                        "b");
    json_decref(line);
}

static void test_oversized_line_is_truncated_but_valid(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const log_field_t fields[] = {LOG_STRING("payload", big)};
    json_t *line = format_line(NULL, "big", fields, 1, 512);
    assert_true(json_is_true(json_object_get(line, "truncated")));
    assert_string_equal(json_string_value(json_object_get(line, "msg")), "big");
    json_decref(line);
}

static void test_a_message_longer_than_the_line_is_cut_but_valid(void **state)
{
    (void)state;
    /* the fallback line used to copy the whole message and end mid-string
     * (a fuzzing find): it keeps what fits, in whole characters */
    static char msg[3000];
    for (size_t i = 0; i + 2 < sizeof(msg); i += 2)
        memcpy(msg + i, "\xc3\xa9", 2);
    log_init("inventory", LOG_INFO);
    json_t *line = format_line(NULL, msg, NULL, 0, 512);
    assert_true(json_is_true(json_object_get(line, "truncated")));
    const char *kept = json_string_value(json_object_get(line, "msg"));
    assert_true(strlen(kept) > 100 && strncmp(kept, msg, strlen(kept)) == 0);
    json_decref(line);
}

static void test_level_names(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("WARNING"), LOG_WARN);
    assert_int_equal(log_level_parse("loud"), -1);
    log_init("x", LOG_WARN);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_ERROR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_design_fields),
        cmocka_unit_test(test_hostile_values_are_escaped),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
        cmocka_unit_test(test_invalid_lead_bytes_and_line_breaking_controls),
        cmocka_unit_test(test_oversized_line_is_truncated_but_valid),
        cmocka_unit_test(test_a_message_longer_than_the_line_is_cut_but_valid),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
