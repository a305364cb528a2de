/* metrics.h - a Prometheus metrics registry safe across threads.
 *
 * Families are declared at start-up (before worker threads start) and updated
 * from any thread. Counters, histograms and gauge_add write to a per-thread
 * shard that only that thread modifies, so the request path takes no shared
 * lock; a shard's mutex is taken only when a new label set appears and while
 * /metrics reads it. metrics_gauge_set is "last write wins" across threads
 * and goes through the family's own mutex (it is for values that change
 * rarely, like stock levels or fault flags).
 *
 * Label values must be low-cardinality (route templates, status codes,
 * outcomes), never ids or raw paths.
 */
#ifndef OMS_METRICS_H
#define OMS_METRICS_H

#include <stddef.h>

#include "buffer.h"

#define METRICS_MAX_LABELS 4

typedef struct metrics_family metrics_family_t;

/* Declares a family. `labels` is a NULL-terminated list of label names (or
 * NULL for none). Declaring an existing name again returns the same family
 * (its first declaration's labels win). Returns NULL only on a programming
 * error such as too many labels or a name reused with another type. */
metrics_family_t *metrics_counter(const char *name, const char *help, const char *const *labels);
metrics_family_t *metrics_gauge(const char *name, const char *help, const char *const *labels);
metrics_family_t *metrics_histogram(const char *name, const char *help, const char *const *labels, const double *bounds,
                                    size_t bound_count);

/* Updates the series named by `values` (one per declared label, in order;
 * NULL when the family has no labels). */
void metrics_counter_add(metrics_family_t *family, const char *const *values, double amount);
void metrics_gauge_add(metrics_family_t *family, const char *const *values, double delta);
void metrics_gauge_set(metrics_family_t *family, const char *const *values, double value);
void metrics_histogram_observe(metrics_family_t *family, const char *const *values, double value);

/* A collector appends whole families (HELP, TYPE and samples) at render
 * time, for values read on demand such as process_* from /proc. */
typedef void (*metrics_collector_fn)(buffer_t *out, void *data);
void metrics_register_collector(metrics_collector_fn fn, void *data);

/* Appends the text exposition format (version 0.0.4) of every family, sorted
 * by label values, then the collectors' output. */
void metrics_render(buffer_t *out);

/* Appends a sample value the way the exposition format spells it
 * (integers without a fraction, +Inf, -Inf, NaN). */
void metrics_format_value(buffer_t *out, double value);

/* Appends `"value"` with backslash, double-quote and newline escaped. */
void metrics_append_label_value(buffer_t *out, const char *value);

/* Forgets every family and collector (tests only; no thread may be using
 * the registry). */
void metrics_reset(void);

/* Commonly used bucket boundaries, in seconds, for request durations. */
extern const double metrics_duration_buckets[];
extern const size_t metrics_duration_bucket_count;

#endif
