/* charges.c - POST /api/payments: charge an order, once.
 *
 *   request  authenticate -> read_charge -> start_charge, and wait for it:
 *   task     begin_charge -> ask_processor -> finish_charge -> tell_waiter
 *   request  answer; or, when the key's first request is still charging,
 *            wait_for_key: poll its answer until it has one (or 409)
 *
 * Why a task: once the processor has been asked, the charge must be
 * finished and recorded whether or not the client is still waiting; it
 * will retry with the same key and must then learn what really happened.
 * So the charge runs as a task (task.h), a unit of work of its own that
 * the request waits for: a client that leaves cancels the request, never
 * the charge. A process that dies mid-charge leaves the payment
 * `processing`; recovery.c fails it once it is clearly abandoned.
 *
 * One charge per order and one answer per key are decided in PostgreSQL:
 * payments.begin_charge (migrations/002) writes the key and a `processing`
 * payment in one transaction, or says why this request must not charge
 * (the key's answer exists, or its first request is under way, or the
 * order has a payment already). payments.finish_charge then records the
 * outcome, the key's answer and the event together.
 *
 * Card numbers: checked (Luhn), handed to the processor, and then wiped
 * from the task's memory; only the last four digits are stored, and none
 * is ever logged. The key's fingerprint of the request is keyed
 * (idempotency.c), so it does not give the number away either.
 *
 * The fault payment.unreachable holds every charge unanswered (see the
 * end of this file); payment.failure_rate is processor.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "payment.h"
#include "task.h"
#include "uuid.h"

#define MAX_AMOUNT_CENTS 100000000 /* $1,000,000.00 */
#define KEY_POLL_MS      50        /* how often a duplicate looks for the first request's answer */
#define HOLD_CHECK_MS    100       /* how often a held request looks for its client and a shutdown */

/* What was asked, as the task keeps it. */
typedef struct charge_terms {
    char order_id[DOMAIN_ORDER_ID_MAX + 1];
    long long amount_cents;
    char currency[4];
    char method[8];                 /* card or wallet */
    char card[DOMAIN_CARD_MAX + 1]; /* "" for a wallet; wiped once the processor has it */
    char card_last4[5];
    char key[IDEMPOTENCY_KEY_MAX + 1];
    char fingerprint[IDEMPOTENCY_FINGERPRINT_LEN + 1];
} charge_terms_t;

/* What the task tells the waiting request. */
typedef enum charge_outcome {
    CHARGE_ANSWERED,        /* a final answer (status, body): this charge's, or the key's recorded one */
    CHARGE_IN_PROGRESS,     /* the key's first request is still charging */
    CHARGE_KEY_REUSED,      /* the key came with another request first */
    CHARGE_ALREADY_CHARGED, /* the order has a payment under another key (body) */
    CHARGE_VOIDED,          /* the order was fenced off (body: the void) */
} charge_outcome_t;

/* The request: waits for the task (holding itself), then answers. */
typedef struct charge_request {
    http_request_t *r;
    const char *key;
    uint64_t wait_until_ms; /* waiting for the key's first request: when to give up */
    loop_timer_t poll_timer;
} charge_request_t;

/* The task: one charge from beginning to end. task->data is the waiting
 * request, NULL once it has been told. */
typedef struct charge {
    task_t *task;
    charge_terms_t terms;
    char payment_id[UUID_TEXT_LEN + 1];
    const char *status; /* succeeded, declined or failed, once the processor has answered */
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
} charge_t;

static void answer(charge_request_t *req, charge_outcome_t outcome, int status, const char *body, size_t len);

/* --- the task: begin_charge -> ask_processor -> finish_charge ------------------- */

static void tell_waiter(charge_t *charge, charge_outcome_t outcome, int status, const char *body, size_t len)
{
    charge_request_t *req = charge->task->data;
    if (req == NULL)
        return;
    charge->task->data = NULL;
    answer(req, outcome, status, body, len);
}

/* The task's last reference is gone. A request still waiting learns that
 * the charge stopped on a failure (already logged: PostgreSQL down, ...). */
static void on_task_ended(task_t *task)
{
    charge_request_t *req = task->data;
    if (req == NULL)
        return;
    task->data = NULL;
    http_respond_error(req->r, task->fail_status != 0 ? task->fail_status : 500,
                       task->fail_code[0] != '\0' ? task->fail_code : "internal", "the charge could not be completed");
    context_release(&req->r->super);
}

static void on_finished(void *data, const PGresult *result)
{
    charge_t *charge = data;
    const charge_terms_t *terms = &charge->terms;
    if (strcmp(PQgetvalue(result, 0, 2), "t") == 0) {
        payment_count(charge->status, terms->method);
        if (strcmp(charge->status, "succeeded") == 0)
            payment_observe_amount(terms->amount_cents);
        /* the task's log fields name the order, the caller and the payment */
        context_info(&charge->task->super, "charge ended", LOG_STRING("status", charge->status),
                     LOG_INT("amount_cents", terms->amount_cents), LOG_STRING("method", terms->method));
    } else {
        context_warn(&charge->task->super, "charge already failed by the recovery");
    }
    tell_waiter(charge, CHARGE_ANSWERED, (int)strtol(PQgetvalue(result, 0, 0), NULL, 10), PQgetvalue(result, 0, 1),
                (size_t)PQgetlength(result, 0, 1));
}

static void finish_charge(void *data, const processor_result_t *result)
{
    charge_t *charge = data;
    charge->status = result->verdict == PROCESSOR_APPROVED   ? "succeeded"
                     : result->verdict == PROCESSOR_DECLINED ? "declined"
                                                             : "failed";
    const char *params[] = {charge->payment_id, charge->status, result->reason, charge->traceparent};
    step_query(&charge->task->super, "charge_finish", params, on_finished, charge);
}

static void ask_processor(charge_t *charge)
{
    charge_terms_t *terms = &charge->terms;
    bool card = strcmp(terms->method, "card") == 0;
    processor_charge(&charge->task->super, card ? terms->card : NULL, terms->amount_cents, finish_charge, charge);
    explicit_bzero(terms->card, sizeof(terms->card)); /* the processor has it; nobody else needs it */
}

static charge_outcome_t outcome_named(const char *outcome)
{
    if (strcmp(outcome, "in_progress") == 0)
        return CHARGE_IN_PROGRESS;
    if (strcmp(outcome, "key_reused") == 0)
        return CHARGE_KEY_REUSED;
    if (strcmp(outcome, "already_charged") == 0)
        return CHARGE_ALREADY_CHARGED;
    if (strcmp(outcome, "voided") == 0)
        return CHARGE_VOIDED;
    return CHARGE_ANSWERED; /* replay */
}

static void on_begun(void *data, const PGresult *result)
{
    charge_t *charge = data;
    const char *outcome = PQgetvalue(result, 0, 0);
    if (strcmp(outcome, "started") == 0) {
        snprintf(charge->payment_id, sizeof(charge->payment_id), "%s", PQgetvalue(result, 0, 3));
        context_add_field(&charge->task->super, "payment_id", charge->payment_id);
        ask_processor(charge);
        return;
    }
    explicit_bzero(charge->terms.card, sizeof(charge->terms.card)); /* no charge: nobody needs it */
    int status = PQgetisnull(result, 0, 1) ? 0 : (int)strtol(PQgetvalue(result, 0, 1), NULL, 10);
    tell_waiter(charge, outcome_named(outcome), status, PQgetvalue(result, 0, 2), (size_t)PQgetlength(result, 0, 2));
}

static void begin_charge(charge_t *charge)
{
    const charge_terms_t *terms = &charge->terms;
    char amount[24];
    snprintf(amount, sizeof(amount), "%lld", terms->amount_cents);
    const char *params[] = {terms->key,
                            terms->fingerprint,
                            terms->order_id,
                            amount,
                            terms->currency,
                            terms->method,
                            terms->card_last4[0] != '\0' ? terms->card_last4 : NULL};
    step_query(&charge->task->super, "charge_begin", params, on_begun, charge);
}

/* Starts the charge as a task, a child span of the request's trace; the
 * request holds itself until the task tells it how the charge went. */
static void start_charge(charge_request_t *req, const charge_terms_t *terms, const char *caller)
{
    http_request_t *r = req->r;
    task_t *task = task_start(r->super.worker, &r->super.trace, "charge", on_task_ended, req);
    charge_t *charge = context_alloc(&task->super, sizeof(*charge));
    charge->task = task;
    charge->terms = *terms;
    trace_format_traceparent(&task->super.trace, charge->traceparent);
    context_add_field(&task->super, "order_id", terms->order_id);
    context_add_field(&task->super, "caller", caller);
    context_hold(&r->super);
    begin_charge(charge);
    context_release(&task->super); /* its steps hold it now */
}

/* --- the request: answer, or wait for the key's first request --------------- */

static void poll_key(charge_request_t *req);

static void on_poll_timer(loop_timer_t *timer)
{
    charge_request_t *req = timer->data;
    if (!context_is_cancelled(&req->r->super))
        poll_key(req);
    context_release(&req->r->super);
}

static void wait_a_little(charge_request_t *req)
{
    context_hold(&req->r->super);
    loop_timer_start(&req->poll_timer, KEY_POLL_MS, on_poll_timer, req);
}

static void on_key_polled(void *data, const PGresult *result)
{
    charge_request_t *req = data;
    http_request_t *r = req->r;
    if (PQntuples(result) == 1 && !PQgetisnull(result, 0, 0)) {
        http_respond_json_text(r, (int)strtol(PQgetvalue(result, 0, 0), NULL, 10), PQgetvalue(result, 0, 1),
                               (size_t)PQgetlength(result, 0, 1));
    } else if (loop_now_ms() >= req->wait_until_ms) {
        http_add_header(r, "retry-after", "1");
        http_respond_error(r, 409, "request_in_progress",
                           "a request with this Idempotency-Key is still being processed; retry later");
    } else {
        wait_a_little(req);
    }
}

static void poll_key(charge_request_t *req)
{
    const char *params[] = {req->key};
    step_query(&req->r->super, "charge_key_answer", params, on_key_polled, req);
}

/* A duplicate must not charge again: it waits for the first request's
 * answer, at most as long as that one can take (the processor's timeout)
 * and a second more. */
static void wait_for_key(charge_request_t *req)
{
    req->wait_until_ms = loop_now_ms() + payment_config.processor_timeout_ms + 1000;
    wait_a_little(req);
}

/* Answers `status` with {"error": ..., "payment": <the payment>}. */
static void respond_with_payment(http_request_t *r, int status, const char *code, const char *message,
                                 const char *payment, size_t len)
{
    json_t *doc = json_loadb(payment, len, 0, NULL);
    http_respond_error_details(r, status, code, message,
                               json_pack("{s:o}", "payment", doc != NULL ? doc : json_null()));
}

/* Answers as the task said, then lets go of the request's hold. */
static void answer(charge_request_t *req, charge_outcome_t outcome, int status, const char *body, size_t len)
{
    http_request_t *r = req->r;
    switch (outcome) {
    case CHARGE_ANSWERED: http_respond_json_text(r, status, body, len); break;
    case CHARGE_IN_PROGRESS: wait_for_key(req); break;
    case CHARGE_KEY_REUSED:
        http_respond_error(r, 422, "idempotency_key_reused",
                           "this Idempotency-Key was first used with a different request");
        break;
    case CHARGE_ALREADY_CHARGED:
        respond_with_payment(r, 409, "order_already_charged", "the order already has a payment", body, len);
        break;
    case CHARGE_VOIDED:
        respond_with_payment(r, 409, "payment_voided", "the order's payment was voided: it cannot be charged", body,
                             len);
        break;
    }
    context_release(&r->super);
}

/* --- reading the request ---------------------------------------------------------- */

/* Validates {order_id, amount_cents, currency, method, card} into `terms`.
 * Returns 0, or -1 with `error` naming the field. A card is required for
 * method card and refused for a wallet (a client that sends one has mixed
 * up its payment methods). No message quotes the card. */
static int read_charge(const json_t *body, charge_terms_t *terms, json_field_error_t *error)
{
    static const char *const fields[] = {"order_id", "amount_cents", "currency", "method", "card", NULL};
    const char *order_id, *currency, *method, *card;
    if (json_reject_unknown_fields(body, fields, error) != 0 ||
        json_read_string(body, "order_id", true, 1, DOMAIN_ORDER_ID_MAX, &order_id, error) != 0)
        return -1;
    if (!domain_valid_order_id(order_id))
        return json_fail(error, "order_id", "order_id must be 1 to 64 characters of letters, digits, '_' and '-'");
    if (json_read_int(body, "amount_cents", true, 1, MAX_AMOUNT_CENTS, &terms->amount_cents, NULL, error) != 0 ||
        json_read_string(body, "currency", true, 3, 3, &currency, error) != 0)
        return -1;
    if (!domain_valid_currency(currency))
        return json_fail(error, "currency", "currency must be three upper-case letters (ISO 4217), such as USD");
    if (json_read_string(body, "method", true, 1, 16, &method, error) != 0)
        return -1;
    bool is_card = strcmp(method, "card") == 0;
    if (!is_card && strcmp(method, "wallet") != 0)
        return json_fail(error, "method", "method must be card or wallet");
    if (json_read_string(body, "card", false, 0, 64, &card, error) != 0)
        return -1;
    if (is_card && card == NULL)
        return json_fail(error, "card", "card is required for method card");
    if (!is_card && card != NULL)
        return json_fail(error, "card", "card must not be sent with method wallet");
    if (is_card && !domain_valid_card_number(card))
        return json_fail(error, "card", "card must be 12 to 19 digits that pass the Luhn check");

    snprintf(terms->order_id, sizeof(terms->order_id), "%s", order_id);
    snprintf(terms->currency, sizeof(terms->currency), "%s", currency);
    snprintf(terms->method, sizeof(terms->method), "%s", method);
    if (is_card) {
        snprintf(terms->card, sizeof(terms->card), "%s", card);
        snprintf(terms->card_last4, sizeof(terms->card_last4), "%s", card + strlen(card) - 4);
    }
    return 0;
}

/* The request reduced to what makes it that request, for the key's
 * fingerprint. */
static void fingerprint_charge(const http_request_t *r, charge_terms_t *terms)
{
    json_t *canonical = json_pack("{s:s,s:I,s:s,s:s,s:s?}", "order_id", terms->order_id, "amount_cents",
                                  (json_int_t)terms->amount_cents, "currency", terms->currency, "method", terms->method,
                                  "card", terms->card[0] != '\0' ? terms->card : NULL);
    digest_json_fingerprint(r->server->jwt_secret, canonical, terms->fingerprint);
    json_decref(canonical);
}

static void charge_order(http_request_t *r, const jwt_claims_t *who)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    charge_terms_t terms = {0};
    json_field_error_t error;
    int read = read_charge(body, &terms, &error);
    json_decref(body);
    if (read != 0) {
        http_respond_field_error(r, &error);
        return;
    }
    const char *key;
    if (!idempotency_key_header(r, terms.order_id, &key)) {
        explicit_bzero(&terms, sizeof(terms));
        return;
    }
    snprintf(terms.key, sizeof(terms.key), "%s", key);
    fingerprint_charge(r, &terms);

    charge_request_t *req = context_alloc(&r->super, sizeof(*req));
    req->r = r;
    req->key = context_strdup(&r->super, key, SIZE_MAX); /* the default lives in `terms` */
    start_charge(req, &terms, who->sub);
    explicit_bzero(&terms, sizeof(terms));
}

/* --- the payment.unreachable fault ---------------------------------------------- */

/* As if the service sat behind a network partition: a charge is held and
 * never answered, and the client waits until it gives up. Nothing is read
 * or written. Every HOLD_CHECK_MS the held request looks whether the
 * client has left (h2o would not notice before writing an answer: then
 * the request ends with 499, which only the access log sees) or the
 * service is shutting down (then it gets a 503, so that the shutdown's
 * drain, which waits for every request to end, is not held up by it). */
typedef struct held_request {
    http_request_t *r;
    loop_timer_t timer;
} held_request_t;

static void on_hold_check(loop_timer_t *timer)
{
    held_request_t *held = timer->data;
    http_request_t *r = held->r;
    if (context_is_cancelled(&r->super)) {
        context_release(&r->super); /* h2o disposed of it */
    } else if (http_client_has_left(r)) {
        http_respond_error(r, HTTP_CLIENT_CLOSED_REQUEST, "client_closed_request", "the client left");
        context_release(&r->super);
    } else if (r->super.worker->stopping) {
        http_respond_error(r, 503, "shutting_down", "the payment service is shutting down");
        context_release(&r->super);
    } else {
        loop_timer_start(&held->timer, HOLD_CHECK_MS, on_hold_check, held);
    }
}

static void hold_unanswered(http_request_t *r)
{
    held_request_t *held = context_alloc(&r->super, sizeof(*held));
    held->r = r;
    context_warn(&r->super, "charge held unanswered (fault payment.unreachable)");
    context_hold(&r->super);
    loop_timer_start(&held->timer, HOLD_CHECK_MS, on_hold_check, held);
}

void charges_handle_create(http_request_t *r)
{
    if (context_fault(&r->super, "unreachable") != 0) {
        hold_unanswered(r);
        return;
    }
    auth_require(r, JWT_ROLE_SERVICE, charge_order);
}
