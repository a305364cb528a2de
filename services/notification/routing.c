/* routing.c - which channels each event goes to, and what it says there.
 *
 * The routing table is the one place that decides; the templates below it
 * turn an event's data into human-readable text. Every message names the
 * order it is about by its short form (the first 8 characters of its id,
 * upper-case: what the UI shows) and its full id.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "buffer.h"
#include "notification.h"
#include "uuid.h"

static const route_t routes[] = {
    /* placed: remembered (whose order it is), nothing sent until it ends */
    {"order.created", 0, false},
    {"order.confirmed", CHANNEL_EMAIL | CHANNEL_IN_APP, false},
    {"order.failed", CHANNEL_EMAIL | CHANNEL_IN_APP, false},
    {"order.cancelled", CHANNEL_EMAIL | CHANNEL_IN_APP, false},
    /* the order's own events say it better */
    {"payment.succeeded", 0, false},
    {"payment.failed", 0, false},
    {"payment.refunded", CHANNEL_EMAIL | CHANNEL_IN_APP, false},
    {"inventory.low_stock", CHANNEL_EMAIL | CHANNEL_WEBHOOK | CHANNEL_IN_APP, true},
    {"inventory.out_of_stock", CHANNEL_EMAIL | CHANNEL_WEBHOOK | CHANNEL_IN_APP, true},
    {"user.registered", CHANNEL_EMAIL | CHANNEL_IN_APP, false},
};

const route_t *routing_find(const char *type)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].type, type) == 0)
            return &routes[i];
    return NULL;
}

/* The short form of an order id the UI shows: its first 8 characters, upper-case. */
static void routing_short_order_id(const char *order_id, char out[9])
{
    size_t i = 0;
    for (; i < 8 && order_id[i] != '\0'; i++)
        out[i] = (char)toupper((unsigned char)order_id[i]);
    out[i] = '\0';
}

/* --- reading the event's data --------------------------------------------------- */

typedef struct reader {
    const json_t *data;
    char *error;
    size_t error_size;
    bool failed;
} reader_t;

static const char *text_of(reader_t *r, const char *field)
{
    const json_t *v = json_object_get(r->data, field);
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 1000)
        return json_string_value(v);
    if (!r->failed)
        snprintf(r->error, r->error_size, "data.%s must be a non-empty string", field);
    r->failed = true;
    return "";
}

/* Amounts, quantities and stock: 0..10^9, so that a product of two fits. */
#define NUMBER_MAX 1000000000LL

static long long number_of(reader_t *r, const char *field)
{
    const json_t *v = json_object_get(r->data, field);
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= NUMBER_MAX)
        return json_integer_value(v);
    if (!r->failed)
        snprintf(r->error, r->error_size, "data.%s must be a whole number from 0 to %lld", field, NUMBER_MAX);
    r->failed = true;
    return 0;
}

static void append_money(buffer_t *out, long long cents, const char *currency)
{
    buffer_appendf(out, "%lld.%02lld %s", cents / 100, cents % 100, currency);
}

/* --- the texts --------------------------------------------------------------------- */

typedef struct texts {
    buffer_t subject, email, in_app, webhook;
    const char *order_id; /* NULL when the event names none */
} texts_t;

static void greet(texts_t *t, const recipient_t *to)
{
    buffer_appendf(&t->email, "Hello %s,\n\n", to->name != NULL && to->name[0] != '\0' ? to->name : "there");
}

static void sign(texts_t *t)
{
    buffer_append_str(&t->email, "\n-- \nThe OMS Lab shop\n");
}

static void order_confirmed(reader_t *r, texts_t *t, const recipient_t *to)
{
    char short_id[9];
    const char *order_id = t->order_id = text_of(r, "order_id");
    const char *currency = text_of(r, "currency");
    long long total = number_of(r, "total_cents");
    const json_t *items = json_object_get(r->data, "items");
    if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > 100) {
        if (!r->failed)
            snprintf(r->error, r->error_size, "data.items must be a list of 1 to 100 lines");
        r->failed = true;
        return;
    }
    routing_short_order_id(order_id, short_id);
    buffer_appendf(&t->subject, "Your order %s is confirmed", short_id);
    greet(t, to);
    buffer_appendf(&t->email, "Thank you! Your order %s (%s) is confirmed and paid.\n\n", short_id, order_id);
    size_t index;
    const json_t *line;
    json_array_foreach(items, index, line)
    {
        reader_t item = {.data = line, .error = r->error, .error_size = r->error_size, .failed = r->failed};
        const char *sku = text_of(&item, "sku");
        const json_t *name = json_object_get(line, "name");
        long long qty = number_of(&item, "qty");
        long long price = number_of(&item, "unit_price_cents");
        r->failed = item.failed;
        if (r->failed)
            return;
        buffer_appendf(&t->email, "  %lld x %s (%s) at ", qty, json_is_string(name) ? json_string_value(name) : sku,
                       sku);
        append_money(&t->email, price, currency);
        buffer_append_str(&t->email, " = ");
        append_money(&t->email, qty * price, currency);
        buffer_append_str(&t->email, "\n");
    }
    buffer_append_str(&t->email, "\nTotal: ");
    append_money(&t->email, total, currency);
    buffer_append_str(&t->email, "\n");
    sign(t);
    buffer_appendf(&t->in_app, "Order %s is confirmed: %zu item line%s, total ", short_id, json_array_size(items),
                   json_array_size(items) == 1 ? "" : "s");
    append_money(&t->in_app, total, currency);
    buffer_append_str(&t->in_app, ".");
}

static void order_failed(reader_t *r, texts_t *t, const recipient_t *to)
{
    char short_id[9];
    const char *order_id = t->order_id = text_of(r, "order_id");
    const json_t *reason = json_object_get(r->data, "reason");
    const char *why = json_is_string(reason) ? json_string_value(reason) : "it could not be completed";
    routing_short_order_id(order_id, short_id);
    buffer_appendf(&t->subject, "Your order %s could not be completed", short_id);
    greet(t, to);
    buffer_appendf(&t->email,
                   "We are sorry: your order %s (%s) could not be completed.\nReason: %s\n\n"
                   "Nothing was charged, and the items were put back on the shelf.\n",
                   short_id, order_id, why);
    sign(t);
    buffer_appendf(&t->in_app, "Order %s failed: %s.", short_id, why);
}

static void order_cancelled(reader_t *r, texts_t *t, const recipient_t *to)
{
    char short_id[9];
    const char *order_id = t->order_id = text_of(r, "order_id");
    routing_short_order_id(order_id, short_id);
    buffer_appendf(&t->subject, "Your order %s was cancelled", short_id);
    greet(t, to);
    buffer_appendf(&t->email, "Your order %s (%s) was cancelled. Any payment is refunded.\n", short_id, order_id);
    sign(t);
    buffer_appendf(&t->in_app, "Order %s was cancelled.", short_id);
}

static void payment_refunded(reader_t *r, texts_t *t, const recipient_t *to)
{
    char short_id[9];
    const char *order_id = t->order_id = text_of(r, "order_id");
    const char *currency = text_of(r, "currency");
    long long amount = number_of(r, "amount_cents");
    routing_short_order_id(order_id, short_id);
    buffer_appendf(&t->subject, "A refund for your order %s", short_id);
    greet(t, to);
    buffer_append_str(&t->email, "We have refunded ");
    append_money(&t->email, amount, currency);
    buffer_appendf(&t->email, " for your order %s (%s).\n", short_id, order_id);
    const json_t *total = json_object_get(r->data, "refunded_cents_total");
    if (json_is_integer(total) && json_integer_value(total) >= 0 && json_integer_value(total) <= NUMBER_MAX &&
        json_integer_value(total) != amount) {
        buffer_append_str(&t->email, "Refunded for this order so far: ");
        append_money(&t->email, json_integer_value(total), currency);
        buffer_append_str(&t->email, "\n");
    }
    sign(t);
    buffer_append_str(&t->in_app, "Refunded ");
    append_money(&t->in_app, amount, currency);
    buffer_appendf(&t->in_app, " for order %s.", short_id);
}

static void stock(reader_t *r, texts_t *t, bool out)
{
    const char *sku = text_of(r, "sku");
    const char *name = text_of(r, "name");
    long long left = number_of(r, "stock");
    const json_t *threshold = json_object_get(r->data, "threshold");
    if (out)
        buffer_appendf(&t->subject, "Out of stock: %s (%s)", sku, name);
    else
        buffer_appendf(&t->subject, "Low stock: %s (%s) has %lld left", sku, name, left);
    buffer_appendf(&t->email, "Product %s (%s) has %lld in stock", sku, name, left);
    if (json_is_integer(threshold))
        buffer_appendf(&t->email, " (low-stock threshold %lld)", json_integer_value(threshold));
    buffer_append_str(&t->email, out ? ". Orders for it fail until it is restocked.\n" : ". Time to restock.\n");
    buffer_append(&t->in_app, t->subject.data, t->subject.len);
    buffer_append_str(&t->in_app, ".");
}

static void user_registered(reader_t *r, texts_t *t, const recipient_t *to)
{
    (void)r;
    buffer_append_str(&t->subject, "Welcome to the OMS Lab shop");
    greet(t, to);
    buffer_append_str(&t->email, "Your account is ready: sign in with this address and start shopping.\n");
    sign(t);
    buffer_append_str(&t->in_app, "Welcome! Your account is ready.");
}

static void write_texts(const route_t *route, reader_t *r, texts_t *t, const recipient_t *to)
{
    const char *type = route->type;
    if (strcmp(type, "order.confirmed") == 0)
        order_confirmed(r, t, to);
    else if (strcmp(type, "order.failed") == 0)
        order_failed(r, t, to);
    else if (strcmp(type, "order.cancelled") == 0)
        order_cancelled(r, t, to);
    else if (strcmp(type, "payment.refunded") == 0)
        payment_refunded(r, t, to);
    else if (strncmp(type, "inventory.", 10) == 0)
        stock(r, t, strcmp(type, "inventory.out_of_stock") == 0);
    else if (strcmp(type, "user.registered") == 0)
        user_registered(r, t, to);
    if (t->webhook.len == 0 && t->subject.len > 0) /* Slack-style: the subject in bold, then the text */
        buffer_appendf(&t->webhook, "*%.*s*\n%.*s", (int)t->subject.len, t->subject.data, (int)t->email.len,
                       t->email.data);
}

/* --- the notice ------------------------------------------------------------------------ */

static char *dump(context_t *c, json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    char *copy = context_strdup(c, text != NULL ? text : "null", SIZE_MAX);
    free(text);
    return copy;
}

static const char *text_or_empty(const buffer_t *b)
{
    return b->data != NULL ? b->data : "";
}

/* The facts an event teaches: whose order it is, who a user is. */
static json_t *facts_of(const char *type, const json_t *data)
{
    json_t *facts = json_object();
    const json_t *user_id = json_object_get(data, "user_id"), *order_id = json_object_get(data, "order_id");
    if (strncmp(type, "order.", 6) == 0 && json_is_string(user_id) && uuid_is_valid(json_string_value(user_id)) &&
        json_is_string(order_id) && json_string_length(order_id) <= 200)
        json_object_set_new(facts, "order", json_pack("{sOsO}", "order_id", order_id, "user_id", user_id));
    const json_t *email = json_object_get(data, "email"), *name = json_object_get(data, "name");
    if (strcmp(type, "user.registered") == 0 && json_is_string(user_id) && uuid_is_valid(json_string_value(user_id)) &&
        json_is_string(email) && mailer_address_valid(json_string_value(email)))
        json_object_set_new(facts, "recipient",
                            json_pack("{sOsOss}", "user_id", user_id, "email", email, "name",
                                      json_is_string(name) ? json_string_value(name) : ""));
    return facts;
}

int routing_render(context_t *c, const route_t *route, const json_t *event, const recipient_t *to, notice_t *notice,
                   char *error, size_t error_size)
{
    const json_t *data = json_object_get(event, "data");
    reader_t r = {.data = data, .error = error, .error_size = error_size};
    texts_t t = {BUFFER_INIT, BUFFER_INIT, BUFFER_INIT, BUFFER_INIT, NULL};
    json_t *deliveries = json_array(), *inbox = json_array();
    if (route->channels != 0)
        write_texts(route, &r, &t, to);
    if (!r.failed && t.email.len > NOTIFICATION_TEXT_MAX) {
        snprintf(error, error_size, "the event renders to more than %d bytes", NOTIFICATION_TEXT_MAX);
        r.failed = true;
    }
    if (!r.failed) {
        if ((route->channels & CHANNEL_EMAIL) && to->email != NULL)
            json_array_append_new(deliveries,
                                  json_pack("{ssssssss}", "channel", "email", "recipient", to->email, "subject",
                                            text_or_empty(&t.subject), "body", text_or_empty(&t.email)));
        if ((route->channels & CHANNEL_WEBHOOK) && notification_config.webhook_url[0] != '\0')
            json_array_append_new(deliveries,
                                  json_pack("{ssssssss}", "channel", "webhook", "recipient", "webhook", "subject",
                                            text_or_empty(&t.subject), "body", text_or_empty(&t.webhook)));
        if (route->channels & CHANNEL_IN_APP)
            json_array_append_new(inbox,
                                  json_pack("{sssossssssss?}", "audience", route->for_admins ? "admin" : "user",
                                            "user_id", to->user_id != NULL ? json_string(to->user_id) : json_null(),
                                            "kind", route->type, "title", text_or_empty(&t.subject), "body",
                                            text_or_empty(&t.in_app), "order_id", t.order_id));
    }
    buffer_free(&t.subject), buffer_free(&t.email), buffer_free(&t.in_app), buffer_free(&t.webhook);
    if (r.failed) {
        json_decref(deliveries), json_decref(inbox);
        return -1;
    }
    notice->event_id = context_strdup(c, json_string_value(json_object_get(event, "id")), SIZE_MAX);
    notice->type = route->type;
    notice->inbox_count = json_array_size(inbox);
    notice->deliveries = dump(c, deliveries);
    notice->inbox = dump(c, inbox);
    notice->facts = dump(c, facts_of(route->type, data));
    return 0;
}

/* --- Alertmanager's groups ----------------------------------------------------------------- */

static const char *label_of(const json_t *object, const char *key)
{
    const json_t *v = json_object_get(object, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void upper(char *out, size_t size, const char *s)
{
    size_t i = 0;
    for (; i + 1 < size && s[i] != '\0'; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    out[i] = '\0';
}

int routing_render_alerts(context_t *c, const char *event_id, const json_t *payload, notice_t *notice)
{
    const char *status = label_of(payload, "status");
    const json_t *alerts = json_object_get(payload, "alerts");
    const char *group_name = label_of(json_object_get(payload, "groupLabels"), "alertname");
    if (group_name == NULL)
        group_name = label_of(json_object_get(payload, "commonLabels"), "alertname");
    if (group_name == NULL)
        group_name = label_of(json_object_get(json_array_get(alerts, 0), "labels"), "alertname");
    char status_upper[16];
    upper(status_upper, sizeof(status_upper), status);
    buffer_t subject = BUFFER_INIT, text = BUFFER_INIT;
    buffer_appendf(&subject, "[%s:%zu] %s", status_upper, json_array_size(alerts), group_name);
    buffer_appendf(&text, "Alertmanager: %zu alert%s %s in group %s.\n", json_array_size(alerts),
                   json_array_size(alerts) == 1 ? "" : "s", status, group_name);
    json_t *inbox = json_array();
    size_t index;
    const json_t *alert;
    json_array_foreach(alerts, index, alert)
    {
        const json_t *labels = json_object_get(alert, "labels"), *annotations = json_object_get(alert, "annotations");
        const char *alert_status = label_of(alert, "status"), *name = label_of(labels, "alertname");
        const char *summary = label_of(annotations, "summary"), *description = label_of(annotations, "description");
        const char *starts = label_of(alert, "startsAt"), *ends = label_of(alert, "endsAt");
        char alert_upper[16];
        upper(alert_upper, sizeof(alert_upper), alert_status);
        buffer_appendf(&text, "\n[%s] %s\n", alert_upper, name);
        if (summary != NULL)
            buffer_appendf(&text, "  %s\n", summary);
        if (description != NULL)
            buffer_appendf(&text, "  %s\n", description);
        buffer_append_str(&text, "  labels:");
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)labels, key, value)
        {
            if (json_is_string(value))
                buffer_appendf(&text, " %s=%s", key, json_string_value(value));
        }
        buffer_append_str(&text, "\n");
        if (starts != NULL)
            buffer_appendf(&text, "  since %s\n", starts);
        if (strcmp(alert_status, "resolved") == 0 && ends != NULL)
            buffer_appendf(&text, "  resolved at %s\n", ends);
        char title[300], kind[32];
        snprintf(title, sizeof(title), "[%s] %s", alert_upper, name);
        snprintf(kind, sizeof(kind), "alert.%s", alert_status);
        json_array_append_new(inbox, json_pack("{sssnssssss}", "audience", "admin", "user_id", "kind", kind, "title",
                                               title, "body",
                                               summary != NULL       ? summary
                                               : description != NULL ? description
                                                                     : title));
    }
    const char *external = label_of(payload, "externalURL");
    if (external != NULL)
        buffer_appendf(&text, "\nAlertmanager: %s\n", external);
    bool too_long = text.len > NOTIFICATION_TEXT_MAX;
    json_t *deliveries = json_array();
    if (!too_long) {
        json_array_append_new(deliveries,
                              json_pack("{ssssssss}", "channel", "email", "recipient", notification_config.admin_email,
                                        "subject", subject.data, "body", text.data));
        if (notification_config.webhook_url[0] != '\0') {
            buffer_t slack = BUFFER_INIT;
            buffer_appendf(&slack, "*%s*\n%s", subject.data, text.data);
            json_array_append_new(deliveries, json_pack("{ssssssss}", "channel", "webhook", "recipient", "webhook",
                                                        "subject", subject.data, "body", slack.data));
            buffer_free(&slack);
        }
    }
    buffer_free(&subject), buffer_free(&text);
    if (too_long) {
        json_decref(deliveries), json_decref(inbox);
        return -1;
    }
    notice->event_id = context_strdup(c, event_id, SIZE_MAX);
    notice->type = "alertmanager";
    notice->inbox_count = json_array_size(inbox);
    notice->deliveries = dump(c, deliveries);
    notice->inbox = dump(c, inbox);
    notice->facts = context_strdup(c, "{}", SIZE_MAX);
    return 0;
}
