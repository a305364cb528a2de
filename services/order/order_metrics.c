/* order_metrics.c - the order service's business metrics.
 *
 *   oms_orders_total{status}       orders placed (PENDING) and settled
 *                                  (CONFIRMED, FAILED, CANCELLED)
 *   oms_order_amount_cents         what confirmed orders are worth
 *   oms_saga_step_duration_seconds{step,outcome}
 *                                  each peer call of a saga: ok, refused
 *                                  (the peer said no), error (no answer)
 *   oms_orders_in_flight           sagas running in this process
 */
#include "metrics.h"
#include "order.h"

static metrics_family_t *orders_total, *amount_cents, *step_duration, *in_flight;

void order_metrics_register(void)
{
    static const char *const status_label[] = {"status", NULL};
    static const char *const step_labels[] = {"step", "outcome", NULL};
    /* cents: from a $1 item to a large order */
    static const double amount_bounds[] = {100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 500000};
    static const double step_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    orders_total = metrics_counter("oms_orders_total", "Orders placed (PENDING) and settled, by status.", status_label);
    amount_cents = metrics_histogram("oms_order_amount_cents", "Total of each confirmed order, in cents.", NULL,
                                     amount_bounds, sizeof(amount_bounds) / sizeof(amount_bounds[0]));
    step_duration = metrics_histogram("oms_saga_step_duration_seconds",
                                      "Each peer call of the order saga, by step and outcome (ok, refused, error).",
                                      step_labels, step_bounds, sizeof(step_bounds) / sizeof(step_bounds[0]));
    in_flight = metrics_gauge("oms_orders_in_flight", "Order sagas running in this process.", NULL);
}

void order_count_status(const char *status)
{
    metrics_counter_add(orders_total, (const char *const[]){status}, 1);
}

void order_observe_amount(long long cents)
{
    metrics_histogram_observe(amount_cents, NULL, (double)cents);
}

void order_observe_step(const char *step, const char *outcome, double seconds)
{
    metrics_histogram_observe(step_duration, (const char *const[]){step, outcome}, seconds);
}

void order_in_flight_add(double delta)
{
    metrics_gauge_add(in_flight, NULL, delta);
}
