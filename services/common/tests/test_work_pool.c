/* Tests for work_pool.c: jobs run on pool threads, their completions run on
 * the submitting loop, and a full queue refuses instead of growing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <semaphore.h>

#include "worker.h"
#include "work_pool.h"

typedef struct job_state {
    pthread_t ran_on;
    pthread_t done_on;
    sem_t *gate; /* when set, the job waits for it */
    int *done_count;
} job_state_t;

static void run(void *data)
{
    job_state_t *job = data;
    job->ran_on = pthread_self();
    if (job->gate != NULL)
        sem_wait(job->gate);
}

static void done(void *data)
{
    job_state_t *job = data;
    job->done_on = pthread_self();
    (*job->done_count)++;
}

static const worker_settings_t no_resources = {.service = "test"};

static void make_worker(worker_t *worker)
{
    assert_int_equal(worker_open(worker, 0, h2o_evloop_create(), &no_resources), 0);
    assert_int_equal(work_pool_attach(worker), 0);
}

static void dispose_worker(worker_t *worker)
{
    work_pool_detach(worker);
    h2o_evloop_t *loop = worker->loop;
    worker_close(worker);
    h2o_evloop_destroy(loop);
}

static void run_loop_until(worker_t *worker, const int *count, int expected)
{
    for (int i = 0; i < 500 && *count < expected; i++)
        h2o_evloop_run(worker->loop, 10);
    assert_int_equal(*count, expected);
}

static void test_jobs_run_off_the_loop_and_finish_on_it(void **state)
{
    (void)state;
    worker_t worker;
    make_worker(&worker);
    assert_int_equal(work_pool_start(2, 16, 0), 0);
    int done_count = 0;
    job_state_t jobs[8];
    for (size_t i = 0; i < 8; i++) {
        jobs[i] = (job_state_t){.done_count = &done_count};
        assert_int_equal(work_pool_submit(&worker, run, done, &jobs[i]), 0);
    }
    assert_int_equal(work_pool_pending(&worker), 8);
    run_loop_until(&worker, &done_count, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
        assert_true(pthread_equal(jobs[i].done_on, pthread_self()));
    }
    assert_int_equal(work_pool_pending(&worker), 0);
    work_pool_stop();
    dispose_worker(&worker);
}

static void test_a_full_queue_refuses(void **state)
{
    (void)state;
    worker_t worker;
    make_worker(&worker);
    assert_int_equal(work_pool_start(1, 1, 0), 0);
    sem_t gate;
    sem_init(&gate, 0, 0);
    int done_count = 0;
    job_state_t busy = {.gate = &gate, .done_count = &done_count};
    job_state_t waiting = {.done_count = &done_count}, refused = {.done_count = &done_count};
    assert_int_equal(work_pool_submit(&worker, run, done, &busy), 0);
    /* wait until the only thread has taken `busy` off the queue */
    for (int i = 0; i < 200 && work_pool_submit(&worker, run, done, &waiting) != 0; i++)
        usleep(1000);
    assert_int_equal(work_pool_submit(&worker, run, done, &refused), -1);
    assert_int_equal(work_pool_pending(&worker), 2);
    sem_post(&gate);
    run_loop_until(&worker, &done_count, 2);
    assert_int_equal(work_pool_pending(&worker), 0);
    work_pool_stop();
    assert_int_equal(work_pool_submit(&worker, run, done, &refused), -1); /* stopped */
    dispose_worker(&worker);
    sem_destroy(&gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_run_off_the_loop_and_finish_on_it),
        cmocka_unit_test(test_a_full_queue_refuses),
    };
    return cmocka_run_group_tests_name("work_pool", tests, NULL, NULL);
}
