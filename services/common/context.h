/* context.h - the unit of work: one HTTP request, one chore run, one
 * background batch.
 *
 * Whatever the transport, work on a loop carries the same context: the
 * worker it runs on, its trace context, the log fields every line of it
 * gets, when it started, whether it was cancelled, and memory that lives as
 * long as it does. Its owner embeds it as the first member (`super`) and
 * says, through context_ops_t, how a failure is answered (an HTTP request
 * answers DESIGN's JSON error; background work has already logged the
 * cause) and how the owner is freed.
 *
 * Lifetime: context_init gives the owner one reference. Every asynchronous
 * call made for the context holds another (step.h does that), so memory
 * from context_alloc stays valid inside callbacks even after the owner has
 * let go. When the last reference goes the pool is cleared and ops->release
 * frees the owner. Cancellation (the client left, the chore was stopped)
 * does not free anything: it tells the steps not to go on.
 *
 * A context belongs to its worker's thread: no locking.
 */
#ifndef OMS_CONTEXT_H
#define OMS_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "trace.h"
#include "worker.h"

#define CONTEXT_FIELDS_MAX 4

typedef struct context context_t;

typedef struct context_ops {
    /* Ends the unit of work with an error it cannot go on from (called at
     * most once per context; the cause has been logged where it was found). */
    void (*fail)(context_t *c, int status, const char *code, const char *message);
    /* The last reference is gone: free the owner (the pool already is). */
    void (*release)(context_t *c);
} context_ops_t;

struct context {
    const context_ops_t *ops;
    worker_t *worker;
    trace_context_t trace;
    uint64_t started_ns; /* loop_now_ns() at context_init */
    log_field_t fields[CONTEXT_FIELDS_MAX];
    size_t field_count;
    size_t refs;
    bool cancelled; /* steps stop at the next callback */
    bool failed;    /* context_fail ran */
    h2o_mem_pool_t pool;
};

/* Starts a context on `worker` with the owner's reference; the trace is
 * empty (the owner starts a span: trace.h). Counts in worker->busy. */
void context_init(context_t *c, const context_ops_t *ops, worker_t *worker);

/* Takes a reference for an asynchronous call. Returns c. */
context_t *context_hold(context_t *c);

/* Drops a reference; the last one frees the context and its owner. */
void context_release(context_t *c);

/* Marks the context cancelled: no further step runs. */
void context_cancel(context_t *c);

static inline bool context_is_cancelled(const context_t *c)
{
    return c->cancelled;
}

/* Zeroed memory freed with the context (the one allocator for a unit of
 * work's asynchronous state). Never NULL. */
void *context_alloc(context_t *c, size_t size);

/* A NUL-terminated copy of `len` bytes of `s` (SIZE_MAX: strlen) in the
 * context's memory. */
char *context_strdup(context_t *c, const char *s, size_t len);

/* Adds a string field to every log line of the context (the value is
 * copied); at most CONTEXT_FIELDS_MAX. */
void context_add_field(context_t *c, const char *key, const char *value);

/* Fails the unit of work: answers `status` with DESIGN's error
 * {"error":{"code","message"}} for a request, records it for background
 * work. Only the first failure counts. */
void context_fail(context_t *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Logs that `dependency` did not answer (why: `reason`) and fails with 503
 * dependency_unavailable. */
void context_unavailable(context_t *c, const char *dependency, const char *reason);

/* The value of this service's fault "<service>.<suffix>" on c's worker. */
double context_fault(const context_t *c, const char *suffix);

/* Writes one log line with the context's trace ids and fields first. */
void context_log_write(const context_t *c, log_level_t level, const char *msg, const log_field_t *fields, size_t count);

#define context_log(level, c, msg, ...)                                                                                \
    do {                                                                                                               \
        if (log_enabled(level))                                                                                        \
            context_log_write((c), (level), (msg), LOG_FIELDS_(__VA_ARGS__) + 1, LOG_COUNT_(__VA_ARGS__));             \
    } while (0)
#define context_debug(c, ...) context_log(LOG_DEBUG, c, __VA_ARGS__)
#define context_info(c, ...)  context_log(LOG_INFO, c, __VA_ARGS__)
#define context_warn(c, ...)  context_log(LOG_WARN, c, __VA_ARGS__)
#define context_error(c, ...) context_log(LOG_ERROR, c, __VA_ARGS__)

#endif
