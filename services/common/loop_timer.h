/* loop_timer.h - one-shot timers of any duration on a thread's h2o loop.
 *
 * h2o 2.2.5's own timeouts have one fixed duration per list; the services
 * need arbitrary delays (query timeouts, reconnect backoff, injected
 * latency), so each loop gets a timerfd armed at the earliest deadline of a
 * binary heap. Timers belong to the thread that started them.
 */
#ifndef OMS_LOOP_TIMER_H
#define OMS_LOOP_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

typedef struct loop_timer loop_timer_t;
typedef void (*loop_timer_cb)(loop_timer_t *timer);

struct loop_timer {
    uint64_t deadline_ms;
    size_t heap_index; /* 0 when not scheduled */
    loop_timer_cb cb;
    void *data;
};

/* Attaches the timer heap to this thread's loop. Returns 0 or -1. */
int loop_timers_init(h2o_evloop_t *loop);

/* Releases this thread's timer heap (pending timers are dropped). */
void loop_timers_dispose(void);

/* Schedules `timer` to fire once after delay_ms; restarting an active timer
 * moves its deadline. */
void loop_timer_start(loop_timer_t *timer, uint64_t delay_ms, loop_timer_cb cb, void *data);

/* Cancels the timer if scheduled; safe to call on an idle timer. */
void loop_timer_stop(loop_timer_t *timer);

static inline bool loop_timer_is_active(const loop_timer_t *timer)
{
    return timer->heap_index != 0;
}

/* Milliseconds on the monotonic clock. */
uint64_t loop_now_ms(void);

/* Nanoseconds on the monotonic clock (for durations). */
uint64_t loop_now_ns(void);

#endif
