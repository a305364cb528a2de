/* task.c - units of work that outlive their request. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>

/* The cause has been logged where it was found; the task keeps the first
 * failure for its owner. */
static void task_fail(context_t *c, int status, const char *code, const char *message)
{
    (void)message;
    task_t *task = (task_t *)c;
    task->fail_status = status;
    snprintf(task->fail_code, sizeof(task->fail_code), "%s", code);
}

static void task_release(context_t *c)
{
    task_t *task = (task_t *)c;
    if (task->ended != NULL)
        task->ended(task);
    free(task);
}

static const context_ops_t task_ops = {task_fail, task_release};

task_t *task_start(worker_t *worker, const trace_context_t *parent, const char *name, task_ended_fn ended, void *data)
{
    task_t *task = malloc(sizeof(*task));
    if (task == NULL)
        abort(); /* as context_alloc: no unit of work can go on without memory */
    context_init(&task->super, &task_ops, worker);
    if (parent != NULL)
        trace_start_child_span(&task->super.trace, parent);
    else
        trace_start_server_span(&task->super.trace, NULL, 0);
    context_add_field(&task->super, "task", name);
    task->name = name;
    task->fail_status = 0;
    task->fail_code[0] = '\0';
    task->ended = ended;
    task->data = data;
    return task;
}
