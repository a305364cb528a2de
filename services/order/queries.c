/* queries.c - the order service's SQL, in one place.
 *
 * Each statement is prepared once per connection under its name (also the
 * `operation` label of db_client_operation_duration_seconds). The saga's
 * state changes are PL/pgSQL functions (migrations/002) so that each is
 * one transaction and one round trip.
 */
#include "order.h"

const pg_statement_t order_statements[] = {
    /* id, user, key, request hash, items, total, currency, method, card,
     * last4, pending timeout, lease, traceparent */
    {"order_create",
     "SELECT outcome, body::text, saga::text FROM orders.create_order($1::uuid, $2, $3, $4, $5::jsonb, $6::bigint, $7, "
     "$8, $9,"
     " $10, $11::int, $12::int, $13)",
     13},

    /* id, from step, status, step, reason, reservation id, payment id, lease, traceparent */
    {"saga_move",
     "SELECT moved, body::text FROM orders.saga_move($1::uuid, $2, $3, $4, $5, $6::uuid, $7::uuid, $8::int, $9)", 9},

    /* Unfinished sagas whose lease ran out, leased anew to this process.
     * SKIP LOCKED: two recovering processes never take the same order. */
    {"saga_claim",
     "WITH picked AS (SELECT id FROM orders.orders WHERE step <> 'done' AND lease_until < now()"
     "                ORDER BY lease_until LIMIT $1::int FOR UPDATE SKIP LOCKED)"
     " UPDATE orders.orders o SET lease_until = now() + make_interval(secs => $2::int)"
     " FROM picked WHERE o.id = picked.id"
     " RETURNING orders.saga_json(o)::text",
     2},

    {"order_get",
     "SELECT orders.order_json(o, true)::text, o.user_id, o.status FROM orders.orders o WHERE o.id = $1::uuid", 1},

    /* One page, newest first, of one user's ($1) or everyone's (NULL)
     * orders, optionally of one status ($2), with the total count. */
    {"order_list",
     "SELECT jsonb_build_object("
     "  'items', coalesce((SELECT jsonb_agg(orders.order_json(o, false) ORDER BY o.created_at DESC, o.id)"
     "                     FROM (SELECT * FROM orders.orders"
     "                           WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2)"
     "                           ORDER BY created_at DESC, id LIMIT $3::int OFFSET $4::int) o), '[]'),"
     "  'total', (SELECT count(*) FROM orders.orders"
     "            WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2)),"
     "  'limit', $3::int, 'offset', $4::int)::text",
     4},

    /* id, user (NULL: an admin), lease */
    {"order_cancel", "SELECT outcome, body::text FROM orders.begin_cancel($1::uuid, $2, $3::int)", 3},
};

const size_t order_statement_count = sizeof(order_statements) / sizeof(order_statements[0]);
