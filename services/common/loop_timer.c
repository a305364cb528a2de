/* loop_timer.c - a 1-based binary min-heap driven by a timerfd.
 *
 * Arming a timerfd is a system call, and a busy loop moves its earliest
 * deadline several times per request (an HTTP client call alone sets a
 * "now" timer, then its timeout). So the timerfd is armed lazily: only
 * when a deadline comes earlier than the one it is set to. A later
 * deadline, or a stopped timer, leaves it as it is; it then fires early,
 * finds nothing due and is set again, about once per timeout length
 * instead of once per request. Timers due at once (delay 0) run on the
 * loop's next turn through a zero-length h2o timeout; the timerfd is then
 * only a backstop a second away, which a busy loop has armed already.
 */
#include "loop_timer.h"

#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct timer_heap {
    loop_timer_t **items; /* items[1..count] */
    size_t count, capacity;
    int fd;
    h2o_socket_t *sock;
    uint64_t armed_ms; /* deadline the timerfd is set to, 0 when it is not */
    h2o_evloop_t *loop;
    h2o_timeout_t zero;      /* h2o's "on the next turn" */
    h2o_timeout_entry_t due; /* linked while a timer is due now */
} timer_heap_t;

#define DUE_BACKSTOP_MS 1000

static __thread timer_heap_t *heap;

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t loop_now_ms(void)
{
    return loop_now_ns() / 1000000ULL;
}

static void swap(size_t a, size_t b)
{
    loop_timer_t *t = heap->items[a];
    heap->items[a] = heap->items[b];
    heap->items[b] = t;
    heap->items[a]->heap_index = a;
    heap->items[b]->heap_index = b;
}

static void sift_up(size_t i)
{
    while (i > 1 && heap->items[i / 2]->deadline_ms > heap->items[i]->deadline_ms) {
        swap(i, i / 2);
        i /= 2;
    }
}

static void sift_down(size_t i)
{
    for (;;) {
        size_t smallest = i, left = 2 * i, right = 2 * i + 1;
        if (left <= heap->count && heap->items[left]->deadline_ms < heap->items[smallest]->deadline_ms)
            smallest = left;
        if (right <= heap->count && heap->items[right]->deadline_ms < heap->items[smallest]->deadline_ms)
            smallest = right;
        if (smallest == i)
            return;
        swap(i, smallest);
        i = smallest;
    }
}

static void arm(void)
{
    if (heap->count == 0)
        return; /* an armed timerfd may fire for nothing: harmless */
    uint64_t next = heap->items[1]->deadline_ms, now = loop_now_ms();
    if (next <= now) {
        if (!h2o_timeout_is_linked(&heap->due))
            h2o_timeout_link(heap->loop, &heap->zero, &heap->due);
        /* h2o's timeouts follow the wall clock: should it step back, the
         * timerfd (monotonic) still runs these within DUE_BACKSTOP_MS */
        next = now + DUE_BACKSTOP_MS;
    }
    if (heap->armed_ms != 0 && heap->armed_ms <= next)
        return; /* it fires no later than needed */
    struct itimerspec spec = {0};
    spec.it_value.tv_sec = (time_t)(next / 1000);
    spec.it_value.tv_nsec = (long)(next % 1000) * 1000000L;
    timerfd_settime(heap->fd, TFD_TIMER_ABSTIME, &spec, NULL);
    heap->armed_ms = next;
}

static void remove_at(size_t i)
{
    loop_timer_t *removed = heap->items[i];
    if (i != heap->count)
        swap(i, heap->count);
    heap->count--;
    removed->heap_index = 0;
    if (i <= heap->count) {
        sift_up(i);
        sift_down(i);
    }
}

static void run_due(void)
{
    uint64_t now = loop_now_ms();
    while (heap->count > 0 && heap->items[1]->deadline_ms <= now) {
        loop_timer_t *timer = heap->items[1];
        remove_at(1);
        timer->cb(timer); /* may start or stop other timers */
    }
    arm();
}

static void on_timerfd_readable(h2o_socket_t *sock, const char *err)
{
    (void)sock;
    (void)err;
    uint64_t expirations;
    ssize_t r = read(heap->fd, &expirations, sizeof(expirations));
    (void)r;
    heap->armed_ms = 0;
    if (h2o_timeout_is_linked(&heap->due))
        h2o_timeout_unlink(&heap->due); /* stale after a clock step: linked again when needed */
    run_due();
}

static void on_due(h2o_timeout_entry_t *entry)
{
    (void)entry;
    run_due();
}

int loop_timers_init(h2o_evloop_t *loop)
{
    heap = calloc(1, sizeof(*heap));
    if (heap == NULL)
        return -1;
    heap->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (heap->fd < 0) {
        free(heap);
        heap = NULL;
        return -1;
    }
    heap->sock = h2o_evloop_socket_create(loop, heap->fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(heap->sock, on_timerfd_readable);
    heap->loop = loop;
    h2o_timeout_init(loop, &heap->zero, 0);
    heap->due.cb = on_due;
    return 0;
}

void loop_timers_dispose(void)
{
    if (heap == NULL)
        return;
    for (size_t i = 1; i <= heap->count; i++)
        heap->items[i]->heap_index = 0;
    if (h2o_timeout_is_linked(&heap->due))
        h2o_timeout_unlink(&heap->due);
    h2o_timeout_dispose(heap->loop, &heap->zero);
    h2o_socket_read_stop(heap->sock);
    h2o_socket_close(heap->sock); /* closes the timerfd */
    free(heap->items);
    free(heap);
    heap = NULL;
}

void loop_timer_start(loop_timer_t *timer, uint64_t delay_ms, loop_timer_cb cb, void *data)
{
    loop_timer_stop(timer);
    timer->cb = cb;
    timer->data = data;
    timer->deadline_ms = loop_now_ms() + delay_ms; /* never 0: the monotonic clock starts at boot */
    if (heap->count + 1 >= heap->capacity) {
        size_t capacity = heap->capacity != 0 ? heap->capacity * 2 : 64;
        loop_timer_t **items = realloc(heap->items, capacity * sizeof(*items));
        if (items == NULL)
            abort();
        heap->items = items;
        heap->capacity = capacity;
    }
    heap->items[++heap->count] = timer;
    timer->heap_index = heap->count;
    sift_up(heap->count);
    arm();
}

void loop_timer_stop(loop_timer_t *timer)
{
    if (timer->heap_index == 0 || heap == NULL)
        return;
    remove_at(timer->heap_index); /* the timerfd stays as it is (see the top) */
}
