/* queries.c - the inventory service's SQL, in one place.
 *
 * Each statement is prepared once per connection under its name; the name is
 * also the `operation` label of db_client_operation_duration_seconds. The
 * reservation workflow lives in PL/pgSQL functions (migrations/002) so that
 * each call is one transaction and one round trip.
 */
#include "inventory.h"

const pg_statement_t inventory_statements[] = {
    {"product_get", "SELECT inventory.product_json(p)::text FROM inventory.products p WHERE p.sku = $1", 1},

    /* One round trip returns the page and the total count as one document. */
    {"product_list",
     "SELECT jsonb_build_object("
     "  'items', coalesce((SELECT jsonb_agg(inventory.product_json(p) ORDER BY p.sku)"
     "                     FROM (SELECT * FROM inventory.products"
     "                           WHERE $1::text IS NULL OR category = $1"
     "                           ORDER BY sku LIMIT $2::int OFFSET $3::int) p), '[]'),"
     "  'total', (SELECT count(*) FROM inventory.products WHERE $1::text IS NULL OR category = $1),"
     "  'limit', $2::int, 'offset', $3::int)::text",
     3},

    {"product_create",
     "INSERT INTO inventory.products (sku, name, description, category, price_cents, currency, stock,"
     "                                low_stock_threshold)"
     " VALUES ($1, $2, coalesce($3, ''), $4, $5::bigint, coalesce($6, 'USD'), $7::int, coalesce($8::int, 10))"
     " RETURNING inventory.product_json(products)::text",
     8},

    /* The products of a list of SKUs (a text[] literal), as a listing
     * document: what the order service prices an order with. */
    {"product_lookup",
     "SELECT jsonb_build_object("
     "  'items', coalesce(jsonb_agg(inventory.product_json(p) ORDER BY p.sku), '[]'),"
     "  'total', count(*))::text"
     " FROM inventory.products p WHERE p.sku = ANY ($1::text[])",
     1},

    /* NULL parameters leave a column as it is; the stock change is relative
     * so concurrent adjustments add up instead of overwriting each other.
     * $8 is the request's traceparent: a stock event this change writes
     * carries it (the trigger runs at the end of the statement). */
    {"product_update",
     "UPDATE inventory.products SET"
     "  name = coalesce($2, name),"
     "  description = coalesce($3, description),"
     "  category = coalesce($4, category),"
     "  price_cents = coalesce($5::bigint, price_cents),"
     "  stock = stock + coalesce($6::int, 0),"
     "  low_stock_threshold = coalesce($7::int, low_stock_threshold),"
     "  updated_at = now()"
     " FROM (SELECT set_config('oms.traceparent', coalesce($8, ''), true)) AS trace" /* for the stock events (005) */
     " WHERE sku = $1"
     " RETURNING inventory.product_json(products)::text",
     8},

    /* $4: the request's traceparent, for the stock events it may write */
    {"reservation_create", "SELECT outcome, body::text FROM inventory.reserve($1, $2::jsonb, $3::int, $4)", 4},
    {"reservation_commit", "SELECT outcome, body::text FROM inventory.commit_reservation($1::uuid)", 1},
    {"reservation_release", "SELECT outcome, body::text FROM inventory.release_reservation($1::uuid)", 1},
    {"reservation_restock", "SELECT outcome, body::text FROM inventory.restock_reservation($1::uuid)", 1},
    {"reservation_expire", "SELECT expired, array_to_json(skus)::text FROM inventory.expire_reservations($1::int)", 1},

    {"stock_levels", "SELECT sku, stock, low_stock_threshold FROM inventory.products ORDER BY sku", 0},
};

const size_t inventory_statement_count = sizeof(inventory_statements) / sizeof(inventory_statements[0]);
