/* faults.h - the lab's fault flags: one snapshot of them, and its metrics.
 *
 * Faults live in the Redis hash `oms:faults` (name -> number). Each worker
 * keeps its own snapshot (worker.h), re-read about once a second by
 * faults_refresh.h and changed through /admin/faults (faults_admin.h).
 * Every service honours `<service>.latency_ms`, `<service>.error_rate`
 * (0..1) and `<service>.slow_db_ms`; services add their own.
 *
 * Besides oms_fault_active (worker 0 speaks for the process), every worker
 * counts the snapshots it applies in oms_fault_snapshots_total{worker}: a
 * flag written to Redis before a worker's count has gone up twice is in
 * force on that worker, which is how a test knows that all of them see it.
 */
#ifndef OMS_FAULTS_H
#define OMS_FAULTS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#define FAULTS_MAX       32
#define FAULTS_NAME_MAX  64
#define FAULTS_VALUE_MAX 1e9
#define FAULTS_REDIS_KEY "oms:faults"

typedef struct faults {
    size_t count;
    struct {
        char name[FAULTS_NAME_MAX];
        double value;
    } items[FAULTS_MAX];
} faults_t;

/* Declares oms_fault_active and oms_fault_snapshots_total; call before
 * threads start. */
void faults_metrics_register(void);

/* True when `name` is a well-formed fault name: "<service>.<fault>" in
 * lower case letters, digits and underscores, at most 63 characters. */
bool faults_valid_name(const char *name);

/* Reads an HGETALL reply of oms:faults into `out`; entries that are not a
 * valid name with a finite non-zero number are skipped (someone wrote junk
 * with redis-cli). */
void faults_parse(const redisReply *reply, faults_t *out);

/* The value of fault `name` in `faults`, 0 when not set. */
double faults_value(const faults_t *faults, const char *name);

/* Counts a snapshot applied by worker `worker_index`; worker 0 also logs
 * each change from `before` to `after` and sets oms_fault_active. */
void faults_report(const faults_t *before, const faults_t *after, size_t worker_index);

#endif
