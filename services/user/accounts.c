/* accounts.c - reading and administering accounts:
 *
 *   GET   /api/users/me      the caller's own account (any valid token)
 *   GET   /api/users         all accounts, paged (admin)
 *   PATCH /api/users/{id}    change a role (admin)
 *
 * User documents are cached in Redis (users:user:<id>, USER_CACHE_TTL_SECONDS)
 * and rewritten by every change this service makes (login, role).
 * A role change also revokes every token the user already holds: their
 * tokens carry the old role, and a demoted admin must not keep admin rights
 * until the token expires.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "log.h"
#include "user.h"

#define DEFAULT_PAGE_SIZE 20
#define MAX_PAGE_SIZE     100
#define MAX_OFFSET        1000000
#define CACHE_KEY_MAX     (16 + AUTH_ID_MAX)

/* --- GET /api/users/me ----------------------------------------------------------- */

static void cache_key(char *buf, size_t size, const char *id)
{
    snprintf(buf, size, "users:user:%s", id);
}

void accounts_cache_store(server_worker_t *worker, const char *id, const char *doc, size_t len)
{
    char key[CACHE_KEY_MAX];
    cache_key(key, sizeof(key), id);
    cache_put(worker, key, doc, len, user_config.cache_ttl_seconds);
}

static void on_me_loaded(void *data, const pg_reply_t *reply)
{
    http_request_t *r = data;
    if (!http_request_resume(r) || !http_check_pg_reply(r, reply))
        return;
    if (PQntuples(reply->result) == 0) {
        http_respond_error(r, 401, "invalid_token", "the token's account no longer exists");
        return;
    }
    const char *doc = PQgetvalue(reply->result, 0, 0);
    size_t len = (size_t)PQgetlength(reply->result, 0, 0);
    accounts_cache_store(r->worker, r->state, doc, len);
    http_respond_json_text(r, 200, doc, len);
}

static void on_me_cached(http_request_t *r, const char *doc, size_t len)
{
    if (doc != NULL) {
        http_respond_json_text(r, 200, doc, len);
        return;
    }
    const char *params[] = {r->state};
    pg_query(r->worker->pg, "user_get", params, on_me_loaded, http_request_hold(r));
}

/* Cache first: /me is what every client calls after logging in. */
static void show_me(http_request_t *r, const auth_claims_t *who)
{
    if (!user_valid_id(who->sub)) { /* a token for someone who is no user */
        http_respond_error(r, 401, "invalid_token", "the token does not name an account");
        return;
    }
    r->state = (void *)who->sub;
    char key[CACHE_KEY_MAX];
    cache_key(key, sizeof(key), who->sub);
    cache_get(r, key, false, user_count_cache, on_me_cached);
}

void accounts_handle_me(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_CUSTOMER, show_me);
}

/* --- GET /api/users ------------------------------------------------------------ */

static void on_page_loaded(void *data, const pg_reply_t *reply)
{
    http_request_t *r = data;
    if (!http_request_resume(r) || !http_check_pg_reply(r, reply))
        return;
    http_respond_json_text(r, 200, PQgetvalue(reply->result, 0, 0), (size_t)PQgetlength(reply->result, 0, 0));
}

static void list_users(http_request_t *r, const auth_claims_t *who)
{
    (void)who;
    long limit, offset;
    if (!http_query_long(r, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, &limit) ||
        !http_query_long(r, "offset", 0, 0, MAX_OFFSET, &offset))
        return;
    const char *role = http_query_param(r, "role");
    auth_role_t parsed;
    if (role != NULL && auth_role_parse(role, &parsed) != 0) {
        json_field_error_t error;
        json_fail(&error, "role", "role must be customer or admin");
        http_respond_field_error(r, &error);
        return;
    }
    char *numbers = http_request_alloc(r, 48);
    snprintf(numbers, 24, "%ld", limit);
    snprintf(numbers + 24, 24, "%ld", offset);
    const char *params[] = {role, numbers, numbers + 24};
    pg_query(r->worker->pg, "user_list", params, on_page_loaded, http_request_hold(r));
}

void accounts_handle_list(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_ADMIN, list_users);
}

/* --- PATCH /api/users/{id} ----------------------------------------------------- */

typedef struct role_change {
    http_request_t *r;
    char id[AUTH_ID_MAX]; /* lower-cased, as token subjects are */
    char by[AUTH_ID_MAX];
    char *document; /* the updated user, answered once its tokens are revoked */
    size_t document_len;
} role_change_t;

static void on_tokens_revoked(void *data, const redisReply *reply, const char *error)
{
    role_change_t *change = data;
    http_request_t *r = change->r;
    if (!http_request_resume(r))
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* The role is set; the old tokens could not be voided. Say so: a
         * retry sets the same role again and revokes again. */
        log_error(&r->trace, "role set but old tokens not revoked", LOG_STRING("user_id", change->id),
                  LOG_STRING("reason", reply == NULL ? error : reply->str));
        http_respond_unavailable(r, "redis", "role set, but existing tokens could not be revoked; retry");
        return;
    }
    http_respond_json_text(r, 200, change->document, change->document_len);
}

/* A role update always revokes the user's tokens, whatever the previous
 * role: they carry the role they were issued with, and a retried request
 * (after a 503) must revoke as surely as the first one. */
static void on_role_set(void *data, const pg_reply_t *reply)
{
    role_change_t *change = data;
    http_request_t *r = change->r;
    server_worker_t *worker = r->worker;
    bool set = reply->status == PG_OK && PQntuples(reply->result) == 1 && !PQgetisnull(reply->result, 0, 1);
    if (set) {
        /* Done in the database: revoke even if the client has gone (the
         * context may go with it, so copy the id first). */
        char id[AUTH_ID_MAX];
        memcpy(id, change->id, sizeof(id));
        const char *doc = PQgetvalue(reply->result, 0, 1);
        size_t len = (size_t)PQgetlength(reply->result, 0, 1);
        accounts_cache_store(worker, id, doc, len);
        if (!http_request_resume(r)) {
            auth_revoke_user(worker->redis, id, (int64_t)time(NULL), user_config.token_ttl_seconds, NULL, NULL);
            return;
        }
        log_info(&r->trace, "role set", LOG_STRING("user_id", id), LOG_STRING("from", PQgetvalue(reply->result, 0, 0)),
                 LOG_STRING("by", change->by));
        change->document = http_request_alloc(r, len + 1);
        memcpy(change->document, doc, len);
        change->document_len = len;
        http_request_hold(r);
        auth_revoke_user(worker->redis, id, (int64_t)time(NULL), user_config.token_ttl_seconds, on_tokens_revoked,
                         change);
        return;
    }
    if (!http_request_resume(r) || !http_check_pg_reply(r, reply))
        return;
    if (PQntuples(reply->result) == 0)
        http_respond_error(r, 404, "not_found", "no user with id %s", change->id);
    else
        http_respond_error(r, 409, "last_admin", "the last admin cannot be demoted");
}

static void update_user(http_request_t *r, const auth_claims_t *who)
{
    role_change_t *change = http_request_alloc(r, sizeof(*change));
    change->r = r;
    snprintf(change->by, sizeof(change->by), "%s", who->sub);
    const char *id = http_path_param(r, "id");
    json_field_error_t error;
    if (id == NULL || !user_valid_id(id)) {
        json_fail(&error, "id", "id must be a user id (a UUID)");
        http_respond_field_error(r, &error);
        return;
    }
    user_lower_ascii(id, change->id, sizeof(change->id)); /* the canonical UUID form */
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return;
    static const char *const allowed[] = {"role", NULL};
    const char *role = NULL;
    auth_role_t parsed;
    int status = json_reject_unknown_fields(body, allowed, &error);
    if (status == 0)
        status = json_read_string(body, "role", true, 1, 16, &role, &error);
    if (status == 0 && auth_role_parse(role, &parsed) != 0)
        status = json_fail(&error, "role", "role must be customer or admin");
    if (status != 0) {
        json_decref(body);
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {change->id, role};
    http_request_hold(r);
    pg_query(r->worker->pg, "user_set_role", params, on_role_set, change);
    json_decref(body);
}

void accounts_handle_update(http_request_t *r)
{
    auth_require(r, AUTH_ROLE_ADMIN, update_user);
}
