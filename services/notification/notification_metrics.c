/* notification_metrics.c - the notification service's own metrics.
 *
 *   oms_notifications_total{channel, outcome}   each message: email and
 *                                               webhook sent or failed
 *                                               (each attempt), in_app
 *                                               stored
 *   oms_notification_duplicates_total           events taken in before
 *                                               (a redelivery, a
 *                                               duplicate publish)
 *   oms_notification_retries_total              events sent back for
 *                                               another attempt
 *   oms_notification_dead_letters_total         events given up on, to
 *                                               oms.dead-letters
 *
 * The consumer (consumer.h, broker.h) adds the rest of the picture:
 * messaging_process_duration_seconds{destination,outcome} for how long an
 * event took, messaging_queue_messages{destination,state} for the backlog
 * and messaging_queue_consumers for the consumer count.
 */
#include "metrics.h"
#include "notification.h"

static metrics_family_t *notifications_total, *duplicates_total, *retries_total, *dead_letters_total;

void notification_metrics_register(void)
{
    static const char *const labels[] = {"channel", "outcome", NULL};
    notifications_total = metrics_counter(
        "oms_notifications_total",
        "Notifications by channel (email, webhook, in_app) and outcome (sent, failed: per attempt; stored).", labels);
    duplicates_total = metrics_counter("oms_notification_duplicates_total",
                                       "Events that had been taken in before: nothing sent.", NULL);
    retries_total = metrics_counter("oms_notification_retries_total",
                                    "Events that failed and were sent back for another attempt after a delay.", NULL);
    dead_letters_total = metrics_counter("oms_notification_dead_letters_total",
                                         "Events that failed their last attempt and went to oms.dead-letters.", NULL);
    /* every series from the start, so that rate() sees the first one */
    static const char *const sent[][2] = {
        {"email", "sent"}, {"email", "failed"}, {"webhook", "sent"}, {"webhook", "failed"}, {"in_app", "stored"}};
    for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++)
        metrics_counter_add(notifications_total, sent[i], 0);
    metrics_counter_add(duplicates_total, NULL, 0);
    metrics_counter_add(retries_total, NULL, 0);
    metrics_counter_add(dead_letters_total, NULL, 0);
    consumer_metrics_register();
}

void notification_count(const char *channel, const char *outcome)
{
    metrics_counter_add(notifications_total, (const char *const[]){channel, outcome}, 1);
}

void notification_count_duplicate(void)
{
    metrics_counter_add(duplicates_total, NULL, 1);
}

void notification_count_settled(broker_settlement_t how)
{
    if (how == BROKER_RETRY)
        metrics_counter_add(retries_total, NULL, 1);
    else if (how == BROKER_DEAD_LETTER)
        metrics_counter_add(dead_letters_total, NULL, 1);
}
