/* task.h - a unit of work that outlives the request that started it.
 *
 * Some work must finish once it has begun, whether or not the client waits
 * for the answer: a charge the processor has taken, an order saga that has
 * reserved stock. A request starts such work as a task: a context of its
 * own (context.h) on the same worker, a child span of the request's trace,
 * with the log field task=<name>. The request may wait for the task and
 * answer from it; when the client leaves, the request's context is
 * cancelled but the task's is not, and its steps go on.
 *
 * A task's failure (context_fail: a statement failed, PostgreSQL did not
 * answer) is recorded in the task rather than answered; the steps stop,
 * and the `ended` callback, which runs when the last reference goes, can
 * read it. Tasks count in worker->busy, so a shutdown drains them within
 * SHUTDOWN_TIMEOUT_MS like requests.
 */
#ifndef OMS_TASK_H
#define OMS_TASK_H

#include "context.h"

#define TASK_CODE_MAX 48

typedef struct task task_t;

/* Runs once, when the task's last reference is gone. The context's memory
 * (context_alloc) is already freed then; the task itself, with `data` and
 * the failure, is freed right after. */
typedef void (*task_ended_fn)(task_t *task);

struct task {
    context_t super; /* first: the unit of work */
    const char *name;
    int fail_status;               /* 0, or the status of the first context_fail */
    char fail_code[TASK_CODE_MAX]; /* its code ("dependency_unavailable", ...) */
    task_ended_fn ended;
    void *data; /* the owner's, for `ended` */
};

/* Starts a task on `worker` as a child span of `parent` (NULL: a trace of
 * its own). `name` must be a literal (or outlive the task). The caller
 * holds the task's first reference and releases it (context_release) once
 * its first step is under way; `ended` may be NULL. Never NULL. */
task_t *task_start(worker_t *worker, const trace_context_t *parent, const char *name, task_ended_fn ended, void *data);

#endif
