/* fuzz_inventory.c - the inventory service's request bodies and ids.
 *
 * Feeds: an HTTP/1-style request (services/common/fuzz/exchange.h) through
 * the service's own route table (main.c, included here) and handlers, with
 * PostgreSQL and Redis replaced by recorders that answer "down" and an
 * admin token added when the request has no Authorization header (the
 * static one, which needs no Redis and opens both the admin endpoints and
 * the internal reservation ones). The
 * bodies that matter: product create (POST /api/inventory/products),
 * product patch (PATCH /api/inventory/products/{sku}), reservation
 * (POST /api/inventory/reservations), and the reservation ids of commit and
 * release.
 *
 * Asserts, against a reference reading of each body shape written here
 * from the README and the handlers' contracts (field set, types, bounds in
 * characters, SKU/category/currency/order id/UUID shapes, no NUL):
 *   - soundness: whatever reaches PostgreSQL came from a body the reference
 *     accepts, and the statement parameters are exactly its fields (the
 *     path's sku for a patch; for a reservation the canonical items
 *     document [{"sku","qty"}...] in the body's order; a reservation's TTL);
 *   - completeness: a clean request (exact method and path, one
 *     Content-Type: application/json, no query) whose body the reference
 *     accepts does reach PostgreSQL (refusing only a name with invisible
 *     characters is left open);
 *   - every exchange's response promises (exchange.h); a request answered
 *     without asking the database is a 4xx, one that asked is a 503.
 */
#define main inventory_service_main
#include "../main.c"
#undef main

#include "reference.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static router_t *router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_exchange_setup("inventory", inventory_statements, inventory_statement_count);
    inventory_metrics_register();
    inventory_config = (inventory_config_t){.reservation_ttl_seconds = 900, .cache_ttl_seconds = 30};
    router = fuzz_exchange_router(routes, sizeof(routes) / sizeof(routes[0]));
    return 0;
}

/* --- the reference reading --------------------------------------------------- */

static bool valid_sku(const char *s)
{
    size_t len = strlen(s);
    return len >= 3 && len <= 32 && s[0] != '-' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == len;
}

static bool valid_category(const char *s)
{
    size_t len = strlen(s);
    return len >= 2 && len <= 32 && s[0] >= 'a' && s[0] <= 'z' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

/* The statement parameters a product body must become (NULL: SQL NULL). */
typedef struct product_params {
    const char *text[8];
    char numbers[4][24];
} product_params_t;

static fuzz_verdict_t reference_product(const json_t *body, bool creating, product_params_t *p)
{
    static const char *const create_fields[] = {"sku",      "name",  "description",         "category", "price_cents",
                                                "currency", "stock", "low_stock_threshold", NULL};
    static const char *const update_fields[] = {
        "name", "description", "category", "price_cents", "stock_adjustment", "low_stock_threshold", NULL};
    memset(p, 0, sizeof(*p));
    if (!json_is_object(body) || !fuzz_only_keys(body, creating ? create_fields : update_fields))
        return FUZZ_INVALID;
    const char *sku = NULL, *name, *description, *category, *currency = NULL;
    fuzz_verdict_t v = FUZZ_VALID;
    if (creating) {
        v = fuzz_both(v, fuzz_string_field(body, "sku", true, 3, 32, false, &sku));
        if (sku != NULL && !valid_sku(sku))
            v = FUZZ_INVALID;
        v = fuzz_both(v, fuzz_string_field(body, "currency", false, 3, 3, false, &currency));
        if (currency != NULL && strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
            v = FUZZ_INVALID;
        v = fuzz_both(v, fuzz_int_field(body, "stock", true, 0, 10000000, p->numbers[1]));
    } else {
        v = fuzz_both(v, fuzz_int_field(body, "stock_adjustment", false, -10000000, 10000000, p->numbers[1]));
        if (json_object_size(body) == 0)
            v = FUZZ_INVALID;
    }
    v = fuzz_both(v, fuzz_string_field(body, "name", creating, 1, 200, true, &name));
    v = fuzz_both(v, fuzz_string_field(body, "description", false, 0, 2000, false, &description));
    v = fuzz_both(v, fuzz_string_field(body, "category", creating, 2, 32, false, &category));
    if (category != NULL && !valid_category(category))
        v = FUZZ_INVALID;
    v = fuzz_both(v, fuzz_int_field(body, "price_cents", creating, 0, 1000000000, p->numbers[0]));
    v = fuzz_both(v, fuzz_int_field(body, "low_stock_threshold", false, 0, 10000000, p->numbers[2]));
#define NUMBER(i) (p->numbers[i][0] != '\0' ? p->numbers[i] : NULL)
    if (creating) {
        const char *params[8] = {sku, name, description, category, NUMBER(0), currency, NUMBER(1), NUMBER(2)};
        memcpy(p->text, params, sizeof(params));
    } else { /* the sku comes from the path */
        const char *params[7] = {NULL, name, description, category, NUMBER(0), NUMBER(1), NUMBER(2)};
        memcpy(p->text, params, sizeof(params));
    }
#undef NUMBER
    return v;
}

/* The canonical items document a reservation body must become. */
static fuzz_verdict_t reference_reservation(const json_t *body, const char **order_id, json_t **items_out)
{
    static const char *const fields[] = {"order_id", "items", NULL};
    static const char *const item_fields[] = {"sku", "qty", NULL};
    *items_out = NULL;
    if (!json_is_object(body) || !fuzz_only_keys(body, fields))
        return FUZZ_INVALID;
    if (fuzz_string_field(body, "order_id", true, 1, 64, false, order_id) != FUZZ_VALID ||
        !fuzz_valid_order_id(*order_id))
        return FUZZ_INVALID;
    const json_t *items = json_object_get(body, "items");
    if (!json_is_array(items) || json_array_size(items) < 1 || json_array_size(items) > 50)
        return FUZZ_INVALID;
    json_t *canonical = json_array();
    for (size_t i = 0; i < json_array_size(items); i++) {
        const json_t *item = json_array_get(items, i);
        const char *sku;
        char qty[24];
        if (!json_is_object(item) || !fuzz_only_keys(item, item_fields) ||
            fuzz_string_field(item, "sku", true, 3, 32, false, &sku) != FUZZ_VALID || !valid_sku(sku) ||
            fuzz_int_field(item, "qty", true, 1, 1000, qty) != FUZZ_VALID)
            goto Invalid;
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(canonical, j), "sku")), sku) == 0)
                goto Invalid;
        json_array_append_new(
            canonical, json_pack("{s:s,s:I}", "sku", sku, "qty", json_integer_value(json_object_get(item, "qty"))));
    }
    *items_out = canonical;
    return FUZZ_VALID;
Invalid:
    json_decref(canonical);
    return FUZZ_INVALID;
}

/* --- the checks ---------------------------------------------------------------- */

static void check_product(const fuzz_exchange_t *ex, bool creating)
{
    const char *statement = creating ? "product_create" : "product_update";
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, statement);
    size_t sku_len = 0;
    const char *sku = creating ? NULL : fuzz_segment_after(ex, "/api/inventory/products/", "", &sku_len);
    bool clean = creating ? fuzz_exchange_is_clean(ex, "POST", "/api/inventory/products", true)
                          : sku != NULL && ex->method_len == 5 && memcmp(ex->method, "PATCH", 5) == 0 &&
                                fuzz_exchange_is_clean(ex, "PATCH", ex->path, true);
    json_t *body = fuzz_body_of(ex);
    product_params_t want;
    fuzz_verdict_t verdict = reference_product(body, creating, &want);
    if (!creating) {
        char *copy = sku != NULL ? fuzz_cstring(sku, sku_len) : NULL;
        if (copy == NULL || strlen(copy) != sku_len || !valid_sku(copy))
            verdict = FUZZ_INVALID;
        want.text[0] = copy;
    }
    if (call != NULL) {
        FUZZ_CHECK(verdict != FUZZ_INVALID, "%s ran for a body the reference refuses: '%s' (path '%s')", statement,
                   fuzz_show(ex->body, ex->body_len), fuzz_show(ex->path, ex->path_len));
        if (creating) {
            fuzz_check_params(call, want.text, 8);
        } else { /* the 8th: the request's traceparent, for the stock events */
            want.text[7] = call->arg_count == 8 ? call->args[7] : NULL;
            fuzz_check_params(call, want.text, 8);
            FUZZ_CHECK(fuzz_is_traceparent(call->args[7]), "product_update's traceparent is not one");
        }
    } else if (clean && verdict == FUZZ_VALID) {
        FUZZ_CHECK(false, "%s refused (%d: %s) for a body the reference accepts: '%s'", creating ? "create" : "patch",
                   ex->status, fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    if (!creating)
        free((char *)want.text[0]);
    json_decref(body);
}

static void check_reservation(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "reservation_create");
    bool clean = fuzz_exchange_is_clean(ex, "POST", "/api/inventory/reservations", true);
    json_t *body = fuzz_body_of(ex), *items = NULL;
    const char *order_id = NULL;
    fuzz_verdict_t verdict = reference_reservation(body, &order_id, &items);
    if (call != NULL) {
        FUZZ_CHECK(verdict == FUZZ_VALID, "a reservation ran for a body the reference refuses: '%s'",
                   fuzz_show(ex->body, ex->body_len));
        FUZZ_CHECK(call->arg_count == 4 && fuzz_same_param(call->args[0], order_id) &&
                       fuzz_same_param(call->args[2], "900") && fuzz_is_traceparent(call->args[3]),
                   "reservation parameters order_id '%s', ttl '%s'", call->args[0] ? call->args[0] : "NULL",
                   call->args[2] ? call->args[2] : "NULL");
        json_t *sent = call->args[1] != NULL ? json_loads(call->args[1], 0, NULL) : NULL;
        FUZZ_CHECK(json_equal(sent, items) && json_array_size(sent) == json_array_size(items),
                   "the items document '%s' is not the body's items", call->args[1] ? call->args[1] : "NULL");
        for (size_t i = 0; i < json_array_size(sent); i++)
            FUZZ_CHECK(json_object_size(json_array_get(sent, i)) == 2, "an item of the document has extra members");
        json_decref(sent);
    } else if (clean && verdict == FUZZ_VALID) {
        FUZZ_CHECK(false, "a reservation refused (%d: %s) for a body the reference accepts: '%s'", ex->status,
                   fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    json_decref(items);
    json_decref(body);
}

static void check_transition(const fuzz_exchange_t *ex, const char *statement, const char *suffix)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, statement);
    size_t id_len = 0;
    const char *id = fuzz_segment_after(ex, "/api/inventory/reservations/", suffix, &id_len);
    bool valid = id != NULL && fuzz_valid_uuid(id, id_len);
    if (call != NULL)
        FUZZ_CHECK(
            valid && call->arg_count == 1 && call->arg_lens[0] == id_len && memcmp(call->args[0], id, id_len) == 0,
            "%s ran with id '%s' for the path '%s'", statement,
            call->args[0] ? fuzz_show(call->args[0], call->arg_lens[0]) : "NULL", fuzz_show(ex->path, ex->path_len));
    else if (valid && fuzz_exchange_is_clean(ex, "POST", ex->path, false))
        FUZZ_CHECK(false, "%s refused (%d) for the id '%s'", statement, ex->status, fuzz_show(id, id_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_exchange_t ex;
    if (!fuzz_exchange_parse((const char *)data, size, &ex))
        return 0;
    ex.add_admin_token = true;
    fuzz_exchange_run(router, &ex);

    check_product(&ex, true);
    check_product(&ex, false);
    check_reservation(&ex);
    check_transition(&ex, "reservation_commit", "/commit");
    check_transition(&ex, "reservation_release", "/release");
    fuzz_check_database_down_status(&ex);
    fuzz_exchange_clear(&ex);
    return 0;
}
