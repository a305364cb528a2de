/* dispatch.c - take a notice in once, send what it claims, record how it went.
 *
 *   take_in (one transaction: dedupe record, inbox rows, deliveries, claims)
 *     -> send each claimed delivery (email and webhook at once)
 *     -> settle (sent, or released for the next attempt)
 *     -> done(sent, failed, duplicate)
 *
 * The reclaim sweep runs the second half for deliveries whose claim lapsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notification.h"

#define RECLAIM_BATCH 100

typedef struct send {
    struct dispatch *d;
    const char *event_id, *channel, *recipient, *subject, *body;
    const char *claim; /* the claim's token: only its holder settles the row */
    const char *error; /* NULL: sent */
} send_t;

typedef struct dispatch {
    context_t *c;
    const notice_t *notice;
    send_t *sends;
    size_t count, left;
    dispatch_result_t result;
    dispatch_done_fn done;
    void *data;
} dispatch_t;

static const char *field(context_t *c, const json_t *item, const char *key)
{
    const json_t *v = json_object_get(item, key);
    return context_strdup(c, json_is_string(v) ? json_string_value(v) : "", SIZE_MAX);
}

/* Copies the claimed rows (JSON text) into the context's memory. Returns
 * how many, or -1 when the text is no list. */
static long read_claims(dispatch_t *d, const char *text, const char *event_id)
{
    json_t *list = json_loads(text, 0, NULL);
    if (!json_is_array(list)) {
        json_decref(list);
        return -1;
    }
    d->count = json_array_size(list);
    d->sends = context_alloc(d->c, (d->count > 0 ? d->count : 1) * sizeof(send_t));
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        send_t *s = &d->sends[i];
        s->d = d;
        s->event_id = event_id != NULL ? event_id : field(d->c, item, "event_id");
        s->channel = field(d->c, item, "channel");
        s->recipient = field(d->c, item, "recipient");
        s->subject = field(d->c, item, "subject");
        s->body = field(d->c, item, "body");
        s->claim = field(d->c, item, "claim");
    }
    json_decref(list);
    return (long)d->count;
}

/* --- settling ------------------------------------------------------------------------ */

static void finished(void *data, const PGresult *result)
{
    dispatch_t *d = data;
    (void)result;
    d->done(d->data, &d->result);
}

static void settle(dispatch_t *d)
{
    if (d->count == 0) { /* nothing was sent: nothing to record */
        d->done(d->data, &d->result);
        return;
    }
    json_t *results = json_array();
    for (size_t i = 0; i < d->count; i++) {
        const send_t *s = &d->sends[i];
        json_t *row = json_pack("{ssssssssss?}", "event_id", s->event_id, "channel", s->channel, "recipient",
                                s->recipient, "claim", s->claim, "error", s->error);
        if (row == NULL) {
            json_decref(results);
            context_error(d->c, "a settlement could not be built", LOG_STRING("event_id", s->event_id));
            context_fail(d->c, 500, "internal", "a settlement could not be built");
            return;
        }
        json_array_append_new(results, row);
    }
    char *text = json_dumps(results, JSON_COMPACT);
    json_decref(results);
    if (text == NULL) {
        context_fail(d->c, 500, "internal", "out of memory");
        return;
    }
    const char *params[] = {text};
    step_query(d->c, "settle", params, finished, d); /* copies the parameters */
    free(text);
}

static void sent_one(send_t *s, const char *error)
{
    dispatch_t *d = s->d;
    if (error != NULL) {
        s->error = context_strdup(d->c, error, SIZE_MAX);
        d->result.failed++;
        notification_count(s->channel, "failed");
        context_warn(d->c, "notification not sent", LOG_STRING("channel", s->channel),
                     LOG_STRING("event_id", s->event_id), LOG_STRING("error", error));
    } else {
        d->result.sent++;
        notification_count(s->channel, "sent");
    }
    if (--d->left == 0)
        settle(d);
}

static void on_mail(void *data, const char *error)
{
    send_t *s = data;
    context_t *c = s->d->c;
    sent_one(s, error);
    context_release(c);
}

static void on_webhook(void *data, const http_response_t *response)
{
    send_t *s = data;
    char error[300];
    if (response->status != HTTP_CLIENT_OK)
        snprintf(error, sizeof(error), "webhook: %s", response->error);
    else if (response->code < 200 || response->code > 299)
        snprintf(error, sizeof(error), "webhook answered %d", response->code);
    sent_one(s, response->status == HTTP_CLIENT_OK && response->code >= 200 && response->code <= 299 ? NULL : error);
}

/* A Message-ID's local part: the event id's letters, digits, '.' and
 * '-', then the channel. */
static const char *message_id_of(context_t *c, const char *event_id)
{
    size_t n = strlen(event_id);
    char *out = context_alloc(c, n + 8);
    for (size_t i = 0; i < n; i++) {
        char ch = event_id[i];
        bool plain =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
        out[i] = plain ? ch : '-';
    }
    memcpy(out + n, ".email", 7);
    return out;
}

static void send_all(dispatch_t *d)
{
    d->left = d->count;
    if (d->count == 0) {
        settle(d);
        return;
    }
    for (size_t i = 0; i < d->count; i++) {
        send_t *s = &d->sends[i];
        if (strcmp(s->channel, "email") == 0) {
            mail_t mail = {.to = s->recipient,
                           .subject = s->subject,
                           .text = s->body,
                           .message_id = message_id_of(d->c, s->event_id)};
            context_hold(d->c);
            mailer_send(notification_mailer(d->c->worker), d->c->worker, &mail, on_mail, s);
        } else if (strcmp(s->channel, "webhook") == 0 && notification_config.webhook_url[0] != '\0') {
            json_t *body = json_pack("{ss}", "text", s->body);
            char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
            json_decref(body);
            http_call_t call = {.peer = "webhook",
                                .method = "POST",
                                .url = notification_config.webhook_url,
                                .body = text != NULL ? text : "{}",
                                .body_len = text != NULL ? strlen(text) : 2,
                                .idempotency_key = s->event_id};
            step_http_raw(d->c, &call, on_webhook, s); /* copies the call */
            free(text);
        } else {
            sent_one(s, "no such channel configured");
        }
    }
}

/* --- taking a notice in ------------------------------------------------------------------- */

static void taken_in(void *data, const PGresult *result)
{
    dispatch_t *d = data;
    d->result.duplicate = strcmp(PQgetvalue(result, 0, 0), "t") != 0;
    d->result.held = (size_t)strtoul(PQgetvalue(result, 0, 2), NULL, 10);
    if (read_claims(d, PQgetvalue(result, 0, 1), d->notice->event_id) < 0) {
        context_error(d->c, "take_in gave no list");
        context_fail(d->c, 500, "internal", "take_in gave no list");
        return;
    }
    if (d->result.duplicate)
        notification_count_duplicate();
    else
        for (size_t i = 0; i < d->notice->inbox_count; i++)
            notification_count("in_app", "stored");
    send_all(d);
}

void dispatch_notice(context_t *c, const notice_t *notice, dispatch_done_fn done, void *data)
{
    dispatch_t *d = context_alloc(c, sizeof(*d));
    *d = (dispatch_t){.c = c, .notice = notice, .done = done, .data = data};
    char lease[24];
    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)notification_config.claim_lease_ms);
    const char *params[] = {notice->event_id, notice->type, notice->deliveries, notice->inbox, notice->facts, lease};
    step_query(c, "take_in", params, taken_in, d);
}

/* --- the reclaim sweep ---------------------------------------------------------------------- */

static void reclaimed(void *data, const dispatch_result_t *result)
{
    context_t *c = data;
    if (result->sent + result->failed > 0)
        context_info(c, "lapsed deliveries sent again", LOG_INT("sent", (int64_t)result->sent),
                     LOG_INT("failed", (int64_t)result->failed));
}

static void send_reclaimed(void *data, const PGresult *result)
{
    dispatch_t *d = data;
    if (read_claims(d, PQgetvalue(result, 0, 0), NULL) <= 0)
        return;
    send_all(d);
}

static void reclaim_run(context_t *run, void *data)
{
    (void)data;
    dispatch_t *d = context_alloc(run, sizeof(*d));
    *d = (dispatch_t){.c = run, .done = reclaimed, .data = run};
    char limit[16], lease[24];
    snprintf(limit, sizeof(limit), "%d", RECLAIM_BATCH);
    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)notification_config.claim_lease_ms);
    const char *params[] = {limit, lease};
    step_query(run, "reclaim", params, send_reclaimed, d);
}

void dispatch_start_reclaim(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "reclaim", notification_config.reclaim_every_ms, notification_config.reclaim_every_ms,
                reclaim_run, NULL);
}
