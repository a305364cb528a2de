/* stock_metrics.c - the inventory's business metrics.
 *
 * oms_inventory_stock{sku} and oms_inventory_low_stock_products are read
 * from PostgreSQL by worker 0 every STOCK_METRICS_INTERVAL_MS, so they are
 * right whichever instance or admin changed the stock. Reservation outcomes
 * and cache results are counted where they happen.
 */
#include <stdlib.h>

#include "inventory.h"
#include "metrics.h"

static metrics_family_t *stock_gauge, *low_stock_gauge, *reservations_total, *cache_total;

void inventory_metrics_register(void)
{
    static const char *const sku_label[] = {"sku", NULL};
    static const char *const outcome_label[] = {"outcome", NULL};
    static const char *const result_label[] = {"result", NULL};
    stock_gauge = metrics_gauge("oms_inventory_stock", "Units available to reserve, per product.", sku_label);
    low_stock_gauge = metrics_gauge("oms_inventory_low_stock_products",
                                    "Products whose available stock is at or below their low-stock threshold.", NULL);
    reservations_total = metrics_counter("oms_inventory_reservations_total",
                                         "Reservation requests and transitions, by outcome.", outcome_label);
    cache_total = metrics_counter("oms_inventory_cache_requests_total",
                                  "Product cache lookups by result (hit, miss, error, bypass).", result_label);
}

void inventory_count_reservation(const char *outcome, double n)
{
    metrics_counter_add(reservations_total, (const char *const[]){outcome}, n);
}

void inventory_count_cache(const char *result)
{
    metrics_counter_add(cache_total, (const char *const[]){result}, 1);
}

static void set_stock_gauges(void *data, const PGresult *result)
{
    (void)data;
    int rows = PQntuples(result), low = 0;
    for (int i = 0; i < rows; i++) {
        const char *sku = PQgetvalue(result, i, 0);
        long stock = strtol(PQgetvalue(result, i, 1), NULL, 10);
        long threshold = strtol(PQgetvalue(result, i, 2), NULL, 10);
        metrics_gauge_set(stock_gauge, (const char *const[]){sku}, (double)stock);
        low += stock <= threshold;
    }
    metrics_gauge_set(low_stock_gauge, NULL, low);
}

static void read_stock_levels(context_t *run, void *data)
{
    step_query(run, "stock_levels", NULL, set_stock_gauges, data);
}

void stock_metrics_start(chore_t *chore, worker_t *worker)
{
    /* the first read waits for the pool to connect */
    chore_start(chore, worker, "stock_metrics", 500, inventory_config.stock_refresh_ms, read_stock_levels, NULL);
}
