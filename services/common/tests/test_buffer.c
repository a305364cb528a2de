/* Tests for buffer.c: appends of every kind, growth, reuse after free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buffer.h"

static void test_appends_accumulate_as_text(void **state)
{
    (void)state;
    buffer_t buf = BUFFER_INIT;
    buffer_append(&buf, "ab\0cd", 5); /* bytes, NUL included */
    buffer_append_str(&buf, "ef");
    buffer_appendf(&buf, "-%d-%s", 42, "x");
    assert_int_equal(buf.len, 12);
    assert_memory_equal(buf.data, "ab\0cdef-42-x", 12);
    assert_int_equal(buf.data[buf.len], '\0');
    buffer_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
}

static void test_it_grows_past_any_first_size(void **state)
{
    (void)state;
    buffer_t buf = BUFFER_INIT;
    char line[100];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    for (int i = 0; i < 1000; i++)
        buffer_appendf(&buf, "%04d%s", i, line);
    assert_int_equal(buf.len, 1000 * 103);
    assert_memory_equal(buf.data + 999 * 103, "0999x", 5);
    assert_true(buf.cap > buf.len);
    buffer_free(&buf);
    buffer_append_str(&buf, "again"); /* reusable after free */
    assert_string_equal(buf.data, "again");
    buffer_free(&buf);
}

static void test_formatted_text_longer_than_a_guess(void **state)
{
    (void)state;
    buffer_t buf = BUFFER_INIT;
    char big[5000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buffer_appendf(&buf, "[%s]", big);
    assert_int_equal(buf.len, sizeof(big) + 1);
    assert_int_equal(buf.data[0], '[');
    assert_int_equal(buf.data[buf.len - 1], ']');
    buffer_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_accumulate_as_text),
        cmocka_unit_test(test_it_grows_past_any_first_size),
        cmocka_unit_test(test_formatted_text_longer_than_a_guess),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
