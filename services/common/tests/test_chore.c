/* Tests for chore.c: runs repeat one interval after the previous run has
 * ended (however it ended), never overlap, wake up on demand, and stop for
 * good. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chore.h"

#define MAX_RUNS 64

/* What a test's chore does: each run may end at once or after `work_ms`
 * of pretend asynchronous work (a timer that holds the run's context). */
typedef struct script {
    chore_t chore;
    worker_t *worker;
    int runs;
    int running; /* runs whose context is alive */
    int max_running;
    uint64_t started_ms[MAX_RUNS];
    uint64_t work_ms;
    int again_on_run; /* chore_again_now on this run (1-based), 0: never */
    int fail_on_run;  /* context_fail on this run */
    int stop_on_run;  /* chore_stop inside this run, while work is pending */
    bool saw_cancel;  /* a pending piece of work found its run cancelled */
    bool saw_field;
} script_t;

typedef struct work {
    loop_timer_t timer;
    context_t *run;
    script_t *script;
} work_t;

static void on_work_done(loop_timer_t *timer)
{
    work_t *work = timer->data;
    if (context_is_cancelled(work->run))
        work->script->saw_cancel = true;
    work->script->running--;
    context_release(work->run);
}

static void run_script(context_t *run, void *data)
{
    script_t *s = data;
    assert_true(s->runs < MAX_RUNS);
    s->started_ms[s->runs++] = loop_now_ms();
    s->saw_field = run->field_count == 1 && strcmp(run->fields[0].key, "chore") == 0;
    if (s->runs == s->again_on_run)
        chore_again_now(&s->chore);
    if (s->runs == s->fail_on_run)
        context_fail(run, 503, "dependency_unavailable", "nothing answers");
    if (s->work_ms > 0) {
        work_t *work = context_alloc(run, sizeof(*work));
        work->run = context_hold(run);
        work->script = s;
        s->running++;
        if (s->running > s->max_running)
            s->max_running = s->running;
        loop_timer_start(&work->timer, s->work_ms, on_work_done, work);
    }
    if (s->runs == s->stop_on_run)
        chore_stop(&s->chore);
}

static worker_t *new_worker(void)
{
    static const worker_settings_t settings = {.service = "test"};
    worker_t *worker = calloc(1, sizeof(*worker));
    assert_non_null(worker);
    assert_int_equal(worker_open(worker, 0, h2o_evloop_create(), &settings), 0);
    return worker;
}

static void free_worker(worker_t *worker)
{
    h2o_evloop_t *loop = worker->loop;
    worker_close(worker);
    h2o_evloop_destroy(loop);
    free(worker);
}

/* Runs the loop until `*count` reaches `expected` (at most ~10 s). */
static void run_until(worker_t *worker, const int *count, int expected)
{
    for (int i = 0; i < 1000 && *count < expected; i++)
        h2o_evloop_run(worker->loop, 10);
}

static void run_for(worker_t *worker, uint64_t ms)
{
    uint64_t until = loop_now_ms() + ms;
    while (loop_now_ms() < until)
        h2o_evloop_run(worker->loop, 10);
}

static void test_runs_repeat_after_the_interval(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker};
    uint64_t started = loop_now_ms();
    chore_start(&s.chore, worker, "test", 20, 30, run_script, &s);
    assert_int_equal(s.runs, 0); /* not before its first delay */
    run_until(worker, &s.runs, 4);
    assert_int_equal(s.runs, 4);
    assert_true(s.started_ms[0] >= started + 20);
    for (int i = 1; i < 4; i++)
        assert_true(s.started_ms[i] - s.started_ms[i - 1] >= 30);
    assert_true(s.saw_field);
    chore_stop(&s.chore);
    assert_int_equal(worker->busy, 0);
    free_worker(worker);
}

static void test_the_next_run_waits_for_the_previous_to_end(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker, .work_ms = 60};
    chore_start(&s.chore, worker, "test", 0, 10, run_script, &s);
    run_until(worker, &s.runs, 3);
    assert_int_equal(s.max_running, 1); /* never overlapping */
    for (int i = 1; i < 3; i++)         /* work (60) + interval (10) apart */
        assert_true(s.started_ms[i] - s.started_ms[i - 1] >= 70);
    chore_stop(&s.chore);
    for (int i = 0; i < 100 && s.running > 0; i++)
        h2o_evloop_run(worker->loop, 10);
    assert_int_equal(worker->busy, 0);
    free_worker(worker);
}

static void test_again_now_skips_the_interval(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker, .again_on_run = 1};
    chore_start(&s.chore, worker, "test", 0, 5000, run_script, &s);
    run_until(worker, &s.runs, 2);
    assert_int_equal(s.runs, 2); /* the second came without the 5 s interval */
    assert_true(s.started_ms[1] - s.started_ms[0] < 2500);
    run_for(worker, 100);
    assert_int_equal(s.runs, 2); /* and the third waits for it again */
    chore_stop(&s.chore);
    free_worker(worker);
}

/* A wake between runs starts one on the loop's next turn, never inside
 * the caller; a wake during a run starts the next one as soon as it ends;
 * a stopped chore ignores it. */
static void test_wake_runs_now_between_runs_and_right_after_a_run(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker, .work_ms = 40};
    chore_start(&s.chore, worker, "test", 0, 60000, run_script, &s);
    run_until(worker, &s.runs, 1);
    for (int i = 0; i < 100 && s.running > 0; i++)
        h2o_evloop_run(worker->loop, 10);
    assert_int_equal(s.runs, 1);
    chore_wake(&s.chore);
    assert_int_equal(s.runs, 1); /* not from inside the wake */
    run_until(worker, &s.runs, 2);
    assert_int_equal(s.runs, 2); /* and not after the 60 s interval */
    chore_wake(&s.chore);        /* run 2 is under way */
    chore_wake(&s.chore);        /* twice: still one more run */
    run_until(worker, &s.runs, 3);
    assert_int_equal(s.runs, 3);
    assert_true(s.started_ms[2] - s.started_ms[1] >= s.work_ms); /* after run 2 ended */
    assert_int_equal(s.max_running, 1);
    for (int i = 0; i < 100 && s.running > 0; i++)
        h2o_evloop_run(worker->loop, 10);
    run_for(worker, 100);
    assert_int_equal(s.runs, 3);
    chore_stop(&s.chore);
    chore_wake(&s.chore);
    run_for(worker, 50);
    assert_int_equal(s.runs, 3);
    free_worker(worker);
}

static void test_a_failed_run_does_not_stop_the_chore(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker, .fail_on_run = 1, .work_ms = 5};
    chore_start(&s.chore, worker, "test", 0, 10, run_script, &s);
    run_until(worker, &s.runs, 3);
    assert_int_equal(s.runs, 3);
    chore_stop(&s.chore);
    for (int i = 0; i < 100 && s.running > 0; i++)
        h2o_evloop_run(worker->loop, 10);
    free_worker(worker);
}

static void test_stop_cancels_the_run_under_way(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    *s = (script_t){.worker = worker, .work_ms = 50, .stop_on_run = 2};
    chore_start(&s->chore, worker, "test", 0, 10, run_script, s);
    run_until(worker, &s->runs, 2);
    for (int i = 0; i < 100 && s->running > 0; i++)
        h2o_evloop_run(worker->loop, 10);
    assert_true(s->saw_cancel);
    run_for(worker, 100);
    assert_int_equal(s->runs, 2); /* no run after the stop */
    assert_int_equal(worker->busy, 0);
    free(s);
    free_worker(worker);
}

static void test_stopping_outside_a_run_and_twice_is_safe(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker};
    chore_start(&s.chore, worker, "test", 20, 20, run_script, &s);
    chore_stop(&s.chore);
    chore_stop(&s.chore);
    run_for(worker, 100);
    assert_int_equal(s.runs, 0);
    free_worker(worker);
}

static void test_no_run_is_scheduled_once_the_worker_stops(void **state)
{
    (void)state;
    worker_t *worker = new_worker();
    script_t s = {.worker = worker, .work_ms = 30};
    chore_start(&s.chore, worker, "test", 0, 10, run_script, &s);
    run_until(worker, &s.runs, 1);
    worker->stopping = true; /* shutdown: the run under way finishes, no next one */
    for (int i = 0; i < 100 && s.running > 0; i++)
        h2o_evloop_run(worker->loop, 10);
    run_for(worker, 100);
    assert_int_equal(s.runs, 1);
    assert_int_equal(worker->busy, 0);
    chore_stop(&s.chore);
    free_worker(worker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_repeat_after_the_interval),
        cmocka_unit_test(test_the_next_run_waits_for_the_previous_to_end),
        cmocka_unit_test(test_again_now_skips_the_interval),
        cmocka_unit_test(test_wake_runs_now_between_runs_and_right_after_a_run),
        cmocka_unit_test(test_a_failed_run_does_not_stop_the_chore),
        cmocka_unit_test(test_stop_cancels_the_run_under_way),
        cmocka_unit_test(test_stopping_outside_a_run_and_twice_is_safe),
        cmocka_unit_test(test_no_run_is_scheduled_once_the_worker_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
