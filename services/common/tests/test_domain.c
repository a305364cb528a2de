/* Tests for domain.c: the shapes every service checks the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "domain.h"

static void test_skus(void **state)
{
    (void)state;
    assert_true(domain_valid_sku("ELEC-HDPH-001"));
    assert_true(domain_valid_sku("AB1"));
    assert_true(domain_valid_sku("A2345678901234567890123456789012")); /* 32 */
    const char *bad[] = {"AB", "A23456789012345678901234567890123", "-AB", "elec-1", "AB C", "AB_C", "ÄBC", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(domain_valid_sku(bad[i]));
}

static void test_order_ids(void **state)
{
    (void)state;
    assert_true(domain_valid_order_id("3f1c0a52-8d3e-4b9a-9c41-0e5d2b7a6f10"));
    assert_true(domain_valid_order_id("x"));
    assert_true(domain_valid_order_id("Ord_1-a"));
    char longest[DOMAIN_ORDER_ID_MAX + 2];
    memset(longest, 'a', DOMAIN_ORDER_ID_MAX);
    longest[DOMAIN_ORDER_ID_MAX] = '\0';
    assert_true(domain_valid_order_id(longest));
    longest[DOMAIN_ORDER_ID_MAX] = 'a';
    longest[DOMAIN_ORDER_ID_MAX + 1] = '\0';
    assert_false(domain_valid_order_id(longest));
    const char *bad[] = {"", "a b", "a/b", "a.b", "a\nb", "ü"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(domain_valid_order_id(bad[i]));
}

static void test_currencies(void **state)
{
    (void)state;
    assert_true(domain_valid_currency("USD"));
    assert_true(domain_valid_currency("EUR"));
    const char *bad[] = {"usd", "US", "USDX", "U$D", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(domain_valid_currency(bad[i]));
}

static void test_card_numbers_pass_the_luhn_check(void **state)
{
    (void)state;
    const char *good[] = {"4242424242424242", "4000000000009995", "4000000000000119",
                          "4000000000005126", "5555555555554444", "378282246310005" /* 15 digits */,
                          "000000000000"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(domain_valid_card_number(good[i]));
    const char *bad[] = {
        "4242424242424241",     /* one digit off */
        "2442424242424242",     /* two neighbours swapped: 42 -> 24 at the start */
        "42424242424",          /* 11 digits */
        "42424242424242424242", /* 20 digits */
        "4242 4242 4242 4242",  "4242-4242-4242-4242", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(domain_valid_card_number(bad[i]));
}

/* Reads `text` as line 2 of an order whose lines 0 and 1 are AAA-1 and
 * BBB-2. */
static int read_line_text(const char *text, const char **sku, long long *qty, json_field_error_t *error)
{
    json_t *line = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(line);
    json_t *items = json_pack("[{s:s,s:i},{s:s,s:i},o]", "sku", "AAA-1", "qty", 1, "sku", "BBB-2", "qty", 1, line);
    assert_non_null(items);
    int rc = domain_read_line(items, 2, 1000, sku, qty, error);
    if (rc == 0)
        assert_string_equal(*sku, "ELEC-HDPH-001"); /* while `items` still holds it */
    json_decref(items);
    return rc;
}

static void test_an_order_line(void **state)
{
    (void)state;
    const char *sku;
    long long qty;
    json_field_error_t error;
    assert_int_equal(read_line_text("{\"sku\": \"ELEC-HDPH-001\", \"qty\": 1000}", &sku, &qty, &error), 0);
    assert_int_equal(qty, 1000);

    static const struct {
        const char *text, *field;
    } bad[] = {
        {"\"ELEC-HDPH-001\"", "items[2]"},
        {"[1]", "items[2]"},
        {"{\"qty\": 1}", "items[2].sku"},
        {"{\"sku\": \"no spaces!\", \"qty\": 1}", "items[2].sku"},
        {"{\"sku\": \"AB\", \"qty\": 1}", "items[2].sku"},
        {"{\"sku\": 5, \"qty\": 1}", "items[2].sku"},
        {"{\"sku\": \"ELEC-HDPH-001\"}", "items[2].qty"},
        {"{\"sku\": \"ELEC-HDPH-001\", \"qty\": 0}", "items[2].qty"},
        {"{\"sku\": \"ELEC-HDPH-001\", \"qty\": 1001}", "items[2].qty"},
        {"{\"sku\": \"ELEC-HDPH-001\", \"qty\": 1.5}", "items[2].qty"},
        {"{\"sku\": \"ELEC-HDPH-001\", \"qty\": \"1\"}", "items[2].qty"},
        {"{\"sku\": \"ELEC-HDPH-001\", \"qty\": 1, \"price_cents\": 1}", "items[2].price_cents"},
        {"{\"sku\": \"BBB-2\", \"qty\": 1}", "items[2].sku"}, /* an earlier line's */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&error, 0, sizeof(error));
        assert_int_equal(read_line_text(bad[i].text, &sku, &qty, &error), -1);
        assert_string_equal(error.field, bad[i].field);
        assert_non_null(strstr(error.message, "items[2]"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skus),          cmocka_unit_test(test_order_ids),
        cmocka_unit_test(test_currencies),    cmocka_unit_test(test_card_numbers_pass_the_luhn_check),
        cmocka_unit_test(test_an_order_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
