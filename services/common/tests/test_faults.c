/* Tests for faults.c and the fault half of worker.c: which names are
 * fault names, reading an HGETALL reply of oms:faults (junk skipped, at
 * most FAULTS_MAX kept), looking a value up, the metrics every applied
 * snapshot updates, and a worker reading its own service's flags. */
#include "test_support.h"

#include "metrics.h"

/* --- a hand-built HGETALL reply ----------------------------------------------- */

#define REPLY_MAX 96

typedef struct reply_builder {
    redisReply array;
    redisReply items[REPLY_MAX];
    redisReply *elements[REPLY_MAX];
    char texts[REPLY_MAX][80];
} reply_builder_t;

static void reply_init(reply_builder_t *b)
{
    memset(b, 0, sizeof(*b));
    b->array.type = REDIS_REPLY_ARRAY;
    b->array.element = b->elements;
}

static redisReply *reply_add(reply_builder_t *b, int type)
{
    assert_true(b->array.elements < REPLY_MAX);
    size_t i = b->array.elements++;
    b->elements[i] = &b->items[i];
    b->items[i].type = type;
    return &b->items[i];
}

/* A bulk string of `len` bytes (it may hold NULs), NUL-terminated as
 * hiredis makes them. */
static void reply_add_bytes(reply_builder_t *b, const char *bytes, size_t len)
{
    redisReply *item = reply_add(b, REDIS_REPLY_STRING);
    char *text = b->texts[b->array.elements - 1];
    assert_true(len < sizeof(b->texts[0]));
    memcpy(text, bytes, len);
    text[len] = '\0';
    item->str = text;
    item->len = len;
}

static void reply_add_string(reply_builder_t *b, const char *text)
{
    reply_add_bytes(b, text, strlen(text));
}

static void reply_add_pair(reply_builder_t *b, const char *name, const char *value)
{
    reply_add_string(b, name);
    reply_add_string(b, value);
}

/* --- metrics ------------------------------------------------------------------ */

static int setup_metrics(void **state)
{
    (void)state;
    metrics_reset();
    faults_metrics_register();
    return 0;
}

static int teardown_metrics(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

/* The exposition text (free with buffer_free(out)). */
static const char *render(buffer_t *out)
{
    *out = BUFFER_INIT;
    metrics_render(out);
    return out->data != NULL ? out->data : "";
}

static void assert_rendered(const char *line)
{
    buffer_t out;
    test_assert_contains(render(&out), line);
    buffer_free(&out);
}

static void assert_not_rendered(const char *text)
{
    buffer_t out;
    const char *all = render(&out);
    if (strstr(all, text) != NULL)
        fail_msg("did not expect to find:\n%s\nin:\n%s", text, all);
    buffer_free(&out);
}

static faults_t snapshot_of(const char *name, double value)
{
    faults_t faults = {.count = 1};
    snprintf(faults.items[0].name, FAULTS_NAME_MAX, "%s", name);
    faults.items[0].value = value;
    return faults;
}

/* --- tests ---------------------------------------------------------------------- */

static void test_valid_names(void **state)
{
    (void)state;
    char longest[FAULTS_NAME_MAX], too_long[FAULTS_NAME_MAX + 1];
    snprintf(longest, sizeof(longest), "s.%061d", 0); /* 63 characters */
    snprintf(too_long, sizeof(too_long), "s.%062d", 0);
    assert_int_equal(strlen(longest), 63);
    assert_int_equal(strlen(too_long), 64);

    const char *valid[] = {"a.b", "inventory.latency_ms", "svc_2.fault_3", "_._", "9.9", longest};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        if (!faults_valid_name(valid[i]))
            fail_msg("'%s' should be a valid fault name", valid[i]);
    const char *invalid[] = {"",      "inventory",  ".latency_ms", "inventory.", ".",     "a..b",
                             "a.b.c", "A.b",        "a.B",         "a-b.c",      "a b.c", "a.b\n",
                             "a.b\t", "\xc3\xa9.x", "a/b.c",       "a.b;c",      too_long};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        if (faults_valid_name(invalid[i]))
            fail_msg("'%s' should not be a valid fault name", invalid[i]);
}

static void test_parse_keeps_valid_entries_in_order(void **state)
{
    (void)state;
    reply_builder_t b;
    reply_init(&b);
    reply_add_pair(&b, "inventory.latency_ms", "250");
    reply_add_pair(&b, "inventory.error_rate", "0.25");
    reply_add_pair(&b, "user.slow_db_ms", "1e3");
    reply_add_pair(&b, "user.offset", "-2.5"); /* finite and not zero */
    faults_t faults;
    faults_parse(&b.array, &faults);
    assert_int_equal(faults.count, 4);
    assert_string_equal(faults.items[0].name, "inventory.latency_ms");
    assert_true(faults.items[0].value == 250);
    assert_string_equal(faults.items[1].name, "inventory.error_rate");
    assert_true(faults.items[1].value == 0.25);
    assert_true(faults.items[2].value == 1000);
    assert_true(faults.items[3].value == -2.5);
}

static void test_parse_skips_junk(void **state)
{
    (void)state;
    reply_builder_t b;
    reply_init(&b);
    reply_add_pair(&b, "Inventory.latency_ms", "5"); /* names */
    reply_add_pair(&b, "nodot", "5");
    reply_add_pair(&b, "a.b.c", "5");
    reply_add_pair(&b, "", "5");
    reply_add_pair(&b, "x.zero", "0"); /* values */
    reply_add_pair(&b, "x.negative_zero", "-0.0");
    reply_add_pair(&b, "x.word", "abc");
    reply_add_pair(&b, "x.suffix", "5ms");
    reply_add_pair(&b, "x.empty", "");
    reply_add_pair(&b, "x.inf", "inf");
    reply_add_pair(&b, "x.minus_inf", "-inf");
    reply_add_pair(&b, "x.nan", "nan");
    reply_add_pair(&b, "x.overflow", "1e400");
    reply_add_bytes(&b, "x.hidden\0junk", 13); /* a name with a NUL inside */
    reply_add_string(&b, "5");
    reply_add_string(&b, "x.value_nul");
    reply_add_bytes(&b, "5\0junk", 6);
    reply_add(&b, REDIS_REPLY_INTEGER)->integer = 5; /* not strings */
    reply_add_string(&b, "5");
    reply_add_string(&b, "x.nil");
    reply_add(&b, REDIS_REPLY_NIL);
    reply_add_pair(&b, "x.kept", "7");
    reply_add_string(&b, "x.without_value"); /* an odd element at the end */
    faults_t faults;
    faults_parse(&b.array, &faults);
    if (faults.count != 1) {
        for (size_t i = 0; i < faults.count; i++)
            print_message("kept: %s = %g\n", faults.items[i].name, faults.items[i].value);
        fail_msg("expected only x.kept, kept %zu entries", faults.count);
    }
    assert_string_equal(faults.items[0].name, "x.kept");
    assert_true(faults.items[0].value == 7);
}

static void test_parse_keeps_at_most_faults_max(void **state)
{
    (void)state;
    reply_builder_t b;
    reply_init(&b);
    reply_add_pair(&b, "junk", "1"); /* skipped entries take no place */
    for (int i = 0; i < FAULTS_MAX + 8; i++) {
        char name[32];
        snprintf(name, sizeof(name), "x.f%d", i);
        reply_add_pair(&b, name, "1");
    }
    faults_t faults;
    faults_parse(&b.array, &faults);
    assert_int_equal(faults.count, FAULTS_MAX);
    assert_string_equal(faults.items[0].name, "x.f0");
    assert_string_equal(faults.items[FAULTS_MAX - 1].name, "x.f31");

    reply_init(&b); /* an empty hash: no faults */
    faults_parse(&b.array, &faults);
    assert_int_equal(faults.count, 0);
}

static void test_value_of_a_fault(void **state)
{
    (void)state;
    reply_builder_t b;
    reply_init(&b);
    reply_add_pair(&b, "inventory.latency_ms", "250");
    reply_add_pair(&b, "user.latency_ms", "9");
    faults_t faults;
    faults_parse(&b.array, &faults);
    assert_true(faults_value(&faults, "inventory.latency_ms") == 250);
    assert_true(faults_value(&faults, "user.latency_ms") == 9);
    assert_true(faults_value(&faults, "inventory.error_rate") == 0);
    assert_true(faults_value(&faults, "inventory.latency") == 0); /* no prefix matching */
    assert_true(faults_value(&faults, "") == 0);
}

static void test_report_counts_snapshots_and_worker_0_sets_the_gauge(void **state)
{
    (void)state;
    faults_t none = {0}, latency = snapshot_of("x.latency_ms", 5), slower = snapshot_of("x.latency_ms", 50);
    faults_report(&none, &latency, 0);
    assert_rendered("oms_fault_active{fault=\"x.latency_ms\"} 1\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"0\"} 1\n");
    faults_report(&latency, &latency, 0); /* unchanged: counted all the same */
    faults_report(&latency, &slower, 0);
    assert_rendered("oms_fault_active{fault=\"x.latency_ms\"} 1\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"0\"} 3\n");
    faults_report(&slower, &none, 0); /* cleared */
    assert_rendered("oms_fault_active{fault=\"x.latency_ms\"} 0\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"0\"} 4\n");

    /* other workers count their snapshots and leave the gauge alone */
    faults_t error_rate = snapshot_of("x.error_rate", 0.5);
    faults_report(&none, &error_rate, 1);
    faults_report(&none, &latency, 2);
    assert_rendered("oms_fault_snapshots_total{worker=\"1\"} 1\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"2\"} 1\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"0\"} 4\n");
    assert_not_rendered("x.error_rate");
    assert_rendered("oms_fault_active{fault=\"x.latency_ms\"} 0\n");
}

static void test_a_worker_reads_its_own_services_faults(void **state)
{
    (void)state;
    const worker_settings_t settings = {.service = "inventory"};
    worker_t worker;
    test_worker_open(&worker, 0, &settings);
    assert_true(worker_fault(&worker, "latency_ms") == 0);

    reply_builder_t b;
    reply_init(&b);
    reply_add_pair(&b, "user.latency_ms", "9");
    reply_add_pair(&b, "inventory.latency_ms", "250");
    reply_add_pair(&b, "inventory.reserve_failure_rate", "0.5");
    faults_t next;
    faults_parse(&b.array, &next);
    worker_apply_faults(&worker, &next);
    assert_int_equal(worker.faults.count, 3);
    assert_true(worker_fault(&worker, "latency_ms") == 250);
    assert_true(worker_fault(&worker, "reserve_failure_rate") == 0.5);
    assert_true(worker_fault(&worker, "error_rate") == 0);
    assert_rendered("oms_fault_active{fault=\"inventory.latency_ms\"} 1\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"0\"} 1\n");

    /* the next snapshot replaces it, and the change is reported against it */
    faults_t cleared = snapshot_of("user.latency_ms", 9);
    worker_apply_faults(&worker, &cleared);
    assert_true(worker_fault(&worker, "latency_ms") == 0);
    assert_rendered("oms_fault_active{fault=\"inventory.latency_ms\"} 0\n");
    assert_rendered("oms_fault_active{fault=\"user.latency_ms\"} 1\n");
    assert_rendered("oms_fault_snapshots_total{worker=\"0\"} 2\n");
    test_worker_close(&worker);

    /* worker 3 counts under its own index */
    test_worker_open(&worker, 3, &settings);
    worker_apply_faults(&worker, &next);
    assert_true(worker_fault(&worker, "latency_ms") == 250);
    assert_rendered("oms_fault_snapshots_total{worker=\"3\"} 1\n");
    assert_rendered("oms_fault_active{fault=\"inventory.latency_ms\"} 0\n"); /* worker 0 speaks for it */
    test_worker_close(&worker);
}

int main(void)
{
    log_init("test_faults", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_parse_keeps_valid_entries_in_order),
        cmocka_unit_test(test_parse_skips_junk),
        cmocka_unit_test(test_parse_keeps_at_most_faults_max),
        cmocka_unit_test(test_value_of_a_fault),
        cmocka_unit_test_setup_teardown(test_report_counts_snapshots_and_worker_0_sets_the_gauge, setup_metrics,
                                        teardown_metrics),
        cmocka_unit_test_setup_teardown(test_a_worker_reads_its_own_services_faults, setup_metrics, teardown_metrics),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
