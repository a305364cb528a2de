/* Tests for trace.c: traceparent parsing, continuation and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

#define VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, trace_context_t *ctx)
{
    return trace_parse_traceparent(s, strlen(s), ctx);
}

static void test_parses_valid_header(void **state)
{
    (void)state;
    trace_context_t ctx;
    assert_int_equal(parse(VALID, &ctx), 0);
    assert_string_equal(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(ctx.parent_id, "00f067aa0ba902b7");
    assert_int_equal(ctx.flags, 1);
}

static void test_rejects_invalid_headers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",          /* no flags */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",       /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       /* zero span id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       /* forbidden version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", /* v00 has no extra fields */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",       /* wrong separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",       /* non-hex */
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        trace_context_t ctx;
        if (parse(bad[i], &ctx) != -1)
            fail_msg("accepted invalid traceparent '%s'", bad[i]);
    }
}

static void test_future_version_may_carry_more_fields(void **state)
{
    (void)state;
    trace_context_t ctx;
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc", &ctx), 0);
    assert_string_equal(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

static void test_server_span_continues_valid_trace(void **state)
{
    (void)state;
    trace_context_t ctx;
    assert_true(trace_start_server_span(&ctx, VALID, strlen(VALID)));
    assert_string_equal(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(ctx.parent_id, "00f067aa0ba902b7");
    assert_int_equal(strlen(ctx.span_id), 16);
    assert_string_not_equal(ctx.span_id, "00f067aa0ba902b7");
}

static void test_server_span_starts_new_trace_on_bad_header(void **state)
{
    (void)state;
    trace_context_t a, b;
    assert_false(trace_start_server_span(&a, "nonsense", 8));
    assert_false(trace_start_server_span(&b, NULL, 0));
    assert_int_equal(strlen(a.trace_id), 32);
    assert_string_equal(a.parent_id, "");
    assert_string_not_equal(a.trace_id, b.trace_id);
    assert_int_equal(a.flags, TRACE_FLAG_SAMPLED);
}

static void test_format_round_trips(void **state)
{
    (void)state;
    trace_context_t ctx, parsed;
    trace_start_server_span(&ctx, VALID, strlen(VALID));
    char header[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&ctx, header);
    assert_int_equal(strlen(header), TRACE_TRACEPARENT_LEN);
    assert_int_equal(parse(header, &parsed), 0);
    assert_string_equal(parsed.trace_id, ctx.trace_id);
    assert_string_equal(parsed.parent_id, ctx.span_id); /* our span is the next hop's parent */
}

static void test_child_span_keeps_trace(void **state)
{
    (void)state;
    trace_context_t parent, child;
    trace_start_server_span(&parent, NULL, 0);
    trace_start_child_span(&child, &parent);
    assert_string_equal(child.trace_id, parent.trace_id);
    assert_string_equal(child.parent_id, parent.span_id);
    assert_string_not_equal(child.span_id, parent.span_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_valid_header),
        cmocka_unit_test(test_rejects_invalid_headers),
        cmocka_unit_test(test_future_version_may_carry_more_fields),
        cmocka_unit_test(test_server_span_continues_valid_trace),
        cmocka_unit_test(test_server_span_starts_new_trace_on_bad_header),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_child_span_keeps_trace),
    };
    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
