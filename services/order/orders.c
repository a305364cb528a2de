/* orders.c - the order endpoints:
 *
 *   POST /api/orders              place an order (customer; Idempotency-Key)
 *   GET  /api/orders/{id}         one order with its history (owner or admin)
 *   GET  /api/orders              own orders, newest first (admin: everyone's)
 *   POST /api/orders/{id}/cancel  CONFIRMED -> CANCELLED (owner or admin)
 *
 * Placing an order: authenticate -> validate -> price (inventory's
 * products, never the client's prices) -> create (PENDING, once per key)
 * -> run the saga (saga.c) and wait for it to settle -> answer. Nothing is
 * written before the input is known to be good and every SKU to exist.
 * The saga runs as a task of its own: a client that leaves early does not
 * stop it, and one that waits longer than ORDER_RESPONSE_TIMEOUT_MS gets
 * 202 with the PENDING order, to read again later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "domain.h"
#include "log.h"
#include "order.h"
#include "uuid.h"

#define KEY_MAX        128
#define DEFAULT_PAGE   20
#define MAX_PAGE       100
#define REPLAY_POLL_MS 100

/* A request waiting for an order to settle: a new order's saga, a cancel,
 * or a replayed key whose order is still PENDING elsewhere. */
typedef struct order_wait {
    http_request_t *r;
    char order_id[40];
    loop_timer_t timer;   /* the response timeout, or the replay's next poll */
    uint64_t deadline_ms; /* loop time by which the request is answered */
    bool answered;
} order_wait_t;

/* POST /api/orders, between its steps. */
typedef struct placement {
    http_request_t *r;
    const jwt_claims_t *who;
    const char *key;
    char request_hash[DIGEST_HEX_LEN + 1];
    const char *lines;  /* [{sku, qty}] as validated, sorted by SKU (JSON) */
    const char *method; /* card or wallet */
    const char *card;   /* NULL for a wallet */
    char id[40];
} placement_t;

/* --- answering with an order ----------------------------------------------------- */

typedef struct failure_status {
    const char *reason;
    int status;
    const char *message;
} failure_status_t;

static const failure_status_t failure_statuses[] = {
    {"insufficient_stock", 409, "not enough stock for the order"},
    {"unknown_sku", 422, "the order names a product that does not exist"},
    {"payment_declined", 402, "the payment was declined"},
    {"payment_unavailable", 503, "the payment service could not charge the order"},
    {"inventory_unavailable", 503, "the inventory service could not reserve the order's stock"},
    {"timeout", 504, "the order could not be completed in time"},
    {"reservation_expired", 409, "the order's stock reservation expired before it was paid"},
    {"payment_rejected", 502, "the payment service refused the charge request"},
    {"inventory_rejected", 502, "the inventory service refused the reservation request"},
};

/* Answers with `order` (orders.order_json): CONFIRMED 201 (`confirmed`,
 * 200 for a cancel's reading), CANCELLED 200, PENDING 202, FAILED the
 * error of its reason with the order in the details. */
static void respond_with_order(http_request_t *r, const char *order, size_t len, int confirmed)
{
    json_t *doc = json_loadb(order, len, 0, NULL);
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (status == NULL) {
        json_decref(doc);
        context_error(&r->super, "order document unreadable");
        http_respond_error(r, 500, "internal", "the order could not be read");
        return;
    }
    if (strcmp(status, "FAILED") != 0) {
        int code = strcmp(status, "CONFIRMED") == 0 ? confirmed : strcmp(status, "PENDING") == 0 ? 202 : 200;
        http_respond_json(r, code, doc);
        return;
    }
    const char *reason = json_string_value(json_object_get(doc, "reason"));
    const failure_status_t *failure = NULL;
    for (size_t i = 0; reason != NULL && i < sizeof(failure_statuses) / sizeof(failure_statuses[0]); i++)
        if (strcmp(failure_statuses[i].reason, reason) == 0)
            failure = &failure_statuses[i];
    http_respond_error_details(r, failure != NULL ? failure->status : 500, reason != NULL ? reason : "order_failed",
                               failure != NULL ? failure->message : "the order failed",
                               json_pack("{s:o}", "order", doc));
}

/* --- waiting for the saga ----------------------------------------------------------------- */

static void on_current_order(void *data, const PGresult *result)
{
    order_wait_t *wait = data;
    if (PQntuples(result) == 0) {
        http_respond_error(wait->r, 404, "not_found", "no order with id %s", wait->order_id);
        return;
    }
    respond_with_order(wait->r, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0), 201);
}

/* Answers with the order as it is now (PENDING: 202). */
static void answer_current(order_wait_t *wait)
{
    wait->answered = true;
    const char *params[] = {wait->order_id};
    step_query(&wait->r->super, "order_get", params, on_current_order, wait);
}

static void on_response_timeout(loop_timer_t *timer)
{
    order_wait_t *wait = timer->data;
    if (!wait->answered)
        answer_current(wait);
}

/* The saga settled the order (or stopped before it did: order NULL). */
static void on_settled(void *waiter, const char *order, size_t len)
{
    order_wait_t *wait = waiter;
    loop_timer_stop(&wait->timer);
    if (!wait->answered) {
        if (order != NULL) {
            wait->answered = true;
            respond_with_order(wait->r, order, len, 201);
        } else {
            answer_current(wait);
        }
    }
    context_release(&wait->r->super); /* the hold taken for the saga */
}

/* Runs the saga of `saga_json` with the request waiting for it. */
static void run_and_wait(http_request_t *r, const char *order_id, const char *saga_json, size_t len)
{
    order_wait_t *wait = context_alloc(&r->super, sizeof(*wait));
    wait->r = r;
    snprintf(wait->order_id, sizeof(wait->order_id), "%s", order_id);
    context_hold(&r->super); /* until the saga has told the waiter */
    loop_timer_start(&wait->timer, order_config.response_timeout_ms, on_response_timeout, wait);
    saga_run(r->super.worker, saga_json, len, &r->super.trace, on_settled, wait);
}

/* A replayed key whose order is still PENDING (its saga runs elsewhere):
 * read it again every REPLAY_POLL_MS until it settles or time is up. */
static void poll_replay(loop_timer_t *timer);

static void on_replay_read(void *data, const PGresult *result)
{
    order_wait_t *wait = data;
    const char *status = PQgetvalue(result, 0, 2);
    if (strcmp(status, "PENDING") != 0 || loop_now_ms() >= wait->deadline_ms) {
        respond_with_order(wait->r, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0), 201);
        return;
    }
    context_hold(&wait->r->super);
    loop_timer_start(&wait->timer, REPLAY_POLL_MS, poll_replay, wait);
}

static void poll_replay(loop_timer_t *timer)
{
    order_wait_t *wait = timer->data;
    const char *params[] = {wait->order_id};
    if (!context_is_cancelled(&wait->r->super))
        step_query(&wait->r->super, "order_get", params, on_replay_read, wait);
    context_release(&wait->r->super);
}

static void wait_for_replay(http_request_t *r, const char *order, size_t len)
{
    json_t *doc = json_loadb(order, len, 0, NULL);
    const char *status = json_string_value(json_object_get(doc, "status"));
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (status == NULL || id == NULL || strcmp(status, "PENDING") != 0) {
        json_decref(doc);
        respond_with_order(r, order, len, 201);
        return;
    }
    order_wait_t *wait = context_alloc(&r->super, sizeof(*wait));
    wait->r = r;
    snprintf(wait->order_id, sizeof(wait->order_id), "%s", id);
    json_decref(doc);
    wait->deadline_ms = loop_now_ms() + order_config.response_timeout_ms;
    context_hold(&r->super);
    loop_timer_start(&wait->timer, REPLAY_POLL_MS, poll_replay, wait);
}

/* --- placing an order: validate -> price -> create -> run_and_wait ----------------------- */

static int read_payment(const json_t *body, placement_t *p, json_field_error_t *error)
{
    static const char *const fields[] = {"method", "card", NULL};
    const json_t *payment = json_object_get(body, "payment");
    const char *method, *card = NULL;
    if (!json_is_object(payment))
        return json_fail(error, "payment", "payment must be an object with method (and card)");
    json_field_error_t inner;
    if (json_reject_unknown_fields(payment, fields, &inner) != 0 ||
        json_read_string(payment, "method", true, 1, 16, &method, &inner) != 0 ||
        json_read_string(payment, "card", false, 1, 32, &card, &inner) != 0)
        return json_fail(error, "payment", "payment: %s", inner.message);
    if (strcmp(method, "card") == 0) {
        if (card == NULL || !domain_valid_card_number(card))
            return json_fail(error, "payment.card", "payment.card must be a card number (12 to 19 digits, Luhn)");
        p->card = context_strdup(&p->r->super, card, SIZE_MAX);
    } else if (strcmp(method, "wallet") == 0) {
        if (card != NULL)
            return json_fail(error, "payment.card", "payment.card is for the card method only");
    } else {
        return json_fail(error, "payment.method", "payment.method must be card or wallet");
    }
    p->method = context_strdup(&p->r->super, method, SIZE_MAX);
    return 0;
}

static int compare_skus(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "sku")),
                  json_string_value(json_object_get(*(json_t *const *)b, "sku")));
}

/* Validates one line of the order into a new {sku, qty} object (NULL with
 * `error` set). */
static json_t *read_line(const json_t *items, size_t index, json_field_error_t *error)
{
    const char *sku;
    long long qty;
    if (domain_read_line(items, index, ORDER_MAX_QTY, &sku, &qty, error) != 0)
        return NULL;
    return json_pack("{s:s,s:I}", "sku", sku, "qty", (json_int_t)qty);
}

/* Validates {items:[{sku, qty}], payment:{method, card}} into `p`; the
 * lines are kept sorted by SKU. Returns 0, or -1 with `error` set. */
static int read_order(const json_t *body, placement_t *p, json_field_error_t *error)
{
    static const char *const fields[] = {"items", "payment", NULL};
    json_t *items;
    if (json_reject_unknown_fields(body, fields, error) != 0 ||
        json_read_array(body, "items", true, 1, ORDER_MAX_ITEMS, &items, error) != 0)
        return -1;
    json_t *sorted[ORDER_MAX_ITEMS] = {NULL};
    size_t count = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *line = read_line(items, i, error);
        if (line == NULL) {
            for (size_t j = 0; j < count; j++)
                json_decref(sorted[j]);
            return -1;
        }
        sorted[count++] = line;
    }
    json_t *lines = json_array();
    qsort(sorted, count, sizeof(sorted[0]), compare_skus);
    for (size_t j = 0; j < count; j++)
        json_array_append_new(lines, sorted[j]);
    char *text = json_dumps(lines, JSON_COMPACT);
    json_decref(lines);
    p->lines = context_strdup(&p->r->super, text, SIZE_MAX);
    free(text);
    return read_payment(body, p, error);
}

/* The request's fingerprint: the same items and payment hash the same
 * whatever their order or spacing. Keyed (HMAC with the service's JWT
 * secret): it covers the card number, which a plain hash of so few digits
 * would give away to anyone who reads the table. */
static void hash_request(placement_t *p)
{
    json_t *canonical =
        json_pack("{s:o,s:s,s:s?}", "items", json_loads(p->lines, 0, NULL), "method", p->method, "card", p->card);
    digest_json_fingerprint(p->r->server->jwt_secret, canonical, p->request_hash);
    json_decref(canonical);
}

static void on_created(void *data, const PGresult *result)
{
    placement_t *p = data;
    http_request_t *r = p->r;
    const char *outcome = PQgetvalue(result, 0, 0);
    const char *body = PQgetvalue(result, 0, 1);
    size_t len = (size_t)PQgetlength(result, 0, 1);
    if (strcmp(outcome, "created") == 0) {
        order_count_status("PENDING");
        context_info(&r->super, "order placed", LOG_STRING("order_id", p->id), LOG_STRING("user_id", p->who->sub));
        run_and_wait(r, p->id, PQgetvalue(result, 0, 2), (size_t)PQgetlength(result, 0, 2));
    } else if (strcmp(outcome, "existing") == 0) {
        wait_for_replay(r, body, len);
    } else {
        http_respond_error(r, 422, "idempotency_key_reused",
                           "this Idempotency-Key was used for another order; use a new key for a new order");
    }
}

/* Prices the lines with inventory's products, then creates the order. */
static void price_and_create(void *data, const http_response_t *response)
{
    placement_t *p = data;
    http_request_t *r = p->r;
    json_t *doc = response->code == 200 ? json_loadb(response->body, response->body_len, 0, NULL) : NULL;
    const json_t *products = json_object_get(doc, "items");
    if (!json_is_array(products)) {
        json_decref(doc);
        context_unavailable(&r->super, "inventory", "the product lookup gave no product list");
        return;
    }
    json_t *lines = json_loads(p->lines, 0, NULL);
    json_t *items = json_array();
    long long total = 0;
    const char *currency = NULL;
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const json_t *line = json_array_get(lines, i);
        const char *sku = json_string_value(json_object_get(line, "sku"));
        const json_t *product = NULL;
        for (size_t j = 0; j < json_array_size(products) && product == NULL; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(products, j), "sku")) ?: "", sku) == 0)
                product = json_array_get(products, j);
        if (product == NULL) {
            http_respond_error_details(r, 422, "unknown_sku", "the order names a product that does not exist",
                                       json_pack("{s:s}", "sku", sku));
            goto Done;
        }
        const char *product_currency = json_string_value(json_object_get(product, "currency")) ?: "USD";
        if (currency != NULL && strcmp(currency, product_currency) != 0) {
            http_respond_error_details(r, 422, "mixed_currency", "all items of an order must have one currency",
                                       json_pack("{s:s}", "sku", sku));
            goto Done;
        }
        currency = product_currency;
        json_int_t qty = json_integer_value(json_object_get(line, "qty"));
        json_int_t price = json_integer_value(json_object_get(product, "price_cents"));
        total += (long long)(qty * price);
        json_array_append_new(items,
                              json_pack("{s:s,s:O,s:I,s:I}", "sku", sku, "name", json_object_get(product, "name"),
                                        "qty", qty, "unit_price_cents", price));
    }
    char *items_text = json_dumps(items, JSON_COMPACT);
    char total_text[24], pending[16], lease[16];
    snprintf(total_text, sizeof(total_text), "%lld", total);
    snprintf(pending, sizeof(pending), "%d", order_config.pending_timeout_s);
    snprintf(lease, sizeof(lease), "%d", order_config.lease_s);
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&r->super.trace, traceparent);
    const char *card = p->card;
    uuid_generate_v4(p->id);
    const char *params[] = {p->id,      p->who->sub,
                            p->key,     p->request_hash,
                            items_text, total_text,
                            currency,   p->method,
                            card,       card != NULL ? card + strlen(card) - 4 : NULL,
                            pending,    lease,
                            traceparent};
    step_query(&r->super, "order_create", params, on_created, p);
    free(items_text);
Done:
    json_decref(items);
    json_decref(lines);
    json_decref(doc);
}

static void place_order(http_request_t *r, const jwt_claims_t *who)
{
    size_t key_len = 0;
    const char *key = http_header(r, "idempotency-key", &key_len);
    json_field_error_t error;
    bool key_ok = key != NULL && key_len >= 1 && key_len <= KEY_MAX;
    for (size_t i = 0; key_ok && i < key_len; i++)
        key_ok = key[i] > 0x20 && key[i] < 0x7f;
    if (!key_ok) {
        json_fail(&error, "Idempotency-Key",
                  "the Idempotency-Key header is required: 1 to %d printable ASCII characters, new for each order",
                  KEY_MAX);
        http_respond_field_error(r, &error);
        return;
    }
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    placement_t *p = context_alloc(&r->super, sizeof(*p));
    p->r = r;
    p->who = who;
    p->key = context_strdup(&r->super, key, key_len);
    int rc = read_order(body, p, &error);
    json_decref(body);
    if (rc != 0) {
        http_respond_field_error(r, &error);
        return;
    }
    hash_request(p);
    /* the lookup URL: every SKU, comma-separated (SKUs need no escaping) */
    json_t *lines = json_loads(p->lines, 0, NULL);
    size_t url_len = strlen(order_config.inventory_url) + 48 + json_array_size(lines) * 33;
    char *url = context_alloc(&r->super, url_len);
    size_t at = (size_t)snprintf(url, url_len, "%s/api/inventory/products?skus=", order_config.inventory_url);
    for (size_t i = 0; i < json_array_size(lines); i++)
        at += (size_t)snprintf(url + at, url_len - at, "%s%s", i > 0 ? "," : "",
                               json_string_value(json_object_get(json_array_get(lines, i), "sku")));
    json_decref(lines);
    http_call_t call = {.peer = "inventory", .method = "GET", .url = url};
    step_http(&r->super, &call, price_and_create, p);
}

void orders_handle_create(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, place_order);
}

/* --- reading orders ----------------------------------------------------------------------- */

static const char *order_id_param(http_request_t *r)
{
    const char *id = http_path_param(r, "id");
    if (id == NULL || !uuid_is_valid(id)) {
        json_field_error_t error;
        json_fail(&error, "id", "id must be an order UUID");
        http_respond_field_error(r, &error);
        return NULL;
    }
    return id;
}

typedef struct order_read {
    http_request_t *r;
    const jwt_claims_t *who;
    const char *id;
} order_read_t;

/* Someone else's order is answered as no order at all: whether it exists
 * is not told. */
static void answer_order(void *data, const PGresult *result)
{
    order_read_t *read = data;
    if (PQntuples(result) == 0 ||
        (read->who->role != JWT_ROLE_ADMIN && strcmp(PQgetvalue(result, 0, 1), read->who->sub) != 0)) {
        http_respond_error(read->r, 404, "not_found", "no order with id %s", read->id);
        return;
    }
    http_respond_json_text(read->r, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void read_order_of(http_request_t *r, const jwt_claims_t *who)
{
    const char *id = order_id_param(r);
    if (id == NULL)
        return;
    order_read_t *read = context_alloc(&r->super, sizeof(*read));
    *read = (order_read_t){r, who, id};
    const char *params[] = {id};
    step_query(&r->super, "order_get", params, answer_order, read);
}

void orders_handle_get(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, read_order_of);
}

static void answer_list(void *data, const PGresult *result)
{
    http_request_t *r = data;
    http_respond_json_text(r, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void list_orders(http_request_t *r, const jwt_claims_t *who)
{
    static const char *const statuses[] = {"PENDING", "CONFIRMED", "FAILED", "CANCELLED"};
    const char *status = http_query_param(r, "status");
    bool known = status == NULL;
    for (size_t i = 0; !known && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known = strcmp(status, statuses[i]) == 0;
    if (!known) {
        json_field_error_t error;
        json_fail(&error, "status", "status must be PENDING, CONFIRMED, FAILED or CANCELLED");
        http_respond_field_error(r, &error);
        return;
    }
    http_page_t *page = context_alloc(&r->super, sizeof(*page));
    if (!http_query_page(r, DEFAULT_PAGE, MAX_PAGE, page))
        return;
    /* a customer sees their own orders; an admin everyone's */
    const char *params[] = {who->role == JWT_ROLE_ADMIN ? NULL : who->sub, status, page->limit_text, page->offset_text};
    step_query(&r->super, "order_list", params, answer_list, r);
}

void orders_handle_list(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, list_orders);
}

/* --- cancelling: begin_cancel -> the saga's cancel steps -> answer ------------------------------ */

static void on_cancel_begun(void *data, const PGresult *result)
{
    order_read_t *read = data;
    http_request_t *r = read->r;
    const char *outcome = PQgetvalue(result, 0, 0);
    const char *body = PQgetvalue(result, 0, 1);
    size_t len = (size_t)PQgetlength(result, 0, 1);
    if (strcmp(outcome, "started") == 0 || strcmp(outcome, "in_progress") == 0) {
        context_info(&r->super, "order cancel requested", LOG_STRING("order_id", read->id),
                     LOG_STRING("by", read->who->sub));
        run_and_wait(r, read->id, body, len);
    } else if (strcmp(outcome, "cancelled") == 0) {
        http_respond_json_text(r, 200, body, len);
    } else if (strcmp(outcome, "not_cancellable") == 0) {
        json_t *doc = json_loadb(body, len, 0, NULL);
        http_respond_error_details(r, 409, "order_not_cancellable", "only a CONFIRMED order can be cancelled",
                                   json_pack("{s:o}", "order", doc != NULL ? doc : json_null()));
    } else {
        http_respond_error(r, 404, "not_found", "no order with id %s", read->id);
    }
}

static void cancel_order(http_request_t *r, const jwt_claims_t *who)
{
    const char *id = order_id_param(r);
    if (id == NULL)
        return;
    order_read_t *read = context_alloc(&r->super, sizeof(*read));
    *read = (order_read_t){r, who, id};
    char *lease = context_alloc(&r->super, 16);
    snprintf(lease, 16, "%d", order_config.lease_s);
    const char *params[] = {id, who->role == JWT_ROLE_ADMIN ? NULL : who->sub, lease};
    step_query(&r->super, "order_cancel", params, on_cancel_begun, read);
}

void orders_handle_cancel(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, cancel_order);
}
