/* work_pool.c - background threads for CPU-heavy jobs.
 *
 * Jobs wait in one FIFO guarded by a mutex; pool threads sleep on a
 * condition variable. A finished job travels back to the worker that
 * submitted it as an h2o multithread message on that worker's queue (the
 * same eventfd-backed queue the server uses for shutdown), so `done` always
 * runs on the right loop and needs no locking.
 */
#include "work_pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"

typedef struct work_job {
    h2o_multithread_message_t super; /* first: the message is the job */
    h2o_linklist_t queue_link;
    struct work_port *port;
    work_run_fn run;
    work_done_fn done;
    void *data;
    uint64_t queued_ns;
} work_job_t;

/* A worker's end of the pool: where its finished jobs are delivered. */
typedef struct work_port {
    h2o_multithread_receiver_t receiver;
    size_t pending; /* submitted, `done` not run yet; touched only on the worker's loop */
    /* Under pool.lock: jobs of this port a pool thread is running, and
     * whether the worker has detached (past its shutdown deadline with jobs
     * unfinished). A detached port is freed by the last such job. */
    size_t running;
    bool detached;
} work_port_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    h2o_linklist_t jobs;
    size_t queued, max_queue;
    size_t thread_count;
    pthread_t *threads;
    int nice;
    bool running, stopping;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .jobs = {&pool.jobs, &pool.jobs}};

static metrics_family_t *queue_depth, *jobs_total, *wait_seconds, *run_seconds;

static void register_metrics(void)
{
    static const char *const outcome[] = {"outcome", NULL};
    queue_depth = metrics_gauge("work_pool_queue_depth", "Jobs waiting for a background thread.", NULL);
    jobs_total = metrics_counter("work_pool_jobs_total", "Background jobs by outcome (done, rejected).", outcome);
    wait_seconds = metrics_histogram("work_pool_queue_wait_seconds", "Time a job waited for a background thread.", NULL,
                                     metrics_duration_buckets, metrics_duration_bucket_count);
    run_seconds = metrics_histogram("work_pool_job_duration_seconds", "Time a background job ran.", NULL,
                                    metrics_duration_buckets, metrics_duration_bucket_count);
}

static void *pool_thread_main(void *arg)
{
    (void)arg;
    /* Linux applies nice per thread: lower this one only. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), pool.nice);
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (h2o_linklist_is_empty(&pool.jobs) && !pool.stopping)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (h2o_linklist_is_empty(&pool.jobs))
            break; /* stopping, nothing left */
        work_job_t *job = H2O_STRUCT_FROM_MEMBER(work_job_t, queue_link, pool.jobs.next);
        h2o_linklist_unlink(&job->queue_link);
        pool.queued--;
        job->port->running++;
        pthread_mutex_unlock(&pool.lock);

        metrics_gauge_add(queue_depth, NULL, -1);
        uint64_t started = loop_now_ns();
        metrics_histogram_observe(wait_seconds, NULL, (double)(started - job->queued_ns) / 1e9);
        job->run(job->data);
        metrics_histogram_observe(run_seconds, NULL, (double)(loop_now_ns() - started) / 1e9);

        pthread_mutex_lock(&pool.lock);
        work_port_t *port = job->port;
        port->running--;
        if (!port->detached) {
            h2o_multithread_send_message(&port->receiver, &job->super);
        } else {
            free(job); /* nobody left to tell; its data goes with the process */
            if (port->running == 0)
                free(port);
        }
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

int work_pool_start(size_t threads, size_t max_queue, int nice)
{
    /* Pool threads must never take SIGTERM/SIGINT (the main thread waits
     * for those): they inherit a fully blocked mask from here. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    register_metrics();
    pool.max_queue = max_queue;
    pool.nice = nice;
    pool.stopping = false;
    pool.threads = calloc(threads, sizeof(*pool.threads));
    if (pool.threads == NULL)
        return -1;
    for (pool.thread_count = 0; pool.thread_count < threads; pool.thread_count++) {
        if (pthread_create(&pool.threads[pool.thread_count], NULL, pool_thread_main, NULL) != 0) {
            log_error(NULL, "cannot start a background thread", LOG_INT("started", pool.thread_count));
            pthread_sigmask(SIG_SETMASK, &previous, NULL);
            work_pool_stop();
            return -1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pool.running = true;
    return 0;
}

void work_pool_stop(void)
{
    if (pool.threads == NULL)
        return;
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pool.running = false;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (size_t i = 0; i < pool.thread_count; i++)
        pthread_join(pool.threads[i], NULL);
    free(pool.threads);
    pool.threads = NULL;
    pool.thread_count = 0;
}

static void on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    work_port_t *port = H2O_STRUCT_FROM_MEMBER(work_port_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        work_job_t *job = H2O_STRUCT_FROM_MEMBER(work_job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        port->pending--;
        metrics_counter_add(jobs_total, (const char *const[]){"done"}, 1);
        work_done_fn done = job->done;
        void *data = job->data;
        free(job);
        done(data);
    }
}

int work_pool_attach(worker_t *worker)
{
    work_port_t *port = calloc(1, sizeof(*port));
    if (port == NULL)
        return -1;
    h2o_multithread_register_receiver(worker->queue, &port->receiver, on_jobs_done);
    worker->work_port = port;
    return 0;
}

/* Frees delivered messages whose `done` will never run (the loop stopped). */
static void drop_messages(h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        work_job_t *job = H2O_STRUCT_FROM_MEMBER(work_job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        free(job);
    }
}

void work_pool_detach(worker_t *worker)
{
    work_port_t *port = worker->work_port;
    if (port == NULL)
        return;
    worker->work_port = NULL;
    /* Normally nothing is pending: shutdown waits for the jobs. Past the
     * shutdown deadline some may be queued or running; their `done` will not
     * run, and their data is left to the process exit. */
    pthread_mutex_lock(&pool.lock);
    port->detached = true;
    for (h2o_linklist_t *link = pool.jobs.next; link != &pool.jobs;) {
        work_job_t *job = H2O_STRUCT_FROM_MEMBER(work_job_t, queue_link, link);
        link = link->next;
        if (job->port == port) {
            h2o_linklist_unlink(&job->queue_link);
            pool.queued--;
            metrics_gauge_add(queue_depth, NULL, -1);
            free(job);
        }
    }
    bool last = port->running == 0;
    /* still under the lock: a pool thread frees a detached port when its
     * last job ends, which must not happen while this still uses it */
    drop_messages(&port->receiver._messages);
    h2o_multithread_unregister_receiver(worker->queue, &port->receiver);
    pthread_mutex_unlock(&pool.lock);
    if (last)
        free(port);
}

int work_pool_submit(worker_t *worker, work_run_fn run, work_done_fn done, void *data)
{
    work_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return -1;
    *job = (work_job_t){.port = worker->work_port, .run = run, .done = done, .data = data, .queued_ns = loop_now_ns()};
    pthread_mutex_lock(&pool.lock);
    bool accepted = pool.running && job->port != NULL && pool.queued < pool.max_queue;
    if (accepted) {
        h2o_linklist_insert(&pool.jobs, &job->queue_link);
        pool.queued++;
        metrics_gauge_add(queue_depth, NULL, 1);
        pthread_cond_signal(&pool.wake);
    }
    pthread_mutex_unlock(&pool.lock);
    if (!accepted) {
        free(job);
        metrics_counter_add(jobs_total, (const char *const[]){"rejected"}, 1);
        return -1;
    }
    worker->work_port->pending++;
    return 0;
}

size_t work_pool_pending(const worker_t *worker)
{
    return worker->work_port != NULL ? worker->work_port->pending : 0;
}
