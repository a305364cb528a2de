/* user.h - what the user service's files share. */
#ifndef OMS_USER_H
#define OMS_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "chore.h"
#include "http.h"
#include "pg.h"
#include "server.h"
#include "step.h"
#include "uuid.h"

typedef struct user_config {
    int64_t token_ttl_seconds;   /* JWT_TTL_SECONDS */
    int64_t login_window_ms;     /* LOGIN_WINDOW_SECONDS, in ms */
    int max_failures_per_email;  /* LOGIN_MAX_FAILURES_PER_EMAIL */
    int max_failures_per_ip;     /* LOGIN_MAX_FAILURES_PER_IP */
    uint32_t argon2_memory_kib;  /* ARGON2_MEMORY_KIB */
    uint32_t argon2_iterations;  /* ARGON2_ITERATIONS */
    uint32_t argon2_parallelism; /* ARGON2_PARALLELISM */
    int attempts_retention_days; /* LOGIN_ATTEMPTS_RETENTION_DAYS */
    int cache_ttl_seconds;       /* USER_CACHE_TTL_SECONDS */
} user_config_t;

extern user_config_t user_config;

/* queries.c: every SQL statement of the service. */
extern const pg_statement_t user_statements[];
extern const size_t user_statement_count;

/* validation.c: the shape of what clients send. */
#define USER_EMAIL_MAX    254
#define USER_PASSWORD_MIN 10  /* characters */
#define USER_PASSWORD_MAX 128 /* characters */
#define USER_NAME_MAX     100 /* characters */

/* True for an address like local@example.com (ASCII, one '@', a dotted
 * domain of letters, digits and '-'); the check a sign-up form would make. */
bool user_valid_email(const char *email);

/* Reads "email" (an address, see user_valid_email) and "password" (1 to
 * USER_PASSWORD_MAX characters' worth of bytes) from a request body.
 * Returns 0, or -1 with `error` naming the field. */
int user_read_credentials(const json_t *body, const char **email, const char **password, json_field_error_t *error);

/* Parses a role a user account may hold: "customer" or "admin" (returns 0,
 * or -1). "service" names a token role but no account's: services mint
 * their own tokens, and an account promoted to it would be one. */
int user_parse_account_role(const char *name, jwt_role_t *role);

/* Copies ASCII `text` lower-cased into `out` (truncated to size - 1). */
void user_lower_ascii(const char *text, char *out, size_t size);

/* passwords.c: argon2id off the event loop (work_pool.h). */

/* Computes the dummy hash that unknown emails are checked against, so that
 * they cost what a real account costs. Call before server_run; 0 or -1. */
int passwords_init(void);

/* Hashes `password` on the background pool as a step of `r`, then calls
 * `done(data, hash)` on the loop with the PHC-format hash (valid during the
 * call). Returns 0, or -1 when the pool is saturated: then it has answered
 * 503 and `done` never runs. */
typedef void (*password_hashed_fn)(void *data, const char *hash);
int password_hash(http_request_t *r, const char *password, password_hashed_fn done, void *data);

/* Checks `password` against `hash` (NULL: against the dummy hash, which
 * never matches) on the pool, then calls `done(data, matches)`. Returns 0,
 * or -1 after answering 503 when the pool is saturated. */
typedef void (*password_checked_fn)(void *data, bool matches);
int password_verify(http_request_t *r, const char *password, const char *hash, password_checked_fn done, void *data);

/* registration.c */
void registration_handle(http_request_t *r);

/* user_metrics.c: the service's business metrics. */
void user_metrics_register(void);
/* outcome: success, bad_credentials, locked, invalid */
void user_count_login(const char *outcome);
/* outcome: created, duplicate, invalid */
void user_count_registration(const char *outcome);
/* result: hit, miss, error, bypass */
void user_count_cache(const char *result);

/* login.c */
void login_handle(http_request_t *r);
void logout_handle(http_request_t *r);

/* login_limiter.c: brute-force protection in Redis (sliding windows). */

/* Counts this attempt against `email` and `client_ip` unless either has
 * reached its limit within the window, as a step of `r`. Calls
 * `done(data, retry_after_s)` with 0 (go on; the attempt counts as a
 * failure until login_limiter_forgive) or with the seconds until the
 * lockout lifts. Answers 503 itself, without calling `done`, when Redis
 * cannot answer. */
typedef void (*login_limiter_fn)(void *data, int retry_after_s);
void login_limiter_check(http_request_t *r, const char *email, const char *client_ip, char attempt_id[17],
                         login_limiter_fn done, void *data);

/* After a successful login: the attempt was no failure, and the account's
 * failures are forgotten (the address keeps its other failures). */
void login_limiter_forgive(worker_t *worker, const char *email, const char *client_ip, const char *attempt_id);

/* When the password could not be checked (database or hashing pool
 * unavailable): the attempt does not count at all. Delivered until Redis
 * confirms it, within the window; safe before or after the charge lands. */
void login_limiter_refund(worker_t *worker, const char *email, const char *client_ip, const char *attempt_id);

/* Releases this thread's refunds still being delivered (worker shutdown). */
void login_limiter_dispose(void);

/* accounts.c */

/* Stores a user's document (its fresh version after a change) in the
 * Redis cache that /me reads, for USER_CACHE_TTL_SECONDS. */
void accounts_cache_store(worker_t *worker, const char *id, const char *doc, size_t len);
void accounts_handle_me(http_request_t *r);
void accounts_handle_get(http_request_t *r);
void accounts_handle_list(http_request_t *r);
void accounts_handle_update(http_request_t *r);

/* attempts.c: the login_attempts table. */

/* Records an attempt (outcome: success, bad_credentials, locked) as a step
 * of `r` and calls `done(data)` once it is stored or failed (failures are
 * logged, not answered: the table is evidence, not the login's outcome). */
void attempts_record(http_request_t *r, const char *email, const char *outcome, step_done_fn done, void *data);

/* The client's address as the inet parameter of the attempt tables, NULL
 * when unknown (r->client is always a valid address or ""). */
const char *attempts_client_ip(const http_request_t *r);

/* Worker 0 deletes attempts older than the retention period, hourly: a
 * chore. */
void attempts_start_retention(chore_t *chore, worker_t *worker);

#endif
