/* queries.c - the user service's SQL, in one place.
 *
 * Each statement is prepared once per connection under its name; the name is
 * also the `operation` label of db_client_operation_duration_seconds. Emails
 * are always compared as lower(email), which the unique index covers.
 */
#include "user.h"

const pg_statement_t user_statements[] = {
    {"user_email_taken", "SELECT 1 FROM users.users WHERE lower(email) = lower($1)", 1},

    /* Inserts the user and its user.registered outbox event together. */
    {"user_register", "SELECT users.register($1, $2, $3, $4)::text", 4},

    /* What a password check needs: the id and the hash. */
    {"user_for_login", "SELECT id, password_hash FROM users.users WHERE lower(email) = lower($1)", 1},

    /* A successful login: stamp last_login_at and record the attempt. */
    {"user_logged_in",
     "WITH attempt AS (INSERT INTO users.login_attempts (email, client_ip, outcome)"
     "                 VALUES (lower($2), $3::inet, 'success'))"
     " UPDATE users.users SET last_login_at = now() WHERE id = $1::uuid"
     " RETURNING users.user_json(users)::text",
     3},

    {"login_attempt_insert",
     "INSERT INTO users.login_attempts (email, client_ip, outcome) VALUES (lower($1), $2::inet, $3)", 3},

    {"login_attempts_prune",
     "WITH deleted AS (DELETE FROM users.login_attempts"
     "                 WHERE attempted_at < now() - make_interval(days => $1::int) RETURNING 1)"
     " SELECT count(*) FROM deleted",
     1},

    {"user_get", "SELECT users.user_json(u)::text FROM users.users u WHERE u.id = $1::uuid", 1},

    /* One round trip returns the page and the total as one document. */
    {"user_list",
     "SELECT jsonb_build_object("
     "  'items', coalesce((SELECT jsonb_agg(users.user_json(u) ORDER BY u.created_at, u.id)"
     "                     FROM (SELECT * FROM users.users WHERE $1::text IS NULL OR role = $1"
     "                           ORDER BY created_at, id LIMIT $2::int OFFSET $3::int) u), '[]'),"
     "  'total', (SELECT count(*) FROM users.users WHERE $1::text IS NULL OR role = $1),"
     "  'limit', $2::int, 'offset', $3::int)::text",
     3},

    /* Sets a role unless it would leave no admin (migrations/003): no row
     * when the user does not exist, a NULL document when refused. */
    {"user_set_role", "SELECT previous_role, document::text FROM users.set_role($1::uuid, $2)", 2},
};

const size_t user_statement_count = sizeof(user_statements) / sizeof(user_statements[0]);
