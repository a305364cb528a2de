/* Tests for task.c: a task is a unit of work of its own, a child span of
 * the request that started it, that records its failure instead of
 * answering it and tells its owner when it ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "task.h"

typedef struct outcome {
    int ended;
    int fail_status;
    char fail_code[TASK_CODE_MAX];
} outcome_t;

static worker_t worker;

static void on_ended(task_t *task)
{
    outcome_t *outcome = task->data;
    outcome->ended++;
    outcome->fail_status = task->fail_status;
    memcpy(outcome->fail_code, task->fail_code, sizeof(outcome->fail_code));
}

static void test_a_task_is_a_child_span_of_its_parent(void **state)
{
    (void)state;
    trace_context_t parent;
    trace_start_server_span(&parent, NULL, 0);
    outcome_t outcome = {0};
    task_t *task = task_start(&worker, &parent, "saga", on_ended, &outcome);
    assert_string_equal(task->super.trace.trace_id, parent.trace_id);
    assert_string_not_equal(task->super.trace.span_id, parent.span_id);
    assert_int_equal(task->super.field_count, 1);
    assert_string_equal(task->super.fields[0].key, "task");
    assert_int_equal(worker.busy, 1);
    context_release(&task->super);
    assert_int_equal(outcome.ended, 1);
    assert_int_equal(outcome.fail_status, 0);
    assert_int_equal(worker.busy, 0);
}

static void test_without_a_parent_a_task_has_a_trace_of_its_own(void **state)
{
    (void)state;
    task_t *a = task_start(&worker, NULL, "recovery", NULL, NULL);
    task_t *b = task_start(&worker, NULL, "recovery", NULL, NULL);
    assert_int_equal(strlen(a->super.trace.trace_id), TRACE_ID_HEX_LEN);
    assert_string_not_equal(a->super.trace.trace_id, b->super.trace.trace_id);
    context_release(&a->super);
    context_release(&b->super);
    assert_int_equal(worker.busy, 0);
}

/* The owner's reference can go first: the task lives while a step holds it,
 * and only the first failure is kept. */
static void test_a_task_outlives_its_owner_and_keeps_its_first_failure(void **state)
{
    (void)state;
    outcome_t outcome = {0};
    task_t *task = task_start(&worker, NULL, "charge", on_ended, &outcome);
    context_t *step = context_hold(&task->super);
    char *memory = context_alloc(&task->super, 16);
    context_release(&task->super); /* the owner lets go */
    assert_int_equal(outcome.ended, 0);
    memcpy(memory, "still here", 11); /* ASan: context memory is alive */
    context_fail(step, 503, "dependency_unavailable", "PostgreSQL did not answer");
    context_fail(step, 500, "internal", "a second failure");
    assert_false(step->cancelled);
    assert_true(step->failed);
    context_release(step);
    assert_int_equal(outcome.ended, 1);
    assert_int_equal(outcome.fail_status, 503);
    assert_string_equal(outcome.fail_code, "dependency_unavailable");
    assert_int_equal(worker.busy, 0);
}

int main(void)
{
    static const worker_settings_t settings = {.service = "test"};
    worker.settings = &settings;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_task_is_a_child_span_of_its_parent),
        cmocka_unit_test(test_without_a_parent_a_task_has_a_trace_of_its_own),
        cmocka_unit_test(test_a_task_outlives_its_owner_and_keeps_its_first_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
