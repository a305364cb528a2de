/* queries.c - the notification service's SQL, in one place.
 *
 * Each statement is prepared once per connection under its name (also the
 * `operation` label of db_client_operation_duration_seconds). Taking an
 * event in is one function call (migrations/001): the dedupe record, the
 * inbox rows and the deliveries commit together.
 */
#include "notification.h"

const pg_statement_t notification_statements[] = {
    /* id, type, deliveries, inbox, facts, lease_ms -> is_new, claimed, held */
    {"take_in",
     "SELECT is_new, claimed::text, held FROM notifications.take_in($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::int)",
     6},
    /* results [{event_id, channel, recipient, claim, error}] */
    {"settle", "SELECT notifications.settle($1::jsonb)", 1},
    /* limit, lease_ms -> [{event_id, channel, recipient, subject, body, claim}] */
    {"reclaim", "SELECT notifications.reclaim($1::int, $2::int)::text", 2},

    /* user_id -> email, name */
    {"recipient_get", "SELECT email, name FROM notifications.recipients WHERE user_id = $1::uuid", 1},
    /* user_id, email, name: learnt from the user service */
    {"recipient_put",
     "INSERT INTO notifications.recipients (user_id, email, name) VALUES ($1::uuid, $2, $3)"
     " ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, updated_at = now()",
     3},
    /* order_id -> user_id (payment events name only the order) */
    {"order_owner", "SELECT user_id::text FROM notifications.orders WHERE order_id = $1", 1},

    /* user_id, admin?, unread only?, limit, offset -> {items, unread, limit, offset} */
    {"inbox_list",
     "WITH visible AS ("
     "  SELECT * FROM notifications.inbox n"
     "   WHERE (n.audience = 'user' AND n.user_id = $1::uuid) OR (n.audience = 'admin' AND $2::boolean))"
     " SELECT jsonb_build_object("
     "  'items', coalesce((SELECT jsonb_agg(notifications.inbox_json(p) ORDER BY p.created_at DESC, p.id)"
     "                      FROM (SELECT * FROM visible v WHERE NOT $3::boolean OR v.read_at IS NULL"
     "                             ORDER BY v.created_at DESC, v.id LIMIT $4::int OFFSET $5::int) p), '[]'),"
     "  'unread', (SELECT count(*) FROM visible WHERE read_at IS NULL),"
     "  'limit', $4::int, 'offset', $5::int)::text",
     5},
    /* id, user_id, admin? -> the notification, marked read (no row: not the caller's) */
    {"inbox_read",
     "UPDATE notifications.inbox n SET read_at = coalesce(n.read_at, now())"
     " WHERE n.id = $1::uuid"
     "   AND ((n.audience = 'user' AND n.user_id = $2::uuid) OR (n.audience = 'admin' AND $3::boolean))"
     " RETURNING notifications.inbox_json(n)::text",
     3},
};

const size_t notification_statement_count = sizeof(notification_statements) / sizeof(notification_statements[0]);
