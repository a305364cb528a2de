/* voids.c - POST /api/payments/void {"order_id"}: fence an order off.
 *
 * The order service calls it when it gave up on a charge whose outcome it
 * could not learn (the charge timed out, the connection broke). Afterwards
 * no charge for the order can happen any more, or the answer says that one
 * already did:
 *
 *   no payment yet        200: a `voided` payment (amount 0) takes its
 *                         place; every later charge gets 409 payment_voided
 *   processing            409 payment_in_progress: ask again later
 *   succeeded             409 payment_succeeded, with the payment (refund it)
 *   declined, failed,     200 with that payment: nothing to fence
 *   voided
 *
 * Idempotent: asking again gives the same answer. authenticate ->
 * read_void -> void_charge -> answer_void.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "payment.h"

typedef struct void_request {
    http_request_t *r;
    char order_id[DOMAIN_ORDER_ID_MAX + 1];
} void_request_t;

static void answer_void(void *data, const PGresult *result)
{
    void_request_t *req = data;
    http_request_t *r = req->r;
    const char *outcome = PQgetvalue(result, 0, 0);
    const char *body = PQgetvalue(result, 0, 1);
    size_t len = (size_t)PQgetlength(result, 0, 1);
    if (strcmp(outcome, "voided") == 0 || strcmp(outcome, "settled") == 0) {
        if (strcmp(outcome, "voided") == 0)
            context_info(&r->super, "order voided", LOG_STRING("order_id", req->order_id));
        http_respond_json_text(r, 200, body, len);
        return;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *details = json_pack("{s:o}", "payment", doc != NULL ? doc : json_null());
    if (strcmp(outcome, "in_progress") == 0)
        http_respond_error_details(r, 409, "payment_in_progress",
                                   "the order's charge is still being processed; ask again later", details);
    else /* succeeded */
        http_respond_error_details(r, 409, "payment_succeeded", "the order was charged: refund it instead", details);
}

/* Validates {order_id} into req->order_id. Returns 0, or -1 with `error`
 * naming the field. */
static int read_void(const json_t *body, void_request_t *req, json_field_error_t *error)
{
    static const char *const fields[] = {"order_id", NULL};
    const char *order_id;
    if (json_reject_unknown_fields(body, fields, error) != 0 ||
        json_read_string(body, "order_id", true, 1, DOMAIN_ORDER_ID_MAX, &order_id, error) != 0)
        return -1;
    if (!domain_valid_order_id(order_id))
        return json_fail(error, "order_id", "order_id must be 1 to 64 characters of letters, digits, '_' and '-'");
    snprintf(req->order_id, sizeof(req->order_id), "%s", order_id);
    return 0;
}

static void void_order(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    void_request_t *req = context_alloc(&r->super, sizeof(*req));
    req->r = r;
    json_field_error_t error;
    int read = read_void(body, req, &error);
    json_decref(body);
    if (read != 0) {
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {req->order_id};
    step_query(&r->super, "void_create", params, answer_void, req);
}

void voids_handle_create(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, void_order);
}
