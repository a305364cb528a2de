/* Tests for utf8.c: strict decoding (RFC 3629), character counts, cuts
 * that never split a character, and the control characters refused in
 * text from clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void test_decode_accepts_every_length(void **state)
{
    (void)state;
    uint32_t cp;
    assert_int_equal(utf8_decode("A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(utf8_decode("\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xe9);
    assert_int_equal(utf8_decode("\xe2\x82\xac", 3, &cp), 3);
    assert_int_equal(cp, 0x20ac);
    assert_int_equal(utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1f600);
    assert_int_equal(utf8_decode("\xf4\x8f\xbf\xbf", 4, &cp), 4);
    assert_int_equal(cp, 0x10ffff);
}

static void test_decode_refuses_what_rfc_3629_forbids(void **state)
{
    (void)state;
    uint32_t cp;
    static const char *const bad[] = {
        "\x80",             /* a lone continuation byte */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xf0\x80\x80\xaf", /* overlong, four bytes */
        "\xed\xa0\x80",     /* a surrogate, U+D800 */
        "\xf4\x90\x80\x80", /* beyond U+10FFFF */
        "\xf5\x8b\x8b",     /* lead byte 0xF5 with two continuation bytes (a fuzzing find) */
        "\xf6\x8b\x8b\x8b", /* 0xF6 */
        "\xff\x8b\x8b",     /* 0xFF */
        "\xc3(",            /* a lead byte without its continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(utf8_decode(bad[i], strlen(bad[i]), &cp), 0);
        assert_false(utf8_valid(bad[i], strlen(bad[i])));
    }
    assert_int_equal(utf8_valid_prefix("ab\xc3\xa9\xe2\x82", 6), 4); /* a euro sign cut short */
    assert_int_equal(utf8_valid_prefix("\xff", 1), 0);
    /* cut short by the length given */
    assert_int_equal(utf8_decode("\xe2\x82\xac", 2, &cp), 0);
    assert_int_equal(utf8_decode("", 0, &cp), 0);
    assert_true(utf8_valid("caf\xc3\xa9 \xe2\x82\xac", 9));
}

static void test_length_counts_characters(void **state)
{
    (void)state;
    assert_int_equal(utf8_length("", 0), 0);
    assert_int_equal(utf8_length("abc", 3), 3);
    assert_int_equal(utf8_length("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9), 3);
}

static void test_prefix_never_splits_a_character(void **state)
{
    (void)state;
    const char *text = "a\xc3\xa9\xe2\x82\xac"; /* a é € : 1 + 2 + 3 bytes */
    size_t n = strlen(text);
    assert_int_equal(utf8_prefix(text, n, 100), n);
    assert_int_equal(utf8_prefix(text, n, 6), 6);
    assert_int_equal(utf8_prefix(text, n, 5), 3); /* inside the euro sign: before it */
    assert_int_equal(utf8_prefix(text, n, 4), 3);
    assert_int_equal(utf8_prefix(text, n, 3), 3);
    assert_int_equal(utf8_prefix(text, n, 2), 1); /* inside the é */
    assert_int_equal(utf8_prefix(text, n, 0), 0);
    for (size_t max = 0; max <= n; max++)
        assert_true(utf8_valid(text, utf8_prefix(text, n, max)));
}

static void test_controls_include_c1_and_invisible_formatting(void **state)
{
    (void)state;
    static const uint32_t controls[] = {0x00,   0x1b,   0x7f,   0x85,   0x9b,   0x200b, 0x200e, 0x2028,
                                        0x2029, 0x202e, 0x2066, 0x2069, 0xfeff, 0xfff9, 0x061c};
    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++)
        assert_true(utf8_is_control(controls[i]));
    static const uint32_t text[] = {' ', 'a', '~', 0xa0, 0xe9, 0x20ac, 0x4e2d, 0x1f600};
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        assert_false(utf8_is_control(text[i]));
    assert_true(utf8_printable("Zo\xc3\xab \xe2\x82\xac", 8));
    assert_false(utf8_printable("Eve\xc2\x85M", 6));     /* U+0085, next line */
    assert_false(utf8_printable("Eve\xe2\x80\xaeM", 7)); /* U+202E, right-to-left override */
    assert_false(utf8_printable("a\0b", 3));             /* NUL */
    assert_false(utf8_printable("\xf5\x8b\x8b", 3));     /* not UTF-8 at all */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_accepts_every_length),
        cmocka_unit_test(test_decode_refuses_what_rfc_3629_forbids),
        cmocka_unit_test(test_length_counts_characters),
        cmocka_unit_test(test_prefix_never_splits_a_character),
        cmocka_unit_test(test_controls_include_c1_and_invisible_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
