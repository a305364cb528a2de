/* products.c - the product catalogue:
 *
 *   GET   /api/inventory/products          list (category, limit, offset),
 *                                          or the products of ?skus=A,B,C
 *   GET   /api/inventory/products/{sku}    one product
 *   POST  /api/inventory/products          create (admin)
 *   PATCH /api/inventory/products/{sku}    price, stock adjustment, ... (admin)
 *
 * Reads go cache -> PostgreSQL -> cache; writes go to PostgreSQL, then
 * invalidate the cache, then answer: each a short chain of named steps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "domain.h"
#include "inventory.h"
#include "log.h"

#define DEFAULT_PAGE_SIZE 20
#define MAX_PAGE_SIZE     100
#define MAX_LOOKUP_SKUS   50 /* an order's items at most */

/* A read: the cache first, then the database (which refills the cache). */
typedef struct product_read {
    http_request_t *r;
    char cache_key[128];
    const char *statement;
    bool is_list;
    http_page_t page; /* listings */
    const char *params[3];
} product_read_t;

/* A write: create (POST) or update (PATCH) of one product. */
typedef struct product_write {
    http_request_t *r;
    const char *sku;
    bool creating;
} product_write_t;

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
    if (sku == NULL || !domain_valid_sku(sku)) {
        json_field_error_t error;
        json_fail(&error, "sku", "sku must be 3 to 32 characters of A-Z, 0-9 and '-'");
        http_respond_field_error(r, &error);
        return NULL;
    }
    return sku;
}

/* --- reads: check_cache -> load_product -> store_and_answer ----------------- */

static void store_and_answer(void *data, const PGresult *result)
{
    product_read_t *read = data;
    if (PQntuples(result) == 0) {
        http_respond_error(read->r, 404, "not_found", "no product with sku %s", read->params[0]);
        return;
    }
    const char *json = PQgetvalue(result, 0, 0);
    size_t len = (size_t)PQgetlength(result, 0, 0);
    product_cache_put(read->r->super.worker, read->cache_key, json, len, read->is_list);
    http_respond_json_text(read->r, 200, json, len);
}

static void load_product(void *data, const char *cached, size_t len)
{
    product_read_t *read = data;
    if (cached != NULL) {
        http_respond_json_text(read->r, 200, cached, len);
        return;
    }
    step_query(&read->r->super, read->statement, read->params, store_and_answer, read);
}

static void check_cache(product_read_t *read)
{
    product_cache_get(&read->r->super, read->cache_key, load_product, read);
}

void products_handle_get(http_request_t *r)
{
    const char *sku = sku_param(r);
    if (sku == NULL)
        return;
    product_read_t *read = context_alloc(&r->super, sizeof(*read));
    read->r = r;
    read->statement = "product_get";
    read->params[0] = sku;
    product_cache_product_key(read->cache_key, sizeof(read->cache_key), sku);
    check_cache(read);
}

static void answer_lookup(void *data, const PGresult *result)
{
    http_request_t *r = data;
    http_respond_json_text(r, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

/* ?skus=A,B,C: the listed products that exist, read from PostgreSQL (the
 * order service prices orders with them, so no cached copy). */
static void lookup_products(http_request_t *r, const char *skus)
{
    size_t len = strlen(skus), count = 0;
    char *array = context_alloc(&r->super, len + 3); /* {A,B,C} */
    array[0] = '{';
    const char *p = skus;
    char *out = array + 1;
    while (true) {
        size_t n = strcspn(p, ",");
        char sku[33];
        if (n == 0 || n >= sizeof(sku) || ++count > MAX_LOOKUP_SKUS)
            goto Invalid;
        memcpy(sku, p, n);
        sku[n] = '\0';
        if (!domain_valid_sku(sku))
            goto Invalid;
        memcpy(out, p, n + (p[n] == ',')); /* the SKU and its comma; SKUs need no quoting */
        out += n + (p[n] == ',');
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    *out++ = '}';
    *out = '\0';
    const char *params[] = {array};
    step_query(&r->super, "product_lookup", params, answer_lookup, r);
    return;

Invalid:;
    json_field_error_t error;
    json_fail(&error, "skus", "skus must be 1 to %d comma-separated SKUs (3 to 32 characters of A-Z, 0-9 and '-')",
              MAX_LOOKUP_SKUS);
    http_respond_field_error(r, &error);
}

void products_handle_list(http_request_t *r)
{
    const char *skus = http_query_param(r, "skus");
    if (skus != NULL) {
        lookup_products(r, skus);
        return;
    }
    const char *category = http_query_param(r, "category");
    if (category != NULL && !valid_category(category)) {
        json_field_error_t error;
        json_fail(&error, "category", "category must be 2 to 32 characters of a-z, 0-9 and '-'");
        http_respond_field_error(r, &error);
        return;
    }
    product_read_t *read = context_alloc(&r->super, sizeof(*read));
    if (!http_query_page(r, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, &read->page))
        return;
    read->r = r;
    read->statement = "product_list";
    read->is_list = true;
    read->params[0] = category;
    read->params[1] = read->page.limit_text;
    read->params[2] = read->page.offset_text;
    product_cache_list_key(read->cache_key, sizeof(read->cache_key), category, (int)read->page.limit,
                           (int)read->page.offset);
    check_cache(read);
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
        if (!domain_valid_sku(f->sku))
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

/* Formats an optional integer parameter into the request's memory. */
static const char *int_param(http_request_t *r, bool present, long long value)
{
    if (!present)
        return NULL;
    char *text = context_alloc(&r->super, 24);
    snprintf(text, 24, "%lld", value);
    return text;
}

/* A duplicate SKU (23505) is a 409, stock below zero (the CHECK, 23514)
 * a 422; other errors are the default 500. */
static bool answer_refusal(void *data, const pg_reply_t *reply)
{
    product_write_t *write = data;
    if (strcmp(reply->sqlstate, "23505") == 0) {
        http_respond_error(write->r, 409, "already_exists", "a product with sku %s already exists", write->sku);
        return true;
    }
    if (strcmp(reply->sqlstate, "23514") == 0) {
        http_respond_error_details(write->r, 422, "insufficient_stock", "stock cannot go below zero",
                                   json_pack("{s:s}", "sku", write->sku));
        return true;
    }
    return false;
}

static void invalidate_and_answer(void *data, const PGresult *result)
{
    product_write_t *write = data;
    http_request_t *r = write->r;
    if (PQntuples(result) == 0) {
        http_respond_error(r, 404, "not_found", "no product with sku %s", write->sku);
        return;
    }
    context_info(&r->super, write->creating ? "product created" : "product updated", LOG_STRING("sku", write->sku));
    const char *skus[] = {write->sku};
    product_cache_invalidate_and_respond(r, skus, 1, write->creating ? 201 : 200, PQgetvalue(result, 0, 0),
                                         (size_t)PQgetlength(result, 0, 0));
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

static product_write_t *new_write(http_request_t *r, const char *sku, bool creating)
{
    product_write_t *write = context_alloc(&r->super, sizeof(*write));
    *write = (product_write_t){r, context_strdup(&r->super, sku, SIZE_MAX), creating};
    return write;
}

static void create_product(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    product_fields_t f;
    json_t *body = read_product_body(r, true, &f);
    if (body == NULL)
        return;
    const char *params[] = {f.sku,
                            f.name,
                            f.description,
                            f.category,
                            int_param(r, true, f.price_cents),
                            f.currency,
                            int_param(r, true, f.stock),
                            int_param(r, f.has_threshold, f.low_stock_threshold)};
    /* libpq copies the parameters, so body may go once the step started */
    step_query_catch(&r->super, "product_create", params, invalidate_and_answer, answer_refusal,
                     new_write(r, f.sku, true));
    json_decref(body);
}

static void update_product(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    const char *sku = sku_param(r);
    product_fields_t f;
    json_t *body = sku != NULL ? read_product_body(r, false, &f) : NULL;
    if (body == NULL)
        return;
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&r->super.trace, traceparent);
    const char *params[] = {sku,
                            f.name,
                            f.description,
                            f.category,
                            int_param(r, f.has_price, f.price_cents),
                            int_param(r, f.has_adjustment, f.stock_adjustment),
                            int_param(r, f.has_threshold, f.low_stock_threshold),
                            traceparent};
    step_query_catch(&r->super, "product_update", params, invalidate_and_answer, answer_refusal,
                     new_write(r, sku, false));
    json_decref(body);
}

void products_handle_create(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, create_product);
}

void products_handle_update(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, update_product);
}
