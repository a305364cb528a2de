/* reservations.c - stock reservations for the order saga:
 *
 *   POST /api/inventory/reservations               hold all items or none
 *   POST /api/inventory/reservations/{id}/commit   the order is paid
 *   POST /api/inventory/reservations/{id}/release  the order failed
 *   POST /api/inventory/reservations/{id}/restock  a confirmed order was
 *                                                  cancelled: goods back
 *
 * All four are idempotent, so the order service can retry them safely.
 * They are internal endpoints: each starts with auth_require for a service
 * token (an admin may call them too, to repair a saga by hand), and a
 * customer's token or none is refused before anything is read or written.
 * Held reservations expire after RESERVATION_TTL_SECONDS; worker 0 sweeps
 * them and their stock returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "domain.h"
#include "inventory.h"
#include "log.h"
#include "uuid.h"

#define MAX_ITEMS   50
#define MAX_QTY     1000
#define SWEEP_BATCH 100

/* POST /reservations: authenticate -> validate -> reserve -> (retry once
 * on a race) -> answer_outcome, invalidating the cache when stock was held. */
typedef struct reservation_request {
    http_request_t *r;
    const char *caller; /* the service (or admin) that asked: the token's sub */
    char order_id[65];
    size_t item_count;
    char skus[MAX_ITEMS][33];
    const char *params[4]; /* order_id, items document, TTL, traceparent: kept for one retry */
    bool retried;
} reservation_request_t;

typedef enum transition_kind { TRANSITION_COMMIT, TRANSITION_RELEASE, TRANSITION_RESTOCK } transition_kind_t;

/* POST /reservations/{id}/commit, /release or /restock: authenticate ->
 * transition -> answer_transition (or answer_restock); the kind is the
 * route's. */
typedef struct transition {
    http_request_t *r;
    const char *caller; /* the token's sub */
    const char *id;
    transition_kind_t kind;
} transition_t;

/* One run of the expiry sweep. */
typedef struct sweep {
    context_t *run;
    chore_t *chore;
} sweep_t;

static void reserve(reservation_request_t *req);

/* Validates {order_id, items:[{sku, qty}]} and builds the canonical items
 * document passed to inventory.reserve(). Returns NULL with `error` set. */
static json_t *read_reservation(const json_t *body, reservation_request_t *req, json_field_error_t *error)
{
    static const char *const fields[] = {"order_id", "items", NULL};
    const char *order_id;
    json_t *items;
    if (json_reject_unknown_fields(body, fields, error) != 0 ||
        json_read_string(body, "order_id", true, 1, 64, &order_id, error) != 0)
        return NULL;
    if (!domain_valid_order_id(order_id)) {
        json_fail(error, "order_id", "order_id must be 1 to 64 characters of letters, digits, '_' and '-'");
        return NULL;
    }
    if (json_read_array(body, "items", true, 1, MAX_ITEMS, &items, error) != 0)
        return NULL;
    snprintf(req->order_id, sizeof(req->order_id), "%s", order_id);

    json_t *canonical = json_array();
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *sku;
        long long qty;
        if (domain_read_line(items, i, MAX_QTY, &sku, &qty, error) != 0)
            goto Error;
        snprintf(req->skus[req->item_count++], sizeof(req->skus[0]), "%s", sku);
        json_array_append_new(canonical, json_pack("{s:s,s:I}", "sku", sku, "qty", (json_int_t)qty));
    }
    return canonical;

Error:
    json_decref(canonical);
    return NULL;
}

static const char *const *sku_list(const reservation_request_t *req, const char **out)
{
    for (size_t i = 0; i < req->item_count; i++)
        out[i] = req->skus[i];
    return out;
}

static void answer_outcome(void *data, const PGresult *result)
{
    reservation_request_t *req = data;
    http_request_t *r = req->r;
    const char *outcome = PQgetvalue(result, 0, 0);
    const char *body = PQgetvalue(result, 0, 1);
    size_t len = (size_t)PQgetlength(result, 0, 1);

    if (strcmp(outcome, "held") == 0) {
        inventory_count_reservation("held", 1);
        context_info(&r->super, "reservation held", LOG_STRING("order_id", req->order_id),
                     LOG_INT("items", req->item_count), LOG_STRING("caller", req->caller));
        const char *skus[MAX_ITEMS];
        product_cache_invalidate_and_respond(r, sku_list(req, skus), req->item_count, 201, body, len);
        return;
    }
    if (strcmp(outcome, "existing") == 0) {
        inventory_count_reservation("duplicate", 1);
        http_respond_json_text(r, 200, body, len);
        return;
    }
    json_t *details = json_loadb(body, len, 0, NULL);
    const char *sku = json_string_value(json_object_get(details, "sku"));
    if (strcmp(outcome, "insufficient_stock") == 0) {
        inventory_count_reservation("insufficient_stock", 1);
        char message[160];
        snprintf(message, sizeof(message), "insufficient stock for %s: requested %lld, available %lld", sku,
                 (long long)json_integer_value(json_object_get(details, "requested")),
                 (long long)json_integer_value(json_object_get(details, "available")));
        context_info(&r->super, "reservation refused", LOG_STRING("order_id", req->order_id),
                     LOG_STRING("reason", "insufficient_stock"), LOG_STRING("sku", sku));
        http_respond_error_details(r, 409, "insufficient_stock", message, details);
    } else if (strcmp(outcome, "unknown_sku") == 0) {
        inventory_count_reservation("unknown_sku", 1);
        char message[96];
        snprintf(message, sizeof(message), "no product with sku %s", sku);
        http_respond_error_details(r, 422, "unknown_sku", message, details);
    } else { /* idempotency_conflict */
        inventory_count_reservation("conflict", 1);
        json_decref(details);
        http_respond_error(r, 409, "idempotency_conflict", "order %s already holds a reservation with different items",
                           req->order_id);
    }
}

/* A concurrent request for the same order won the race (the unique key on
 * order_id): asking again returns its reservation. */
static bool retry_after_race(void *data, const pg_reply_t *reply)
{
    reservation_request_t *req = data;
    if (strcmp(reply->sqlstate, "23505") != 0 || req->retried)
        return false;
    req->retried = true;
    reserve(req);
    return true;
}

static void reserve(reservation_request_t *req)
{
    step_query_catch(&req->r->super, "reservation_create", req->params, answer_outcome, retry_after_race, req);
}

static void hold_stock(http_request_t *r, const jwt_claims_t *who)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    reservation_request_t *req = context_alloc(&r->super, sizeof(*req));
    req->r = r;
    req->caller = who->sub;
    json_field_error_t error;
    json_t *items = read_reservation(body, req, &error);
    json_decref(body);
    if (items == NULL) {
        http_respond_field_error(r, &error);
        return;
    }
    char *items_text = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    char *ttl = context_alloc(&r->super, 16);
    snprintf(ttl, 16, "%d", inventory_config.reservation_ttl_seconds);
    req->params[0] = req->order_id;
    req->params[1] = context_strdup(&r->super, items_text, SIZE_MAX);
    req->params[2] = ttl;
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&r->super.trace, traceparent);
    req->params[3] = context_strdup(&r->super, traceparent, SIZE_MAX);
    free(items_text);
    reserve(req);
}

void reservations_handle_create(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, hold_stock);
}

/* --- commit and release ----------------------------------------------------- */

/* Collects the SKUs of a reservation document, to invalidate their cache. */
static size_t reservation_skus(const char *body, size_t len, char skus[MAX_ITEMS][33])
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *items = json_object_get(doc, "items");
    size_t count = 0;
    for (size_t i = 0; i < json_array_size(items) && count < MAX_ITEMS; i++) {
        const char *sku = json_string_value(json_object_get(json_array_get(items, i), "sku"));
        if (sku != NULL)
            snprintf(skus[count++], 33, "%s", sku);
    }
    json_decref(doc);
    return count;
}

/* Invalidates the cached documents of the reservation's products, then
 * answers `status` with `response`. */
static void invalidate_and_respond(http_request_t *r, const char *reservation, size_t reservation_len, int status,
                                   const char *response, size_t response_len)
{
    char skus[MAX_ITEMS][33];
    const char *list[MAX_ITEMS];
    size_t count = reservation_skus(reservation, reservation_len, skus);
    for (size_t i = 0; i < count; i++)
        list[i] = skus[i];
    product_cache_invalidate_and_respond(r, list, count, status, response, response_len);
}

static void answer_restock(transition_t *t, const char *outcome, const char *body, size_t len)
{
    http_request_t *r = t->r;
    if (strcmp(outcome, "restocked") == 0) {
        inventory_count_reservation("restocked", 1);
        context_info(&r->super, "reservation restocked", LOG_STRING("reservation_id", t->id),
                     LOG_STRING("caller", t->caller));
        invalidate_and_respond(r, body, len, 200, body, len);
    } else if (strcmp(outcome, "already_restocked") == 0) {
        http_respond_json_text(r, 200, body, len);
    } else { /* held, released, expired: the goods never left */
        inventory_count_reservation("conflict", 1);
        json_t *doc = json_loadb(body, len, 0, NULL);
        http_respond_error_details(r, 409, "reservation_not_committed", "only a committed reservation can be restocked",
                                   json_pack("{s:o}", "reservation", doc != NULL ? doc : json_null()));
    }
}

static void answer_transition(void *data, const PGresult *result)
{
    transition_t *t = data;
    http_request_t *r = t->r;
    const char *outcome = PQgetvalue(result, 0, 0);
    const char *body = PQgetvalue(result, 0, 1);
    size_t len = (size_t)PQgetlength(result, 0, 1);
    bool committing = t->kind == TRANSITION_COMMIT;

    if (strcmp(outcome, "not_found") == 0) {
        http_respond_error(r, 404, "not_found", "no reservation with id %s", t->id);
    } else if (t->kind == TRANSITION_RESTOCK) {
        answer_restock(t, outcome, body, len);
    } else if (strcmp(outcome, "committed") == 0 || strcmp(outcome, "released") == 0) {
        if (committing == (strcmp(outcome, "committed") == 0)) {
            /* the transition this request asked for happened now */
            inventory_count_reservation(outcome, 1);
            context_info(&r->super, committing ? "reservation committed" : "reservation released",
                         LOG_STRING("reservation_id", t->id), LOG_STRING("caller", t->caller));
            invalidate_and_respond(r, body, len, 200, body, len);
        } else {
            /* commit of a released one, or release of a committed one */
            inventory_count_reservation("conflict", 1);
            json_t *doc = json_loadb(body, len, 0, NULL);
            http_respond_error_details(r, 409, committing ? "reservation_released" : "reservation_committed",
                                       committing ? "the reservation was released and cannot be committed"
                                                  : "the reservation was committed and cannot be released",
                                       json_pack("{s:o}", "reservation", doc != NULL ? doc : json_null()));
        }
    } else if (strcmp(outcome, "expired") == 0) {
        /* the commit found the hold past its time and returned the stock:
         * the cached documents still show it held */
        inventory_count_reservation("conflict", 1);
        json_t *doc = json_loadb(body, len, 0, NULL);
        json_t *error = json_pack("{s:{s:s,s:s,s:o}}", "error", "code", "reservation_expired", "message",
                                  "the reservation expired and cannot be committed", "reservation",
                                  doc != NULL ? doc : json_null());
        char *text = json_dumps(error, JSON_COMPACT);
        json_decref(error);
        invalidate_and_respond(r, body, len, 409, text, strlen(text));
        free(text);
    } else if (strcmp(outcome, "restocked") == 0) { /* a commit after the goods came back */
        inventory_count_reservation("conflict", 1);
        json_t *doc = json_loadb(body, len, 0, NULL);
        http_respond_error_details(r, 409, "reservation_restocked",
                                   "the reservation was committed and restocked; it cannot be committed again",
                                   json_pack("{s:o}", "reservation", doc != NULL ? doc : json_null()));
    } else { /* already_committed, already_released: the same answer again */
        http_respond_json_text(r, 200, body, len);
    }
}

static const char *const transition_statements[] = {"reservation_commit", "reservation_release", "reservation_restock"};

static void transition(http_request_t *r, const jwt_claims_t *who, transition_kind_t kind)
{
    const char *id = http_path_param(r, "id");
    if (id == NULL || !uuid_is_valid(id)) {
        json_field_error_t error;
        json_fail(&error, "id", "id must be a reservation UUID");
        http_respond_field_error(r, &error);
        return;
    }
    transition_t *t = context_alloc(&r->super, sizeof(*t));
    *t = (transition_t){r, who->sub, id, kind};
    const char *params[] = {id};
    step_query(&r->super, transition_statements[kind], params, answer_transition, t);
}

static void commit_reservation(http_request_t *r, const jwt_claims_t *who)
{
    transition(r, who, TRANSITION_COMMIT);
}

static void release_reservation(http_request_t *r, const jwt_claims_t *who)
{
    transition(r, who, TRANSITION_RELEASE);
}

void reservations_handle_commit(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, commit_reservation);
}

static void restock_reservation(http_request_t *r, const jwt_claims_t *who)
{
    transition(r, who, TRANSITION_RESTOCK);
}

void reservations_handle_release(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, release_reservation);
}

void reservations_handle_restock(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, restock_reservation);
}

/* --- expiry sweep (a chore on worker 0) ----------------------------------------- */

static void on_cache_cleaned(void *data)
{
    (void)data;
}

static void invalidate_expired(void *data, const PGresult *result)
{
    sweep_t *sweep = data;
    if (PQntuples(result) != 1)
        return;
    long expired = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    if (expired <= 0)
        return;
    inventory_count_reservation("expired", (double)expired);
    context_info(sweep->run, "reservations expired", LOG_INT("count", expired));
    json_t *array = json_loads(PQgetvalue(result, 0, 1), 0, NULL);
    size_t count = json_array_size(array);
    const char **list = context_alloc(sweep->run, (count + 1) * sizeof(*list));
    for (size_t i = 0; i < count; i++)
        list[i] = context_strdup(sweep->run, json_string_value(json_array_get(array, i)) ?: "", SIZE_MAX);
    json_decref(array);
    product_cache_invalidate(sweep->run, list, count, on_cache_cleaned, NULL);
    if (expired == SWEEP_BATCH)
        chore_again_now(sweep->chore); /* more are waiting */
}

static void expire_reservations(context_t *run, void *data)
{
    sweep_t *sweep = context_alloc(run, sizeof(*sweep));
    *sweep = (sweep_t){run, data};
    char batch[16];
    snprintf(batch, sizeof(batch), "%d", SWEEP_BATCH);
    const char *params[] = {batch};
    step_query(run, "reservation_expire", params, invalidate_expired, sweep);
}

void reservations_start_sweeper(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "reservation_expiry", inventory_config.expiry_sweep_ms, inventory_config.expiry_sweep_ms,
                expire_reservations, chore);
}
