/* queries.c - the payment service's SQL, in one place.
 *
 * Each statement is prepared once per connection under its name; the name is
 * also the `operation` label of db_client_operation_duration_seconds. The
 * workflows live in PL/pgSQL functions (migrations/002 and 003) so that each
 * call is one transaction and one round trip: what changes together (a
 * payment, its key's answer, its event) commits together.
 */
#include "payment.h"

const pg_statement_t payment_statements[] = {
    /* key, fingerprint, order_id, amount_cents, currency, method, card_last4;
     * the last column is the id of a payment that was started */
    {"charge_begin",
     "SELECT outcome, status, body::text, body->>'id'"
     " FROM payments.begin_charge($1, $2, $3, $4::bigint, $5, $6, $7)",
     7},
    /* payment id, status, decline reason, traceparent */
    {"charge_finish", "SELECT status, body::text, finished FROM payments.finish_charge($1::uuid, $2, $3, $4)", 4},
    /* What a duplicate request waits for: the key's answer (NULLs while the
     * first request is still charging). */
    {"charge_key_answer",
     "SELECT response_status, response_body::text FROM payments.idempotency_keys WHERE scope = 'charge' AND key = $1",
     1},
    /* older than (ms), batch size, traceparent */
    {"charge_recover", "SELECT method FROM payments.recover_charges($1::int, $2::int, $3)", 3},

    {"payment_get", "SELECT payments.payment_json(p)::text FROM payments.payments p WHERE p.id = $1::uuid", 1},
    {"payment_list",
     "SELECT jsonb_build_object('items', coalesce(jsonb_agg(payments.payment_json(p) ORDER BY p.created_at), "
     "'[]'))::text"
     " FROM payments.payments p WHERE p.order_id = $1",
     1},

    /* payment id, amount_cents (NULL: all that remains), key, fingerprint, traceparent */
    {"refund_create", "SELECT outcome, status, body::text FROM payments.refund($1::uuid, $2::bigint, $3, $4, $5)", 5},
    {"void_create", "SELECT outcome, body::text FROM payments.void_charge($1)", 1},

    /* TTL (hours), batch size */
    {"idempotency_keys_prune", "SELECT payments.prune_idempotency_keys($1::int, $2::int)", 2},
};

const size_t payment_statement_count = sizeof(payment_statements) / sizeof(payment_statements[0]);
