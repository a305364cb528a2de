/* payment_metrics.c - the payment service's business metrics.
 *
 *   oms_payments_total{status, method}    each charge once, when it ends
 *                                         (succeeded, declined, failed),
 *                                         and each refund made (refunded)
 *   oms_payment_amount_cents              the amounts of succeeded charges
 *   oms_payment_processor_duration_seconds{outcome}
 *                                         how long the processor took:
 *                                         approved, declined, timeout
 *
 * Amounts are in minor units whatever the currency; the currency is no
 * label, because clients choose it (any three letters) and labels must
 * stay few.
 */
#include "metrics.h"
#include "payment.h"

static metrics_family_t *payments_total, *charged_amounts, *processor_duration;

/* $1 to $10,000, roughly doubling. */
static const double amount_buckets[] = {100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

/* From a quick answer to the timeout (2 s by default) and past it. */
static const double processor_buckets[] = {0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5};

void payment_metrics_register(void)
{
    static const char *const status_labels[] = {"status", "method", NULL};
    static const char *const outcome_label[] = {"outcome", NULL};
    payments_total = metrics_counter("oms_payments_total",
                                     "Charges by how they ended (succeeded, declined, failed) and refunds made "
                                     "(refunded), by payment method.",
                                     status_labels);
    charged_amounts = metrics_histogram("oms_payment_amount_cents", "Amounts of succeeded charges, in minor units.",
                                        NULL, amount_buckets, sizeof(amount_buckets) / sizeof(amount_buckets[0]));
    processor_duration = metrics_histogram(
        "oms_payment_processor_duration_seconds",
        "Time the payment processor took to answer a charge, by outcome (approved, declined, timeout).", outcome_label,
        processor_buckets, sizeof(processor_buckets) / sizeof(processor_buckets[0]));
}

void payment_count(const char *status, const char *method)
{
    metrics_counter_add(payments_total, (const char *const[]){status, method}, 1);
}

void payment_observe_amount(long long amount_cents)
{
    metrics_histogram_observe(charged_amounts, NULL, (double)amount_cents);
}

void payment_observe_processor(const char *outcome, double seconds)
{
    metrics_histogram_observe(processor_duration, (const char *const[]){outcome}, seconds);
}
