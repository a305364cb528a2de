/* outbox.c - claim, publish, mark: the relay's one chore.
 *
 * A run works through up to RUN_BATCHES batches with two in flight: while
 * the broker confirms one batch, the next is claimed and published behind
 * it (on the same channel, so in order). Batches are settled in order:
 * each one's confirmed prefix is marked, and once one was not wholly
 * confirmed nothing after it is marked, so that what goes out again goes
 * out in order. The window keeps the broker and the database busy at once:
 * one batch at a time left each waiting for the other.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "metrics.h"
#include "random.h"
#include "step.h"

#define BACKLOG_EVERY_MS 1000
#define PRUNE_EVERY_MS   60000
#define PRUNE_ROWS       "5000" /* per prune: a small transaction, never a long lock */
#define WINDOW           2      /* batches published and not yet settled */
#define RUN_BATCHES      8      /* per run: a run's memory is freed when it ends */

struct outbox_relay {
    outbox_config_t config;
    worker_t *worker;
    chore_t chore;
    char channel[OUTBOX_SCHEMA_MAX + 8];
    char holder[128]; /* who holds the lease: host, pid and a random tag */
    char batch_size[24], lease_ms[24], retention_hours[24];
    uint64_t last_backlog_ms, last_prune_ms;
    bool failing; /* the last publish failed: logged once until it works again */
};

typedef struct relay_run relay_run_t;

/* One batch: the claimed rows, copied out of their PGresult. */
typedef struct relay_batch {
    relay_run_t *run;
    struct relay_batch *next; /* the run's unsettled batches, oldest first */
    size_t count;
    broker_message_t *messages;
    const char **seqs;
    double *created; /* created_at (its transaction's start), seconds since the epoch */
    size_t confirmed;
    bool answered; /* the broker's answer is in */
} relay_batch_t;

struct relay_run {
    context_t *c;
    outbox_relay_t *relay;
    relay_batch_t *unsettled, **tail;
    size_t in_flight;      /* batches published, not settled */
    size_t claimed;        /* batches claimed in this run */
    const char *after_seq; /* the next claim starts after this row */
    bool claiming;         /* a claim is under way */
    bool exhausted;        /* the last claim found less than a full batch */
    bool failed;           /* a batch was not wholly confirmed: mark nothing after it */
};

static metrics_family_t *pending_gauge, *lag_histogram;

void outbox_metrics_register(void)
{
    static const double lag_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900};
    pending_gauge =
        metrics_gauge("oms_outbox_pending", "Outbox events written but not yet confirmed by RabbitMQ.", NULL);
    lag_histogram =
        metrics_histogram("oms_outbox_publish_lag_seconds",
                          "Time from an outbox event's write (its transaction's start) to RabbitMQ's confirm.", NULL,
                          lag_buckets, sizeof(lag_buckets) / sizeof(lag_buckets[0]));
}

/* --- statements -------------------------------------------------------------- */

int outbox_check_schema(const char *schema)
{
    size_t len = strlen(schema);
    if (len == 0 || len >= OUTBOX_SCHEMA_MAX || schema[0] < 'a' || schema[0] > 'z')
        return -1;
    return strspn(schema, "abcdefghijklmnopqrstuvwxyz0123456789_") == len ? 0 : -1;
}

/* The claim renews (or takes over an expired) lease and reads the next
 * rows in one statement; without the lease it reads nothing. */
static const char claim_sql[] =
    "WITH lease AS ("
    " INSERT INTO \"%1$s\".outbox_relay AS l (singleton, holder, lease_until)"
    " VALUES (true, $1, clock_timestamp() + $3::int * interval '1 millisecond')"
    " ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until"
    " WHERE l.holder = excluded.holder OR l.lease_until < clock_timestamp()"
    " RETURNING 1)"
    " SELECT o.seq, o.id, o.routing_key, o.payload::text, o.traceparent, extract(epoch FROM o.created_at)::float8"
    " FROM \"%1$s\".outbox o"
    " WHERE EXISTS (SELECT 1 FROM lease) AND o.published_at IS NULL AND o.seq > $4::bigint"
    " ORDER BY o.seq LIMIT $2::int";
static const char mark_sql[] =
    "UPDATE \"%1$s\".outbox SET published_at = now() WHERE seq = ANY($1::bigint[]) AND published_at IS NULL";
static const char backlog_sql[] = "SELECT count(*) FROM \"%1$s\".outbox WHERE published_at IS NULL";
/* by id (the primary key) of rows the published_at index finds */
static const char prune_sql[] = "DELETE FROM \"%1$s\".outbox WHERE id IN (SELECT id FROM \"%1$s\".outbox"
                                " WHERE published_at < now() - $1::int * interval '1 hour' LIMIT " PRUNE_ROWS ")";

static char *format_sql(const char *format, const char *schema)
{
    int n = snprintf(NULL, 0, format, schema);
    char *sql = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (sql != NULL)
        snprintf(sql, (size_t)n + 1, format, schema);
    return sql;
}

int outbox_statements(const outbox_config_t *config, pg_statement_t out[OUTBOX_STATEMENT_COUNT])
{
    if (outbox_check_schema(config->schema) != 0)
        return -1;
    static const struct {
        const char *name, *format;
        int params;
    } templates[OUTBOX_STATEMENT_COUNT] = {
        {"outbox_claim", claim_sql, 4},
        {"outbox_mark", mark_sql, 1},
        {"outbox_backlog", backlog_sql, 0},
        {"outbox_prune", prune_sql, 1},
    };
    for (size_t i = 0; i < OUTBOX_STATEMENT_COUNT; i++) {
        char *sql = format_sql(templates[i].format, config->schema); /* kept for the process */
        if (sql == NULL)
            return -1;
        out[i] = (pg_statement_t){templates[i].name, sql, templates[i].params};
    }
    return 0;
}

/* --- one run ------------------------------------------------------------------ */

static void claim_more(relay_run_t *run);

static double epoch_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_pruned(void *data, const PGresult *result)
{
    relay_run_t *run = data;
    const char *rows = PQcmdTuples((PGresult *)result);
    if (rows[0] != '\0' && strcmp(rows, "0") != 0)
        context_info(run->c, "published outbox events pruned", LOG_STRING("rows", rows),
                     LOG_INT("older_than_hours", run->relay->config.retention_hours));
}

/* The end of a run: more to do at once, or, now and then, published rows
 * past their retention go. */
static void finish_run(relay_run_t *run)
{
    if (run->claiming || run->in_flight > 0 || context_is_cancelled(run->c))
        return;
    outbox_relay_t *relay = run->relay;
    if (!run->exhausted && !run->failed) {
        chore_again_now(&relay->chore); /* stopped at RUN_BATCHES: more are probably waiting */
        return;
    }
    uint64_t now = loop_now_ms();
    if (relay->last_prune_ms != 0 && now - relay->last_prune_ms < PRUNE_EVERY_MS)
        return;
    relay->last_prune_ms = now;
    const char *params[] = {relay->retention_hours};
    step_query(run->c, "outbox_prune", params, on_pruned, run);
}

static void on_marked(void *data, const pg_reply_t *reply)
{
    relay_batch_t *batch = data;
    relay_run_t *run = batch->run;
    if (reply->status != PG_OK) {
        /* They were confirmed, so they are out; unmarked, they will be
         * published again: a duplicate, never a loss. */
        context_warn(run->c, "published outbox events could not be marked; they will be sent again",
                     LOG_INT("events", batch->confirmed), LOG_STRING("reason", reply->message));
        return;
    }
    double now = epoch_now();
    for (size_t i = 0; i < batch->confirmed; i++)
        metrics_histogram_observe(lag_histogram, NULL, now > batch->created[i] ? now - batch->created[i] : 0);
    context_debug(run->c, "outbox batch published", LOG_INT("events", batch->confirmed));
}

/* "{1,2,3}": the confirmed rows' seq values as one array parameter. */
static char *seq_array(relay_batch_t *batch)
{
    size_t len = 3;
    for (size_t i = 0; i < batch->confirmed; i++)
        len += strlen(batch->seqs[i]) + 1;
    char *text = context_alloc(batch->run->c, len), *p = text;
    *p++ = '{';
    for (size_t i = 0; i < batch->confirmed; i++) {
        size_t n = strlen(batch->seqs[i]);
        if (i > 0)
            *p++ = ',';
        memcpy(p, batch->seqs[i], n);
        p += n;
    }
    *p++ = '}';
    *p = '\0';
    return text;
}

/* Marks the answered batches at the head, in order. Runs even when the
 * run was cancelled: what the broker has must be recorded. */
static void settle(relay_run_t *run)
{
    while (run->unsettled != NULL && run->unsettled->answered) {
        relay_batch_t *batch = run->unsettled;
        run->unsettled = batch->next;
        if (run->unsettled == NULL)
            run->tail = &run->unsettled;
        run->in_flight--;
        if (run->failed)
            continue; /* an earlier batch goes out again: these follow it */
        if (batch->confirmed > 0) {
            const char *params[] = {seq_array(batch)};
            step_query_raw(run->c, "outbox_mark", params, on_marked, batch);
        }
        if (batch->confirmed < batch->count)
            run->failed = true;
    }
}

static void on_published(void *data, size_t confirmed, const char *error)
{
    relay_batch_t *batch = data;
    relay_run_t *run = batch->run;
    batch->confirmed = confirmed;
    batch->answered = true;
    bool cancelled = context_is_cancelled(run->c);
    if (!cancelled) {
        outbox_relay_t *relay = run->relay;
        if (error != NULL && !relay->failing)
            context_warn(run->c, "outbox events not published; retrying", LOG_STRING("reason", error),
                         LOG_INT("confirmed", confirmed), LOG_INT("batch", batch->count));
        else if (error == NULL && relay->failing)
            context_info(run->c, "outbox publishing again");
        relay->failing = error != NULL;
    }
    settle(run);
    if (cancelled)
        return; /* the relay is stopping: it may be gone */
    claim_more(run);
    finish_run(run);
}

static char *copy_column(relay_run_t *run, const PGresult *result, int row, int column)
{
    if (PQgetisnull(result, row, column))
        return NULL;
    return context_strdup(run->c, PQgetvalue(result, row, column), (size_t)PQgetlength(result, row, column));
}

static void on_claimed(void *data, const PGresult *result)
{
    relay_run_t *run = data;
    run->claiming = false;
    int rows = PQntuples(result);
    run->exhausted = (size_t)rows < run->relay->config.batch_size;
    if (rows == 0 || run->failed) { /* after a failure these could not be marked anyway */
        finish_run(run);
        return;
    }
    relay_batch_t *batch = context_alloc(run->c, sizeof(*batch));
    batch->run = run;
    batch->count = (size_t)rows;
    batch->messages = context_alloc(run->c, batch->count * sizeof(*batch->messages));
    batch->seqs = context_alloc(run->c, batch->count * sizeof(*batch->seqs));
    batch->created = context_alloc(run->c, batch->count * sizeof(*batch->created));
    for (int i = 0; i < rows; i++) {
        batch->seqs[i] = copy_column(run, result, i, 0);
        batch->created[i] = strtod(PQgetvalue(result, i, 5), NULL);
        const char *body = copy_column(run, result, i, 3);
        batch->messages[i] = (broker_message_t){
            .exchange = BROKER_EVENTS_EXCHANGE,
            .message_id = copy_column(run, result, i, 1),
            .routing_key = copy_column(run, result, i, 2),
            .body = body,
            .body_len = strlen(body),
            .traceparent = copy_column(run, result, i, 4),
            .timestamp = (int64_t)batch->created[i],
        };
    }
    run->after_seq = batch->seqs[rows - 1];
    *run->tail = batch;
    run->tail = &batch->next;
    run->in_flight++;
    step_publish_raw(run->c, batch->messages, batch->count, on_published, batch);
    claim_more(run); /* the next batch goes out behind this one */
}

/* Claims the next batch when the window has room and there may be more. */
static void claim_more(relay_run_t *run)
{
    if (run->claiming || run->exhausted || run->failed || run->in_flight >= WINDOW || run->claimed >= RUN_BATCHES)
        return;
    outbox_relay_t *relay = run->relay;
    run->claiming = true;
    run->claimed++;
    const char *params[] = {relay->holder, relay->batch_size, relay->lease_ms, run->after_seq};
    step_query(run->c, "outbox_claim", params, on_claimed, run);
}

static void on_backlog(void *data, const PGresult *result)
{
    relay_run_t *run = data;
    metrics_gauge_set(pending_gauge, NULL, strtod(PQgetvalue(result, 0, 0), NULL));
    claim_more(run);
}

static void relay_run(context_t *c, void *data)
{
    outbox_relay_t *relay = data;
    relay_run_t *run = context_alloc(c, sizeof(*run));
    *run = (relay_run_t){.c = c, .relay = relay, .after_seq = "0"};
    run->tail = &run->unsettled;
    uint64_t now = loop_now_ms();
    if (now - relay->last_backlog_ms >= BACKLOG_EVERY_MS) {
        relay->last_backlog_ms = now;
        step_query(c, "outbox_backlog", NULL, on_backlog, run);
        return;
    }
    claim_more(run);
}

/* --- start and stop ------------------------------------------------------------ */

static void on_notify(void *data, const char *channel)
{
    (void)channel;
    outbox_relay_t *relay = data;
    chore_wake(&relay->chore);
}

outbox_relay_t *outbox_relay_start(worker_t *worker, const outbox_config_t *config)
{
    outbox_relay_t *relay = calloc(1, sizeof(*relay));
    if (relay == NULL || outbox_check_schema(config->schema) != 0 || worker->broker == NULL || worker->pg == NULL) {
        log_error(NULL, "cannot start the outbox relay", LOG_STRING("schema", config->schema));
        free(relay);
        return NULL;
    }
    relay->config = *config;
    relay->worker = worker;
    snprintf(relay->channel, sizeof(relay->channel), "%s_outbox", config->schema);
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(relay->holder, sizeof(relay->holder), "%s:%d:%08x", host, (int)getpid(), (unsigned)random_u64());
    snprintf(relay->batch_size, sizeof(relay->batch_size), "%zu", config->batch_size);
    snprintf(relay->lease_ms, sizeof(relay->lease_ms), "%llu", (unsigned long long)config->lease_ms);
    snprintf(relay->retention_hours, sizeof(relay->retention_hours), "%d", config->retention_hours);
    /* The pool's first connection LISTENs: no session of its own, so the
     * pool's shutdown handling (pg.h) covers it too. */
    if (pg_pool_listen(worker->pg, relay->channel, on_notify, relay) != 0) {
        free(relay);
        return NULL;
    }
    chore_start(&relay->chore, worker, "outbox", 0, config->sweep_interval_ms, relay_run, relay);
    log_info(NULL, "outbox relay started", LOG_STRING("table", config->schema), LOG_STRING("holder", relay->holder),
             LOG_INT("batch_size", config->batch_size));
    return relay;
}

void outbox_relay_stop(outbox_relay_t *relay)
{
    if (relay == NULL)
        return;
    chore_stop(&relay->chore);
    pg_pool_listen(relay->worker->pg, "", NULL, NULL); /* no more wake-ups for a relay that is gone */
    free(relay);
}
