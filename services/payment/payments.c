/* payments.c - reading payments:
 *
 *   GET /api/payments/{id}            one payment
 *   GET /api/payments?order_id=X      the order's payments: {"items": [...]}
 *
 * Internal endpoints like the others (the order service's token, or an
 * admin's): authenticate -> load -> answer.
 */
#include "auth.h"
#include "payment.h"
#include "uuid.h"

const char *payments_id_param(http_request_t *r)
{
    const char *id = http_path_param(r, "id");
    if (id == NULL || !uuid_is_valid(id)) {
        json_field_error_t error;
        json_fail(&error, "id", "id must be a payment UUID");
        http_respond_field_error(r, &error);
        return NULL;
    }
    return id;
}

static void answer_payment(void *data, const PGresult *result)
{
    http_request_t *r = data;
    if (PQntuples(result) == 0) {
        http_respond_error(r, 404, "not_found", "no payment with id %s", http_path_param(r, "id"));
        return;
    }
    http_respond_json_text(r, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void load_payment(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    const char *id = payments_id_param(r);
    if (id == NULL)
        return;
    const char *params[] = {id};
    step_query(&r->super, "payment_get", params, answer_payment, r);
}

void payments_handle_get(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, load_payment);
}

static void answer_list(void *data, const PGresult *result)
{
    http_respond_json_text(data, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void load_order_payments(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    const char *order_id = http_query_param(r, "order_id");
    if (order_id == NULL || !domain_valid_order_id(order_id)) {
        json_field_error_t error;
        json_fail(&error, "order_id", "order_id is required: 1 to 64 characters of letters, digits, '_' and '-'");
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {order_id};
    step_query(&r->super, "payment_list", params, answer_list, r);
}

void payments_handle_list(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, load_order_payments);
}
