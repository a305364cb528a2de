/* Tests for process_metrics.c: the process_* family and build info, read
 * from /proc at render time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buffer.h"
#include "metrics.h"
#include "process_metrics.h"

/* The value of the sample line that starts with `name` followed by a space. */
static double sample(const char *text, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(text, needle);
    assert_non_null(p);
    return strtod(p + strlen(needle), NULL);
}

static void test_process_figures_are_read_at_render_time(void **state)
{
    (void)state;
    process_metrics_register("1.2.3", "abc1234");
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    assert_non_null(out.data);
    assert_non_null(strstr(out.data, "oms_build_info{version=\"1.2.3\",revision=\"abc1234\"} 1"));
    double rss = sample(out.data, "process_resident_memory_bytes");
    assert_true(rss > 1e5 && rss < 1e10);
    assert_true(sample(out.data, "process_virtual_memory_bytes") >= rss);
    double fds = sample(out.data, "process_open_fds");
    assert_true(fds >= 3);
    assert_true(sample(out.data, "process_max_fds") >= fds);
    assert_true(sample(out.data, "process_start_time_seconds") > 1.6e9);
    double cpu = sample(out.data, "process_cpu_seconds_total");
    buffer_free(&out);

    /* burn some CPU and open a file: both show at the next render */
    volatile double x = 0;
    for (long i = 0; i < 50000000; i++)
        x += (double)i;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    metrics_render(&out);
    assert_true(sample(out.data, "process_cpu_seconds_total") > cpu);
    assert_true(sample(out.data, "process_open_fds") >= fds + 1);
    fclose(f);
    buffer_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_figures_are_read_at_render_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
