/* products.c - the product catalogue:
 *
 *   GET   /api/inventory/products          list (category, limit, offset)
 *   GET   /api/inventory/products/{sku}    one product
 *   POST  /api/inventory/products          create (admin)
 *   PATCH /api/inventory/products/{sku}    price, stock adjustment, ... (admin)
 *
 * Reads go cache -> PostgreSQL -> cache; writes go to PostgreSQL, then
 * invalidate the cache, then answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "inventory.h"
#include "log.h"

#define DEFAULT_PAGE_SIZE 20
#define MAX_PAGE_SIZE     100
#define MAX_OFFSET        1000000

typedef struct product_read {
    char cache_key[128];
    const char *statement;
    bool is_list;
    const char *params[3];
} product_read_t;

bool products_valid_sku(const char *sku)
{
    size_t len = strlen(sku);
    if (len < 3 || len > 32 || sku[0] == '-')
        return false;
    for (const char *p = sku; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

static bool valid_category(const char *category)
{
    size_t len = strlen(category);
    if (len < 2 || len > 32 || category[0] < 'a' || category[0] > 'z')
        return false;
    for (const char *p = category; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

static const char *sku_param(http_request_t *r)
{
    const char *sku = http_path_param(r, "sku");
    if (sku == NULL || !products_valid_sku(sku)) {
        json_field_error_t error;
        json_fail(&error, "sku", "sku must be 3 to 32 characters of A-Z, 0-9 and '-'");
        http_respond_field_error(r, &error);
        return NULL;
    }
    return sku;
}

/* --- reads ------------------------------------------------------------------ */

static void on_product_loaded(void *data, const pg_reply_t *reply)
{
    http_request_t *r = data;
    if (!http_request_resume(r))
        return;
    product_read_t *read = r->state;
    if (!http_check_pg_reply(r, reply))
        return;
    if (PQntuples(reply->result) == 0) {
        http_respond_error(r, 404, "not_found", "no product with sku %s", read->params[0]);
        return;
    }
    const char *json = PQgetvalue(reply->result, 0, 0);
    size_t len = (size_t)PQgetlength(reply->result, 0, 0);
    product_cache_put(r->worker, read->cache_key, json, len, read->is_list);
    http_respond_json_text(r, 200, json, len);
}

static void on_cache_checked(http_request_t *r, const char *json, size_t len)
{
    if (json != NULL) {
        http_respond_json_text(r, 200, json, len);
        return;
    }
    product_read_t *read = r->state;
    pg_query(r->worker->pg, read->statement, read->params, on_product_loaded, http_request_hold(r));
}

void products_handle_get(http_request_t *r)
{
    const char *sku = sku_param(r);
    if (sku == NULL)
        return;
    product_read_t *read = http_request_alloc(r, sizeof(*read));
    r->state = read;
    read->statement = "product_get";
    read->params[0] = sku;
    product_cache_product_key(read->cache_key, sizeof(read->cache_key), sku);
    product_cache_get(r, read->cache_key, on_cache_checked);
}

void products_handle_list(http_request_t *r)
{
    const char *category = http_query_param(r, "category");
    if (category != NULL && !valid_category(category)) {
        json_field_error_t error;
        json_fail(&error, "category", "category must be 2 to 32 characters of a-z, 0-9 and '-'");
        http_respond_field_error(r, &error);
        return;
    }
    long limit, offset;
    if (!http_query_long(r, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, &limit) ||
        !http_query_long(r, "offset", 0, 0, MAX_OFFSET, &offset))
        return;
    product_read_t *read = http_request_alloc(r, sizeof(*read));
    r->state = read;
    read->statement = "product_list";
    read->is_list = true;
    char *numbers = http_request_alloc(r, 48);
    snprintf(numbers, 24, "%ld", limit);
    snprintf(numbers + 24, 24, "%ld", offset);
    read->params[0] = category;
    read->params[1] = numbers;
    read->params[2] = numbers + 24;
    product_cache_list_key(read->cache_key, sizeof(read->cache_key), category, (int)limit, (int)offset);
    product_cache_get(r, read->cache_key, on_cache_checked);
}

/* --- writes ----------------------------------------------------------------- */

/* The fields a product body may carry, and their bounds. */
typedef struct product_fields {
    const char *sku, *name, *description, *category, *currency;
    long long price_cents, stock, stock_adjustment, low_stock_threshold;
    bool has_price, has_stock, has_adjustment, has_threshold;
} product_fields_t;

static int read_product_fields(const json_t *body, bool creating, product_fields_t *f, json_field_error_t *error)
{
    static const char *const create_fields[] = {"sku",      "name",  "description",         "category", "price_cents",
                                                "currency", "stock", "low_stock_threshold", NULL};
    static const char *const update_fields[] = {
        "name", "description", "category", "price_cents", "stock_adjustment", "low_stock_threshold", NULL};
    memset(f, 0, sizeof(*f));
    if (json_reject_unknown_fields(body, creating ? create_fields : update_fields, error) != 0)
        return -1;
    if (creating) {
        if (json_read_string(body, "sku", true, 3, 32, &f->sku, error) != 0)
            return -1;
        if (!products_valid_sku(f->sku))
            return json_fail(error, "sku", "sku must be 3 to 32 characters of A-Z, 0-9 and '-'");
        if (json_read_string(body, "currency", false, 3, 3, &f->currency, error) != 0)
            return -1;
        if (f->currency != NULL && strspn(f->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
            return json_fail(error, "currency", "currency must be an ISO 4217 code such as USD");
        if (json_read_int(body, "stock", true, 0, 10000000, &f->stock, &f->has_stock, error) != 0)
            return -1;
    } else if (json_read_int(body, "stock_adjustment", false, -10000000, 10000000, &f->stock_adjustment,
                             &f->has_adjustment, error) != 0) {
        return -1;
    }
    if (json_read_text(body, "name", creating, 1, 200, &f->name, error) != 0 ||
        json_read_string(body, "description", false, 0, 2000, &f->description, error) != 0 ||
        json_read_string(body, "category", creating, 2, 32, &f->category, error) != 0 ||
        json_read_int(body, "price_cents", creating, 0, 1000000000, &f->price_cents, &f->has_price, error) != 0 ||
        json_read_int(body, "low_stock_threshold", false, 0, 10000000, &f->low_stock_threshold, &f->has_threshold,
                      error) != 0)
        return -1;
    if (f->category != NULL && !valid_category(f->category))
        return json_fail(error, "category", "category must be 2 to 32 characters of a-z, 0-9 and '-'");
    if (!creating && json_object_size(body) == 0)
        return json_fail(error, "", "nothing to change: give at least one field");
    return 0;
}

/* Formats an optional integer parameter into the request pool. */
static const char *int_param(http_request_t *r, bool present, long long value)
{
    if (!present)
        return NULL;
    char *text = http_request_alloc(r, 24);
    snprintf(text, 24, "%lld", value);
    return text;
}

static void on_product_written(void *data, const pg_reply_t *reply)
{
    http_request_t *r = data;
    if (!http_request_resume(r))
        return;
    const char *sku = r->state;
    bool creating = strcmp(r->match.route->method, "POST") == 0;
    if (reply->status == PG_ERROR && strcmp(reply->sqlstate, "23505") == 0) {
        http_respond_error(r, 409, "already_exists", "a product with sku %s already exists", sku);
        return;
    }
    if (reply->status == PG_ERROR && strcmp(reply->sqlstate, "23514") == 0) {
        http_respond_error_details(r, 422, "insufficient_stock", "stock cannot go below zero",
                                   json_pack("{s:s}", "sku", sku));
        return;
    }
    if (!http_check_pg_reply(r, reply))
        return;
    if (PQntuples(reply->result) == 0) {
        http_respond_error(r, 404, "not_found", "no product with sku %s", sku);
        return;
    }
    log_info(&r->trace, creating ? "product created" : "product updated", LOG_STRING("sku", sku));
    const char *skus[] = {sku};
    product_cache_invalidate_and_respond(r, skus, 1, creating ? 201 : 200, PQgetvalue(reply->result, 0, 0),
                                         (size_t)PQgetlength(reply->result, 0, 0));
}

/* The body validation both writes start with (once auth_require has let
 * an admin through). Returns the parsed body (its strings back `f`), or
 * NULL after answering 4xx. */
static json_t *read_product_body(http_request_t *r, bool creating, product_fields_t *f)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return NULL;
    json_field_error_t error;
    if (read_product_fields(body, creating, f, &error) != 0) {
        json_decref(body);
        http_respond_field_error(r, &error);
        return NULL;
    }
    return body;
}

static void create_product(http_request_t *r, const auth_claims_t *who)
{
    (void)who;
    product_fields_t f;
    json_t *body = read_product_body(r, true, &f);
    if (body == NULL)
        return;
    /* libpq copies the parameters, so body may go once pg_query returns. */
    r->state = h2o_strdup(&r->req->pool, f.sku, SIZE_MAX).base;
    const char *params[] = {f.sku,
                            f.name,
                            f.description,
                            f.category,
                            int_param(r, true, f.price_cents),
                            f.currency,
                            int_param(r, true, f.stock),
                            int_param(r, f.has_threshold, f.low_stock_threshold)};
    pg_query(r->worker->pg, "product_create", params, on_product_written, http_request_hold(r));
    json_decref(body);
}

static void update_product(http_request_t *r, const auth_claims_t *who)
{
    (void)who;
    const char *sku = sku_param(r);
    product_fields_t f;
    json_t *body = sku != NULL ? read_product_body(r, false, &f) : NULL;
    if (body == NULL)
        return;
    r->state = (void *)sku;
    const char *params[] = {sku,
                            f.name,
                            f.description,
                            f.category,
                            int_param(r, f.has_price, f.price_cents),
                            int_param(r, f.has_adjustment, f.stock_adjustment),
                            int_param(r, f.has_threshold, f.low_stock_threshold)};
    pg_query(r->worker->pg, "product_update", params, on_product_written, http_request_hold(r));
    json_decref(body);
}

void products_handle_create(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_ADMIN, create_product);
}

void products_handle_update(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_ADMIN, update_product);
}
