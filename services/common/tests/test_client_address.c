/* Tests for client_address.c: X-Forwarded-For believed only from trusted
 * proxies, read from the right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client_address.h"

static client_networks_t trusted;

static int setup(void **state)
{
    (void)state;
    char error[128];
    return client_networks_parse("127.0.0.0/8, ::1,172.16.0.0/12", &trusted, error, sizeof(error));
}

static const char *resolve(const char *peer, const char *forwarded)
{
    static char out[CLIENT_ADDRESS_TEXT_MAX];
    client_address_resolve(&trusted, peer, forwarded, forwarded != NULL ? strlen(forwarded) : 0, out);
    return out;
}

static void test_networks_parse_and_match(void **state)
{
    (void)state;
    assert_int_equal(trusted.count, 3);
    assert_true(client_networks_contain(&trusted, "127.0.0.1"));
    assert_true(client_networks_contain(&trusted, "127.255.0.9"));
    assert_true(client_networks_contain(&trusted, "::1"));
    assert_true(client_networks_contain(&trusted, "172.31.255.255"));
    assert_false(client_networks_contain(&trusted, "172.32.0.1"));
    assert_false(client_networks_contain(&trusted, "10.0.0.1"));
    assert_false(client_networks_contain(&trusted, "::2"));
    assert_false(client_networks_contain(&trusted, "not-an-address"));
}

static void test_bad_network_lists_are_rejected(void **state)
{
    (void)state;
    static const char *const lists[] = {"10.0.0.0/33",  "10.0.0.0/",   "10.0.0/8",    "::1/129",
                                        "localhost",    "1.2.3.4/x",   "10.0.0.0/-0", "10.0.0.0/+8",
                                        "10.0.0.0/\t8", "10.0.0.0/8x", "10.0.0.0/-8", "::/-0"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        client_networks_t networks;
        char error[128] = "";
        assert_int_equal(client_networks_parse(lists[i], &networks, error, sizeof(error)), -1);
        assert_non_null(strstr(error, "is not an address"));
    }
    client_networks_t empty;
    char error[128];
    assert_int_equal(client_networks_parse("", &empty, error, sizeof(error)), 0);
    assert_int_equal(empty.count, 0);
}

static void test_untrusted_peer_cannot_choose_its_address(void **state)
{
    (void)state;
    assert_string_equal(resolve("198.51.100.7", "203.0.113.9"), "198.51.100.7");
    assert_string_equal(resolve("198.51.100.7", NULL), "198.51.100.7");
}

static void test_trusted_proxy_forwards_the_client(void **state)
{
    (void)state;
    assert_string_equal(resolve("127.0.0.1", "203.0.113.9"), "203.0.113.9");
    assert_string_equal(resolve("127.0.0.1", "2001:db8::5"), "2001:db8::5");
    /* The client sent its own header: the proxy appended the real peer. */
    assert_string_equal(resolve("127.0.0.1", "1.2.3.4, 203.0.113.9"), "203.0.113.9");
    /* Two proxies: skip the trusted hops from the right. */
    assert_string_equal(resolve("127.0.0.1", "203.0.113.9,172.18.0.4"), "203.0.113.9");
    /* Only proxies: the leftmost is as far as we can see. */
    assert_string_equal(resolve("127.0.0.1", "172.18.0.5, 172.18.0.4"), "172.18.0.5");
    assert_string_equal(resolve("127.0.0.1", NULL), "127.0.0.1");
    /* optional whitespace is spaces and tabs (a fuzzing find) */
    assert_string_equal(resolve("127.0.0.1", "203.0.113.9,\t127.0.0.1"), "203.0.113.9");
    assert_string_equal(resolve("127.0.0.1", "\t203.0.113.9\t"), "203.0.113.9");
}

static void test_garbage_in_the_header_stops_the_walk(void **state)
{
    (void)state;
    assert_string_equal(resolve("127.0.0.1", "evil\"}, 203.0.113.9"), "203.0.113.9");
    assert_string_equal(resolve("127.0.0.1", "unknown"), "127.0.0.1");
    assert_string_equal(resolve("127.0.0.1", ""), "127.0.0.1");
    assert_string_equal(resolve("127.0.0.1", " , "), "127.0.0.1");
    assert_string_equal(resolve("127.0.0.1", "203.0.113.9, bogus, 172.18.0.4"), "172.18.0.4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_networks_parse_and_match),
        cmocka_unit_test(test_bad_network_lists_are_rejected),
        cmocka_unit_test(test_untrusted_peer_cannot_choose_its_address),
        cmocka_unit_test(test_trusted_proxy_forwards_the_client),
        cmocka_unit_test(test_garbage_in_the_header_stops_the_walk),
    };
    return cmocka_run_group_tests_name("client_address", tests, setup, NULL);
}
