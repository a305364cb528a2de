/* Tests for auth.c: the per-request bearer check, run through
 * http_dispatch on routes of the test's own, against the test Redis. A
 * request without a usable token is refused 401 or 403 before anything
 * else; a valid token reaches the handler only once Redis has said it is
 * not revoked; revoked tokens, Redis down and a client who leaves first
 * each end the request without the handler. */
#include "test_support.h"

#include <time.h>

#include "auth.h"

#define SECRET      TEST_JWT_SECRET
#define ADMIN_TOKEN TEST_ADMIN_TOKEN

/* --- the routes ------------------------------------------------------------- */

static int handler_runs;
static jwt_claims_t seen; /* what the handler was handed */

static void answer_allowed(http_request_t *r, const jwt_claims_t *who)
{
    handler_runs++;
    seen = *who;
    http_respond_json(r, 200, json_pack("{s:s}", "sub", who->sub));
}

static void handle_customer(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, answer_allowed);
}

static void handle_admin(http_request_t *r)
{
    auth_require(r, JWT_ROLE_ADMIN, answer_allowed);
}

static const router_route_t routes[] = {
    {"GET", "/api/orders", handle_customer},
    {"GET", "/admin/settings", handle_admin},
};

/* --- fixture: a worker whose Redis is up (or down) ------------------------------ */

static int open_fixture(void **state, bool redis_up)
{
    test_fixture_t *f = test_fixture_new(routes, sizeof(routes) / sizeof(routes[0]));
    test_fixture_open_worker(f, "test", WORKER_REDIS, redis_up);
    handler_runs = 0;
    memset(&seen, 0, sizeof(seen));
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return open_fixture(state, true);
}

static int setup_redis_down(void **state)
{
    return open_fixture(state, false);
}

static int teardown(void **state)
{
    test_fixture_free(*state);
    return 0;
}

/* --- helpers ---------------------------------------------------------------- */

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

/* Claims no other run uses, issued `age` seconds ago, valid for an hour. */
static jwt_claims_t fresh_claims(jwt_role_t role, int64_t age)
{
    jwt_claims_t claims = {.role = role, .iat = now() - age, .exp = now() - age + 3600};
    test_unique_id(claims.sub, sizeof(claims.sub), "user-");
    test_unique_id(claims.jti, sizeof(claims.jti), "token-");
    return claims;
}

static void sign(const jwt_claims_t *claims, const char *secret, char *token, size_t size)
{
    assert_true(jwt_sign(claims, secret, token, size) > 0);
}

/* Starts GET `path`, with `Authorization: <authorization>` unless NULL. */
static http_double_t *start_request(test_fixture_t *f, const char *path, const char *authorization)
{
    http_double_t *d = test_request(f, "GET", path);
    if (authorization != NULL)
        http_double_header(d, "authorization", authorization);
    return d;
}

/* Starts GET `path` with `Bearer <token>`. */
static http_double_t *start_with_token(test_fixture_t *f, const char *path, const char *token)
{
    char authorization[JWT_TOKEN_MAX + 8];
    snprintf(authorization, sizeof(authorization), "Bearer %s", token);
    return start_request(f, path, authorization);
}

/* Sends GET `path` with `Bearer <token>` and waits for the answer. */
static http_double_t *exchange_with_token(test_fixture_t *f, const char *path, const char *token)
{
    http_double_t *d = start_with_token(f, path, token);
    test_request_exchange(f, d);
    return d;
}

static void assert_refused(http_double_t *d, int status, const char *code)
{
    test_assert_error(d, status, code);
    assert_int_equal(handler_runs, 0);
}

/* Set by the revocation steps below (file scope: a step may outlive a
 * failed test's frame). */
static bool revocation_stored;

static void on_token_revoked(void *data, const redisReply *reply)
{
    (void)data;
    (void)reply;
    revocation_stored = true;
}

static void on_user_revoked(void *data, const redisReply *reply, const char *error)
{
    (void)data;
    (void)error;
    revocation_stored = reply != NULL && reply->type != REDIS_REPLY_ERROR;
}

/* Runs auth_revoke_token for `claims` as a unit of work and waits for it. */
static void revoke_token(test_fixture_t *f, const jwt_claims_t *claims)
{
    revocation_stored = false;
    test_work_t *work = test_work_start(&f->worker);
    auth_revoke_token(&work->super, claims, now(), on_token_revoked, NULL);
    context_release(&work->super);
    test_run_until(f->worker.loop, f->worker.busy == 0);
    assert_true(revocation_stored);
}

/* Runs auth_revoke_user for `sub` at time `at` and waits for it. */
static void revoke_user(test_fixture_t *f, const char *sub, int64_t at)
{
    revocation_stored = false;
    test_work_t *work = test_work_start(&f->worker);
    auth_revoke_user(&work->super, sub, at, 3600, on_user_revoked, NULL);
    context_release(&work->super);
    test_run_until(f->worker.loop, f->worker.busy == 0);
    assert_true(revocation_stored);
}

/* --- tests ------------------------------------------------------------------ */

static void test_no_authorization_header_is_401_unauthorized(void **state)
{
    test_fixture_t *f = *state;
    const char *headers[] = {NULL, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        http_double_t *d = start_request(f, "/api/orders", headers[i]);
        test_request_exchange(f, d);
        assert_refused(d, 401, "unauthorized");
        const char *challenge = http_double_response_header(d, "www-authenticate");
        assert_non_null(challenge);
        assert_string_equal(challenge, "Bearer");
    }
}

static void test_an_unusable_token_is_401_invalid_token(void **state)
{
    test_fixture_t *f = *state;
    char expired[JWT_TOKEN_MAX], foreign[JWT_TOKEN_MAX];
    jwt_claims_t old = fresh_claims(JWT_ROLE_CUSTOMER, 7200); /* expired an hour ago */
    sign(&old, SECRET, expired, sizeof(expired));
    jwt_claims_t valid = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&valid, "another-secret-0123456789abcdefgh", foreign, sizeof(foreign));
    const struct {
        const char *token, *reason;
    } cases[] = {
        {"garbage", "malformed"},
        {"a.b.c", "malformed"},
        {expired, "expired"},
        {foreign, "bad_signature"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_double_t *d = exchange_with_token(f, "/api/orders", cases[i].token);
        assert_refused(d, 401, "invalid_token");
        test_assert_contains(d->body, cases[i].reason);
        assert_non_null(http_double_response_header(d, "www-authenticate"));
    }
    assert_int_equal(worker_pending(&f->worker), 0); /* Redis was never asked */
}

static void test_a_customer_token_on_an_admin_endpoint_is_403(void **state)
{
    test_fixture_t *f = *state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&claims, SECRET, token, sizeof(token));
    assert_refused(exchange_with_token(f, "/admin/settings", token), 403, "forbidden");
}

static void test_the_static_admin_token_is_accepted_for_admin(void **state)
{
    test_fixture_t *f = *state;
    http_double_t *d = exchange_with_token(f, "/admin/settings", ADMIN_TOKEN);
    assert_int_equal(d->status, 200);
    assert_int_equal(handler_runs, 1);
    assert_string_equal(seen.sub, "admin-token");
    assert_int_equal(seen.role, JWT_ROLE_ADMIN);

    /* one character more or less is no admin token (nor a JWT) */
    handler_runs = 0;
    assert_refused(exchange_with_token(f, "/admin/settings", ADMIN_TOKEN "x"), 401, "invalid_token");
    char shorter[] = ADMIN_TOKEN;
    shorter[sizeof(shorter) - 2] = '\0';
    assert_refused(exchange_with_token(f, "/admin/settings", shorter), 401, "invalid_token");
}

static void test_a_valid_token_reaches_the_handler_after_redis_answered(void **state)
{
    test_fixture_t *f = *state;
    const struct {
        jwt_role_t role;
        const char *path;
    } cases[] = {
        {JWT_ROLE_CUSTOMER, "/api/orders"},
        {JWT_ROLE_ADMIN, "/api/orders"}, /* more than enough */
        {JWT_ROLE_ADMIN, "/admin/settings"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char token[JWT_TOKEN_MAX];
        jwt_claims_t claims = fresh_claims(cases[i].role, 10);
        sign(&claims, SECRET, token, sizeof(token));
        http_double_t *d = start_with_token(f, cases[i].path, token);
        handler_runs = 0;
        http_dispatch(&f->server, &f->worker, &d->req);
        /* the revocation check is under way: nothing has run or answered */
        assert_int_equal(handler_runs, 0);
        assert_false(d->responded);
        assert_int_equal(redis_client_pending(f->worker.redis), 1);
        test_run_until(f->worker.loop, d->responded);
        assert_int_equal(d->status, 200);
        assert_int_equal(handler_runs, 1);
        assert_string_equal(seen.sub, claims.sub);
        assert_string_equal(seen.jti, claims.jti);
        assert_int_equal(seen.role, claims.role);
        assert_int_equal(seen.iat, claims.iat);
        assert_int_equal(seen.exp, claims.exp);
    }
}

static void test_a_logged_out_token_is_401_token_revoked(void **state)
{
    test_fixture_t *f = *state;
    char token[JWT_TOKEN_MAX], other[JWT_TOKEN_MAX];
    jwt_claims_t claims = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&claims, SECRET, token, sizeof(token));
    jwt_claims_t same_user = claims; /* another session of the same user */
    test_unique_id(same_user.jti, sizeof(same_user.jti), "token-");
    sign(&same_user, SECRET, other, sizeof(other));
    revoke_token(f, &claims);

    /* the deny-list entry lasts as long as the token would have */
    redisContext *redis = test_redis_connect();
    redisReply *ttl = test_redis_command(redis, "TTL %s%s", AUTH_DENIED_PREFIX, claims.jti);
    assert_int_equal(ttl->type, REDIS_REPLY_INTEGER);
    assert_in_range(ttl->integer, 1, claims.exp - now() + 1);
    freeReplyObject(ttl);

    assert_refused(exchange_with_token(f, "/api/orders", token), 401, "token_revoked");
    assert_int_equal(exchange_with_token(f, "/api/orders", other)->status, 200);

    freeReplyObject(test_redis_command(redis, "DEL %s%s", AUTH_DENIED_PREFIX, claims.jti));
    redisFree(redis);
}

static void test_tokens_issued_before_a_user_revocation_are_401(void **state)
{
    test_fixture_t *f = *state;
    jwt_claims_t before = fresh_claims(JWT_ROLE_CUSTOMER, 200); /* issued before the revocation */
    jwt_claims_t at = before, after = before;                   /* the same user */
    at.iat = before.iat + 100;
    after.iat = before.iat + 190;
    test_unique_id(at.jti, sizeof(at.jti), "token-");
    test_unique_id(after.jti, sizeof(after.jti), "token-");
    revoke_user(f, before.sub, at.iat);

    const struct {
        const jwt_claims_t *claims;
        int status;
    } cases[] = {{&before, 401}, {&at, 401}, {&after, 200}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char token[JWT_TOKEN_MAX];
        sign(cases[i].claims, SECRET, token, sizeof(token));
        handler_runs = 0;
        http_double_t *d = exchange_with_token(f, "/api/orders", token);
        if (cases[i].status == 401)
            assert_refused(d, 401, "token_revoked");
        else
            assert_int_equal(d->status, 200);
    }

    redisContext *redis = test_redis_connect();
    freeReplyObject(test_redis_command(redis, "DEL %s%s", AUTH_REVOKED_PREFIX, before.sub));
    redisFree(redis);
}

static void test_redis_down_is_503_dependency_unavailable(void **state)
{
    test_fixture_t *f = *state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&claims, SECRET, token, sizeof(token));
    assert_refused(exchange_with_token(f, "/api/orders", token), 503, "dependency_unavailable");

    /* the static admin token needs no revocation check */
    assert_int_equal(exchange_with_token(f, "/admin/settings", ADMIN_TOKEN)->status, 200);
}

static void test_a_client_leaving_before_redis_answers_ends_the_request(void **state)
{
    test_fixture_t *f = *state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&claims, SECRET, token, sizeof(token));
    http_double_t *d = start_with_token(f, "/api/orders", token);
    http_dispatch(&f->server, &f->worker, &d->req);
    assert_int_equal(redis_client_pending(f->worker.redis), 1);
    test_request_dispose(d);             /* the client is gone; Redis has not answered */
    assert_int_equal(f->worker.busy, 1); /* the revocation check still holds the request */
    test_run_until(f->worker.loop, f->worker.busy == 0);
    assert_int_equal(f->worker.busy, 0);
    assert_int_equal(f->worker.active_requests, 0);
    assert_int_equal(worker_pending(&f->worker), 0);
    assert_int_equal(handler_runs, 0);
    assert_false(d->responded);
}

int main(void)
{
    log_init("test_auth", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_authorization_header_is_401_unauthorized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_unusable_token_is_401_invalid_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_customer_token_on_an_admin_endpoint_is_403, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_static_admin_token_is_accepted_for_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_valid_token_reaches_the_handler_after_redis_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_logged_out_token_is_401_token_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_issued_before_a_user_revocation_are_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_is_503_dependency_unavailable, setup_redis_down, teardown),
        cmocka_unit_test_setup_teardown(test_a_client_leaving_before_redis_answers_ends_the_request, setup, teardown),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
