/* login.c - POST /api/users/login and POST /api/users/logout.
 *
 * A login is a sequence of steps, each waiting on something:
 *
 *   read_credentials -> login_limiter_check (Redis: locked out?)
 *     -> find_account (PostgreSQL) -> password_verify (argon2id, background)
 *     -> on success: record_success (PostgreSQL) -> issue_token -> 200
 *     -> on failure: attempts_record -> 401
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
    char *password;                 /* request pool; wiped once handed to the check */
    char attempt_id[17];
    char user_id[AUTH_ID_MAX];
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
        login->password = h2o_strdup(&r->req->pool, password, SIZE_MAX).base;
    }
    json_decref(body);
    if (status != 0) {
        user_count_login("invalid");
        log_warn(&r->trace, "login rejected", LOG_STRING("reason", "invalid request"), LOG_STRING("client", r->client),
                 LOG_STRING("field", error.field));
        http_respond_field_error(r, &error);
    }
    return status;
}

/* --- failure paths ---------------------------------------------------------- */

static void on_lockout_recorded(http_request_t *r)
{
    login_t *login = r->state;
    char retry_after[16];
    int len = snprintf(retry_after, sizeof(retry_after), "%d", login->retry_after_s);
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&r->req->pool, retry_after, (size_t)len).base, (size_t)len);
    http_respond_error_details(r, 429, "too_many_attempts", "too many failed logins; try again later",
                               json_pack("{s:i}", "retry_after_seconds", login->retry_after_s));
}

static void on_failure_recorded(http_request_t *r)
{
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
    http_respond_error(r, 401, "invalid_credentials", "the email or the password is wrong");
}

/* --- success path ------------------------------------------------------------ */

static void format_time(int64_t seconds, char out[32])
{
    time_t t = (time_t)seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void on_success_recorded(void *data, const pg_reply_t *reply)
{
    login_t *login = data;
    http_request_t *r = login->r;
    if (!http_request_resume(r) || !http_check_pg_reply(r, reply))
        return;
    if (PQntuples(reply->result) == 0) { /* deleted between the check and now */
        http_respond_error(r, 401, "invalid_credentials", "the email or the password is wrong");
        return;
    }
    /* The role comes from this statement's row, not from the lookup before
     * the password check: a role change in between must not be undone. */
    json_t *user = json_loadb(PQgetvalue(reply->result, 0, 0), (size_t)PQgetlength(reply->result, 0, 0), 0, NULL);
    auth_claims_t claims = {.iat = (int64_t)time(NULL)};
    if (user == NULL || auth_role_parse(json_string_value(json_object_get(user, "role")) ?: "", &claims.role) != 0) {
        json_decref(user);
        http_respond_error(r, 500, "internal_error", "the account's role is unreadable");
        return;
    }
    claims.exp = claims.iat + user_config.token_ttl_seconds;
    snprintf(claims.sub, sizeof(claims.sub), "%s", login->user_id);
    snprintf(claims.jti, sizeof(claims.jti), "%016" PRIx64 "%016" PRIx64, random_u64(), random_u64());
    char token[AUTH_TOKEN_MAX], expires_at[32];
    if (auth_token_sign(&claims, server_config()->jwt_secret, token, sizeof(token)) < 0) {
        json_decref(user);
        http_respond_error(r, 500, "internal_error", "the token could not be signed");
        return;
    }
    format_time(claims.exp, expires_at);
    user_count_login("success");
    log_info(&r->trace, "login succeeded", LOG_STRING("user_id", login->user_id), LOG_STRING("client", r->client),
             LOG_STRING("role", auth_role_name(claims.role)));
    /* The fresh document (new last_login_at) replaces the cached one. */
    accounts_cache_store(r->worker, login->user_id, PQgetvalue(reply->result, 0, 0),
                         (size_t)PQgetlength(reply->result, 0, 0));
    http_respond_json(r, 200,
                      json_pack("{s:s, s:s, s:s, s:I, s:o}", "token", token, "token_type", "Bearer", "expires_at",
                                expires_at, "expires_in", (json_int_t)user_config.token_ttl_seconds, "user", user));
}

/* --- the steps ------------------------------------------------------------------ */

static void on_password_checked(http_request_t *r, bool matches)
{
    login_t *login = r->state;
    if (!matches) {
        user_count_login("bad_credentials");
        log_warn(&r->trace, "login failed", LOG_STRING("email", login->email), LOG_STRING("client", r->client),
                 LOG_STRING("reason", login->user_id[0] != '\0' ? "wrong password" : "unknown email"));
        attempts_record(r, login->email, "bad_credentials", on_failure_recorded);
        return;
    }
    login_limiter_forgive(r->worker, login->email, r->client, login->attempt_id);
    const char *params[] = {login->user_id, login->email, attempts_client_ip(r)};
    http_request_hold(r);
    pg_query(r->worker->pg, "user_logged_in", params, on_success_recorded, login);
}

static void on_account_found(void *data, const pg_reply_t *reply)
{
    login_t *login = data;
    http_request_t *r = login->r;
    if (!http_request_resume(r))
        return;
    if (!http_check_pg_reply(r, reply)) { /* answered 503/500: the attempt checked nothing */
        login_limiter_refund(r->worker, login->email, r->client, login->attempt_id);
        return;
    }
    const char *hash = NULL;
    if (PQntuples(reply->result) == 1) {
        snprintf(login->user_id, sizeof(login->user_id), "%s", PQgetvalue(reply->result, 0, 0));
        hash = PQgetvalue(reply->result, 0, 1);
    }
    if (password_verify(r, login->password, hash, on_password_checked) != 0)
        login_limiter_refund(r->worker, login->email, r->client, login->attempt_id);
    explicit_bzero(login->password, strlen(login->password));
}

static void on_limiter_checked(http_request_t *r, int retry_after_s)
{
    login_t *login = r->state;
    if (retry_after_s > 0) {
        login->retry_after_s = retry_after_s;
        user_count_login("locked");
        log_warn(&r->trace, "login locked out", LOG_STRING("email", login->email), LOG_STRING("client", r->client),
                 LOG_INT("retry_after_s", retry_after_s));
        attempts_record(r, login->email, "locked", on_lockout_recorded);
        return;
    }
    const char *params[] = {login->email};
    http_request_hold(r);
    pg_query(r->worker->pg, "user_for_login", params, on_account_found, login);
}

void login_handle(http_request_t *r)
{
    login_t *login = http_request_alloc(r, sizeof(*login));
    login->r = r;
    r->state = login;
    if (read_credentials(r, login) != 0)
        return;
    login_limiter_check(r, login->email, r->client, login->attempt_id, on_limiter_checked);
}

/* --- logout ------------------------------------------------------------------------ */

static void on_token_revoked(void *data, const redisReply *reply, const char *error)
{
    http_request_t *r = data;
    if (!http_request_resume(r))
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        http_respond_unavailable(r, "redis", reply == NULL ? error : reply->str);
        return;
    }
    http_respond_json(r, 200, json_pack("{s:s}", "status", "logged_out"));
}

static void logout(http_request_t *r, const auth_claims_t *who)
{
    log_info(&r->trace, "logout", LOG_STRING("user_id", who->sub));
    http_request_hold(r);
    auth_revoke_token(r->worker->redis, who, (int64_t)time(NULL), on_token_revoked, r);
}

void logout_handle(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_CUSTOMER, logout);
}
