/* login.c - POST /api/users/login and POST /api/users/logout.
 *
 * A login is a sequence of steps, each waiting on something:
 *
 *   read_credentials -> login_limiter_check (Redis: locked out?)
 *     -> find_account (PostgreSQL) -> check_password (argon2id, background)
 *     -> record_outcome: on success user_logged_in (PostgreSQL) -> issue_token -> 200
 *                        on failure attempts_record -> answer_bad_credentials -> 401
 *   (locked out: attempts_record -> answer_locked -> 429)
 *
 * A wrong email and a wrong password take the same path and the same time:
 * an unknown email is checked against a dummy hash of the same cost, and
 * both answer the same 401, so the API does not reveal which accounts exist.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "random.h"
#include "user.h"

typedef struct login {
    http_request_t *r;
    char email[USER_EMAIL_MAX + 1]; /* lower-cased */
    char *password;                 /* request memory; wiped once handed to the check */
    char attempt_id[17];
    char user_id[JWT_ID_MAX];
    int retry_after_s;
} login_t;

/* Reads {email, password}; answers 400 (outcome invalid) on a bad body. */
static int read_credentials(http_request_t *r, login_t *login)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL) {
        user_count_login("invalid");
        return -1;
    }
    static const char *const allowed[] = {"email", "password", NULL};
    const char *email, *password;
    json_field_error_t error;
    int status = json_reject_unknown_fields(body, allowed, &error);
    if (status == 0)
        status = user_read_credentials(body, &email, &password, &error);
    if (status == 0) {
        user_lower_ascii(email, login->email, sizeof(login->email));
        login->password = context_strdup(&r->super, password, SIZE_MAX);
    }
    json_decref(body);
    if (status != 0) {
        user_count_login("invalid");
        context_warn(&r->super, "login rejected", LOG_STRING("reason", "invalid request"),
                     LOG_STRING("client", r->client), LOG_STRING("field", error.field));
        http_respond_field_error(r, &error);
    }
    return status;
}

/* --- failure paths ---------------------------------------------------------- */

static void answer_locked(void *data)
{
    login_t *login = data;
    char retry_after[16];
    snprintf(retry_after, sizeof(retry_after), "%d", login->retry_after_s);
    http_add_header(login->r, "retry-after", retry_after);
    http_respond_error_details(login->r, 429, "too_many_attempts", "too many failed logins; try again later",
                               json_pack("{s:i}", "retry_after_seconds", login->retry_after_s));
}

static void answer_bad_credentials(void *data)
{
    login_t *login = data;
    http_add_header(login->r, "www-authenticate", "Bearer");
    http_respond_error(login->r, 401, "invalid_credentials", "the email or the password is wrong");
}

/* --- success path ------------------------------------------------------------ */

static void format_time(int64_t seconds, char out[32])
{
    time_t t = (time_t)seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void issue_token(void *data, const PGresult *result)
{
    login_t *login = data;
    http_request_t *r = login->r;
    if (PQntuples(result) == 0) { /* deleted between the check and now */
        http_respond_error(r, 401, "invalid_credentials", "the email or the password is wrong");
        return;
    }
    /* The role comes from this statement's row, not from the lookup before
     * the password check: a role change in between must not be undone. */
    json_t *user = json_loadb(PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0), 0, NULL);
    jwt_claims_t claims = {.iat = (int64_t)time(NULL)};
    if (user == NULL ||
        user_parse_account_role(json_string_value(json_object_get(user, "role")) ?: "", &claims.role) != 0) {
        json_decref(user);
        http_respond_error(r, 500, "internal_error", "the account's role is unreadable");
        return;
    }
    claims.exp = claims.iat + user_config.token_ttl_seconds;
    snprintf(claims.sub, sizeof(claims.sub), "%s", login->user_id);
    snprintf(claims.jti, sizeof(claims.jti), "%016" PRIx64 "%016" PRIx64, random_u64(), random_u64());
    char token[JWT_TOKEN_MAX], expires_at[32];
    if (jwt_sign(&claims, r->server->jwt_secret, token, sizeof(token)) < 0) {
        json_decref(user);
        http_respond_error(r, 500, "internal_error", "the token could not be signed");
        return;
    }
    format_time(claims.exp, expires_at);
    user_count_login("success");
    context_info(&r->super, "login succeeded", LOG_STRING("user_id", login->user_id), LOG_STRING("client", r->client),
                 LOG_STRING("role", jwt_role_name(claims.role)));
    /* The fresh document (new last_login_at) replaces the cached one. */
    accounts_cache_store(r->super.worker, login->user_id, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
    http_respond_json(r, 200,
                      json_pack("{s:s, s:s, s:s, s:I, s:o}", "token", token, "token_type", "Bearer", "expires_at",
                                expires_at, "expires_in", (json_int_t)user_config.token_ttl_seconds, "user", user));
}

/* --- the steps ------------------------------------------------------------------ */

static void record_outcome(void *data, bool matches)
{
    login_t *login = data;
    http_request_t *r = login->r;
    if (!matches) {
        user_count_login("bad_credentials");
        context_warn(&r->super, "login failed", LOG_STRING("email", login->email), LOG_STRING("client", r->client),
                     LOG_STRING("reason", login->user_id[0] != '\0' ? "wrong password" : "unknown email"));
        attempts_record(r, login->email, "bad_credentials", answer_bad_credentials, login);
        return;
    }
    login_limiter_forgive(r->super.worker, login->email, r->client, login->attempt_id);
    const char *params[] = {login->user_id, login->email, attempts_client_ip(r)};
    step_query(&r->super, "user_logged_in", params, issue_token, login);
}

static void check_password(void *data, const PGresult *result)
{
    login_t *login = data;
    http_request_t *r = login->r;
    const char *hash = NULL;
    if (PQntuples(result) == 1) {
        snprintf(login->user_id, sizeof(login->user_id), "%s", PQgetvalue(result, 0, 0));
        hash = PQgetvalue(result, 0, 1);
    }
    if (password_verify(r, login->password, hash, record_outcome, login) != 0)
        login_limiter_refund(r->super.worker, login->email, r->client, login->attempt_id);
    explicit_bzero(login->password, strlen(login->password));
}

/* A lookup that failed checked nothing: the attempt is refunded (even if
 * the client has gone), and the failure answered 503/500. */
static void on_account_lookup(void *data, const pg_reply_t *reply)
{
    login_t *login = data;
    http_request_t *r = login->r;
    if (reply->status != PG_OK) {
        login_limiter_refund(r->super.worker, login->email, r->client, login->attempt_id);
        step_check_pg(&r->super, reply);
        return;
    }
    if (!context_is_cancelled(&r->super))
        check_password(login, reply->result);
}

static void find_account(void *data, int retry_after_s)
{
    login_t *login = data;
    http_request_t *r = login->r;
    if (retry_after_s > 0) {
        login->retry_after_s = retry_after_s;
        user_count_login("locked");
        context_warn(&r->super, "login locked out", LOG_STRING("email", login->email), LOG_STRING("client", r->client),
                     LOG_INT("retry_after_s", retry_after_s));
        attempts_record(r, login->email, "locked", answer_locked, login);
        return;
    }
    const char *params[] = {login->email};
    step_query_raw(&r->super, "user_for_login", params, on_account_lookup, login);
}

void login_handle(http_request_t *r)
{
    login_t *login = context_alloc(&r->super, sizeof(*login));
    login->r = r;
    if (read_credentials(r, login) != 0)
        return;
    login_limiter_check(r, login->email, r->client, login->attempt_id, find_account, login);
}

/* --- logout ------------------------------------------------------------------------ */

static void answer_logged_out(void *data, const redisReply *reply)
{
    (void)reply;
    http_respond_json(data, 200, json_pack("{s:s}", "status", "logged_out"));
}

static void logout(http_request_t *r, const jwt_claims_t *who)
{
    context_info(&r->super, "logout", LOG_STRING("user_id", who->sub));
    auth_revoke_token(&r->super, who, (int64_t)time(NULL), answer_logged_out, r);
}

void logout_handle(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, logout);
}
