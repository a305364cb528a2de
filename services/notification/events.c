/* events.c - one consumed event, as a unit of work (consumer.h):
 *
 *   [slow_consumer_ms fault: wait] -> validate the envelope
 *     -> whose is it (payment events: the order's owner)
 *     -> their address (known, else asked of the user service)
 *     -> render (routing.c) -> dispatch (dispatch.c)
 *
 * A failure anywhere fails the job, and the consumer retries the event
 * with a growing delay, then dead-letters it. That includes events that
 * can never succeed (not JSON, an unknown type, a field missing): they
 * go through their attempts and end in oms.dead-letters, while the
 * deliveries behind them go on.
 */
#include <stdio.h>
#include <string.h>

#include "notification.h"
#include "uuid.h"

#define SLOW_CONSUMER_MAX_MS 60000
/* An event id becomes a header (Message-ID, the webhook's Idempotency-Key):
 * nothing but these. */
#define ID_CHARACTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"

typedef struct event_job {
    context_t *c;
    const broker_delivery_t *delivery;
    const route_t *route;
    const char *user_id; /* the customer the event is for, NULL for admins' events */
    recipient_t to;
    notice_t notice;
    loop_timer_t slow;
} event_job_t;

static void reject(event_job_t *job, const char *fmt, const char *detail)
{
    char message[300];
    snprintf(message, sizeof(message), fmt, detail);
    context_warn(job->c, "event not processable", LOG_STRING("reason", message),
                 LOG_INT("attempt", job->delivery->attempt));
    context_fail(job->c, 422, "invalid_event", "%s", message);
}

static json_t *parse(event_job_t *job)
{
    json_error_t error;
    json_t *event = json_loadb(job->delivery->body, job->delivery->body_len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object(event)) {
        json_decref(event);
        reject(job, "the body is not a JSON object: %s", error.text);
        return NULL;
    }
    return event;
}

/* --- rendering and dispatching ---------------------------------------------------------- */

static void dispatched(void *data, const dispatch_result_t *result)
{
    event_job_t *job = data;
    if (result->failed > 0)
        context_fail(job->c, 503, "not_sent", "%zu of %zu notifications not sent", result->failed,
                     result->sent + result->failed);
    else if (result->held > 0) /* its first copy is still sending: done only once that has */
        context_fail(job->c, 503, "in_progress", "%zu notifications being sent by another copy of the event",
                     result->held);
    else if (result->duplicate && result->sent == 0)
        context_info(job->c, "duplicate event: already taken in");
}

static void render_and_dispatch(event_job_t *job)
{
    json_t *event = parse(job);
    if (event == NULL)
        return;
    char error[200];
    int rc = routing_render(job->c, job->route, event, &job->to, &job->notice, error, sizeof(error));
    json_decref(event);
    if (rc != 0) {
        reject(job, "%s", error);
        return;
    }
    dispatch_notice(job->c, &job->notice, dispatched, job);
}

/* --- the recipient ------------------------------------------------------------------------- */

static void remembered(void *data, const PGresult *result)
{
    (void)result;
    render_and_dispatch(data);
}

static void learn_recipient(void *data, const http_response_t *response)
{
    event_job_t *job = data;
    if (response->code == 404) { /* no such user: the inbox only (it is keyed by the id) */
        context_warn(job->c, "the user service knows no such user: in-app only", LOG_STRING("user_id", job->user_id));
        render_and_dispatch(job);
        return;
    }
    json_t *user = response->code == 200 ? json_loadb(response->body, response->body_len, 0, NULL) : NULL;
    const json_t *email = json_object_get(user, "email"), *name = json_object_get(user, "name");
    if (!json_is_string(email) || !mailer_address_valid(json_string_value(email))) {
        json_decref(user);
        context_warn(job->c, "no address from the user service", LOG_STRING("user_id", job->user_id),
                     LOG_INT("status", response->code));
        context_fail(job->c, 503, "dependency_unavailable", "the user service gave no address (status %d)",
                     response->code);
        return;
    }
    job->to.email = context_strdup(job->c, json_string_value(email), SIZE_MAX);
    job->to.name = context_strdup(job->c, json_is_string(name) ? json_string_value(name) : "", SIZE_MAX);
    json_decref(user);
    const char *params[] = {job->user_id, job->to.email, job->to.name};
    step_query(job->c, "recipient_put", params, remembered, job);
}

static void found_recipient(void *data, const PGresult *result)
{
    event_job_t *job = data;
    if (PQntuples(result) == 1) {
        job->to.email = context_strdup(job->c, PQgetvalue(result, 0, 0), SIZE_MAX);
        job->to.name = context_strdup(job->c, PQgetvalue(result, 0, 1), SIZE_MAX);
        render_and_dispatch(job);
        return;
    }
    char url[300];
    snprintf(url, sizeof(url), "%s/api/users/%s", notification_config.user_url, job->user_id);
    http_call_t call = {
        .peer = "user", .method = "GET", .url = url, .authorization = auth_peer_authorization(job->c->worker)};
    step_http(job->c, &call, learn_recipient, job);
}

static void find_recipient(event_job_t *job)
{
    job->to.user_id = job->user_id;
    if (!(job->route->channels & CHANNEL_EMAIL)) {
        render_and_dispatch(job);
        return;
    }
    const char *params[] = {job->user_id};
    step_query(job->c, "recipient_get", params, found_recipient, job);
}

static void found_owner(void *data, const PGresult *result)
{
    event_job_t *job = data;
    if (PQntuples(result) != 1) {
        reject(job, "%s", "the order is not known here (its order.created event not taken in yet)");
        return;
    }
    job->user_id = context_strdup(job->c, PQgetvalue(result, 0, 0), SIZE_MAX);
    find_recipient(job);
}

/* --- the envelope ---------------------------------------------------------------------------- */

static void validate(event_job_t *job)
{
    json_t *event = parse(job);
    if (event == NULL)
        return;
    const json_t *id = json_object_get(event, "id"), *type = json_object_get(event, "type");
    const json_t *data = json_object_get(event, "data");
    const char *problem = NULL;
    if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > 200 ||
        strspn(json_string_value(id), ID_CHARACTERS) != json_string_length(id))
        problem = "id must be 1 to 200 letters, digits, '.', '_', ':' or '-'";
    else if (!json_is_string(type))
        problem = "type must be a string";
    else if (!json_is_object(data))
        problem = "data must be an object";
    else if ((job->route = routing_find(json_string_value(type))) == NULL)
        problem = "unknown event type";
    if (problem != NULL) {
        json_decref(event);
        reject(job, "%s", problem);
        return;
    }
    const route_t *route = job->route;
    const json_t *user_id = json_object_get(data, "user_id"), *order_id = json_object_get(data, "order_id");
    bool by_order = strncmp(route->type, "payment.", 8) == 0;
    if (route->for_admins) {
        job->to = (recipient_t){.email = notification_config.admin_email, .name = "OMS admins"};
    } else if (route->channels != 0 && !by_order &&
               !(json_is_string(user_id) && uuid_is_valid(json_string_value(user_id)))) {
        problem = "data.user_id must be a user's UUID";
    } else if (route->channels != 0 && by_order && !json_is_string(order_id)) {
        problem = "data.order_id must be a string";
    }
    if (problem != NULL) {
        json_decref(event);
        reject(job, "%s", problem);
        return;
    }
    if (route->for_admins || route->channels == 0) {
        json_decref(event);
        render_and_dispatch(job);
    } else if (by_order) {
        const char *params[] = {context_strdup(job->c, json_string_value(order_id), SIZE_MAX)};
        json_decref(event);
        step_query(job->c, "order_owner", params, found_owner, job);
    } else if (strcmp(route->type, "user.registered") == 0) {
        const json_t *email = json_object_get(data, "email"), *name = json_object_get(data, "name");
        job->user_id = context_strdup(job->c, json_string_value(user_id), SIZE_MAX);
        job->to = (recipient_t){
            .user_id = job->user_id,
            .email = json_is_string(email) && mailer_address_valid(json_string_value(email))
                         ? context_strdup(job->c, json_string_value(email), SIZE_MAX)
                         : NULL,
            .name = context_strdup(job->c, json_is_string(name) ? json_string_value(name) : "", SIZE_MAX),
        };
        json_decref(event);
        render_and_dispatch(job);
    } else {
        job->user_id = context_strdup(job->c, json_string_value(user_id), SIZE_MAX);
        json_decref(event);
        find_recipient(job);
    }
}

static void on_slow_elapsed(loop_timer_t *timer)
{
    event_job_t *job = timer->data;
    context_t *c = job->c;
    if (!context_is_cancelled(c))
        validate(job);
    context_release(c);
}

void events_handle(context_t *c, const broker_delivery_t *delivery, void *data)
{
    (void)data;
    event_job_t *job = context_alloc(c, sizeof(*job));
    job->c = c;
    job->delivery = delivery;
    double slow = context_fault(c, "slow_consumer_ms");
    if (slow >= 1) { /* the lab's slow consumer: the backlog grows */
        context_hold(c);
        loop_timer_start(&job->slow, slow < SLOW_CONSUMER_MAX_MS ? (uint64_t)slow : SLOW_CONSUMER_MAX_MS,
                         on_slow_elapsed, job);
        return;
    }
    validate(job);
}

void events_settled(const broker_delivery_t *delivery, broker_settlement_t how, double seconds, void *data)
{
    (void)delivery, (void)seconds, (void)data;
    notification_count_settled(how);
}
