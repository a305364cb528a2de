/* refunds.c - POST /api/payments/{id}/refund {"amount_cents": N}: give
 * money back, never more than was charged.
 *
 *   authenticate -> read_refund -> refund (once more after a race on the
 *   key) -> answer_refund
 *
 * amount_cents is optional: without it the refund is of all that remains,
 * and once nothing remains such a request answers the payment as it is
 * (asking twice is harmless). Partial refunds add up to the amount charged
 * at most: payments.refund (migrations/003) locks the payment's row, so
 * concurrent refunds of one payment take turns and each sees the total of
 * those before it. An Idempotency-Key is optional too; with one, the
 * answer is recorded and a retry gets it again instead of a second refund.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "payment.h"

#define MAX_REFUND_CENTS 100000000

typedef struct refund_request {
    http_request_t *r;
    char amount[24]; /* "" for all that remains */
    char fingerprint[IDEMPOTENCY_FINGERPRINT_LEN + 1];
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    const char *params[5]; /* payment id, amount, key, fingerprint, traceparent: kept for one retry */
    bool retried;
} refund_request_t;

static void refund(refund_request_t *req);

/* Answers `status` with an error whose details are `body`'s members. */
static void respond_with_details(http_request_t *r, int status, const char *code, const char *message, const char *body,
                                 size_t len)
{
    json_t *details = json_loadb(body, len, 0, NULL);
    http_respond_error_details(r, status, code, message, details != NULL ? details : json_object());
}

static void count_refund(const char *body, size_t len)
{
    json_t *payment = json_loadb(body, len, 0, NULL);
    const char *method = json_string_value(json_object_get(payment, "method"));
    payment_count("refunded", method != NULL ? method : "unknown");
    json_decref(payment);
}

static void answer_refund(void *data, const PGresult *result)
{
    refund_request_t *req = data;
    http_request_t *r = req->r;
    const char *outcome = PQgetvalue(result, 0, 0);
    const char *body = PQgetvalue(result, 0, 2);
    size_t len = (size_t)PQgetlength(result, 0, 2);
    if (strcmp(outcome, "refunded") == 0) {
        count_refund(body, len);
        context_info(&r->super, "payment refunded", LOG_STRING("payment_id", req->params[0]),
                     LOG_STRING("amount_cents", req->amount[0] != '\0' ? req->amount : "rest"));
        http_respond_json_text(r, 200, body, len);
    } else if (strcmp(outcome, "nothing_left") == 0) {
        http_respond_json_text(r, 200, body, len);
    } else if (strcmp(outcome, "replay") == 0) {
        http_respond_json_text(r, (int)strtol(PQgetvalue(result, 0, 1), NULL, 10), body, len);
    } else if (strcmp(outcome, "key_reused") == 0) {
        http_respond_error(r, 422, "idempotency_key_reused",
                           "this Idempotency-Key was first used with a different request");
    } else if (strcmp(outcome, "not_found") == 0) {
        http_respond_error(r, 404, "not_found", "no payment with id %s", req->params[0]);
    } else if (strcmp(outcome, "not_refundable") == 0) {
        json_t *payment = json_loadb(body, len, 0, NULL);
        http_respond_error_details(r, 409, "payment_not_refundable", "only a succeeded payment can be refunded",
                                   json_pack("{s:o}", "payment", payment != NULL ? payment : json_null()));
    } else { /* exceeds */
        respond_with_details(r, 422, "refund_exceeds_charge", "the refund is more than remains of the charge", body,
                             len);
    }
}

/* Another refund with the same key, of another payment, committed first
 * (the key's primary key): asking again finds its record. */
static bool retry_after_race(void *data, const pg_reply_t *reply)
{
    refund_request_t *req = data;
    if (strcmp(reply->sqlstate, "23505") != 0 || req->retried)
        return false;
    req->retried = true;
    refund(req);
    return true;
}

static void refund(refund_request_t *req)
{
    step_query_catch(&req->r->super, "refund_create", req->params, answer_refund, retry_after_race, req);
}

/* Validates {"amount_cents"} (optional) into req->amount. An empty body is
 * {}: a refund of all that remains. Returns 0, or -1 after answering 400. */
static int read_refund(http_request_t *r, refund_request_t *req)
{
    json_t *body = r->req->entity.len == 0 ? json_object() : http_read_json_body(r);
    if (body == NULL)
        return -1;
    static const char *const fields[] = {"amount_cents", NULL};
    json_field_error_t error;
    long long amount;
    bool present = false;
    int read = json_reject_unknown_fields(body, fields, &error);
    if (read == 0)
        read = json_read_int(body, "amount_cents", false, 1, MAX_REFUND_CENTS, &amount, &present, &error);
    json_decref(body);
    if (read != 0) {
        http_respond_field_error(r, &error);
        return -1;
    }
    if (present)
        snprintf(req->amount, sizeof(req->amount), "%lld", amount);
    return 0;
}

static void refund_payment(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    const char *id = payments_id_param(r);
    if (id == NULL)
        return;
    refund_request_t *req = context_alloc(&r->super, sizeof(*req));
    req->r = r;
    if (read_refund(r, req) != 0)
        return;
    const char *key;
    if (!idempotency_key_header(r, NULL, &key))
        return;
    if (key != NULL) {
        json_t *canonical =
            json_pack("{s:s,s:s?}", "payment_id", id, "amount_cents", req->amount[0] != '\0' ? req->amount : NULL);
        digest_json_fingerprint(r->server->jwt_secret, canonical, req->fingerprint);
        json_decref(canonical);
    }
    trace_format_traceparent(&r->super.trace, req->traceparent);
    req->params[0] = id;
    req->params[1] = req->amount[0] != '\0' ? req->amount : NULL;
    req->params[2] = key;
    req->params[3] = key != NULL ? req->fingerprint : NULL;
    req->params[4] = req->traceparent;
    refund(req);
}

void refunds_handle_create(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, refund_payment);
}
