/* alerts.c - POST /api/notifications/alerts: Alertmanager's webhook receiver.
 *
 * Alertmanager (infrastructure/alertmanager) posts each notification of an
 * alert group here with `Authorization: Bearer <ALERTMANAGER_TOKEN>`, in
 * its webhook format, version 4: the group's status, its labels, and the
 * alerts in it, each firing or resolved. The group becomes one email to
 * the admins and one webhook message (grouped as Alertmanager grouped
 * it), and each alert an admin notification in the inbox.
 *
 * Alertmanager sends a notification again when it gets no 2xx, so: the
 * same group notification (same alerts, same states, within the same 10
 * minutes) is taken in once, and the answer is 503 while any of its
 * messages is unsent - the retry sends what failed, nothing twice. A
 * repeat after repeat_interval (hours, normally) is a new notification.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "notification.h"

#define ALERTS_MAX      500
#define DEDUPE_WINDOW_S 600

typedef struct alert_request {
    http_request_t *r;
    notice_t notice;
    size_t alerts;
} alert_request_t;

static bool authorized(http_request_t *r)
{
    size_t len = 0;
    const char *header = http_header(r, "authorization", &len);
    const char *token = notification_config.alertmanager_token;
    size_t token_len = strlen(token);
    if (header != NULL && len == token_len + 7 && strncmp(header, "Bearer ", 7) == 0 &&
        CRYPTO_memcmp(header + 7, token, token_len) == 0)
        return true;
    http_add_header(r, "www-authenticate", "Bearer realm=\"alertmanager\"");
    http_respond_error(r, 401, "unauthorized", "a valid Alertmanager bearer token is required");
    return false;
}

static bool is_state(const json_t *v)
{
    return json_is_string(v) &&
           (strcmp(json_string_value(v), "firing") == 0 || strcmp(json_string_value(v), "resolved") == 0);
}

static bool short_string(const json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= max;
}

/* Checks the payload's shape; fills `error` naming the field when wrong. */
static int check_payload(const json_t *p, json_field_error_t *error)
{
    const json_t *version = json_object_get(p, "version");
    if (!json_is_string(version) || strcmp(json_string_value(version), "4") != 0)
        return json_fail(error, "version", "version must be \"4\" (Alertmanager's webhook format)");
    if (!is_state(json_object_get(p, "status")))
        return json_fail(error, "status", "status must be firing or resolved");
    if (!short_string(json_object_get(p, "groupKey"), 2000))
        return json_fail(error, "groupKey", "groupKey must be a string of 1 to 2000 characters");
    const json_t *alerts = json_object_get(p, "alerts");
    if (!json_is_array(alerts) || json_array_size(alerts) == 0 || json_array_size(alerts) > ALERTS_MAX)
        return json_fail(error, "alerts", "alerts must be a list of 1 to %d alerts", ALERTS_MAX);
    size_t i;
    const json_t *alert;
    json_array_foreach(alerts, i, alert)
    {
        char field[64];
        const json_t *labels = json_object_get(alert, "labels"), *annotations = json_object_get(alert, "annotations");
        snprintf(field, sizeof(field), "alerts[%zu]", i);
        if (!json_is_object(alert) || !is_state(json_object_get(alert, "status")))
            return json_fail(error, field, "%s.status must be firing or resolved", field);
        if (!json_is_object(labels) || !short_string(json_object_get(labels, "alertname"), 200))
            return json_fail(error, field, "%s.labels.alertname must be a string of 1 to 200 characters", field);
        if (annotations != NULL && !json_is_object(annotations))
            return json_fail(error, field, "%s.annotations must be an object", field);
        const char *times[] = {"startsAt", "endsAt", "fingerprint"};
        for (size_t t = 0; t < 3; t++) {
            const json_t *v = json_object_get(alert, times[t]);
            if (v != NULL && !short_string(v, 100))
                return json_fail(error, field, "%s.%s must be a string of 1 to 100 characters", field, times[t]);
        }
    }
    return 0;
}

/* The id this notification is taken in under: what makes it this
 * notification (group, states, alerts) and the 10 minutes it came in. */
static void event_id_of(const json_t *p, char out[DIGEST_HEX_LEN + 8])
{
    json_t *alerts = json_array();
    size_t i;
    const json_t *alert;
    json_array_foreach(json_object_get(p, "alerts"), i, alert)
    {
        json_array_append_new(alerts, json_pack("{sOsOsO*sO*sO*}", "labels", json_object_get(alert, "labels"), "status",
                                                json_object_get(alert, "status"), "fingerprint",
                                                json_object_get(alert, "fingerprint"), "startsAt",
                                                json_object_get(alert, "startsAt"), "endsAt",
                                                json_object_get(alert, "endsAt")));
    }
    json_t *canonical =
        json_pack("{sOsOsosI}", "groupKey", json_object_get(p, "groupKey"), "status", json_object_get(p, "status"),
                  "alerts", alerts, "window", (json_int_t)(time(NULL) / DEDUPE_WINDOW_S));
    char digest[DIGEST_HEX_LEN + 1];
    digest_json_fingerprint("alertmanager", canonical, digest);
    json_decref(canonical);
    snprintf(out, DIGEST_HEX_LEN + 8, "alert:%.32s", digest);
}

static void answered(void *data, const dispatch_result_t *result)
{
    alert_request_t *a = data;
    if (result->failed > 0) {
        http_respond_error(a->r, 503, "not_sent", "%zu of %zu messages not sent; send the notification again",
                           result->failed, result->sent + result->failed);
        return;
    }
    if (result->held > 0) {
        http_respond_error(a->r, 503, "in_progress", "this notification is being sent; send it again later");
        return;
    }
    json_t *body =
        json_pack("{sssIsb}", "status", "ok", "alerts", (json_int_t)a->alerts, "duplicate", result->duplicate);
    http_respond_json(a->r, 200, body);
}

void alerts_handle(http_request_t *r)
{
    if (!authorized(r))
        return;
    json_t *payload = http_read_json_body(r);
    if (payload == NULL)
        return;
    json_field_error_t error;
    if (check_payload(payload, &error) != 0) {
        json_decref(payload);
        http_respond_field_error(r, &error);
        return;
    }
    alert_request_t *a = context_alloc(&r->super, sizeof(*a));
    a->r = r;
    a->alerts = json_array_size(json_object_get(payload, "alerts"));
    char event_id[DIGEST_HEX_LEN + 8];
    event_id_of(payload, event_id);
    int rc = routing_render_alerts(&r->super, event_id, payload, &a->notice);
    json_decref(payload);
    if (rc != 0) {
        http_respond_error(r, 413, "too_large", "the alerts render to more than %d bytes", NOTIFICATION_TEXT_MAX);
        return;
    }
    context_info(&r->super, "alert notification", LOG_STRING("event_id", event_id), LOG_INT("alerts", a->alerts));
    dispatch_notice(&r->super, &a->notice, answered, a);
}
