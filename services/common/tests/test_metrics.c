/* Tests for metrics.c: exposition text, label escaping, histogram buckets,
 * and counts that stay exact when several threads write at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static int reset(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

static char *render(buffer_t *out)
{
    *out = BUFFER_INIT;
    metrics_render(out);
    return out->data != NULL ? out->data : "";
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("expected to find:\n%s\nin:\n%s", needle, text);
}

static void test_counter_with_labels(void **state)
{
    (void)state;
    static const char *const labels[] = {"method", "status_code", NULL};
    metrics_family_t *f = metrics_counter("requests_total", "Requests.", labels);
    metrics_counter_add(f, (const char *const[]){"GET", "200"}, 1);
    metrics_counter_add(f, (const char *const[]){"GET", "200"}, 2);
    metrics_counter_add(f, (const char *const[]){"POST", "201"}, 1);
    metrics_counter_add(f, (const char *const[]){"POST", "201"}, -5); /* counters never go down */
    buffer_t out;
    const char *text = render(&out);
    assert_contains(text, "# HELP requests_total Requests.\n# TYPE requests_total counter\n");
    assert_contains(text, "requests_total{method=\"GET\",status_code=\"200\"} 3\n");
    assert_contains(text, "requests_total{method=\"POST\",status_code=\"201\"} 1\n");
    buffer_free(&out);
}

static void test_unlabelled_family_renders_zero(void **state)
{
    (void)state;
    metrics_counter("events_total", "Events.", NULL);
    buffer_t out;
    assert_contains(render(&out), "events_total 0\n");
    buffer_free(&out);
}

static void test_label_values_are_escaped(void **state)
{
    (void)state;
    static const char *const labels[] = {"path", NULL};
    metrics_family_t *f = metrics_gauge("odd_gauge", "Help with \\ backslash\nand newline.", labels);
    metrics_gauge_set(f, (const char *const[]){"a\"b\\c\nd"}, 1.5);
    buffer_t out;
    const char *text = render(&out);
    assert_contains(text, "odd_gauge{path=\"a\\\"b\\\\c\\nd\"} 1.5\n");
    assert_contains(text, "# HELP odd_gauge Help with \\\\ backslash\\nand newline.\n");
    buffer_free(&out);
}

static void test_gauge_set_and_add(void **state)
{
    (void)state;
    static const char *const labels[] = {"sku", NULL};
    metrics_family_t *stock = metrics_gauge("stock", "Stock.", labels);
    metrics_gauge_set(stock, (const char *const[]){"A"}, 10);
    metrics_gauge_set(stock, (const char *const[]){"A"}, 7); /* last write wins */
    metrics_family_t *active = metrics_gauge("active", "Active.", NULL);
    metrics_gauge_add(active, NULL, 3);
    metrics_gauge_add(active, NULL, -1);
    buffer_t out;
    const char *text = render(&out);
    assert_contains(text, "stock{sku=\"A\"} 7\n");
    assert_contains(text, "active 2\n");
    buffer_free(&out);
}

static void test_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 1, 10};
    static const char *const labels[] = {"route", NULL};
    metrics_family_t *h = metrics_histogram("latency_seconds", "Latency.", labels, bounds, 3);
    const char *const route[] = {"/x"};
    metrics_histogram_observe(h, route, 0.05);
    metrics_histogram_observe(h, route, 0.1); /* on a bound: counts in that bucket (le) */
    metrics_histogram_observe(h, route, 5);
    metrics_histogram_observe(h, route, 50);
    buffer_t out;
    const char *text = render(&out);
    assert_contains(text, "# TYPE latency_seconds histogram\n");
    assert_contains(text, "latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n");
    assert_contains(text, "latency_seconds_bucket{route=\"/x\",le=\"1\"} 2\n");
    assert_contains(text, "latency_seconds_bucket{route=\"/x\",le=\"10\"} 3\n");
    assert_contains(text, "latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n");
    assert_contains(text, "latency_seconds_sum{route=\"/x\"} 55.15\n");
    assert_contains(text, "latency_seconds_count{route=\"/x\"} 4\n");
    buffer_free(&out);
}

static void test_declaring_twice_shares_the_family(void **state)
{
    (void)state;
    metrics_family_t *a = metrics_counter("shared_total", "Shared.", NULL);
    metrics_family_t *b = metrics_counter("shared_total", "Shared.", NULL);
    assert_ptr_equal(a, b);
    assert_null(metrics_gauge("shared_total", "Other type.", NULL));
}

static metrics_family_t *threaded_counter, *threaded_histogram;

static void *hammer(void *arg)
{
    const char *const labels[] = {arg};
    for (int i = 0; i < 20000; i++) {
        metrics_counter_add(threaded_counter, labels, 1);
        metrics_histogram_observe(threaded_histogram, labels, 0.001);
    }
    return NULL;
}

static void test_threads_do_not_lose_updates(void **state)
{
    (void)state;
    static const char *const labels[] = {"worker", NULL};
    threaded_counter = metrics_counter("work_total", "Work.", labels);
    threaded_histogram = metrics_histogram("work_seconds", "Work time.", labels, metrics_duration_buckets,
                                           metrics_duration_bucket_count);
    pthread_t threads[4];
    const char *names[] = {"a", "a", "b", "b"}; /* two threads per series */
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, hammer, (void *)names[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    buffer_t out;
    const char *text = render(&out);
    assert_contains(text, "work_total{worker=\"a\"} 40000\n");
    assert_contains(text, "work_total{worker=\"b\"} 40000\n");
    assert_contains(text, "work_seconds_count{worker=\"a\"} 40000\n");
    buffer_free(&out);
}

static void test_value_formatting(void **state)
{
    (void)state;
    buffer_t out = BUFFER_INIT;
    metrics_format_value(&out, 42);
    buffer_append_str(&out, " ");
    metrics_format_value(&out, 0.25);
    buffer_append_str(&out, " ");
    metrics_format_value(&out, 1.0 / 0.0);
    buffer_append_str(&out, " ");
    metrics_format_value(&out, -1.0 / 0.0);
    assert_string_equal(out.data, "42 0.25 +Inf -Inf");
    buffer_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter_with_labels, reset),
        cmocka_unit_test_setup(test_unlabelled_family_renders_zero, reset),
        cmocka_unit_test_setup(test_label_values_are_escaped, reset),
        cmocka_unit_test_setup(test_gauge_set_and_add, reset),
        cmocka_unit_test_setup(test_histogram_buckets_are_cumulative, reset),
        cmocka_unit_test_setup(test_declaring_twice_shares_the_family, reset),
        cmocka_unit_test_setup(test_threads_do_not_lose_updates, reset),
        cmocka_unit_test_setup(test_value_formatting, reset),
    };
    int failed = cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
    metrics_reset();
    return failed;
}
