/* chore.h - work that repeats on a worker's loop: a sweep, a refresh, a
 * retry until confirmed.
 *
 * Each run is a unit of work of its own (context.h): a fresh trace, the log
 * field chore=<name>, memory freed when it ends. A run ends when its
 * context does, i.e. when its last step has finished, however it finished
 * (done, failed, cancelled); the next run starts interval_ms after that, so
 * runs never overlap and a failed run cannot stop the chore. No run starts
 * after chore_stop, and none is scheduled once the worker is shutting down
 * (a run already due still happens).
 */
#ifndef OMS_CHORE_H
#define OMS_CHORE_H

#include <stdbool.h>
#include <stdint.h>

#include "context.h"
#include "loop_timer.h"

typedef struct chore chore_t;

/* One run: starts the run's steps on `run` (which it may simply let go). */
typedef void (*chore_fn)(context_t *run, void *data);

struct chore {
    const char *name;
    worker_t *worker;
    uint64_t interval_ms;
    chore_fn run;
    void *data;
    loop_timer_t timer;
    struct chore_run *current; /* the run under way, NULL between runs */
    bool again_now;            /* the next run starts as soon as this one ends */
    bool stopped;
};

/* Starts `chore` on `worker`: the first run after first_delay_ms, then one
 * interval_ms after each run has ended. `name` must be a literal (or
 * outlive the chore). */
void chore_start(chore_t *chore, worker_t *worker, const char *name, uint64_t first_delay_ms, uint64_t interval_ms,
                 chore_fn run, void *data);

/* From inside a run: more is waiting, start the next run without delay. */
void chore_again_now(chore_t *chore);

/* From anywhere on the chore's loop (a notification, say): there is work
 * now. Between runs, the next run starts on the loop's next turn instead
 * of waiting for its interval; during a run, the next one starts as soon
 * as this one ends. Never runs the chore from inside the caller. */
void chore_wake(chore_t *chore);

/* Stops the chore: no further run; a run under way is cancelled (its steps
 * stop at their next callback) and no longer refers to `chore`, whose
 * memory may go once this returns. */
void chore_stop(chore_t *chore);

#endif
