/* faults.h - the lab's fault flags.
 *
 * Faults live in the Redis hash `oms:faults` (name -> number). Every worker
 * re-reads it about once a second into its own snapshot; worker 0 logs each
 * change and exports oms_fault_active{fault}. `GET /admin/faults` returns the
 * current set, `PUT /admin/faults` merges a JSON object into it (0, false or
 * null clears a fault). Every service honours `<service>.latency_ms`,
 * `<service>.error_rate` (0..1) and `<service>.slow_db_ms`.
 */
#ifndef OMS_FAULTS_H
#define OMS_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

#define FAULTS_MAX       32
#define FAULTS_NAME_MAX  64
#define FAULTS_REDIS_KEY "oms:faults"

typedef struct faults {
    size_t count;
    struct {
        char name[FAULTS_NAME_MAX];
        double value;
    } items[FAULTS_MAX];
} faults_t;

struct server_worker;
struct http_request;

/* Declares oms_fault_active; call before threads start. */
void faults_metrics_register(void);

/* Starts the once-a-second refresh on this worker. */
void faults_start(struct server_worker *worker);

/* Stops the refresh. */
void faults_stop(struct server_worker *worker);

/* The value of fault `name` in the worker's snapshot, 0 when not set. */
double faults_value(const struct server_worker *worker, const char *name);

/* The value of "<this service>.<suffix>", e.g. faults_own(w, "latency_ms"). */
double faults_own(const struct server_worker *worker, const char *suffix);

/* True when `name` is a well-formed fault name: "<service>.<fault>" in
 * lower case letters, digits and underscores, at most 63 characters. */
bool faults_valid_name(const char *name);

/* GET /admin/faults and PUT /admin/faults (admin token required). */
void faults_handle_get(struct http_request *r);
void faults_handle_put(struct http_request *r);

#endif
