/* faults_admin.c - the /admin/faults endpoints. */
#include "faults_admin.h"

#include <math.h>
#include <stdio.h>

#include "auth.h"
#include "faults.h"
#include "http.h"
#include "step.h"

/* Whole numbers as JSON integers (300, not 300.0). */
static json_t *json_number_of(double value)
{
    return value == floor(value) && fabs(value) < 1e15 ? json_integer((json_int_t)value) : json_real(value);
}

typedef struct faults_update {
    http_request_t *r;
    const char *failure; /* first Redis error among the writes */
} faults_update_t;

/* The last step of both endpoints: the flags as they are now. */
static void answer_snapshot(void *data, const redisReply *reply, const char *error)
{
    faults_update_t *update = data;
    http_request_t *r = update->r;
    if (context_is_cancelled(&r->super))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || update->failure != NULL) {
        const char *reason = update->failure != NULL            ? update->failure
                             : reply == NULL                    ? error
                             : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                : "unexpected reply";
        context_unavailable(&r->super, "redis", reason);
        return;
    }
    faults_t faults;
    faults_parse(reply, &faults);
    worker_apply_faults(r->super.worker, &faults);
    json_t *body = json_object();
    for (size_t i = 0; i < faults.count; i++)
        json_object_set_new(body, faults.items[i].name, json_number_of(faults.items[i].value));
    http_respond_json(r, 200, body);
}

static void read_faults(faults_update_t *update)
{
    const char *argv[] = {"HGETALL", FAULTS_REDIS_KEY};
    step_redis_raw(&update->r->super, 2, argv, NULL, answer_snapshot, update);
}

static faults_update_t *new_update(http_request_t *r)
{
    faults_update_t *update = context_alloc(&r->super, sizeof(*update));
    update->r = r;
    return update;
}

static void get_faults(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    read_faults(new_update(r));
}

void faults_admin_handle_get(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, get_faults);
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
    return isfinite(*out) && *out >= 0 && *out <= FAULTS_VALUE_MAX ? 0 : -1;
}

/* Checks every entry before anything is written; answers 400 for the
 * first bad one. */
static bool valid_update(http_request_t *r, json_t *body)
{
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
        http_respond_field_error(r, &error);
        return false;
    }
    return true;
}

static void on_fault_written(void *data, const redisReply *reply, const char *error)
{
    faults_update_t *update = data;
    if (update->failure == NULL && (reply == NULL || reply->type == REDIS_REPLY_ERROR))
        update->failure = reply == NULL ? error : "redis refused the update";
}

static void put_faults(http_request_t *r, const jwt_claims_t *who)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    if (!valid_update(r, body)) {
        json_decref(body);
        return;
    }
    faults_update_t *update = new_update(r);
    const char *name;
    json_t *value;
    json_object_foreach(body, name, value)
    {
        double number;
        fault_number(value, &number);
        char text[32];
        snprintf(text, sizeof(text), "%.15g", number);
        const char *set[] = {"HSET", FAULTS_REDIS_KEY, name, text};
        const char *clear[] = {"HDEL", FAULTS_REDIS_KEY, name};
        step_redis_raw(&r->super, number != 0 ? 4 : 3, number != 0 ? set : clear, NULL, on_fault_written, update);
        context_info(&r->super, "fault flag set", LOG_STRING("fault", name), LOG_DOUBLE("value", number),
                     LOG_STRING("by", who->sub));
    }
    json_decref(body);
    /* Redis answers in order: this read sees every write above. */
    read_faults(update);
}

void faults_admin_handle_put(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, put_faults);
}
