/* Tests for digest.c: HMAC-SHA256 against published vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"

static void test_rfc_4231_test_case_2(void **state)
{
    (void)state;
    const char *data = "what do ya want for nothing?";
    char hex[DIGEST_HEX_LEN + 1];
    digest_hmac_sha256_hex("Jefe", data, strlen(data), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t raw[DIGEST_LEN];
    digest_hmac_sha256("Jefe", data, strlen(data), raw);
    assert_int_equal(raw[0], 0x5b);
    assert_int_equal(raw[DIGEST_LEN - 1], 0x43);
}

static void test_the_key_and_every_byte_count(void **state)
{
    (void)state;
    const char *fox = "The quick brown fox jumps over the lazy dog";
    char a[DIGEST_HEX_LEN + 1], b[DIGEST_HEX_LEN + 1];
    digest_hmac_sha256_hex("key", fox, strlen(fox), a);
    assert_string_equal(a, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    digest_hmac_sha256_hex("key2", fox, strlen(fox), b); /* another key, another digest */
    assert_string_not_equal(a, b);
    digest_hmac_sha256_hex("key", fox, strlen(fox) - 1, b); /* one byte less */
    assert_string_not_equal(a, b);
    digest_hmac_sha256_hex("key", "", 0, b);
    assert_string_equal(b, "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

static void test_a_json_fingerprint_ignores_member_order_and_spacing(void **state)
{
    (void)state;
    json_t *a = json_loads("{\"b\": [1, 2], \"a\": \"x\"}", 0, NULL);
    json_t *b = json_loads("{\"a\":\"x\",\"b\":[1,2]}", 0, NULL);
    json_t *c = json_loads("{\"a\":\"x\",\"b\":[2,1]}", 0, NULL); /* array order is the request's */
    char fa[DIGEST_HEX_LEN + 1], fb[DIGEST_HEX_LEN + 1], fc[DIGEST_HEX_LEN + 1], text[DIGEST_HEX_LEN + 1];
    digest_json_fingerprint("key", a, fa);
    digest_json_fingerprint("key", b, fb);
    digest_json_fingerprint("key", c, fc);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fc);
    const char *canonical = "{\"a\":\"x\",\"b\":[1,2]}"; /* compact, keys sorted */
    digest_hmac_sha256_hex("key", canonical, strlen(canonical), text);
    assert_string_equal(fa, text);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_4231_test_case_2),
        cmocka_unit_test(test_the_key_and_every_byte_count),
        cmocka_unit_test(test_a_json_fingerprint_ignores_member_order_and_spacing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
