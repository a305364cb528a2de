/* accounts.c - reading and administering accounts:
 *
 *   GET   /api/users/me      the caller's own account (any valid token)
 *   GET   /api/users/{id}    one account (internal: the notification service
 *                            looks up whom to write to)
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
#define CACHE_KEY_MAX     (16 + JWT_ID_MAX)

/* GET /api/users/me: check_cache -> load_account -> store_and_answer */
typedef struct me_read {
    http_request_t *r;
    const char *id;
    bool by_id; /* GET /api/users/{id}: a missing account is a 404, not a bad token */
} me_read_t;

/* PATCH /api/users/{id}: update_user (user_set_role) -> revoke_tokens -> answer_role_set */
typedef struct role_change {
    http_request_t *r;
    char id[JWT_ID_MAX]; /* lower-cased, as token subjects are */
    char by[JWT_ID_MAX];
    const char *document; /* the updated user, answered once its tokens are revoked */
    size_t document_len;
} role_change_t;

/* --- GET /api/users/me ----------------------------------------------------------- */

static void cache_key(char *buf, size_t size, const char *id)
{
    snprintf(buf, size, "users:user:%s", id);
}

void accounts_cache_store(worker_t *worker, const char *id, const char *doc, size_t len)
{
    char key[CACHE_KEY_MAX];
    cache_key(key, sizeof(key), id);
    cache_put(worker, key, doc, len, user_config.cache_ttl_seconds);
}

static void store_and_answer(void *data, const PGresult *result)
{
    me_read_t *me = data;
    if (PQntuples(result) == 0 && me->by_id) {
        http_respond_error(me->r, 404, "not_found", "no user with id %s", me->id);
        return;
    }
    if (PQntuples(result) == 0) {
        http_respond_error(me->r, 401, "invalid_token", "the token's account no longer exists");
        return;
    }
    const char *doc = PQgetvalue(result, 0, 0);
    size_t len = (size_t)PQgetlength(result, 0, 0);
    accounts_cache_store(me->r->super.worker, me->id, doc, len);
    http_respond_json_text(me->r, 200, doc, len);
}

static void load_account(void *data, const char *cached, size_t len)
{
    me_read_t *me = data;
    if (cached != NULL) {
        http_respond_json_text(me->r, 200, cached, len);
        return;
    }
    const char *params[] = {me->id};
    step_query(&me->r->super, "user_get", params, store_and_answer, me);
}

/* Cache first: /me is what every client calls after logging in. */
static void show_me(http_request_t *r, const jwt_claims_t *who)
{
    if (!uuid_is_valid(who->sub)) { /* a token for someone who is no user */
        http_respond_error(r, 401, "invalid_token", "the token does not name an account");
        return;
    }
    me_read_t *me = context_alloc(&r->super, sizeof(*me));
    *me = (me_read_t){r, who->sub, false};
    char key[CACHE_KEY_MAX];
    cache_key(key, sizeof(key), who->sub);
    cache_get(&r->super, key, false, user_count_cache, load_account, me);
}

void accounts_handle_me(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, show_me);
}

/* --- GET /api/users/{id} ---------------------------------------------------------- */

static void show_user(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    const char *id = http_path_param(r, "id");
    if (id == NULL || !uuid_is_valid(id)) {
        json_field_error_t error;
        json_fail(&error, "id", "id must be a user's UUID");
        http_respond_field_error(r, &error);
        return;
    }
    me_read_t *me = context_alloc(&r->super, sizeof(*me));
    char *lower = context_strdup(&r->super, id, SIZE_MAX); /* the cache's key is the lower-case id */
    for (char *p = lower; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    *me = (me_read_t){r, lower, true};
    char key[CACHE_KEY_MAX];
    cache_key(key, sizeof(key), lower);
    cache_get(&r->super, key, false, user_count_cache, load_account, me);
}

void accounts_handle_get(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, show_user);
}

/* --- GET /api/users ------------------------------------------------------------ */

static void answer_page(void *data, const PGresult *result)
{
    http_respond_json_text(data, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void list_users(http_request_t *r, const jwt_claims_t *who)
{
    (void)who;
    http_page_t page;
    if (!http_query_page(r, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, &page))
        return;
    const char *role = http_query_param(r, "role");
    jwt_role_t parsed;
    if (role != NULL && user_parse_account_role(role, &parsed) != 0) {
        json_field_error_t error;
        json_fail(&error, "role", "role must be customer or admin");
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {role, page.limit_text, page.offset_text}; /* copied by the step */
    step_query(&r->super, "user_list", params, answer_page, r);
}

void accounts_handle_list(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, list_users);
}

/* --- PATCH /api/users/{id} ----------------------------------------------------- */

/* Runs even if the client has gone: the revocation was sent regardless. */
static void answer_role_set(void *data, const redisReply *reply, const char *error)
{
    role_change_t *change = data;
    http_request_t *r = change->r;
    if (context_is_cancelled(&r->super))
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* The role is set; the old tokens could not be voided. Say so: a
         * retry sets the same role again and revokes again. */
        context_error(&r->super, "role set but old tokens not revoked", LOG_STRING("user_id", change->id),
                      LOG_STRING("reason", reply == NULL ? error : reply->str));
        context_unavailable(&r->super, "redis", "role set, but existing tokens could not be revoked; retry");
        return;
    }
    http_respond_json_text(r, 200, change->document, change->document_len);
}

/* A role update always revokes the user's tokens, whatever the previous
 * role: they carry the role they were issued with, and a retried request
 * (after a 503) must revoke as surely as the first one. Once the database
 * has the new role this happens even if the client has gone. */
static void revoke_tokens(void *data, const pg_reply_t *reply)
{
    role_change_t *change = data;
    http_request_t *r = change->r;
    bool set = reply->status == PG_OK && PQntuples(reply->result) == 1 && !PQgetisnull(reply->result, 0, 1);
    if (set) {
        const char *doc = PQgetvalue(reply->result, 0, 1);
        size_t len = (size_t)PQgetlength(reply->result, 0, 1);
        accounts_cache_store(r->super.worker, change->id, doc, len);
        context_info(&r->super, "role set", LOG_STRING("user_id", change->id),
                     LOG_STRING("from", PQgetvalue(reply->result, 0, 0)), LOG_STRING("by", change->by));
        change->document = context_strdup(&r->super, doc, len);
        change->document_len = len;
        auth_revoke_user(&r->super, change->id, (int64_t)time(NULL), user_config.token_ttl_seconds, answer_role_set,
                         change);
        return;
    }
    if (context_is_cancelled(&r->super) || !step_check_pg(&r->super, reply))
        return;
    if (PQntuples(reply->result) == 0)
        http_respond_error(r, 404, "not_found", "no user with id %s", change->id);
    else
        http_respond_error(r, 409, "last_admin", "the last admin cannot be demoted");
}

static void update_user(http_request_t *r, const jwt_claims_t *who)
{
    role_change_t *change = context_alloc(&r->super, sizeof(*change));
    change->r = r;
    snprintf(change->by, sizeof(change->by), "%s", who->sub);
    const char *id = http_path_param(r, "id");
    json_field_error_t error;
    if (id == NULL || !uuid_is_valid(id)) {
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
    jwt_role_t parsed;
    int status = json_reject_unknown_fields(body, allowed, &error);
    if (status == 0)
        status = json_read_string(body, "role", true, 1, 16, &role, &error);
    if (status == 0 && user_parse_account_role(role, &parsed) != 0)
        status = json_fail(&error, "role", "role must be customer or admin");
    if (status != 0) {
        json_decref(body);
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {change->id, role};
    step_query_raw(&r->super, "user_set_role", params, revoke_tokens, change);
    json_decref(body);
}

void accounts_handle_update(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, update_user);
}
