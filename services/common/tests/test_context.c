/* Tests for context.c: the unit of work's references, memory, failure,
 * cancellation and log fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "context.h"

/* An owner of a context that records what happened to it. */
typedef struct owner {
    context_t super;
    int fail_count, release_count;
    int status;
    char code[64], message[512];
    int *released; /* set when freed (the owner itself is gone then) */
} owner_t;

static void owner_fail(context_t *c, int status, const char *code, const char *message)
{
    owner_t *owner = (owner_t *)c;
    owner->fail_count++;
    owner->status = status;
    snprintf(owner->code, sizeof(owner->code), "%s", code);
    snprintf(owner->message, sizeof(owner->message), "%s", message);
}

static void owner_release(context_t *c)
{
    owner_t *owner = (owner_t *)c;
    (*owner->released)++;
    free(owner);
}

static const context_ops_t owner_ops = {owner_fail, owner_release};
static const worker_settings_t settings = {.service = "svc"};

static owner_t *new_owner(worker_t *worker, int *released)
{
    owner_t *owner = calloc(1, sizeof(*owner));
    assert_non_null(owner);
    context_init(&owner->super, &owner_ops, worker);
    owner->released = released;
    return owner;
}

static void test_the_last_reference_frees_the_owner_once(void **state)
{
    (void)state;
    worker_t worker = {.settings = &settings};
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    assert_int_equal(worker.busy, 1);
    context_t *c = &owner->super;
    assert_ptr_equal(context_hold(c), c);
    context_hold(c);
    context_release(c); /* the owner lets go: two holds remain */
    context_release(c);
    assert_int_equal(released, 0);
    assert_int_equal(worker.busy, 1);
    context_release(c);
    assert_int_equal(released, 1);
    assert_int_equal(worker.busy, 0);
}

static void test_memory_is_zeroed_and_lives_with_the_context(void **state)
{
    (void)state;
    worker_t worker = {.settings = &settings};
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    context_t *c = &owner->super;
    unsigned char *small = context_alloc(c, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(small[i], 0);
    memset(small, 0xab, 100);
    /* larger than h2o's pool chunk: allocated on its own, still zeroed */
    unsigned char *large = context_alloc(c, 64 * 1024);
    for (int i = 0; i < 64 * 1024; i += 4096)
        assert_int_equal(large[i], 0);
    char *copy = context_strdup(c, "abcdef", 3);
    assert_string_equal(copy, "abc");
    assert_string_equal(context_strdup(c, "whole", SIZE_MAX), "whole");
    assert_int_equal(small[99], 0xab); /* later allocations left it alone */
    context_release(c);                /* ASan reports a leak if the pool is not cleared */
    assert_int_equal(released, 1);
}

static void test_only_the_first_failure_counts(void **state)
{
    (void)state;
    worker_t worker = {.settings = &settings};
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    context_t *c = &owner->super;
    context_fail(c, 404, "not_found", "no product with sku %s", "ABC-1");
    context_fail(c, 500, "internal", "later");
    context_unavailable(c, "postgres", "down");
    assert_int_equal(owner->fail_count, 1);
    assert_int_equal(owner->status, 404);
    assert_string_equal(owner->code, "not_found");
    assert_string_equal(owner->message, "no product with sku ABC-1");
    assert_true(c->failed);
    context_release(c);
}

static void test_unavailable_is_a_503_naming_the_dependency(void **state)
{
    (void)state;
    worker_t worker = {.settings = &settings};
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    context_unavailable(&owner->super, "redis", "connection refused");
    assert_int_equal(owner->status, 503);
    assert_string_equal(owner->code, "dependency_unavailable");
    assert_string_equal(owner->message, "redis is unavailable");
    context_release(&owner->super);
}

static void test_cancel_marks_without_freeing(void **state)
{
    (void)state;
    worker_t worker = {.settings = &settings};
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    context_t *c = &owner->super;
    context_hold(c);
    assert_false(context_is_cancelled(c));
    context_cancel(c);
    assert_true(context_is_cancelled(c));
    context_release(c);
    assert_int_equal(released, 0);
    context_release(c);
    assert_int_equal(released, 1);
}

static void test_faults_are_the_services_own(void **state)
{
    (void)state;
    worker_t worker = {.settings = &settings};
    worker.faults.count = 2;
    snprintf(worker.faults.items[0].name, FAULTS_NAME_MAX, "svc.latency_ms");
    worker.faults.items[0].value = 250;
    snprintf(worker.faults.items[1].name, FAULTS_NAME_MAX, "other.error_rate");
    worker.faults.items[1].value = 1;
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    assert_true(context_fault(&owner->super, "latency_ms") == 250);
    assert_true(context_fault(&owner->super, "error_rate") == 0); /* another service's */
    context_release(&owner->super);
}

/* Runs `log` with stdout sent to a pipe; returns what was written. */
static char *capture_stdout(void (*log)(context_t *), context_t *c)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDOUT_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    log(c);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fds[1]);
    static char out[8192];
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void log_one_line(context_t *c)
{
    context_info(c, "swept", LOG_INT("count", 3));
}

static void log_nothing_below_the_floor(context_t *c)
{
    context_debug(c, "hidden");
}

static void test_log_lines_carry_trace_and_fields(void **state)
{
    (void)state;
    log_init("svc", LOG_INFO);
    worker_t worker = {.settings = &settings};
    int released = 0;
    owner_t *owner = new_owner(&worker, &released);
    context_t *c = &owner->super;
    trace_start_server_span(&c->trace, NULL, 0);
    char value[] = "reservation_expiry";
    context_add_field(c, "chore", value);
    value[0] = 'X'; /* the field is a copy */
    for (int i = 0; i < CONTEXT_FIELDS_MAX + 2; i++)
        context_add_field(c, "extra", "x"); /* beyond the maximum: dropped, no overflow */
    assert_int_equal(c->field_count, CONTEXT_FIELDS_MAX);
    char *line = capture_stdout(log_one_line, c);
    assert_non_null(strstr(line, "\"msg\":\"swept\""));
    assert_non_null(strstr(line, "\"chore\":\"reservation_expiry\""));
    assert_non_null(strstr(line, "\"count\":3"));
    char trace_field[64];
    snprintf(trace_field, sizeof(trace_field), "\"trace_id\":\"%s\"", c->trace.trace_id);
    assert_non_null(strstr(line, trace_field));
    assert_string_equal(capture_stdout(log_nothing_below_the_floor, c), "");
    context_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_last_reference_frees_the_owner_once),
        cmocka_unit_test(test_memory_is_zeroed_and_lives_with_the_context),
        cmocka_unit_test(test_only_the_first_failure_counts),
        cmocka_unit_test(test_unavailable_is_a_503_naming_the_dependency),
        cmocka_unit_test(test_cancel_marks_without_freeing),
        cmocka_unit_test(test_faults_are_the_services_own),
        cmocka_unit_test(test_log_lines_carry_trace_and_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
