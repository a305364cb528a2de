/* faults.c - fault flags: refresh from Redis, admin endpoints, metrics.
 *
 * Besides oms_fault_active (worker 0 speaks for the process), every worker
 * counts the snapshots it applies in oms_fault_snapshots_total{worker}: a
 * flag written to Redis before a worker's count has gone up twice is in
 * force on that worker, which is how a test knows that all of them see it. */
#include "faults.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

#define REFRESH_INTERVAL_MS 1000
#define FAULT_VALUE_MAX     1e9

static metrics_family_t *fault_active, *snapshots_applied;

/* One refresh timer per worker thread. */
static __thread loop_timer_t refresh_timer;

void faults_metrics_register(void)
{
    static const char *const labels[] = {"fault", NULL};
    static const char *const worker_label[] = {"worker", NULL};
    fault_active = metrics_gauge("oms_fault_active", "1 while a lab fault flag is set in oms:faults, else 0.", labels);
    snapshots_applied =
        metrics_counter("oms_fault_snapshots_total",
                        "Fault flag snapshots read from Redis and applied, per worker thread.", worker_label);
}

bool faults_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= FAULTS_NAME_MAX)
        return false;
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0' || strchr(dot + 1, '.') != NULL)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!(*p == '.' || *p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

double faults_value(const server_worker_t *worker, const char *name)
{
    for (size_t i = 0; i < worker->faults.count; i++)
        if (strcmp(worker->faults.items[i].name, name) == 0)
            return worker->faults.items[i].value;
    return 0;
}

double faults_own(const server_worker_t *worker, const char *suffix)
{
    char name[FAULTS_NAME_MAX];
    snprintf(name, sizeof(name), "%s.%s", server_config()->service, suffix);
    return faults_value(worker, name);
}

/* Parses an HGETALL reply into a snapshot; entries that are not a valid
 * name with a finite number are skipped (someone wrote junk with redis-cli). */
static void parse_snapshot(const redisReply *reply, faults_t *out)
{
    out->count = 0;
    for (size_t i = 0; i + 1 < reply->elements && out->count < FAULTS_MAX; i += 2) {
        const redisReply *key = reply->element[i], *value = reply->element[i + 1];
        if (key->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING || !faults_valid_name(key->str))
            continue;
        char *end;
        double number = strtod(value->str, &end);
        if (end == value->str || *end != '\0' || !isfinite(number) || number == 0)
            continue;
        snprintf(out->items[out->count].name, FAULTS_NAME_MAX, "%s", key->str);
        out->items[out->count].value = number;
        out->count++;
    }
}

/* Worker 0 speaks for the process: it logs changes and sets the gauge. */
static void report_changes(const faults_t *before, const faults_t *after)
{
    for (size_t i = 0; i < after->count; i++) {
        bool found = false;
        for (size_t j = 0; j < before->count && !found; j++)
            found = strcmp(before->items[j].name, after->items[i].name) == 0 &&
                    before->items[j].value == after->items[i].value;
        if (!found) {
            log_warn(NULL, "fault active", LOG_STRING("fault", after->items[i].name),
                     LOG_DOUBLE("value", after->items[i].value));
            metrics_gauge_set(fault_active, (const char *const[]){after->items[i].name}, 1);
        }
    }
    for (size_t j = 0; j < before->count; j++) {
        bool found = false;
        for (size_t i = 0; i < after->count && !found; i++)
            found = strcmp(before->items[j].name, after->items[i].name) == 0;
        if (!found) {
            log_info(NULL, "fault cleared", LOG_STRING("fault", before->items[j].name));
            metrics_gauge_set(fault_active, (const char *const[]){before->items[j].name}, 0);
        }
    }
}

static void apply_snapshot(server_worker_t *worker, const redisReply *reply)
{
    faults_t next;
    parse_snapshot(reply, &next);
    if (worker->index == 0)
        report_changes(&worker->faults, &next);
    worker->faults = next;
    double slow_ms = faults_own(worker, "slow_db_ms");
    pg_pool_set_injected_delay(worker->pg, slow_ms > 0 ? (uint64_t)slow_ms : 0);
    char index[24];
    snprintf(index, sizeof(index), "%zu", worker->index);
    metrics_counter_add(snapshots_applied, (const char *const[]){index}, 1);
}

static void on_refresh_timer(loop_timer_t *timer);

static void on_refresh_reply(void *data, const redisReply *reply, const char *error)
{
    server_worker_t *worker = data;
    (void)error; /* Redis down: keep the last known faults */
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
        apply_snapshot(worker, reply);
    if (!worker->stopping)
        loop_timer_start(&refresh_timer, REFRESH_INTERVAL_MS, on_refresh_timer, worker);
}

static void on_refresh_timer(loop_timer_t *timer)
{
    server_worker_t *worker = timer->data;
    const char *argv[] = {"HGETALL", FAULTS_REDIS_KEY};
    redis_command_argv(worker->redis, on_refresh_reply, worker, 2, argv, NULL);
}

void faults_start(server_worker_t *worker)
{
    loop_timer_start(&refresh_timer, 0, on_refresh_timer, worker);
}

void faults_stop(server_worker_t *worker)
{
    (void)worker;
    loop_timer_stop(&refresh_timer);
}

/* --- admin endpoints ------------------------------------------------------ */

/* Whole numbers as JSON integers (300, not 300.0). */
static json_t *json_number_of(double value)
{
    return value == floor(value) && fabs(value) < 1e15 ? json_integer((json_int_t)value) : json_real(value);
}

static json_t *snapshot_json(const redisReply *reply)
{
    faults_t faults;
    parse_snapshot(reply, &faults);
    json_t *body = json_object();
    for (size_t i = 0; i < faults.count; i++)
        json_object_set_new(body, faults.items[i].name, json_number_of(faults.items[i].value));
    return body;
}

/* Heap-allocated (not in the request pool): the write callbacks touch it
 * without resuming the request; the final read frees it. */
typedef struct faults_update {
    http_request_t *r;
    const char *failure; /* first Redis error among the writes */
} faults_update_t;

static void on_faults_read(void *data, const redisReply *reply, const char *error)
{
    faults_update_t *update = data;
    http_request_t *r = update->r;
    const char *failure = update->failure;
    free(update);
    if (!http_request_resume(r))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || failure != NULL) {
        http_respond_unavailable(r, "redis", failure != NULL ? failure : error != NULL ? error : "bad reply");
        return;
    }
    apply_snapshot(r->worker, reply);
    http_respond_json(r, 200, snapshot_json(reply));
}

static faults_update_t *new_update(http_request_t *r)
{
    faults_update_t *update = calloc(1, sizeof(*update));
    if (update == NULL)
        abort();
    update->r = http_request_hold(r);
    return update;
}

static void on_faults_written(void *data, const redisReply *reply, const char *error)
{
    faults_update_t *update = data;
    if (update->failure == NULL && (reply == NULL || reply->type == REDIS_REPLY_ERROR))
        update->failure = reply == NULL ? error : "redis refused the update";
}

static void read_faults(http_request_t *r, faults_update_t *update)
{
    const char *argv[] = {"HGETALL", FAULTS_REDIS_KEY};
    redis_command_argv(r->worker->redis, on_faults_read, update, 2, argv, NULL);
}

static void get_faults(http_request_t *r, const auth_claims_t *who)
{
    (void)who;
    read_faults(r, new_update(r));
}

void faults_handle_get(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_ADMIN, get_faults);
}

/* Turns one JSON value into the number stored in Redis, 0 meaning "clear".
 * Returns -1 for values that are not a number, boolean or null. */
static int fault_number(const json_t *value, double *out)
{
    if (json_is_null(value) || json_is_false(value))
        *out = 0;
    else if (json_is_true(value))
        *out = 1;
    else if (json_is_number(value))
        *out = json_number_value(value);
    else
        return -1;
    return isfinite(*out) && *out >= 0 && *out <= FAULT_VALUE_MAX ? 0 : -1;
}

static void put_faults(http_request_t *r, const auth_claims_t *who)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    /* Validate everything before writing anything. */
    const char *name;
    json_t *value;
    size_t count = 0;
    json_object_foreach(body, name, value)
    {
        double number;
        json_field_error_t error;
        if (++count > FAULTS_MAX) {
            json_fail(&error, "", "at most %d faults per request", FAULTS_MAX);
        } else if (!faults_valid_name(name)) {
            json_fail(&error, name, "fault names look like 'service.fault' (lower case, digits, '_')");
        } else if (fault_number(value, &number) != 0) {
            json_fail(&error, name, "a fault value is a number from 0 to 1e9, true, false or null");
        } else {
            continue;
        }
        json_decref(body);
        http_respond_field_error(r, &error);
        return;
    }
    faults_update_t *update = new_update(r);
    json_object_foreach(body, name, value)
    {
        double number;
        fault_number(value, &number);
        char text[32];
        snprintf(text, sizeof(text), "%.15g", number);
        const char *set[] = {"HSET", FAULTS_REDIS_KEY, name, text};
        const char *clear[] = {"HDEL", FAULTS_REDIS_KEY, name};
        if (number != 0)
            redis_command_argv(r->worker->redis, on_faults_written, update, 4, set, NULL);
        else
            redis_command_argv(r->worker->redis, on_faults_written, update, 3, clear, NULL);
        log_info(&r->trace, "fault flag set", LOG_STRING("fault", name), LOG_DOUBLE("value", number),
                 LOG_STRING("by", who->sub));
    }
    json_decref(body);
    /* Redis answers in order: this read sees every write above. */
    read_faults(r, update);
}

void faults_handle_put(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_ADMIN, put_faults);
}
