/* chore.c - repeating work on a loop, one context per run. */
#include "chore.h"

#include <stdlib.h>

typedef struct chore_run {
    context_t super;
    chore_t *chore; /* NULL once the chore was stopped */
} chore_run_t;

static void on_timer(loop_timer_t *timer);

/* A run's own failure has been logged where it happened; the next run
 * tries again. */
static void run_fail(context_t *c, int status, const char *code, const char *message)
{
    (void)c, (void)status, (void)code, (void)message;
}

static void run_release(context_t *c)
{
    chore_run_t *run = (chore_run_t *)c;
    chore_t *chore = run->chore;
    free(run);
    if (chore == NULL)
        return;
    chore->current = NULL;
    if (chore->stopped || chore->worker->stopping)
        return;
    uint64_t delay = chore->again_now ? 0 : chore->interval_ms;
    chore->again_now = false;
    loop_timer_start(&chore->timer, delay, on_timer, chore);
}

static const context_ops_t run_ops = {run_fail, run_release};

static void on_timer(loop_timer_t *timer)
{
    chore_t *chore = timer->data;
    if (chore->stopped)
        return;
    chore_run_t *run = malloc(sizeof(*run));
    if (run == NULL) { /* try again later */
        loop_timer_start(&chore->timer, chore->interval_ms, on_timer, chore);
        return;
    }
    context_init(&run->super, &run_ops, chore->worker);
    trace_start_server_span(&run->super.trace, NULL, 0);
    context_add_field(&run->super, "chore", chore->name);
    run->chore = chore;
    chore->current = run;
    chore->run(&run->super, chore->data);
    context_release(&run->super); /* the run ends with its last step */
}

void chore_start(chore_t *chore, worker_t *worker, const char *name, uint64_t first_delay_ms, uint64_t interval_ms,
                 chore_fn run, void *data)
{
    *chore = (chore_t){.name = name, .worker = worker, .interval_ms = interval_ms, .run = run, .data = data};
    loop_timer_start(&chore->timer, first_delay_ms, on_timer, chore);
}

void chore_again_now(chore_t *chore)
{
    chore->again_now = true;
}

void chore_wake(chore_t *chore)
{
    if (chore->stopped || chore->worker->stopping)
        return;
    if (chore->current != NULL)
        chore->again_now = true;
    else
        loop_timer_start(&chore->timer, 0, on_timer, chore);
}

void chore_stop(chore_t *chore)
{
    chore->stopped = true;
    loop_timer_stop(&chore->timer);
    if (chore->current != NULL) {
        chore->current->chore = NULL;
        context_cancel(&chore->current->super);
        chore->current = NULL;
    }
}
