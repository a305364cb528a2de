/* Tests for auth.c: the per-request bearer check, run through
 * http_dispatch on routes of the test's own, against the test Redis. A
 * request without a usable token is refused 401 or 403 before anything
 * else; a valid token reaches the handler only once Redis has said it is
 * not revoked; revoked tokens, Redis down and a client who leaves first
 * each end the request without the handler. Each kind of endpoint
 * (customer, admin, internal) lets in exactly its callers. Service tokens
 * are minted as peers would send them, and renewed on time. */
#include "test_support.h"

#include <pthread.h>
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

static void handle_internal(http_request_t *r)
{
    auth_require(r, JWT_ROLE_SERVICE, answer_allowed);
}

static const router_route_t routes[] = {
    {"GET", "/api/orders", handle_customer},
    {"GET", "/admin/settings", handle_admin},
    {"GET", "/api/inventory/reservations", handle_internal},
};

#define CUSTOMER_PATH "/api/orders"
#define ADMIN_PATH    "/admin/settings"
#define INTERNAL_PATH "/api/inventory/reservations"

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

/* Claims of a service token as a peer would mint it: role service, its
 * name (unique to this run) as sub. */
static jwt_claims_t service_claims(void)
{
    jwt_claims_t claims = fresh_claims(JWT_ROLE_SERVICE, 10);
    test_unique_id(claims.sub, sizeof(claims.sub), "service-");
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

/* Sends `Authorization: <authorization>` (none when NULL) to `path` and
 * asserts that the handler ran with claims of `role`. */
static void assert_allowed(test_fixture_t *f, const char *path, const char *authorization, jwt_role_t role)
{
    handler_runs = 0;
    http_double_t *d = start_request(f, path, authorization);
    test_request_exchange(f, d);
    if (d->status != 200)
        fail_msg("%s with '%.40s...': %d %s", path, authorization, d->status, d->body != NULL ? d->body : "");
    assert_int_equal(handler_runs, 1);
    assert_int_equal(seen.role, role);
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
        {JWT_ROLE_CUSTOMER, CUSTOMER_PATH}, {JWT_ROLE_ADMIN, CUSTOMER_PATH}, /* admins may use every endpoint */
        {JWT_ROLE_ADMIN, ADMIN_PATH},       {JWT_ROLE_SERVICE, INTERNAL_PATH}, {JWT_ROLE_ADMIN, INTERNAL_PATH},
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
    char token[JWT_TOKEN_MAX], service[JWT_TOKEN_MAX];
    jwt_claims_t claims = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&claims, SECRET, token, sizeof(token));
    assert_refused(exchange_with_token(f, "/api/orders", token), 503, "dependency_unavailable");
    /* a service token is checked against the deny-lists like any other */
    jwt_claims_t peer = service_claims();
    sign(&peer, SECRET, service, sizeof(service));
    assert_refused(exchange_with_token(f, INTERNAL_PATH, service), 503, "dependency_unavailable");

    /* the static admin token needs no revocation check */
    assert_int_equal(exchange_with_token(f, "/admin/settings", ADMIN_TOKEN)->status, 200);
    assert_int_equal(exchange_with_token(f, INTERNAL_PATH, ADMIN_TOKEN)->status, 200);
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

/* --- who may call which kind of endpoint ---------------------------------------- */

static void test_a_service_token_is_403_on_customer_and_admin_endpoints(void **state)
{
    test_fixture_t *f = *state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims = service_claims();
    sign(&claims, SECRET, token, sizeof(token));
    for (int i = 0; i < 2; i++) {
        http_double_t *d = exchange_with_token(f, i == 0 ? CUSTOMER_PATH : ADMIN_PATH, token);
        assert_refused(d, 403, "forbidden");
        test_assert_contains(d->body, "not a service token");
    }
    assert_int_equal(worker_pending(&f->worker), 0); /* refused before Redis was asked */
}

static void test_a_customer_token_is_403_on_an_internal_endpoint(void **state)
{
    test_fixture_t *f = *state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims = fresh_claims(JWT_ROLE_CUSTOMER, 10);
    sign(&claims, SECRET, token, sizeof(token));
    http_double_t *d = exchange_with_token(f, INTERNAL_PATH, token);
    assert_refused(d, 403, "forbidden");
    test_assert_contains(d->body, "internal");
    assert_null(http_double_response_header(d, "www-authenticate")); /* authenticated, just not allowed */
}

static void test_an_internal_endpoint_without_a_usable_token_is_401(void **state)
{
    test_fixture_t *f = *state;
    http_double_t *d = start_request(f, INTERNAL_PATH, NULL);
    test_request_exchange(f, d);
    assert_refused(d, 401, "unauthorized");
    assert_string_equal(http_double_response_header(d, "www-authenticate"), "Bearer");

    /* a service token signed with another key, or expired */
    char foreign[JWT_TOKEN_MAX], expired[JWT_TOKEN_MAX];
    jwt_claims_t claims = service_claims();
    sign(&claims, "another-secret-0123456789abcdefgh", foreign, sizeof(foreign));
    claims.iat = now() - 600;
    claims.exp = now() - 300;
    sign(&claims, SECRET, expired, sizeof(expired));
    assert_refused(exchange_with_token(f, INTERNAL_PATH, foreign), 401, "invalid_token");
    assert_refused(exchange_with_token(f, INTERNAL_PATH, expired), 401, "invalid_token");
}

static void test_internal_endpoints_take_service_tokens_and_admin_credentials(void **state)
{
    test_fixture_t *f = *state;
    char service[JWT_TOKEN_MAX], admin[JWT_TOKEN_MAX], authorization[JWT_TOKEN_MAX + 8];
    jwt_claims_t claims = service_claims();
    sign(&claims, SECRET, service, sizeof(service));
    snprintf(authorization, sizeof(authorization), "Bearer %s", service);
    assert_allowed(f, INTERNAL_PATH, authorization, JWT_ROLE_SERVICE);
    assert_string_equal(seen.sub, claims.sub); /* the handler learns which service called */

    jwt_claims_t admin_claims = fresh_claims(JWT_ROLE_ADMIN, 10);
    sign(&admin_claims, SECRET, admin, sizeof(admin));
    snprintf(authorization, sizeof(authorization), "Bearer %s", admin);
    assert_allowed(f, INTERNAL_PATH, authorization, JWT_ROLE_ADMIN);

    assert_allowed(f, INTERNAL_PATH, "Bearer " ADMIN_TOKEN, JWT_ROLE_ADMIN);
    assert_string_equal(seen.sub, "admin-token");
}

static void test_the_static_admin_token_is_no_customer(void **state)
{
    test_fixture_t *f = *state;
    /* it names no user, so it opens no endpoint that acts on the caller's account */
    assert_refused(exchange_with_token(f, CUSTOMER_PATH, ADMIN_TOKEN), 401, "invalid_token");
}

static void test_a_revoked_service_token_is_401(void **state)
{
    test_fixture_t *f = *state;
    /* one token logged out by its jti; and every token a second service
     * was issued up to a second, as after a leak (the next one it mints
     * is good again) */
    jwt_claims_t denied = service_claims(), leaked = service_claims();
    jwt_claims_t minted_later = leaked;
    test_unique_id(minted_later.jti, sizeof(minted_later.jti), "token-");
    minted_later.iat = leaked.iat + 5;
    revoke_token(f, &denied); /* before any request: the helpers wait for the worker to be idle */
    revoke_user(f, leaked.sub, leaked.iat + 1);

    char token[JWT_TOKEN_MAX];
    sign(&denied, SECRET, token, sizeof(token));
    assert_refused(exchange_with_token(f, INTERNAL_PATH, token), 401, "token_revoked");
    sign(&leaked, SECRET, token, sizeof(token));
    assert_refused(exchange_with_token(f, INTERNAL_PATH, token), 401, "token_revoked");
    sign(&minted_later, SECRET, token, sizeof(token));
    assert_int_equal(exchange_with_token(f, INTERNAL_PATH, token)->status, 200);

    redisContext *redis = test_redis_connect();
    freeReplyObject(
        test_redis_command(redis, "DEL %s%s %s%s", AUTH_DENIED_PREFIX, denied.jti, AUTH_REVOKED_PREFIX, leaked.sub));
    redisFree(redis);
}

/* --- minting service tokens ------------------------------------------------------ */

#define MINTED_AT   1700000000 /* a fixed "now" for the cache tests */
#define HALF_LIFE_S (AUTH_SERVICE_TOKEN_LIFETIME_S / 2)

/* Verifies a minted "Bearer <token>" as a peer would at `at`. */
static jwt_claims_t verify_minted(const char *authorization, const char *secret, int64_t at)
{
    assert_non_null(authorization);
    assert_int_equal(strncmp(authorization, "Bearer ", 7), 0);
    jwt_claims_t claims;
    const char *token = authorization + 7;
    jwt_status_t status = jwt_verify(token, strlen(token), secret, at, &claims);
    if (status != JWT_VALID)
        fail_msg("a minted token verifies as %s", jwt_status_name(status));
    return claims;
}

static void test_a_minted_service_token_verifies_as_the_service(void **state)
{
    (void)state;
    const char *authorization = auth_service_authorization_at(SECRET, "order", MINTED_AT);
    jwt_claims_t claims = verify_minted(authorization, SECRET, MINTED_AT);
    assert_int_equal(claims.role, JWT_ROLE_SERVICE);
    assert_string_equal(claims.sub, "order");
    assert_int_equal(claims.iat, MINTED_AT);
    assert_int_equal(claims.exp, MINTED_AT + AUTH_SERVICE_TOKEN_LIFETIME_S);
    assert_int_equal(strlen(claims.jti), 32);
    assert_int_equal(strspn(claims.jti, "0123456789abcdef"), 32);
    /* short-lived: refused once its lifetime is over */
    jwt_claims_t after;
    const char *token = authorization + 7;
    assert_int_equal(jwt_verify(token, strlen(token), SECRET, MINTED_AT + AUTH_SERVICE_TOKEN_LIFETIME_S, &after),
                     JWT_EXPIRED);
}

static void test_the_minted_token_is_kept_until_half_its_life_is_gone(void **state)
{
    (void)state;
    char first[sizeof("Bearer ") + JWT_TOKEN_MAX], renewed[sizeof(first)];
    snprintf(first, sizeof(first), "%s", auth_service_authorization_at(SECRET, "order", MINTED_AT));
    for (int64_t age = 0; age < HALF_LIFE_S; age += 37)
        assert_string_equal(auth_service_authorization_at(SECRET, "order", MINTED_AT + age), first);
    assert_string_equal(auth_service_authorization_at(SECRET, "order", MINTED_AT + HALF_LIFE_S - 1), first);

    /* half of it gone: a new token, issued now, with a jti of its own */
    snprintf(renewed, sizeof(renewed), "%s", auth_service_authorization_at(SECRET, "order", MINTED_AT + HALF_LIFE_S));
    assert_string_not_equal(renewed, first);
    jwt_claims_t old = verify_minted(first, SECRET, MINTED_AT);
    jwt_claims_t now_claims = verify_minted(renewed, SECRET, MINTED_AT + HALF_LIFE_S);
    assert_int_equal(now_claims.iat, MINTED_AT + HALF_LIFE_S);
    assert_string_not_equal(now_claims.jti, old.jti);
    assert_string_equal(auth_service_authorization_at(SECRET, "order", MINTED_AT + HALF_LIFE_S + 1), renewed);

    /* a clock set back before the token's iat: a peer would call it issued
     * in the future, so it is minted again */
    const char *back = auth_service_authorization_at(SECRET, "order", MINTED_AT);
    assert_string_not_equal(back, renewed);
    assert_int_equal(verify_minted(back, SECRET, MINTED_AT).iat, MINTED_AT);
}

static void test_another_secret_or_service_mints_another_token(void **state)
{
    (void)state;
    static const char other_secret[] = "another-secret-0123456789abcdefgh";
    char first[sizeof("Bearer ") + JWT_TOKEN_MAX];
    snprintf(first, sizeof(first), "%s", auth_service_authorization_at(SECRET, "order", MINTED_AT));

    const char *rekeyed = auth_service_authorization_at(other_secret, "order", MINTED_AT + 1);
    assert_string_not_equal(rekeyed, first);
    verify_minted(rekeyed, other_secret, MINTED_AT + 1);
    jwt_claims_t claims;
    assert_int_equal(jwt_verify(rekeyed + 7, strlen(rekeyed + 7), SECRET, MINTED_AT + 1, &claims), JWT_BAD_SIGNATURE);

    const char *renamed = auth_service_authorization_at(other_secret, "payment", MINTED_AT + 2);
    assert_string_equal(verify_minted(renamed, other_secret, MINTED_AT + 2).sub, "payment");
    assert_string_equal(auth_service_authorization_at(other_secret, "payment", MINTED_AT + 3), renamed);
}

static void test_a_name_that_is_no_token_id_mints_nothing(void **state)
{
    (void)state;
    static char long_secret[AUTH_SECRET_MAX + 2];
    memset(long_secret, 's', sizeof(long_secret) - 1);
    assert_null(auth_service_authorization_at(SECRET, "order service", MINTED_AT));
    assert_null(auth_service_authorization_at(SECRET, "", MINTED_AT));
    assert_null(auth_service_authorization_at(long_secret, "order", MINTED_AT));
    /* and the next good call mints as usual */
    assert_string_equal(verify_minted(auth_service_authorization_at(SECRET, "order", MINTED_AT), SECRET, MINTED_AT).sub,
                        "order");
}

static void *mint_on_another_thread(void *out)
{
    snprintf(out, sizeof("Bearer ") + JWT_TOKEN_MAX, "%s", auth_service_authorization_at(SECRET, "order", MINTED_AT));
    return NULL;
}

static void test_each_thread_mints_its_own_token(void **state)
{
    (void)state;
    char mine[sizeof("Bearer ") + JWT_TOKEN_MAX], theirs[sizeof(mine)];
    snprintf(mine, sizeof(mine), "%s", auth_service_authorization_at(SECRET, "order", MINTED_AT));
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, mint_on_another_thread, theirs), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    verify_minted(theirs, SECRET, MINTED_AT);
    assert_string_not_equal(theirs, mine); /* its own cache, so its own jti */
    /* and this thread's cache is untouched by the other's */
    assert_string_equal(auth_service_authorization_at(SECRET, "order", MINTED_AT + 1), mine);
}

static void test_a_worker_mints_tokens_its_peers_accept(void **state)
{
    test_fixture_t *f = *state;
    const char *authorization = auth_peer_authorization(&f->worker);
    jwt_claims_t claims = verify_minted(authorization, SECRET, now());
    assert_string_equal(claims.sub, "test"); /* the fixture's service */
    assert_int_equal(claims.role, JWT_ROLE_SERVICE);
    assert_allowed(f, INTERNAL_PATH, authorization, JWT_ROLE_SERVICE);
    assert_string_equal(seen.sub, "test");
    handler_runs = 0;
    assert_refused(exchange_with_token(f, CUSTOMER_PATH, authorization + 7), 403, "forbidden");
    assert_refused(exchange_with_token(f, ADMIN_PATH, authorization + 7), 403, "forbidden");
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
        cmocka_unit_test_setup_teardown(test_a_service_token_is_403_on_customer_and_admin_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_customer_token_is_403_on_an_internal_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_internal_endpoint_without_a_usable_token_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_internal_endpoints_take_service_tokens_and_admin_credentials, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_static_admin_token_is_no_customer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_revoked_service_token_is_401, setup, teardown),
        cmocka_unit_test(test_a_minted_service_token_verifies_as_the_service),
        cmocka_unit_test(test_the_minted_token_is_kept_until_half_its_life_is_gone),
        cmocka_unit_test(test_another_secret_or_service_mints_another_token),
        cmocka_unit_test(test_a_name_that_is_no_token_id_mints_nothing),
        cmocka_unit_test(test_each_thread_mints_its_own_token),
        cmocka_unit_test_setup_teardown(test_a_worker_mints_tokens_its_peers_accept, setup, teardown),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
