/* Tests for loop_timer.c: one-shot timers on an h2o evloop fire once each,
 * in deadline order and never early; restart moves a deadline, stop
 * cancels, callbacks may schedule and cancel, dispose drops what is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loop_timer.h"
#include "test_loop.h"

/* Generous: the machine is small and shared, and nothing here waits for
 * more than a few hundred milliseconds when all is well. */
#define WAIT_BOUND_MS 10000
#define MAX_FIRED     1100

/* What fired, in order, and when. */
typedef struct firing_log {
    size_t count;
    int ids[MAX_FIRED];
    uint64_t deadlines[MAX_FIRED];
    int early; /* fired before their deadline */
} firing_log_t;

typedef struct test_timer {
    loop_timer_t timer;
    int id;
    int fired;
    firing_log_t *history;
} test_timer_t;

/* Runs the loop until `*count` reaches `expected` or WAIT_BOUND_MS pass. */
static void run_until(h2o_evloop_t *loop, const size_t *count, size_t expected)
{
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (*count < expected && loop_now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    assert_int_equal(*count, expected);
}

/* Runs the loop for `ms` milliseconds: for checking that nothing happens. */
static void run_for(h2o_evloop_t *loop, uint64_t ms)
{
    uint64_t end = loop_now_ms() + ms;
    while (loop_now_ms() < end)
        h2o_evloop_run(loop, 10);
}

static void record(loop_timer_t *timer)
{
    test_timer_t *t = timer->data;
    t->fired++;
    if (loop_now_ms() < timer->deadline_ms)
        t->history->early++;
    if (t->history->count < MAX_FIRED) {
        t->history->ids[t->history->count] = t->id;
        t->history->deadlines[t->history->count] = timer->deadline_ms;
    }
    t->history->count++;
}

static void make_timers(test_timer_t *timers, size_t n, firing_log_t *history)
{
    memset(history, 0, sizeof(*history));
    memset(timers, 0, n * sizeof(*timers));
    for (size_t i = 0; i < n; i++) {
        timers[i].id = (int)i;
        timers[i].history = history;
    }
}

static void start(test_timer_t *t, uint64_t delay_ms)
{
    loop_timer_start(&t->timer, delay_ms, record, t);
}

/* Checks that `t` is due `delay_ms` after a start made between `before`
 * and `after` (deadlines, not firing times: the loop may run late). */
static void assert_due(const test_timer_t *t, uint64_t delay_ms, uint64_t before, uint64_t after)
{
    assert_true(loop_timer_is_active(&t->timer));
    assert_in_range(t->timer.deadline_ms, before + delay_ms, after + delay_ms);
}

/* Checks that the timers fired in the order of their deadlines, none early. */
static void assert_fired_in_deadline_order(const firing_log_t *history)
{
    for (size_t i = 1; i < history->count && i < MAX_FIRED; i++)
        assert_true(history->deadlines[i - 1] <= history->deadlines[i]);
    assert_int_equal(history->early, 0);
}

static void test_timers_fire_once_in_deadline_order(void **state)
{
    (void)state;
    static const uint64_t delays[] = {60, 20, 40, 0};
    h2o_evloop_t *loop = test_loop_new();
    firing_log_t history;
    test_timer_t timers[4];
    make_timers(timers, 4, &history);
    uint64_t before = loop_now_ms();
    for (size_t i = 0; i < 4; i++)
        start(&timers[i], delays[i]);
    uint64_t after = loop_now_ms();
    for (size_t i = 0; i < 4; i++)
        assert_due(&timers[i], delays[i], before, after);
    run_until(loop, &history.count, 4);
    assert_fired_in_deadline_order(&history);
    run_for(loop, 80); /* one-shot: nothing fires again */
    assert_int_equal(history.count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(timers[i].fired, 1);
        assert_false(loop_timer_is_active(&timers[i].timer));
    }
    test_loop_free(loop);
}

static void test_restart_moves_the_deadline(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    firing_log_t history;
    test_timer_t timers[3];
    make_timers(timers, 3, &history);
    start(&timers[0], 10);
    start(&timers[1], 150);
    start(&timers[2], 5000);
    uint64_t before = loop_now_ms();
    start(&timers[0], 300); /* later than timer 1 now */
    start(&timers[2], 50);  /* and timer 2 earlier than both */
    uint64_t after = loop_now_ms();
    assert_due(&timers[0], 300, before, after);
    assert_due(&timers[2], 50, before, after);
    run_until(loop, &history.count, 3);
    assert_fired_in_deadline_order(&history);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(timers[i].fired, 1); /* a restart does not leave a second firing behind */
    test_loop_free(loop);
}

static void test_stop_cancels_and_is_safe_when_idle(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    firing_log_t history;
    test_timer_t timers[3];
    make_timers(timers, 3, &history);
    loop_timer_stop(&timers[2].timer); /* never started */
    start(&timers[0], 10);
    start(&timers[1], 40);
    loop_timer_stop(&timers[0].timer);
    assert_false(loop_timer_is_active(&timers[0].timer));
    loop_timer_stop(&timers[0].timer); /* twice */
    run_until(loop, &history.count, 1);
    assert_int_equal(history.ids[0], 1);
    loop_timer_stop(&timers[1].timer); /* after it fired */
    run_for(loop, 50);
    assert_int_equal(timers[0].fired, 0);
    assert_int_equal(timers[1].fired, 1);
    assert_int_equal(timers[2].fired, 0);
    test_loop_free(loop);
}

/* A timer whose callback reschedules itself a few times (the repeating
 * timer of the services), cancels one timer and starts another. */
typedef struct busy_timer {
    loop_timer_t timer;
    int fired;
    test_timer_t *cancel, *begin;
} busy_timer_t;

static void on_busy(loop_timer_t *timer)
{
    busy_timer_t *b = timer->data;
    b->fired++;
    if (b->fired == 1) {
        loop_timer_stop(&b->cancel->timer);
        start(b->begin, 0);
    }
    if (b->fired < 3)
        loop_timer_start(timer, 5, on_busy, b);
}

static void test_a_callback_may_start_and_stop_timers(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    firing_log_t history;
    test_timer_t timers[3];
    make_timers(timers, 3, &history);
    busy_timer_t busy = {.cancel = &timers[0], .begin = &timers[1]};
    loop_timer_start(&busy.timer, 10, on_busy, &busy);
    start(&timers[0], 60); /* cancelled by busy before it is due */
    start(&timers[2], 200);
    run_until(loop, &history.count, 2);
    assert_int_equal(timers[1].fired, 1);
    assert_int_equal(timers[2].fired, 1);
    assert_int_equal(busy.fired, 3);
    assert_false(loop_timer_is_active(&busy.timer));
    assert_int_equal(timers[0].fired, 0);
    assert_fired_in_deadline_order(&history);
    test_loop_free(loop);
}

static void test_many_timers_fire_once_in_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    h2o_evloop_t *loop = test_loop_new();
    static firing_log_t history;
    static test_timer_t timers[N];
    make_timers(timers, N, &history);
    srand(20240611);
    for (size_t i = 0; i < N; i++)
        start(&timers[i], (uint64_t)(rand() % 300));
    /* Move some deadlines and cancel others, from every part of the heap. */
    size_t cancelled = 0;
    for (size_t i = 0; i < N; i += 7)
        start(&timers[i], (uint64_t)(rand() % 300));
    for (size_t i = 3; i < N; i += 10) {
        loop_timer_stop(&timers[i].timer);
        cancelled++;
    }
    run_until(loop, &history.count, N - cancelled);
    run_for(loop, 20);
    assert_int_equal(history.count, N - cancelled);
    assert_fired_in_deadline_order(&history);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(timers[i].fired, i % 10 == 3 ? 0 : 1);
    test_loop_free(loop);
}

static void test_dispose_drops_pending_timers(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    firing_log_t history;
    test_timer_t timers[3];
    make_timers(timers, 3, &history);
    start(&timers[0], 0);
    start(&timers[1], 20);
    start(&timers[2], 30);
    loop_timers_dispose();
    for (size_t i = 0; i < 3; i++)
        assert_false(loop_timer_is_active(&timers[i].timer));
    loop_timer_stop(&timers[1].timer); /* safe after dispose too */
    run_for(loop, 60);
    assert_int_equal(history.count, 0);
    /* The loop takes a new heap, and the dropped timers can start again. */
    assert_int_equal(loop_timers_init(loop), 0);
    start(&timers[2], 10);
    run_until(loop, &history.count, 1);
    assert_int_equal(history.ids[0], 2);
    test_loop_free(loop);
}

static void test_now_is_monotonic_milliseconds(void **state)
{
    (void)state;
    uint64_t ms = loop_now_ms(), ns = loop_now_ns();
    assert_true(ms > 0); /* a deadline of 0 means "not armed" in the heap */
    assert_true(ns / 1000000ULL >= ms);
    assert_true(loop_now_ns() >= ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_once_in_deadline_order),
        cmocka_unit_test(test_restart_moves_the_deadline),
        cmocka_unit_test(test_stop_cancels_and_is_safe_when_idle),
        cmocka_unit_test(test_a_callback_may_start_and_stop_timers),
        cmocka_unit_test(test_many_timers_fire_once_in_order),
        cmocka_unit_test(test_dispose_drops_pending_timers),
        cmocka_unit_test(test_now_is_monotonic_milliseconds),
    };
    return cmocka_run_group_tests_name("loop_timer", tests, NULL, NULL);
}
