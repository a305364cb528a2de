/* test_loop.h - an h2o loop with its timers, for tests that run one.
 * Header-only (static inline), for the one file that includes it. */
#ifndef OMS_TEST_LOOP_H
#define OMS_TEST_LOOP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "loop_timer.h"

/* A new loop with this thread's timer heap attached. */
static inline h2o_evloop_t *test_loop_new(void)
{
    h2o_evloop_t *loop = h2o_evloop_create();
    assert_non_null(loop);
    assert_int_equal(loop_timers_init(loop), 0);
    return loop;
}

/* Drops the timers, lets closed sockets go, destroys the loop. */
static inline void test_loop_free(h2o_evloop_t *loop)
{
    loop_timers_dispose();
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
}

#endif
