/* Tests for router.c: templates, parameters, 404 versus 405 with Allow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static void handler_a(struct http_request *r)
{
    (void)r;
}
static void handler_b(struct http_request *r)
{
    (void)r;
}

static const router_route_t routes[] = {
    {"GET", "/api/inventory/products", handler_a},
    {"POST", "/api/inventory/products", handler_b},
    {"GET", "/api/inventory/products/{sku}", handler_a},
    {"PATCH", "/api/inventory/products/{sku}", handler_b},
    {"POST", "/api/inventory/reservations/{id}/commit", handler_a},
    {"GET", "/", handler_b},
};

static router_t *make_router(void)
{
    char error[128];
    router_t *router = router_create(routes, sizeof(routes) / sizeof(routes[0]), error, sizeof(error));
    assert_non_null(router);
    return router;
}

static router_result_t match(router_t *router, const char *method, const char *path, router_match_t *m, char *allow)
{
    return router_match(router, method, strlen(method), path, strlen(path), m, allow, 64);
}

static void test_literal_route_matches_method(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    assert_int_equal(match(router, "GET", "/api/inventory/products", &m, allow), ROUTER_FOUND);
    assert_ptr_equal(m.route, &routes[0]);
    assert_int_equal(match(router, "POST", "/api/inventory/products", &m, allow), ROUTER_FOUND);
    assert_ptr_equal(m.route, &routes[1]);
    assert_int_equal(m.param_count, 0);
    router_free(router);
}

static void test_parameter_is_captured(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    assert_int_equal(match(router, "POST", "/api/inventory/reservations/abc-123/commit", &m, allow), ROUTER_FOUND);
    assert_string_equal(m.route->template, "/api/inventory/reservations/{id}/commit");
    const router_param_t *id = router_param(&m, "id");
    assert_non_null(id);
    assert_int_equal(id->value_len, 7);
    assert_memory_equal(id->value, "abc-123", 7);
    assert_null(router_param(&m, "sku"));
    router_free(router);
}

static void test_unknown_path_is_not_found(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    assert_int_equal(match(router, "GET", "/api/inventory/nothing", &m, allow), ROUTER_NOT_FOUND);
    /* an empty parameter segment does not match {sku} */
    assert_int_equal(match(router, "GET", "/api/inventory/products/", &m, allow), ROUTER_NOT_FOUND);
    /* extra segments do not match */
    assert_int_equal(match(router, "GET", "/api/inventory/products/A/B", &m, allow), ROUTER_NOT_FOUND);
    assert_int_equal(match(router, "GET", "/api/inventory/reservations//commit", &m, allow), ROUTER_NOT_FOUND);
    /* a path must start with '/': its first byte is no separator to skip (a fuzzing find) */
    assert_int_equal(match(router, "GET", "xapi/inventory/products", &m, allow), ROUTER_NOT_FOUND);
    assert_int_equal(match(router, "GET", "", &m, allow), ROUTER_NOT_FOUND);
    router_free(router);
}

static void test_wrong_method_lists_allowed(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    assert_int_equal(match(router, "DELETE", "/api/inventory/products/SKU-1", &m, allow), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET, PATCH");
    assert_int_equal(match(router, "PUT", "/api/inventory/products", &m, allow), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET, POST");
    router_free(router);
}

static void test_head_is_served_by_get(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    assert_int_equal(match(router, "HEAD", "/api/inventory/products/X1Z", &m, allow), ROUTER_FOUND);
    assert_ptr_equal(m.route, &routes[2]);
    router_free(router);
}

static void test_root_route(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    assert_int_equal(match(router, "GET", "/", &m, allow), ROUTER_FOUND);
    assert_ptr_equal(m.route, &routes[5]);
    router_free(router);
}

static void test_malformed_templates_are_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {"api/no-slash", "/a/{}", "/a/{open", "/a//b", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        router_route_t route = {"GET", bad[i], handler_a};
        char error[128] = "";
        assert_null(router_create(&route, 1, error, sizeof(error)));
        assert_true(strlen(error) > 0);
    }
}

static void test_method_match_is_exact(void **state)
{
    (void)state;
    router_t *router = make_router();
    router_match_t m;
    char allow[64];
    /* "GE" is a prefix of "GET" and must not match it */
    assert_int_equal(match(router, "GE", "/api/inventory/products", &m, allow), ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(match(router, "get", "/api/inventory/products", &m, allow), ROUTER_METHOD_NOT_ALLOWED);
    router_free(router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_route_matches_method),
        cmocka_unit_test(test_parameter_is_captured),
        cmocka_unit_test(test_unknown_path_is_not_found),
        cmocka_unit_test(test_wrong_method_lists_allowed),
        cmocka_unit_test(test_head_is_served_by_get),
        cmocka_unit_test(test_root_route),
        cmocka_unit_test(test_malformed_templates_are_rejected),
        cmocka_unit_test(test_method_match_is_exact),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
