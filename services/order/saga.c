/* saga.c - the order saga: an explicit state machine, persisted step by step.
 *
 * An order's row holds its status (what the customer sees) and its step
 * (what is to be done next). The saga takes the step, a call to a peer,
 * and moves the row to the next one (orders.saga_move: one statement that
 * also writes the history row and, when the status changes, the event).
 * A process killed at any moment therefore leaves the next step on disk,
 * and recovery (recovery.c) drives the order on from it; every peer call
 * carries an idempotency key, so a step taken twice is done once.
 *
 *   status    step            call                       answer -> next (status, step)
 *   PENDING   reserve         inventory: reserve         held -> charge
 *                                                        insufficient_stock -> FAILED, done
 *   PENDING   charge          payment: charge            succeeded -> commit
 *                                                        declined -> FAILED, release
 *                                                        no answer -> void (the outcome is unknown)
 *   PENDING   void            payment: void              voided -> FAILED, release
 *                                                        it had succeeded -> commit
 *   PENDING   commit          inventory: commit          committed -> CONFIRMED, done
 *                                                        expired -> FAILED, refund
 *   FAILED    void            payment: void              voided -> release; succeeded -> refund
 *   FAILED    refund          payment: refund            -> release
 *   FAILED    release         inventory: release         -> done
 *   CONFIRMED cancel_refund   payment: refund            -> cancel_restock
 *   CONFIRMED cancel_restock  inventory: restock         -> CANCELLED, done
 *
 * A forward step (status PENDING) that gets no answer is tried again with
 * a growing delay, ORDER_STEP_ATTEMPTS times at most and never past the
 * order's deadline (created + ORDER_PENDING_TIMEOUT_S); then the saga gives
 * up: FAILED with the reason (inventory_unavailable, payment_unavailable,
 * timeout) and the compensation that undoes what was done. Compensations
 * (status FAILED, or a cancel) are tried until they succeed: the order's
 * status is already final, and they put stock and money back.
 *
 * The void step is the fence for a charge whose outcome the saga could not
 * learn: the payment service then refuses any later charge for the order,
 * or says that the charge had succeeded. So no customer is charged for an
 * order that FAILED, whatever timed out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "order.h"
#include "random.h"
#include "uuid.h"

typedef enum saga_step {
    STEP_RESERVE,
    STEP_CHARGE,
    STEP_VOID,
    STEP_COMMIT,
    STEP_REFUND,
    STEP_RELEASE,
    STEP_CANCEL_REFUND,
    STEP_CANCEL_RESTOCK,
    STEP_DONE,
} saga_step_t;

static const char *const step_names[] = {"reserve", "charge",        "void",           "commit", "refund",
                                         "release", "cancel_refund", "cancel_restock", "done"};

#define ID_MAX        40
#define REASON_MAX    40
#define RETRY_BASE_MS 100
#define RETRY_MAX_MS  5000

typedef struct saga saga_t;

/* What the step's call got back: the peer's answer, parsed. */
typedef struct answer {
    const http_response_t *response;
    json_t *doc; /* the body as JSON (NULL when it is not) */
} answer_t;

typedef void (*answer_fn)(saga_t *saga, const answer_t *answer);

struct saga {
    task_t *task;
    context_t *c; /* &task->super */
    char id[ID_MAX];
    char status[12]; /* PENDING, CONFIRMED, FAILED, CANCELLED */
    saga_step_t step;
    char reason[REASON_MAX];
    char reservation_id[ID_MAX];
    char payment_id[ID_MAX];
    const char *items; /* [{sku, qty}]: the reservation's items */
    long long total_cents;
    char currency[4];
    char method[16];
    const char *card; /* NULL once the saga cannot charge any more */
    int64_t deadline_ms;
    int attempts; /* of the current step */
    uint64_t call_started_ns;
    answer_fn on_answer;
    loop_timer_t retry;
    saga_settled_fn settled; /* NULL once told */
    void *waiter;
    bool cancelling; /* started by a cancel: settled at CANCELLED */
};

static void take_step(saga_t *saga);

static int64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool is_pending(const saga_t *saga)
{
    return strcmp(saga->status, "PENDING") == 0;
}

static void copy_text(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%s", text != NULL ? text : "");
}

/* --- telling the waiter ------------------------------------------------------- */

static void tell_waiter(saga_t *saga, const char *order, size_t len)
{
    saga_settled_fn settled = saga->settled;
    if (settled == NULL)
        return;
    saga->settled = NULL;
    settled(saga->waiter, order, len);
}

/* The task's last reference is gone: a waiter not told yet learns that the
 * saga stopped before the order settled. */
static void on_task_ended(task_t *task)
{
    saga_t *saga = task->data;
    order_in_flight_add(-1);
    tell_waiter(saga, NULL, 0);
    free(saga);
}

/* --- moving the order on: orders.saga_move ------------------------------------ */

typedef struct move {
    saga_t *saga;
    char status[12];
    saga_step_t step;
} move_t;

static void on_moved(void *data, const PGresult *result)
{
    move_t *move = data;
    saga_t *saga = move->saga;
    const char *body = PQgetvalue(result, 0, 1);
    size_t len = (size_t)PQgetlength(result, 0, 1);
    if (strcmp(PQgetvalue(result, 0, 0), "t") != 0) {
        /* another driver moved it first (recovery took over a silent
         * saga): it goes on from there */
        context_info(saga->c, "saga step taken by another driver", LOG_STRING("step", step_names[saga->step]));
        return;
    }
    bool status_changed = strcmp(saga->status, move->status) != 0;
    copy_text(saga->status, sizeof(saga->status), move->status);
    saga->step = move->step;
    saga->attempts = 0;
    if (status_changed) {
        order_count_status(saga->status);
        if (strcmp(saga->status, "CONFIRMED") == 0)
            order_observe_amount(saga->total_cents);
        context_info(saga->c, "order status changed", LOG_STRING("status", saga->status),
                     LOG_STRING("reason", saga->reason));
        if (!saga->cancelling || strcmp(saga->status, "CANCELLED") == 0)
            tell_waiter(saga, body, len);
    }
    if (saga->step != STEP_DONE)
        take_step(saga);
}

/* Persists (status, step), with `reason` when the order fails, then takes
 * the next step. */
static void move_to(saga_t *saga, const char *status, saga_step_t step, const char *reason)
{
    move_t *move = context_alloc(saga->c, sizeof(*move));
    move->saga = saga;
    copy_text(move->status, sizeof(move->status), status);
    move->step = step;
    if (reason != NULL)
        copy_text(saga->reason, sizeof(saga->reason), reason);
    char *lease = context_alloc(saga->c, 16);
    snprintf(lease, 16, "%d", order_config.lease_s);
    char *traceparent = context_alloc(saga->c, TRACE_TRACEPARENT_LEN + 1);
    trace_format_traceparent(&saga->c->trace, traceparent);
    const char *params[] = {saga->id,
                            step_names[saga->step],
                            status,
                            step_names[step],
                            reason,
                            saga->reservation_id[0] != '\0' ? saga->reservation_id : NULL,
                            saga->payment_id[0] != '\0' ? saga->payment_id : NULL,
                            lease,
                            traceparent};
    step_query(saga->c, "saga_move", params, on_moved, move);
}

/* --- calling a peer ------------------------------------------------------------ */

static bool answered(const answer_t *answer, int code)
{
    return answer->response->status == HTTP_CLIENT_OK && answer->response->code == code;
}

/* No usable answer: nothing came, a timeout, a 5xx. */
static bool no_answer(const answer_t *answer)
{
    return answer->response->status != HTTP_CLIENT_OK || answer->response->code >= 500;
}

static const char *error_code(const answer_t *answer)
{
    return json_string_value(json_object_get(json_object_get(answer->doc, "error"), "code"));
}

static const char *answer_outcome(const answer_t *answer)
{
    if (no_answer(answer))
        return "error";
    return answer->response->code < 300 ? "ok" : "refused";
}

static void on_peer_answer(void *data, const http_response_t *response)
{
    saga_t *saga = data;
    answer_t answer = {response, NULL};
    if (response->status == HTTP_CLIENT_OK)
        answer.doc = json_loadb(response->body, response->body_len, 0, NULL);
    order_observe_step(step_names[saga->step], answer_outcome(&answer),
                       (double)(loop_now_ns() - saga->call_started_ns) / 1e9);
    if (no_answer(&answer))
        context_warn(saga->c, "saga step got no answer", LOG_STRING("step", step_names[saga->step]),
                     LOG_STRING("reason", response->status == HTTP_CLIENT_OK ? "server error" : response->error),
                     LOG_INT("code", response->code));
    if (!context_is_cancelled(saga->c) && !saga->c->failed)
        saga->on_answer(saga, &answer);
    json_decref(answer.doc);
}

/* Calls `path` of the inventory or payment service with `body` (a JSON
 * object whose reference is taken, or NULL), then `next` with the answer.
 * `key_prefix` + the order id is the call's Idempotency-Key. */
static void call_peer(saga_t *saga, const char *peer, const char *path, json_t *body, const char *key_prefix,
                      answer_fn next)
{
    const char *base = strcmp(peer, "inventory") == 0 ? order_config.inventory_url : order_config.payment_url;
    size_t url_len = strlen(base) + strlen(path) + 1;
    char *url = context_alloc(saga->c, url_len);
    snprintf(url, url_len, "%s%s", base, path);
    char *key = context_alloc(saga->c, ID_MAX + 16);
    snprintf(key, ID_MAX + 16, "%s%s", key_prefix, saga->id);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    http_call_t call = {
        .peer = peer,
        .method = "POST",
        .url = url,
        .body = text != NULL ? context_strdup(saga->c, text, SIZE_MAX) : "{}",
        .body_len = text != NULL ? strlen(text) : 2,
        .idempotency_key = key,
        .authorization = auth_peer_authorization(saga->c->worker),
        .timeout_ms = strcmp(peer, "payment") == 0 && saga->step == STEP_CHARGE ? order_config.payment_timeout_ms : 0,
    };
    free(text);
    saga->on_answer = next;
    saga->call_started_ns = loop_now_ns();
    step_http_raw(saga->c, &call, on_peer_answer, saga);
}

/* --- retrying and giving up -------------------------------------------------------- */

/* What undoes the forward step a saga gives up in. */
static saga_step_t compensation_of(saga_step_t step)
{
    switch (step) {
    case STEP_CHARGE:
    case STEP_VOID: return STEP_VOID; /* learn (and fence) the charge first */
    case STEP_COMMIT: return STEP_REFUND;
    default: return STEP_RELEASE;
    }
}

static void give_up(saga_t *saga, const char *reason)
{
    context_warn(saga->c, "saga gave up", LOG_STRING("step", step_names[saga->step]), LOG_STRING("reason", reason));
    move_to(saga, "FAILED", compensation_of(saga->step), reason);
}

static void on_retry(loop_timer_t *timer)
{
    saga_t *saga = timer->data;
    if (!saga->c->worker->stopping) /* else recovery takes it on after the lease */
        take_step(saga);
    context_release(saga->c);
}

/* The step got no usable answer: try it again later or, for a forward
 * step out of attempts or time, give up with `reason`. */
static void retry_later(saga_t *saga, const char *reason)
{
    saga->attempts++;
    if (is_pending(saga) && (saga->attempts >= order_config.step_attempts || wall_ms() >= saga->deadline_ms)) {
        give_up(saga, reason);
        return;
    }
    if (saga->c->worker->stopping)
        return;
    uint64_t ceiling = RETRY_BASE_MS << (saga->attempts < 6 ? saga->attempts : 6);
    if (ceiling > RETRY_MAX_MS)
        ceiling = RETRY_MAX_MS;
    uint64_t delay = ceiling / 2 + (uint64_t)(random_unit() * (double)(ceiling / 2)); /* jittered */
    context_hold(saga->c);
    loop_timer_start(&saga->retry, delay, on_retry, saga);
}

/* --- the steps ------------------------------------------------------------------------ */

static json_t *reservation_request(const saga_t *saga)
{
    return json_pack("{s:s,s:o}", "order_id", saga->id, "items", json_loads(saga->items, 0, NULL));
}

static void on_reserved(saga_t *saga, const answer_t *answer)
{
    if (answered(answer, 201) || answered(answer, 200)) {
        copy_text(saga->reservation_id, sizeof(saga->reservation_id),
                  json_string_value(json_object_get(answer->doc, "id")));
        const char *held = json_string_value(json_object_get(answer->doc, "status"));
        if (held != NULL && strcmp(held, "held") == 0)
            move_to(saga, "PENDING", STEP_CHARGE, NULL);
        else /* a recovered saga came back after the hold's time */
            move_to(saga, "FAILED", STEP_DONE, "reservation_expired");
    } else if (no_answer(answer)) {
        retry_later(saga, "inventory_unavailable");
    } else {
        const char *code = error_code(answer);
        bool known = code != NULL && (strcmp(code, "insufficient_stock") == 0 || strcmp(code, "unknown_sku") == 0);
        move_to(saga, "FAILED", STEP_DONE, known ? code : "inventory_rejected");
    }
}

static void reserve(saga_t *saga)
{
    call_peer(saga, "inventory", "/api/inventory/reservations", reservation_request(saga), "", on_reserved);
}

/* The id of the payment in an answer: the body, or the error's details. */
static void read_payment_id(saga_t *saga, const answer_t *answer)
{
    const json_t *payment = json_object_get(json_object_get(answer->doc, "error"), "payment");
    const char *id = json_string_value(json_object_get(payment != NULL ? payment : answer->doc, "id"));
    if (id != NULL)
        copy_text(saga->payment_id, sizeof(saga->payment_id), id);
}

static void on_charged(saga_t *saga, const answer_t *answer)
{
    const char *code = error_code(answer);
    read_payment_id(saga, answer);
    if (answered(answer, 201) || answered(answer, 200)) {
        move_to(saga, "PENDING", STEP_COMMIT, NULL);
    } else if (answered(answer, 402)) {
        const char *why = json_string_value(json_object_get(json_object_get(answer->doc, "error"), "reason"));
        bool timed_out = why != NULL && strcmp(why, "processor_timeout") == 0;
        move_to(saga, "FAILED", STEP_RELEASE, timed_out ? "timeout" : "payment_declined");
    } else if (code != NULL && strcmp(code, "request_in_progress") == 0) {
        retry_later(saga, "payment_unavailable"); /* the same key again: its answer comes */
    } else if (no_answer(answer) || (code != NULL && strcmp(code, "order_already_charged") == 0)) {
        /* charged or not, the saga does not know: the void step tells */
        move_to(saga, "PENDING", STEP_VOID, NULL);
    } else if (code != NULL && strcmp(code, "payment_voided") == 0) {
        move_to(saga, "FAILED", STEP_RELEASE, "payment_unavailable");
    } else {
        context_error(saga->c, "payment refused the charge", LOG_STRING("code", code),
                      LOG_INT("status", answer->response->code));
        move_to(saga, "FAILED", STEP_VOID, "payment_rejected");
    }
}

static void charge(saga_t *saga)
{
    json_t *body = json_pack("{s:s,s:I,s:s,s:s}", "order_id", saga->id, "amount_cents", (json_int_t)saga->total_cents,
                             "currency", saga->currency, "method", saga->method);
    if (saga->card != NULL)
        json_object_set_new(body, "card", json_string(saga->card));
    call_peer(saga, "payment", "/api/payments", body, "", on_charged);
}

static void on_voided(saga_t *saga, const answer_t *answer)
{
    const char *code = error_code(answer);
    read_payment_id(saga, answer);
    if (answered(answer, 200)) { /* no charge can happen any more */
        move_to(saga, "FAILED", STEP_RELEASE, is_pending(saga) ? "payment_unavailable" : NULL);
    } else if (code != NULL && strcmp(code, "payment_succeeded") == 0) {
        if (is_pending(saga))
            move_to(saga, "PENDING", STEP_COMMIT, NULL); /* it went through after all */
        else
            move_to(saga, "FAILED", STEP_REFUND, NULL);
    } else {
        retry_later(saga, "payment_unavailable"); /* in progress, or no answer */
    }
}

static void void_charge(saga_t *saga)
{
    call_peer(saga, "payment", "/api/payments/void", json_pack("{s:s}", "order_id", saga->id), "void-", on_voided);
}

static void on_committed(saga_t *saga, const answer_t *answer)
{
    if (answered(answer, 200))
        move_to(saga, "CONFIRMED", STEP_DONE, NULL);
    else if (no_answer(answer))
        retry_later(saga, "inventory_unavailable");
    else /* expired or released: the goods are gone, the money goes back */
        move_to(saga, "FAILED", STEP_REFUND, "reservation_expired");
}

static void commit(saga_t *saga)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/inventory/reservations/%s/commit", saga->reservation_id);
    call_peer(saga, "inventory", path, NULL, "commit-", on_committed);
}

static void on_refunded(saga_t *saga, const answer_t *answer)
{
    if (no_answer(answer)) {
        retry_later(saga, "payment_unavailable");
        return;
    }
    if (!answered(answer, 200)) /* not refundable: nothing was taken */
        context_warn(saga->c, "refund refused", LOG_STRING("code", error_code(answer)));
    if (saga->step == STEP_CANCEL_REFUND)
        move_to(saga, "CONFIRMED", STEP_CANCEL_RESTOCK, NULL);
    else
        move_to(saga, "FAILED", STEP_RELEASE, NULL);
}

static void refund(saga_t *saga)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/payments/%s/refund", saga->payment_id);
    call_peer(saga, "payment", path, json_object(), saga->step == STEP_CANCEL_REFUND ? "cancel-" : "refund-",
              on_refunded);
}

static void on_released(saga_t *saga, const answer_t *answer)
{
    if (no_answer(answer)) {
        retry_later(saga, "inventory_unavailable");
        return;
    }
    if (!answered(answer, 200) && !answered(answer, 404))
        context_error(saga->c, "release refused", LOG_STRING("code", error_code(answer)));
    move_to(saga, "FAILED", STEP_DONE, NULL);
}

static void release_hold(saga_t *saga);

/* The reservation's id was never learnt (the reserve call got no answer):
 * reserving again, under the same order id, returns it if it exists. */
static void on_hold_found(saga_t *saga, const answer_t *answer)
{
    if (no_answer(answer)) {
        retry_later(saga, "inventory_unavailable");
    } else if (answered(answer, 201) || answered(answer, 200)) {
        copy_text(saga->reservation_id, sizeof(saga->reservation_id),
                  json_string_value(json_object_get(answer->doc, "id")));
        release_hold(saga);
    } else { /* nothing could be held: nothing to give back */
        move_to(saga, "FAILED", STEP_DONE, NULL);
    }
}

static void release_hold(saga_t *saga)
{
    if (saga->reservation_id[0] == '\0') {
        call_peer(saga, "inventory", "/api/inventory/reservations", reservation_request(saga), "", on_hold_found);
        return;
    }
    char path[96];
    snprintf(path, sizeof(path), "/api/inventory/reservations/%s/release", saga->reservation_id);
    call_peer(saga, "inventory", path, NULL, "release-", on_released);
}

static void on_restocked(saga_t *saga, const answer_t *answer)
{
    if (no_answer(answer)) {
        retry_later(saga, "inventory_unavailable");
        return;
    }
    if (!answered(answer, 200))
        context_error(saga->c, "restock refused", LOG_STRING("code", error_code(answer)));
    move_to(saga, "CANCELLED", STEP_DONE, NULL);
}

static void restock(saga_t *saga)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/inventory/reservations/%s/restock", saga->reservation_id);
    call_peer(saga, "inventory", path, NULL, "restock-", on_restocked);
}

static void take_step(saga_t *saga)
{
    if (is_pending(saga) && wall_ms() >= saga->deadline_ms) {
        give_up(saga, "timeout");
        return;
    }
    switch (saga->step) {
    case STEP_RESERVE: reserve(saga); break;
    case STEP_CHARGE: charge(saga); break;
    case STEP_VOID: void_charge(saga); break;
    case STEP_COMMIT: commit(saga); break;
    case STEP_REFUND:
    case STEP_CANCEL_REFUND: refund(saga); break;
    case STEP_RELEASE: release_hold(saga); break;
    case STEP_CANCEL_RESTOCK: restock(saga); break;
    case STEP_DONE: break;
    }
}

/* --- starting ----------------------------------------------------------------------------- */

static int parse_step(const char *name, saga_step_t *out)
{
    for (size_t i = 0; name != NULL && i < sizeof(step_names) / sizeof(step_names[0]); i++) {
        if (strcmp(step_names[i], name) == 0) {
            *out = (saga_step_t)i;
            return 0;
        }
    }
    return -1;
}

/* Fills `saga` from orders.saga_json. Returns 0, or -1 when the document
 * is not one (logged by the caller). */
static int load_saga(saga_t *saga, const json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *status = json_string_value(json_object_get(doc, "status"));
    const json_t *lines = json_object_get(doc, "items");
    if (id == NULL || !uuid_is_valid(id) || status == NULL ||
        parse_step(json_string_value(json_object_get(doc, "step")), &saga->step) != 0 || !json_is_array(lines))
        return -1;
    copy_text(saga->id, sizeof(saga->id), id);
    copy_text(saga->status, sizeof(saga->status), status);
    copy_text(saga->reason, sizeof(saga->reason), json_string_value(json_object_get(doc, "reason")));
    copy_text(saga->reservation_id, sizeof(saga->reservation_id),
              json_string_value(json_object_get(doc, "reservation_id")));
    copy_text(saga->payment_id, sizeof(saga->payment_id), json_string_value(json_object_get(doc, "payment_id")));
    copy_text(saga->currency, sizeof(saga->currency), json_string_value(json_object_get(doc, "currency")));
    copy_text(saga->method, sizeof(saga->method), json_string_value(json_object_get(doc, "method")));
    saga->total_cents = json_integer_value(json_object_get(doc, "total_cents"));
    saga->deadline_ms = json_integer_value(json_object_get(doc, "deadline_ms"));
    const char *card = json_string_value(json_object_get(doc, "card"));
    saga->card = card != NULL ? context_strdup(saga->c, card, SIZE_MAX) : NULL;
    json_t *items = json_array();
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const json_t *line = json_array_get(lines, i);
        json_array_append_new(
            items, json_pack("{s:O,s:O}", "sku", json_object_get(line, "sku"), "qty", json_object_get(line, "qty")));
    }
    char *text = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    saga->items = context_strdup(saga->c, text, SIZE_MAX);
    free(text);
    return 0;
}

void saga_run(worker_t *worker, const char *saga_json, size_t len, const trace_context_t *parent,
              saga_settled_fn settled, void *waiter)
{
    json_t *doc = json_loadb(saga_json, len, 0, NULL);
    trace_context_t order_trace;
    if (parent == NULL) { /* recovery: go on in the trace of the request that placed the order */
        const char *traceparent = json_string_value(json_object_get(doc, "traceparent"));
        if (traceparent != NULL && trace_start_server_span(&order_trace, traceparent, strlen(traceparent)))
            parent = &order_trace;
    }
    saga_t *saga = calloc(1, sizeof(*saga));
    if (saga == NULL)
        abort();
    saga->task = task_start(worker, parent, "saga", on_task_ended, saga);
    saga->c = &saga->task->super;
    saga->settled = settled;
    saga->waiter = waiter;
    order_in_flight_add(1);
    if (doc == NULL || load_saga(saga, doc) != 0) {
        context_error(saga->c, "saga state unreadable", LOG_STRING_N("state", saga_json, len < 200 ? len : 200));
    } else {
        context_add_field(saga->c, "order_id", saga->id);
        saga->cancelling = saga->step == STEP_CANCEL_REFUND || saga->step == STEP_CANCEL_RESTOCK;
        take_step(saga);
    }
    json_decref(doc);
    context_release(saga->c); /* the saga ends with its last step */
}
