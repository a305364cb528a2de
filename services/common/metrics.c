/* metrics.c - sharded metric storage and text exposition. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES   96
#define MAX_SHARDS     64
#define MAX_COLLECTORS 16
#define SHARED_SHARD   MAX_SHARDS /* the extra shard guarded by the family mutex */

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type_t;

typedef struct series {
    char *key;                 /* label values joined by '\x1f' */
    _Atomic double value;      /* counter or gauge */
    _Atomic double sum;        /* histogram */
    _Atomic uint64_t *buckets; /* histogram: bound_count + 1 (the last is +Inf) */
} series_t;

typedef struct shard {
    pthread_mutex_t lock; /* held by the owner while it inserts, by render while it reads */
    series_t **slots;     /* open addressing, capacity is a power of two */
    size_t capacity, count;
} shard_t;

struct metrics_family {
    char *name, *help;
    metric_type_t type;
    char *labels[METRICS_MAX_LABELS];
    size_t label_count;
    double *bounds;
    size_t bound_count;
    pthread_mutex_t lock; /* guards the shared shard */
    shard_t shards[MAX_SHARDS + 1];
};

const double metrics_duration_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const size_t metrics_duration_bucket_count = sizeof(metrics_duration_buckets) / sizeof(double);

static metrics_family_t *families[MAX_FAMILIES];
static size_t family_count;
static struct {
    metrics_collector_fn fn;
    void *data;
} collectors[MAX_COLLECTORS];
static size_t collector_count;
static atomic_int next_shard;
static __thread int thread_shard = -1;

static char *copy_string(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        abort();
    return copy;
}

static metrics_family_t *declare(metric_type_t type, const char *name, const char *help, const char *const *labels,
                                 const double *bounds, size_t bound_count)
{
    for (size_t i = 0; i < family_count; i++)
        if (strcmp(families[i]->name, name) == 0)
            return families[i]->type == type ? families[i] : NULL; /* declared twice: share it */
    if (family_count == MAX_FAMILIES)
        return NULL;
    metrics_family_t *family = calloc(1, sizeof(*family));
    if (family == NULL)
        abort();
    family->type = type;
    family->name = copy_string(name);
    family->help = copy_string(help);
    for (; labels != NULL && labels[family->label_count] != NULL; family->label_count++) {
        if (family->label_count == METRICS_MAX_LABELS) {
            free(family);
            return NULL;
        }
        family->labels[family->label_count] = copy_string(labels[family->label_count]);
    }
    if (bound_count > 0) {
        family->bounds = malloc(bound_count * sizeof(double));
        if (family->bounds == NULL)
            abort();
        memcpy(family->bounds, bounds, bound_count * sizeof(double));
        family->bound_count = bound_count;
    }
    pthread_mutex_init(&family->lock, NULL);
    for (size_t i = 0; i <= MAX_SHARDS; i++)
        pthread_mutex_init(&family->shards[i].lock, NULL);
    families[family_count++] = family;
    return family;
}

metrics_family_t *metrics_counter(const char *name, const char *help, const char *const *labels)
{
    return declare(METRIC_COUNTER, name, help, labels, NULL, 0);
}

metrics_family_t *metrics_gauge(const char *name, const char *help, const char *const *labels)
{
    return declare(METRIC_GAUGE, name, help, labels, NULL, 0);
}

metrics_family_t *metrics_histogram(const char *name, const char *help, const char *const *labels, const double *bounds,
                                    size_t bound_count)
{
    return declare(METRIC_HISTOGRAM, name, help, labels, bounds, bound_count);
}

void metrics_register_collector(metrics_collector_fn fn, void *data)
{
    if (collector_count < MAX_COLLECTORS) {
        collectors[collector_count].fn = fn;
        collectors[collector_count].data = data;
        collector_count++;
    }
}

/* FNV-1a over the joined label values. */
static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return h;
}

/* Joins label values into buf; returns the key length. Values longer than
 * the buffer are cut, which only merges absurdly long label values. */
static size_t build_key(const metrics_family_t *family, const char *const *values, char *buf, size_t size)
{
    size_t len = 0;
    for (size_t i = 0; i < family->label_count; i++) {
        const char *v = values[i] != NULL ? values[i] : "";
        size_t n = strlen(v);
        if (len + n + 1 >= size)
            n = size - len - 2;
        memcpy(buf + len, v, n);
        len += n;
        if (i + 1 < family->label_count)
            buf[len++] = '\x1f';
    }
    buf[len] = '\0';
    return len;
}

static series_t *shard_find(shard_t *shard, const char *key, size_t len, uint64_t hash)
{
    if (shard->capacity == 0)
        return NULL;
    for (size_t i = hash & (shard->capacity - 1);; i = (i + 1) & (shard->capacity - 1)) {
        series_t *s = shard->slots[i];
        if (s == NULL)
            return NULL;
        if (strncmp(s->key, key, len) == 0 && s->key[len] == '\0')
            return s;
    }
}

static void shard_place(series_t **slots, size_t capacity, series_t *s)
{
    size_t i = hash_key(s->key, strlen(s->key)) & (capacity - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (capacity - 1);
    slots[i] = s;
}

/* Caller holds shard->lock. */
static series_t *shard_insert(const metrics_family_t *family, shard_t *shard, const char *key)
{
    if ((shard->count + 1) * 2 > shard->capacity) {
        size_t capacity = shard->capacity != 0 ? shard->capacity * 2 : 16;
        series_t **slots = calloc(capacity, sizeof(*slots));
        if (slots == NULL)
            abort();
        for (size_t i = 0; i < shard->capacity; i++)
            if (shard->slots[i] != NULL)
                shard_place(slots, capacity, shard->slots[i]);
        free(shard->slots);
        shard->slots = slots;
        shard->capacity = capacity;
    }
    series_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->key = copy_string(key);
    if (family->type == METRIC_HISTOGRAM) {
        s->buckets = calloc(family->bound_count + 1, sizeof(*s->buckets));
        if (s->buckets == NULL)
            abort();
    }
    shard_place(shard->slots, shard->capacity, s);
    shard->count++;
    return s;
}

static int current_shard(void)
{
    if (thread_shard < 0) {
        int index = atomic_fetch_add(&next_shard, 1);
        thread_shard = index < MAX_SHARDS ? index : SHARED_SHARD;
    }
    return thread_shard;
}

/* Finds or creates the series in this thread's shard. In the shared shard
 * the caller must hold family->lock. */
static series_t *lookup(metrics_family_t *family, int shard_index, const char *const *values)
{
    char key[512];
    size_t len = build_key(family, values, key, sizeof(key));
    shard_t *shard = &family->shards[shard_index];
    series_t *s = shard_find(shard, key, len, hash_key(key, len));
    if (s == NULL) {
        pthread_mutex_lock(&shard->lock);
        s = shard_insert(family, shard, key);
        pthread_mutex_unlock(&shard->lock);
    }
    return s;
}

static void add_relaxed(_Atomic double *target, double amount)
{
    atomic_store_explicit(target, atomic_load_explicit(target, memory_order_relaxed) + amount, memory_order_relaxed);
}

/* Runs `update` on the series either lock-free in this thread's shard, or
 * under the family lock when this thread has no shard of its own. */
#define WITH_SERIES(family, values, s, update)                                                                         \
    do {                                                                                                               \
        int shard_index_ = current_shard();                                                                            \
        if (shard_index_ == SHARED_SHARD)                                                                              \
            pthread_mutex_lock(&(family)->lock);                                                                       \
        series_t *s = lookup((family), shard_index_, (values));                                                        \
        update;                                                                                                        \
        if (shard_index_ == SHARED_SHARD)                                                                              \
            pthread_mutex_unlock(&(family)->lock);                                                                     \
    } while (0)

void metrics_counter_add(metrics_family_t *family, const char *const *values, double amount)
{
    if (family == NULL || !(amount >= 0))
        return;
    WITH_SERIES(family, values, s, add_relaxed(&s->value, amount));
}

void metrics_gauge_add(metrics_family_t *family, const char *const *values, double delta)
{
    if (family == NULL)
        return;
    WITH_SERIES(family, values, s, add_relaxed(&s->value, delta));
}

void metrics_gauge_set(metrics_family_t *family, const char *const *values, double value)
{
    if (family == NULL)
        return;
    pthread_mutex_lock(&family->lock);
    series_t *s = lookup(family, SHARED_SHARD, values);
    atomic_store_explicit(&s->value, value, memory_order_relaxed);
    pthread_mutex_unlock(&family->lock);
}

void metrics_histogram_observe(metrics_family_t *family, const char *const *values, double value)
{
    if (family == NULL || isnan(value))
        return;
    size_t bucket = 0;
    while (bucket < family->bound_count && value > family->bounds[bucket])
        bucket++;
    WITH_SERIES(family, values, s, {
        atomic_store_explicit(&s->buckets[bucket], atomic_load_explicit(&s->buckets[bucket], memory_order_relaxed) + 1,
                              memory_order_relaxed);
        add_relaxed(&s->sum, value);
    });
}

void metrics_format_value(buffer_t *out, double value)
{
    if (isnan(value))
        buffer_append_str(out, "NaN");
    else if (isinf(value))
        buffer_append_str(out, value > 0 ? "+Inf" : "-Inf");
    else if (value == floor(value) && fabs(value) < 1e15)
        buffer_appendf(out, "%.0f", value);
    else
        buffer_appendf(out, "%.15g", value);
}

void metrics_append_label_value(buffer_t *out, const char *value)
{
    buffer_append(out, "\"", 1);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\')
            buffer_append(out, "\\\\", 2);
        else if (*p == '"')
            buffer_append(out, "\\\"", 2);
        else if (*p == '\n')
            buffer_append(out, "\\n", 2);
        else
            buffer_append(out, p, 1);
    }
    buffer_append(out, "\"", 1);
}

/* Writes {a="x",b="y"[,le="..."]} for a series key; nothing when empty. */
static void append_labels(buffer_t *out, const metrics_family_t *family, const char *key, const char *le)
{
    if (family->label_count == 0 && le == NULL)
        return;
    buffer_append(out, "{", 1);
    const char *value = key;
    for (size_t i = 0; i < family->label_count; i++) {
        const char *end = strchr(value, '\x1f');
        size_t n = end != NULL ? (size_t)(end - value) : strlen(value);
        char tmp[512];
        memcpy(tmp, value, n);
        tmp[n] = '\0';
        if (i > 0)
            buffer_append(out, ",", 1);
        buffer_append_str(out, family->labels[i]);
        buffer_append(out, "=", 1);
        metrics_append_label_value(out, tmp);
        value += n + (end != NULL ? 1 : 0);
    }
    if (le != NULL) {
        if (family->label_count > 0)
            buffer_append(out, ",", 1);
        buffer_appendf(out, "le=\"%s\"", le);
    }
    buffer_append(out, "}", 1);
}

static int compare_series(const void *a, const void *b)
{
    return strcmp((*(series_t *const *)a)->key, (*(series_t *const *)b)->key);
}

static void append_help_text(buffer_t *out, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            buffer_append(out, "\\\\", 2);
        else if (*p == '\n')
            buffer_append(out, "\\n", 2);
        else
            buffer_append(out, p, 1);
    }
}

static void render_family(buffer_t *out, metrics_family_t *family)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    buffer_appendf(out, "# HELP %s ", family->name);
    append_help_text(out, family->help);
    buffer_appendf(out, "\n# TYPE %s %s\n", family->name, type_names[family->type]);

    /* Gather every shard's series, sort by key, then merge equal keys. */
    size_t total = 0, used = 0;
    pthread_mutex_lock(&family->lock);
    for (size_t i = 0; i <= MAX_SHARDS; i++) {
        pthread_mutex_lock(&family->shards[i].lock);
        total += family->shards[i].count;
    }
    series_t **all = malloc((total + 1) * sizeof(*all));
    if (all == NULL)
        abort();
    for (size_t i = 0; i <= MAX_SHARDS; i++) {
        shard_t *shard = &family->shards[i];
        for (size_t j = 0; j < shard->capacity; j++)
            if (shard->slots[j] != NULL)
                all[used++] = shard->slots[j];
    }
    qsort(all, used, sizeof(*all), compare_series);

    if (used == 0 && family->label_count == 0 && family->type != METRIC_HISTOGRAM)
        buffer_appendf(out, "%s 0\n", family->name);
    for (size_t i = 0; i < used;) {
        size_t end = i + 1;
        while (end < used && strcmp(all[end]->key, all[i]->key) == 0)
            end++;
        if (family->type == METRIC_HISTOGRAM) {
            uint64_t cumulative = 0;
            double sum = 0;
            for (size_t b = 0; b <= family->bound_count; b++) {
                for (size_t k = i; k < end; k++)
                    cumulative += atomic_load_explicit(&all[k]->buckets[b], memory_order_relaxed);
                char le[40];
                if (b < family->bound_count)
                    snprintf(le, sizeof(le), "%g", family->bounds[b]);
                else
                    snprintf(le, sizeof(le), "+Inf");
                buffer_appendf(out, "%s_bucket", family->name);
                append_labels(out, family, all[i]->key, le);
                buffer_appendf(out, " %llu\n", (unsigned long long)cumulative);
            }
            for (size_t k = i; k < end; k++)
                sum += atomic_load_explicit(&all[k]->sum, memory_order_relaxed);
            buffer_appendf(out, "%s_sum", family->name);
            append_labels(out, family, all[i]->key, NULL);
            buffer_append(out, " ", 1);
            metrics_format_value(out, sum);
            buffer_appendf(out, "\n%s_count", family->name);
            append_labels(out, family, all[i]->key, NULL);
            buffer_appendf(out, " %llu\n", (unsigned long long)cumulative);
        } else {
            double value = 0;
            for (size_t k = i; k < end; k++)
                value += atomic_load_explicit(&all[k]->value, memory_order_relaxed);
            buffer_append_str(out, family->name);
            append_labels(out, family, all[i]->key, NULL);
            buffer_append(out, " ", 1);
            metrics_format_value(out, value);
            buffer_append(out, "\n", 1);
        }
        i = end;
    }
    for (size_t i = 0; i <= MAX_SHARDS; i++)
        pthread_mutex_unlock(&family->shards[i].lock);
    pthread_mutex_unlock(&family->lock);
    free(all);
}

void metrics_render(buffer_t *out)
{
    for (size_t i = 0; i < family_count; i++)
        render_family(out, families[i]);
    for (size_t i = 0; i < collector_count; i++)
        collectors[i].fn(out, collectors[i].data);
}

static void free_family(metrics_family_t *family)
{
    for (size_t i = 0; i <= MAX_SHARDS; i++) {
        shard_t *shard = &family->shards[i];
        for (size_t j = 0; j < shard->capacity; j++) {
            if (shard->slots[j] != NULL) {
                free(shard->slots[j]->key);
                free(shard->slots[j]->buckets);
                free(shard->slots[j]);
            }
        }
        free(shard->slots);
        pthread_mutex_destroy(&shard->lock);
    }
    for (size_t i = 0; i < family->label_count; i++)
        free(family->labels[i]);
    pthread_mutex_destroy(&family->lock);
    free(family->bounds);
    free(family->name);
    free(family->help);
    free(family);
}

void metrics_reset(void)
{
    for (size_t i = 0; i < family_count; i++)
        free_family(families[i]);
    family_count = 0;
    collector_count = 0;
}
