/* work_pool.h - CPU-heavy work off the event loops.
 *
 * Some work cannot be made asynchronous: argon2id hashing is seconds of CPU
 * per hundred calls by design. Running it on a worker's h2o loop would stall
 * every other request of that thread, so it runs on a small process-wide
 * pool of background threads instead. A job is submitted from a worker's
 * loop; its `run` function executes on a pool thread; its `done` function
 * then runs back on the submitting worker's loop, where it may answer the
 * request. Pool threads run at a lower scheduling priority (nice) so that,
 * on a busy machine, the event loops keep answering promptly.
 */
#ifndef OMS_WORK_POOL_H
#define OMS_WORK_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct worker;

/* Runs on a pool thread: must not touch the loop or the request. */
typedef void (*work_run_fn)(void *data);
/* Runs on the submitting worker's loop once `run` has returned. */
typedef void (*work_done_fn)(void *data);

/* Starts `threads` pool threads with at most `max_queue` jobs waiting, at
 * `nice` (0-19) priority, and declares the work_pool_* metrics: call before
 * server_run. Returns 0, or -1 (logged) when a thread cannot be
 * started. */
int work_pool_start(size_t threads, size_t max_queue, int nice);

/* Lets running jobs finish, drops none (the workers have drained), and joins
 * the threads. Safe to call when the pool was never started. */
void work_pool_stop(void);

/* Attaches a worker's loop so that jobs it submits can report back; called by
 * the server for every worker. Returns 0 or -1. */
int work_pool_attach(struct worker *worker);
void work_pool_detach(struct worker *worker);

/* Queues `run(data)` on the pool, then `done(data)` on `worker`'s loop.
 * Returns 0, or -1 when the pool is not running or its queue is full (the
 * caller answers 503; nothing was queued and `done` will not run). */
int work_pool_submit(struct worker *worker, work_run_fn run, work_done_fn done, void *data);

/* Jobs this worker submitted whose `done` has not run yet (for shutdown). */
size_t work_pool_pending(const struct worker *worker);

#endif
