/* fuzz_user.c - the user service's request bodies and ids.
 *
 * Feeds: an HTTP/1-style request (services/common/fuzz/exchange.h) through
 * the service's own route table (main.c, included here) and handlers, with
 * PostgreSQL and Redis replaced by recorders that answer "down" and an
 * admin token added when the request has no Authorization header. The
 * bodies that matter: registration {email, password, name}, login
 * {email, password}, and the role change PATCH /api/users/{id} {role}.
 *
 * Asserts, against a reference reading written here from the README and
 * the handlers' contracts:
 *   - an email is one '@' between a local part of 1-64 RFC 5322 atext
 *     characters and dots (no leading, trailing or double dot) and a domain
 *     of at least two labels (1-63 letters, digits and inner '-'), the last
 *     one letters only and at least two, 6-254 characters in all;
 *   - registration: only those three fields; a password of 10-128
 *     characters; a name of 1-100 characters, not only spaces, without
 *     control characters (C0, DEL, C1; invisible ones may be refused);
 *     login: only email and password, a password of 1-512 characters;
 *     role change: a canonical UUID in the path, only "role", which is
 *     "customer" or "admin";
 *   - soundness: the email checked for registration is the body's; the
 *     login limiter is asked about exactly the lower-cased email; the role
 *     change runs with the lower-cased id and the body's role; each only
 *     for a body the reference accepts;
 *   - completeness: a clean request (exact method and path, one
 *     Content-Type: application/json, no query) that the reference accepts
 *     gets that far;
 *   - every exchange's response promises (exchange.h).
 */
#include <ctype.h>

#define main user_service_main
#include "../main.c"
#undef main

#include "reference.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static router_t *router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_exchange_setup("user", user_statements, user_statement_count);
    user_metrics_register();
    user_config = (user_config_t){.token_ttl_seconds = 3600,
                                  .login_window_ms = 300000,
                                  .max_failures_per_email = 5,
                                  .max_failures_per_ip = 20,
                                  .argon2_memory_kib = 8,
                                  .argon2_iterations = 1,
                                  .argon2_parallelism = 1,
                                  .attempts_retention_days = 30,
                                  .cache_ttl_seconds = 60};
    router = fuzz_exchange_router(routes, sizeof(routes) / sizeof(routes[0]));
    return 0;
}

/* --- the reference reading --------------------------------------------------- */

static bool letter_or_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool reference_email(const char *email)
{
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len < 6 || len > 254 || at == NULL || strchr(at + 1, '@') != NULL)
        return false;
    size_t local = (size_t)(at - email);
    if (local < 1 || local > 64 || email[0] == '.' || at[-1] == '.')
        return false;
    for (size_t i = 0; i < local; i++) {
        char c = email[i];
        if (!letter_or_digit(c) && strchr("!#$%&'*+/=?^_`{|}~-.", c) == NULL)
            return false;
        if (c == '.' && email[i + 1] == '.')
            return false;
    }
    const char *label = at + 1;
    size_t labels = 0;
    for (;;) {
        size_t n = strcspn(label, ".");
        if (n < 1 || n > 63 || label[0] == '-' || label[n - 1] == '-')
            return false;
        for (size_t i = 0; i < n; i++)
            if (!letter_or_digit(label[i]) && label[i] != '-')
                return false;
        labels++;
        if (label[n] == '\0') {
            for (size_t i = 0; i < n; i++)
                if (!((label[i] >= 'a' && label[i] <= 'z') || (label[i] >= 'A' && label[i] <= 'Z')))
                    return false;
            return labels >= 2 && n >= 2;
        }
        label += n + 1;
    }
}

/* A string of `min`..`max` characters without NUL, or NULL. */
static const char *string_of(const json_t *body, const char *key, size_t min, size_t max)
{
    const json_t *value = json_object_get(body, key);
    if (!json_is_string(value))
        return NULL;
    const char *s = json_string_value(value);
    size_t bytes = json_string_length(value), chars = fuzz_utf8_count(s, bytes);
    return strlen(s) == bytes && chars >= min && chars <= max ? s : NULL;
}

static fuzz_verdict_t reference_credentials(const json_t *body, const char *const *allowed, size_t password_min,
                                            size_t password_max, const char **email)
{
    *email = NULL;
    if (!json_is_object(body) || !fuzz_only_keys(body, allowed))
        return FUZZ_INVALID;
    *email = string_of(body, "email", 1, 254);
    if (*email == NULL || !reference_email(*email))
        return FUZZ_INVALID;
    return string_of(body, "password", password_min, password_max) != NULL ? FUZZ_VALID : FUZZ_INVALID;
}

static fuzz_verdict_t reference_registration(const json_t *body, const char **email)
{
    static const char *const allowed[] = {"email", "password", "name", NULL};
    fuzz_verdict_t v = reference_credentials(body, allowed, 10, 128, email);
    const char *name = v != FUZZ_INVALID ? string_of(body, "name", 1, 100) : NULL;
    return name == NULL ? FUZZ_INVALID : fuzz_both(v, fuzz_judge_text(name, strlen(name)));
}

/* --- the checks ---------------------------------------------------------------- */

static void check_registration(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "user_email_taken");
    json_t *body = fuzz_body_of(ex);
    const char *email;
    fuzz_verdict_t verdict = reference_registration(body, &email);
    if (call != NULL) {
        FUZZ_CHECK(verdict != FUZZ_INVALID, "a registration went on with a body the reference refuses: '%s'",
                   fuzz_show(ex->body, ex->body_len));
        FUZZ_CHECK(call->arg_count == 1 && call->args[0] != NULL && strcmp(call->args[0], email) == 0,
                   "the email checked is '%s', the body's is '%s'", call->args[0] ? call->args[0] : "NULL", email);
    } else if (verdict == FUZZ_VALID && fuzz_exchange_is_clean(ex, "POST", "/api/users/register", true)) {
        FUZZ_CHECK(false, "a registration refused (%d: %s) for a body the reference accepts: '%s'", ex->status,
                   fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    json_decref(body);
}

static void check_login(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "EVAL");
    json_t *body = fuzz_body_of(ex);
    static const char *const allowed[] = {"email", "password", NULL};
    const char *email;
    fuzz_verdict_t verdict = reference_credentials(body, allowed, 1, 512, &email);
    if (call != NULL) {
        FUZZ_CHECK(verdict == FUZZ_VALID, "a login reached the limiter with a body the reference refuses: '%s'",
                   fuzz_show(ex->body, ex->body_len));
        char lower[256];
        size_t n = strlen(email);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)tolower((unsigned char)email[i]);
        const char *key = call->arg_count >= 3 ? call->args[2] : NULL;
        size_t key_len = key != NULL ? strlen(key) : 0;
        FUZZ_CHECK(key != NULL && key_len > n && strcmp(key + key_len - n, lower) == 0 && key[key_len - n - 1] == ':',
                   "the limiter's email key is '%s' for the email '%s'", key ? key : "NULL", email);
    } else if (verdict == FUZZ_VALID && fuzz_exchange_is_clean(ex, "POST", "/api/users/login", true)) {
        FUZZ_CHECK(false, "a login refused (%d: %s) for a body the reference accepts: '%s'", ex->status,
                   fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    json_decref(body);
}

static void check_role_change(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "user_set_role");
    static const char prefix[] = "/api/users/";
    size_t prefix_len = sizeof(prefix) - 1;
    bool id_ok = ex->path_len == prefix_len + 36 && memcmp(ex->path, prefix, prefix_len) == 0;
    char id[37] = "";
    for (size_t i = 0; id_ok && i < 36; i++) {
        char c = ex->path[prefix_len + i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        id_ok = dash ? c == '-' : fuzz_hex_value(c) >= 0;
        id[i] = (char)tolower((unsigned char)c);
    }
    json_t *body = fuzz_body_of(ex);
    static const char *const allowed[] = {"role", NULL};
    const char *role = json_is_object(body) && fuzz_only_keys(body, allowed) ? string_of(body, "role", 1, 16) : NULL;
    bool body_ok = role != NULL && (strcmp(role, "customer") == 0 || strcmp(role, "admin") == 0);
    if (call != NULL) {
        FUZZ_CHECK(id_ok && body_ok, "a role change ran for the path '%s' and the body '%s'",
                   fuzz_show(ex->path, ex->path_len), fuzz_show(ex->body, ex->body_len));
        FUZZ_CHECK(call->arg_count == 2 && call->args[0] != NULL && strcmp(call->args[0], id) == 0 &&
                       call->args[1] != NULL && strcmp(call->args[1], role) == 0,
                   "user_set_role(%s, %s) for id %s role %s", call->args[0] ? call->args[0] : "NULL",
                   call->args[1] ? call->args[1] : "NULL", id, role);
    } else if (id_ok && body_ok && fuzz_exchange_is_clean(ex, "PATCH", ex->path, true)) {
        FUZZ_CHECK(false, "a role change refused (%d: %s)", ex->status, fuzz_show(ex->response, ex->response_len));
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_exchange_t ex;
    if (!fuzz_exchange_parse((const char *)data, size, &ex))
        return 0;
    ex.add_admin_token = true;
    fuzz_exchange_run(router, &ex);
    check_registration(&ex);
    check_login(&ex);
    check_role_change(&ex);
    if (ex.call_count == 0)
        FUZZ_CHECK(ex.status >= 400 && ex.status < 500, "%d without asking a backend", ex.status);
    fuzz_exchange_clear(&ex);
    return 0;
}
