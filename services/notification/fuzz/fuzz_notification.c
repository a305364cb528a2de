/* fuzz_notification.c - the notification service's HTTP inputs:
 * Alertmanager's webhook (its bearer token and payload) and the inbox's
 * query strings and ids.
 *
 * Feeds: an HTTP/1-style request (services/common/fuzz/exchange.h) through
 * the service's own route table (main.c, included here) and handlers, with
 * PostgreSQL and Redis answering "down". No admin token is added: the
 * alerts endpoint takes Alertmanager's token only, and the inbox needs a
 * user's (which Redis, being down, cannot clear).
 *
 * Asserts, against a reference reading written here from the README and
 * Alertmanager's webhook format (version "4", status firing|resolved, a
 * groupKey, 1-500 alerts each with a status and labels.alertname):
 *   - soundness: take_in is reached only for a POST to the alerts path
 *     with exactly one Authorization header, "Bearer <the token>", and a
 *     payload the reference accepts; its parameters are an "alert:" id of
 *     32 hex digits, the type "alertmanager", one inbox row per alert and
 *     an email (and a webhook message) per group;
 *   - completeness: a clean request with the token whose payload the
 *     reference accepts does reach take_in;
 *   - every exchange's response promises (exchange.h); a request answered
 *     without a backend is a 4xx, one that asked is a 503.
 */
#define _GNU_SOURCE /* memmem; before any system header */
#define main        notification_service_main
#include "../main.c"
#undef main

#include "reference.h"

#define TOKEN "fuzz-alertmanager-token-0123"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static router_t *router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_exchange_setup("notification", notification_statements, notification_statement_count);
    notification_metrics_register();
    notification_config = (notification_config_t){.smtp_url = "smtp://127.0.0.1:9",
                                                  .smtp_from = "notifications@oms.local",
                                                  .smtp_from_name = "OMS Lab",
                                                  .smtp_timeout_ms = 1000,
                                                  .smtp_connections = 1,
                                                  .webhook_url = "http://127.0.0.1:9/hook",
                                                  .user_url = "http://127.0.0.1:9",
                                                  .admin_email = "ops@oms.local",
                                                  .alertmanager_token = TOKEN,
                                                  .prefetch = 10,
                                                  .claim_lease_ms = 30000,
                                                  .reclaim_every_ms = 5000};
    router = fuzz_exchange_router(routes, sizeof(routes) / sizeof(routes[0]));
    return 0;
}

/* --- the reference reading --------------------------------------------------- */

static bool state(const json_t *v)
{
    return json_is_string(v) &&
           (strcmp(json_string_value(v), "firing") == 0 || strcmp(json_string_value(v), "resolved") == 0);
}

static bool text(const json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= max;
}

/* How many alerts the payload carries, or -1 when the reference refuses it. */
static long reference_alerts(const fuzz_exchange_t *ex)
{
    if (ex->body == NULL)
        return -1;
    json_t *p = json_loadb(ex->body, ex->body_len, JSON_REJECT_DUPLICATES, NULL);
    long count = -1;
    const json_t *version = json_object_get(p, "version"), *alerts = json_object_get(p, "alerts");
    if (json_is_object(p) && json_is_string(version) && strcmp(json_string_value(version), "4") == 0 &&
        state(json_object_get(p, "status")) && text(json_object_get(p, "groupKey"), 2000) && json_is_array(alerts) &&
        json_array_size(alerts) >= 1 && json_array_size(alerts) <= 500) {
        count = (long)json_array_size(alerts);
        size_t i;
        const json_t *a;
        json_array_foreach(alerts, i, a)
        {
            const json_t *labels = json_object_get(a, "labels"), *annotations = json_object_get(a, "annotations");
            bool ok = json_is_object(a) && state(json_object_get(a, "status")) && json_is_object(labels) &&
                      text(json_object_get(labels, "alertname"), 200) &&
                      (annotations == NULL || json_is_object(annotations));
            static const char *const optional[] = {"startsAt", "endsAt", "fingerprint"};
            for (size_t k = 0; ok && k < 3; k++) {
                const json_t *v = json_object_get(a, optional[k]);
                ok = v == NULL || text(v, 100);
            }
            if (!ok) {
                count = -1;
                break;
            }
        }
    }
    json_decref(p);
    return count;
}

static bool token_given(const fuzz_exchange_t *ex)
{
    const char *value;
    size_t len;
    return fuzz_exchange_header(ex, "authorization", &value, &len) == 1 && len == strlen("Bearer " TOKEN) &&
           memcmp(value, "Bearer " TOKEN, len) == 0;
}

static size_t array_size_of(const char *text_value)
{
    json_t *v = json_loads(text_value, 0, NULL);
    FUZZ_CHECK(json_is_array(v), "a take_in parameter is no JSON list: %s", text_value);
    size_t n = json_array_size(v);
    json_decref(v);
    return n;
}

static void check_alerts(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *take_in = fuzz_exchange_call(ex, "take_in");
    bool on_path = ex->method_len == 4 && memcmp(ex->method, "POST", 4) == 0 && ex->path_len == 25 &&
                   memcmp(ex->path, "/api/notifications/alerts", 25) == 0;
    if (take_in == NULL) {
        /* completeness: the token (the only header) and a good payload get in */
        const char *value;
        size_t len;
        bool clean_with_token = on_path && !ex->has_query && token_given(ex) &&
                                fuzz_exchange_header(ex, "content-type", &value, &len) == 1 && len == 16 &&
                                strncasecmp(value, "application/json", 16) == 0;
        FUZZ_CHECK(!(clean_with_token && reference_alerts(ex) > 0), "a good payload with the token got %d", ex->status);
        return;
    }
    FUZZ_CHECK(on_path, "take_in from a request that is no POST to the alerts path");
    FUZZ_CHECK(token_given(ex), "take_in without Alertmanager's exact token");
    long alerts = reference_alerts(ex);
    FUZZ_CHECK(alerts > 0, "take_in for a payload the reference refuses");
    FUZZ_CHECK(take_in->arg_count == 6, "take_in with %zu parameters", take_in->arg_count);
    const char *id = take_in->args[0];
    FUZZ_CHECK(id != NULL && strlen(id) == 38 && strncmp(id, "alert:", 6) == 0 &&
                   strspn(id + 6, "0123456789abcdef") == 32,
               "event id %s", id != NULL ? id : "(null)");
    FUZZ_CHECK(strcmp(take_in->args[1], "alertmanager") == 0, "type %s", take_in->args[1]);
    FUZZ_CHECK(array_size_of(take_in->args[2]) == 2, "not one email and one webhook message per group");
    FUZZ_CHECK(array_size_of(take_in->args[3]) == (size_t)alerts, "not one inbox row per alert");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_exchange_t ex;
    if (!fuzz_exchange_parse((const char *)data, size, &ex))
        return 0;
    ex.add_admin_token = false;
    fuzz_exchange_run(router, &ex);
    check_alerts(&ex);
    fuzz_check_database_down_status(&ex);
    fuzz_exchange_clear(&ex);
    return 0;
}
