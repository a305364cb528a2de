/* broker.c - the link thread: connection, topology, publisher confirms.
 *
 * Threads and ownership:
 *   - `requests` (batches handed in, not yet published) and each port's
 *     `outstanding`/`detached` are shared, under broker->lock;
 *   - the connection, `inflight` (published, waiting for confirms) and the
 *     delivery-tag counter belong to the link thread alone;
 *   - a port's `pending` belongs to its worker's loop.
 * A batch moves requests -> inflight -> the port's queue, and is freed on
 * the port's loop after its callback (or by the link when nobody waits).
 *
 * Consuming: the consumer's config is set once (under the lock) and then
 * only read, but for its `port`, which broker_port_close clears under the
 * lock. A delivery is assembled by the link (method, header, body frames),
 * sent to the port's `deliveries` receiver, settled on that loop, and comes
 * back in `settles` (under the lock); the link then acks, rejects, or
 * publishes a retry copy and keeps the delivery in `retrying` until the
 * copy is confirmed. Deliveries are freed by the link.
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "broker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "log.h"
#include "loop_timer.h"
#include "metrics.h"

#define PUBLISH_CHANNEL    1
#define CONSUME_CHANNEL    2
#define BACKLOG_CHANNEL    3 /* the consumed queue's passive declares */
#define BACKLOG_EVERY_MS   1000
#define DELIVERY_BODY_MAX  (4u << 20) /* larger messages go to the dead letters unread */
#define ATTEMPT_HEADER     "x-attempt"
#define ROUTING_KEY_HEADER "x-original-routing-key"
#define RETRY_TAG_HEADER   "x-retry-tag" /* names the retry copy a basic.return gives back */
#define SETTLE_RETURNED    100           /* a retry copy the broker could not route */
#define CANCEL_RETRY_MS    1000          /* consuming again after the broker cancelled */
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define IDLE_WAKE_MS       500 /* at least this often: heartbeats and deadlines */
#define FRAME_MAX          131072
#define ERROR_MAX          200
#define STOP_GRACE_S       2 /* broker_stop waits this long for the thread before cutting its socket */

enum { PENDING, ACKED, NACKED };

typedef struct batch {
    h2o_multithread_message_t super; /* first: the answer is the batch */
    h2o_linklist_t link;             /* in broker->requests, then broker->inflight */
    broker_port_t *port;
    const broker_message_t *messages;
    size_t count;
    broker_confirm_fn cb;
    void *data;
    uint64_t first_tag; /* delivery tag of messages[0] */
    uint64_t deadline_ms;
    size_t resolved; /* acked or nacked */
    size_t confirmed;
    char exchange[64]; /* copied: an orphan's messages may be gone */
    char error[ERROR_MAX];
    unsigned char state[]; /* per message: PENDING, ACKED, NACKED */
} batch_t;

struct broker_port {
    h2o_multithread_receiver_t receiver;
    broker_t *broker;
    size_t pending;     /* the loop's own count */
    size_t outstanding; /* under broker->lock: batches the link holds */
    bool detached;      /* under broker->lock */
    /* the consumer's end, when broker_consume made this port it (loop's own) */
    h2o_multithread_receiver_t deliveries;
    broker_delivery_fn delivery_cb;
    void *delivery_data;
};

typedef struct consumer {
    char *queue;
    char **bindings;
    size_t binding_count;
    uint16_t prefetch;
    size_t retries;
    uint32_t delays_ms[BROKER_RETRIES_MAX];
    broker_port_t *port; /* under broker->lock; NULL once the port has closed */
} consumer_t;

/* A delivery being read off the socket: its method came, its header and
 * body frames are on their way. */
typedef struct assembly {
    bool active, skip, returning; /* returning: a basic.return's content, not a delivery's */
    uint64_t tag;
    bool redelivered;
    char routing_key[256];
    broker_delivery_t *delivery;
    char *body;
    size_t body_size, received;
} assembly_t;

struct broker {
    broker_config_t config;
    char *url; /* amqp_parse_url cuts this copy into the fields below */
    struct amqp_connection_info target;
    pthread_t thread;
    int wake_fd;

    pthread_mutex_t lock;
    h2o_linklist_t requests;
    consumer_t *consumer;   /* set once by broker_consume */
    h2o_linklist_t settles; /* deliveries the loop has settled */
    bool stopping;
    char last_error[ERROR_MAX];
    atomic_bool up;
    atomic_int socket_fd; /* the connection's socket, -1 without one (for broker_stop) */

    /* the link thread's own */
    amqp_connection_state_t conn;
    h2o_linklist_t inflight;
    uint64_t next_tag;
    uint64_t backoff_ms, next_attempt_ms;
    bool logged_down; /* "rabbitmq unavailable" said for this outage */
    bool blocked;     /* the broker blocks publishers (a memory or disk alarm) */
    char blocked_reason[ERROR_MAX];
    uint64_t generation;        /* +1 per connection and per consumer channel closed: older settlements are dropped */
    bool consuming;             /* the consumer channel is open on this connection */
    atomic_bool consuming_now;  /* the same, for other threads */
    uint64_t consumer_retry_ms; /* after a refused consumer: not before then */
    uint64_t retry_next_tag;
    h2o_linklist_t retrying; /* deliveries whose retry copy awaits its confirm */
    assembly_t assembly;
    size_t held;                /* delivered to the port and not yet acked or rejected */
    const char *consumed_queue; /* the consumer's queue once it has consumed (for its gauges) */
    bool backlog_open;          /* BACKLOG_CHANNEL is open on this connection */
    uint64_t next_backlog_ms;   /* when the queue is measured next */
};

static metrics_family_t *messages_total, *connection_up, *consumer_up, *queue_messages, *queue_consumers;

static void free_consumer(consumer_t *c);

void broker_metrics_register(void)
{
    static const char *const labels[] = {"destination", "operation", "outcome", NULL};
    messages_total = metrics_counter("messaging_messages_total",
                                     "Messages handed to or taken from RabbitMQ, by exchange or queue, operation and "
                                     "outcome (publish: confirmed, nacked, failed).",
                                     labels);
    connection_up = metrics_gauge("messaging_connection_up", "1 while the connection to RabbitMQ is open.", NULL);
    consumer_up = metrics_gauge("messaging_consumer_up", "1 while this process consumes its queue.", NULL);
    static const char *const state[] = {"destination", "state", NULL};
    static const char *const destination[] = {"destination", NULL};
    queue_messages = metrics_gauge("messaging_queue_messages",
                                   "The consumed queue's backlog: ready (waiting in RabbitMQ, from a passive declare "
                                   "each second) and unacked (delivered to this process, not yet settled).",
                                   state);
    queue_consumers =
        metrics_gauge("messaging_queue_consumers",
                      "Consumers of the consumed queue, all processes together (passive declare).", destination);
}

static void count_operation(const char *destination, const char *operation, const char *outcome, size_t n)
{
    if (n > 0)
        metrics_counter_add(messages_total, (const char *const[]){destination, operation, outcome}, (double)n);
}

static void count_messages(const char *destination, const char *outcome, size_t n)
{
    count_operation(destination, "publish", outcome, n);
}

/* --- URL --------------------------------------------------------------------- */

/* An empty path ("amqp://host:5672/") means the default vhost "/", as the
 * URL in docker-compose.yml is written; "%2F" says the same explicitly. */
static int parse_url(char *copy, struct amqp_connection_info *info)
{
    amqp_default_connection_info(info);
    if (strncmp(copy, "amqp://", 7) != 0 || amqp_parse_url(copy, info) != AMQP_STATUS_OK)
        return -1;
    if (info->vhost[0] == '\0')
        info->vhost = "/";
    return info->host[0] != '\0' ? 0 : -1;
}

const char *broker_url_problem(const char *url)
{
    if (url == NULL || url[0] == '\0')
        return "is empty";
    if (strncmp(url, "amqps://", 8) == 0)
        return "uses amqps://, which this build does not support (use amqp://)";
    if (strncmp(url, "amqp://", 7) != 0)
        return "is not amqp://user:password@host:port/vhost";
    /* librabbitmq falls back to localhost for an empty host: say so instead */
    const char *authority = url + strlen("amqp://"), *at = NULL;
    for (const char *p = authority; *p != '\0' && *p != '/'; p++)
        if (*p == '@')
            at = p;
    const char *host = at != NULL ? at + 1 : authority;
    if (*host == '\0' || *host == ':' || *host == '/')
        return "names no host";
    char *copy = strdup(url);
    if (copy == NULL)
        return "cannot be copied";
    struct amqp_connection_info info;
    int rc = parse_url(copy, &info);
    free(copy);
    return rc == 0 ? NULL : "is not amqp://user:password@host:port/vhost";
}

/* --- answering batches ------------------------------------------------------- */

static void set_error(broker_t *broker, const char *reason)
{
    pthread_mutex_lock(&broker->lock);
    snprintf(broker->last_error, sizeof(broker->last_error), "%s", reason);
    pthread_mutex_unlock(&broker->lock);
}

/* Hands a finished batch back to its port's loop, or frees it when the
 * port has gone. Counts each message's outcome. */
static void answer(broker_t *broker, batch_t *b, const char *error)
{
    size_t acked = 0, nacked = 0;
    for (size_t i = 0; i < b->count; i++) {
        acked += b->state[i] == ACKED;
        nacked += b->state[i] == NACKED;
    }
    const char *exchange = b->exchange;
    count_messages(exchange, "confirmed", acked);
    count_messages(exchange, "nacked", nacked);
    count_messages(exchange, "failed", b->count - acked - nacked);

    while (b->confirmed < b->count && b->state[b->confirmed] == ACKED)
        b->confirmed++;
    if (b->confirmed < b->count)
        snprintf(b->error, sizeof(b->error), "%s",
                 error != NULL                      ? error
                 : b->state[b->confirmed] == NACKED ? "RabbitMQ refused the message (nack)"
                                                    : "no confirm");

    pthread_mutex_lock(&broker->lock);
    broker_port_t *port = b->port;
    port->outstanding--;
    bool orphan = port->detached;
    if (!orphan)
        h2o_multithread_send_message(&port->receiver, &b->super);
    bool free_port = orphan && port->outstanding == 0;
    pthread_mutex_unlock(&broker->lock);
    if (orphan)
        free(b);
    if (free_port)
        free(port);
}

/* --- the connection ---------------------------------------------------------- */

static void describe_reply(amqp_rpc_reply_t reply, const char *what, char *out, size_t size)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL: snprintf(out, size, "%s: ok", what); return;
    case AMQP_RESPONSE_NONE: snprintf(out, size, "%s: no reply", what); return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, size, "%s: %s", what, amqp_error_string2(reply.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION: break;
    }
    const amqp_bytes_t *text = NULL;
    int code = 0;
    if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *m = reply.reply.decoded;
        text = &m->reply_text, code = m->reply_code;
    } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = reply.reply.decoded;
        text = &m->reply_text, code = m->reply_code;
    }
    if (text != NULL)
        snprintf(out, size, "%s: %d %.*s", what, code, (int)text->len, (const char *)text->bytes);
    else
        snprintf(out, size, "%s: refused by the broker", what);
}

static void free_delivery_list(h2o_linklist_t *list)
{
    while (!h2o_linklist_is_empty(list)) {
        broker_delivery_t *d = H2O_STRUCT_FROM_MEMBER(broker_delivery_t, link, list->next);
        h2o_linklist_unlink(&d->link);
        free(d);
    }
}

static void consumer_reset(broker_t *broker)
{
    if (broker->consuming)
        metrics_gauge_set(consumer_up, NULL, 0);
    broker->consuming = false;
    atomic_store(&broker->consuming_now, false);
    broker->consumer_retry_ms = 0;
    broker->held = 0;                   /* the broker takes back what the channel held */
    if (broker->consumed_queue != NULL) /* the link thread's own copy: this may run under the lock */
        metrics_gauge_set(queue_messages, (const char *const[]){broker->consumed_queue, "unacked"}, 0);
    free(broker->assembly.delivery);
    broker->assembly = (assembly_t){0};
    free_delivery_list(&broker->retrying);
}

/* Drops the connection: every batch under way is answered with what was
 * confirmed so far. */
static void disconnect(broker_t *broker, const char *reason)
{
    if (broker->conn == NULL)
        return;
    atomic_store(&broker->socket_fd, -1);
    amqp_destroy_connection(broker->conn); /* no close handshake: the broker may not answer */
    broker->conn = NULL;
    broker->blocked = false;
    broker->backlog_open = false;
    set_error(broker, reason); /* before `up` goes: readiness reads them in that order */
    atomic_store(&broker->up, false);
    metrics_gauge_set(connection_up, NULL, 0);
    log_warn(NULL, "rabbitmq connection lost", LOG_STRING("reason", reason));
    while (!h2o_linklist_is_empty(&broker->inflight)) {
        batch_t *b = H2O_STRUCT_FROM_MEMBER(batch_t, link, broker->inflight.next);
        h2o_linklist_unlink(&b->link);
        answer(broker, b, reason);
    }
    /* Whatever the consumer held unsettled, the broker delivers again. */
    consumer_reset(broker);
    broker->backoff_ms = BACKOFF_MIN_MS;
    broker->logged_down = true; /* "connection lost" said it */
    broker->next_attempt_ms = loop_now_ms() + broker->backoff_ms;
}

/* A channel.close or connection.close from the broker: says why, and
 * starts again from a fresh connection. */
static void closed_by_broker(broker_t *broker, const amqp_frame_t *frame, const char *what)
{
    char reason[ERROR_MAX];
    amqp_rpc_reply_t reply;
    memset(&reply, 0, sizeof(reply));
    reply.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
    reply.reply = frame->payload.method;
    describe_reply(reply, what, reason, sizeof(reason));
    disconnect(broker, reason);
}

static int check_rpc(amqp_connection_state_t conn, const char *what, char *error, size_t size)
{
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    describe_reply(reply, what, error, size);
    return -1;
}

/* Declares DESIGN's topology on the publishing channel. Each declaration
 * is idempotent; one that disagrees with what exists (another type, other
 * arguments) closes the channel with 406 and is reported. */
static int declare_topology(amqp_connection_state_t conn, char *error, size_t size)
{
    static const char *const exchanges[] = {BROKER_EVENTS_EXCHANGE, BROKER_DEAD_LETTER_EXCHANGE};
    for (size_t i = 0; i < 2; i++) {
        amqp_exchange_declare(conn, PUBLISH_CHANNEL, amqp_cstring_bytes(exchanges[i]), amqp_cstring_bytes("topic"), 0,
                              1, 0, 0, amqp_empty_table);
        if (check_rpc(conn, "declaring exchange", error, size) != 0)
            return -1;
    }
    /* the same arguments as infrastructure/rabbitmq/definitions.json */
    amqp_table_entry_t queue_type = {amqp_cstring_bytes("x-queue-type"),
                                     {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("classic")}};
    amqp_table_t arguments = {1, &queue_type};
    amqp_queue_declare(conn, PUBLISH_CHANNEL, amqp_cstring_bytes(BROKER_DEAD_LETTER_QUEUE), 0, 1, 0, 0, arguments);
    if (check_rpc(conn, "declaring the dead-letter queue", error, size) != 0)
        return -1;
    amqp_queue_bind(conn, PUBLISH_CHANNEL, amqp_cstring_bytes(BROKER_DEAD_LETTER_QUEUE),
                    amqp_cstring_bytes(BROKER_DEAD_LETTER_EXCHANGE), amqp_cstring_bytes("#"), amqp_empty_table);
    return check_rpc(conn, "binding the dead-letter queue", error, size);
}

static int open_connection(broker_t *broker, char *error, size_t size)
{
    const struct amqp_connection_info *t = &broker->target;
    struct timeval timeout = {(time_t)(broker->config.connect_timeout_ms / 1000),
                              (suseconds_t)(broker->config.connect_timeout_ms % 1000) * 1000};
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = conn != NULL ? amqp_tcp_socket_new(conn) : NULL;
    if (socket == NULL) {
        snprintf(error, size, "out of memory");
        if (conn != NULL)
            amqp_destroy_connection(conn);
        return -1;
    }
    int rc = amqp_socket_open_noblock(socket, t->host, t->port, &timeout);
    if (rc != AMQP_STATUS_OK) {
        snprintf(error, size, "cannot connect to %s:%d: %s", t->host, t->port, amqp_error_string2(rc));
        amqp_destroy_connection(conn);
        return -1;
    }
    amqp_set_handshake_timeout(conn, &timeout);
    amqp_set_rpc_timeout(conn, &timeout);
    /* connection_name: shown in the management UI. capabilities: the two
     * librabbitmq announces by default (ours replace its table), and
     * connection.blocked, so that the broker says when a memory or disk
     * alarm makes it stop reading what we publish. */
    amqp_table_entry_t capabilities[] = {
        {amqp_cstring_bytes("authentication_failure_close"), {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {amqp_cstring_bytes("consumer_cancel_notify"), {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {amqp_cstring_bytes("connection.blocked"), {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t entries[] = {
        {amqp_cstring_bytes("connection_name"),
         {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(broker->config.name)}},
        {amqp_cstring_bytes("capabilities"), {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {3, capabilities}}},
    };
    amqp_table_t properties = {2, entries};
    amqp_rpc_reply_t login = amqp_login_with_properties(conn, t->vhost, 0, FRAME_MAX, broker->config.heartbeat_s,
                                                        &properties, AMQP_SASL_METHOD_PLAIN, t->user, t->password);
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        describe_reply(login, "login", error, size);
        amqp_destroy_connection(conn);
        return -1;
    }
    amqp_channel_open(conn, PUBLISH_CHANNEL);
    if (check_rpc(conn, "opening a channel", error, size) != 0 || declare_topology(conn, error, size) != 0) {
        amqp_destroy_connection(conn);
        return -1;
    }
    amqp_confirm_select(conn, PUBLISH_CHANNEL);
    if (check_rpc(conn, "confirm mode", error, size) != 0) {
        amqp_destroy_connection(conn);
        return -1;
    }
    broker->conn = conn;
    broker->next_tag = 1; /* delivery tags count from 1 on each channel */
    return 0;
}

static void try_connect(broker_t *broker)
{
    char error[ERROR_MAX];
    if (open_connection(broker, error, sizeof(error)) != 0) {
        set_error(broker, error);
        if (!broker->logged_down || broker->backoff_ms >= BACKOFF_MAX_MS) /* then every 5 s */
            log_warn(NULL, "rabbitmq unavailable", LOG_STRING("reason", error));
        broker->logged_down = true;
        broker->backoff_ms = broker->backoff_ms == 0 ? BACKOFF_MIN_MS : broker->backoff_ms * 2;
        if (broker->backoff_ms > BACKOFF_MAX_MS)
            broker->backoff_ms = BACKOFF_MAX_MS;
        broker->next_attempt_ms = loop_now_ms() + broker->backoff_ms;
        return;
    }
    broker->backoff_ms = 0;
    broker->logged_down = false;
    broker->generation++;
    set_error(broker, "");
    atomic_store(&broker->socket_fd, amqp_get_sockfd(broker->conn));
    atomic_store(&broker->up, true);
    metrics_gauge_set(connection_up, NULL, 1);
    log_info(NULL, "rabbitmq connected", LOG_STRING("host", broker->target.host), LOG_INT("port", broker->target.port));
}

/* --- publishing -------------------------------------------------------------- */

static void publish(broker_t *broker, batch_t *b)
{
    b->first_tag = broker->next_tag;
    broker->next_tag += b->count;
    b->deadline_ms = loop_now_ms() + broker->config.confirm_timeout_ms;
    h2o_linklist_insert(&broker->inflight, &b->link);
    for (size_t i = 0; i < b->count; i++) {
        const broker_message_t *m = &b->messages[i];
        amqp_basic_properties_t props = {0};
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                       AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
        props.message_id = amqp_cstring_bytes(m->message_id);
        props.type = amqp_cstring_bytes(m->routing_key);
        props.app_id = amqp_cstring_bytes(broker->config.name);
        if (m->timestamp > 0) {
            props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
            props.timestamp = (uint64_t)m->timestamp;
        }
        amqp_table_entry_t header;
        if (m->traceparent != NULL && m->traceparent[0] != '\0') {
            header =
                (amqp_table_entry_t){amqp_cstring_bytes("traceparent"),
                                     {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(m->traceparent)}};
            props._flags |= AMQP_BASIC_HEADERS_FLAG;
            props.headers = (amqp_table_t){1, &header};
        }
        amqp_bytes_t body = {m->body_len, (void *)m->body};
        int rc = amqp_basic_publish(broker->conn, PUBLISH_CHANNEL, amqp_cstring_bytes(m->exchange),
                                    amqp_cstring_bytes(m->routing_key), 0, 0, &props, body);
        if (rc != AMQP_STATUS_OK) {
            char reason[ERROR_MAX];
            snprintf(reason, sizeof(reason), "publishing: %s", amqp_error_string2(rc));
            disconnect(broker, reason); /* answers this batch too */
            return;
        }
    }
}

/* A confirm for `tag` (and, when `multiple`, every tag before it). */
static void resolve(broker_t *broker, uint64_t tag, bool multiple, unsigned char outcome)
{
    h2o_linklist_t *link = broker->inflight.next;
    while (link != &broker->inflight) {
        batch_t *b = H2O_STRUCT_FROM_MEMBER(batch_t, link, link);
        link = link->next;
        if (b->first_tag > tag)
            break; /* batches are in tag order */
        uint64_t last = b->first_tag + b->count - 1;
        uint64_t from = multiple ? b->first_tag : tag, to = tag < last ? tag : last;
        for (uint64_t t = from; t <= to; t++) {
            unsigned char *state = &b->state[t - b->first_tag];
            if (*state == PENDING) {
                *state = outcome;
                b->resolved++;
            }
        }
        if (b->resolved == b->count) {
            h2o_linklist_unlink(&b->link);
            answer(broker, b, NULL);
        }
    }
}

static void take_requests(broker_t *broker)
{
    h2o_linklist_t taken;
    h2o_linklist_init_anchor(&taken);
    pthread_mutex_lock(&broker->lock);
    h2o_linklist_insert_list(&taken, &broker->requests);
    pthread_mutex_unlock(&broker->lock);
    while (!h2o_linklist_is_empty(&taken)) {
        batch_t *b = H2O_STRUCT_FROM_MEMBER(batch_t, link, taken.next);
        h2o_linklist_unlink(&b->link);
        pthread_mutex_lock(&broker->lock);
        bool orphan = b->port->detached;
        pthread_mutex_unlock(&broker->lock);
        if (orphan) {
            answer(broker, b, "the port was closed"); /* nobody waits: not published */
        } else if (broker->conn != NULL && broker->blocked) {
            char reason[ERROR_MAX + 48];
            snprintf(reason, sizeof(reason), "RabbitMQ blocks publishers: %s", broker->blocked_reason);
            answer(broker, b, reason);
        } else if (broker->conn != NULL) {
            publish(broker, b);
        } else {
            char reason[ERROR_MAX + 32];
            pthread_mutex_lock(&broker->lock);
            snprintf(reason, sizeof(reason), "RabbitMQ is unreachable: %s", broker->last_error);
            pthread_mutex_unlock(&broker->lock);
            answer(broker, b, reason);
        }
    }
}

/* --- consuming --------------------------------------------------------------- */

void broker_retry_queue_name(const char *queue, uint32_t delay_ms, char *out, size_t size)
{
    snprintf(out, size, "%s.retry.%lums", queue, (unsigned long)delay_ms);
}

static consumer_t *consumer_of(broker_t *broker)
{
    pthread_mutex_lock(&broker->lock);
    consumer_t *c = broker->consumer;
    pthread_mutex_unlock(&broker->lock);
    return c;
}

static amqp_table_entry_t utf8_entry(const char *key, const char *value)
{
    return (amqp_table_entry_t){amqp_cstring_bytes(key),
                                {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(value)}};
}

/* The consumed queue (dead letters to oms.dlx), its bindings, one retry
 * queue per delay (its TTL holds a copy that long, then dead-letters it
 * back into the consumed queue through the default exchange), confirm
 * mode for the retry copies, the prefetch limit and the consumer itself. */
static int open_consumer(broker_t *broker, const consumer_t *c, char *error, size_t size)
{
    amqp_connection_state_t conn = broker->conn;
    amqp_channel_open(conn, CONSUME_CHANNEL);
    if (check_rpc(conn, "opening the consumer channel", error, size) != 0)
        return -1;
    amqp_table_entry_t main_args[] = {utf8_entry("x-queue-type", "classic"),
                                      utf8_entry("x-dead-letter-exchange", BROKER_DEAD_LETTER_EXCHANGE)};
    amqp_queue_declare(conn, CONSUME_CHANNEL, amqp_cstring_bytes(c->queue), 0, 1, 0, 0, (amqp_table_t){2, main_args});
    if (check_rpc(conn, "declaring the consumed queue", error, size) != 0)
        return -1;
    for (size_t i = 0; i < c->binding_count; i++) {
        amqp_queue_bind(conn, CONSUME_CHANNEL, amqp_cstring_bytes(c->queue), amqp_cstring_bytes(BROKER_EVENTS_EXCHANGE),
                        amqp_cstring_bytes(c->bindings[i]), amqp_empty_table);
        if (check_rpc(conn, "binding the consumed queue", error, size) != 0)
            return -1;
    }
    for (size_t i = 0; i < c->retries; i++) {
        char name[300];
        broker_retry_queue_name(c->queue, c->delays_ms[i], name, sizeof(name));
        amqp_table_entry_t args[] = {
            utf8_entry("x-queue-type", "classic"),
            {amqp_cstring_bytes("x-message-ttl"), {.kind = AMQP_FIELD_KIND_I64, .value.i64 = c->delays_ms[i]}},
            utf8_entry("x-dead-letter-exchange", ""),
            utf8_entry("x-dead-letter-routing-key", c->queue),
        };
        amqp_queue_declare(conn, CONSUME_CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, (amqp_table_t){4, args});
        if (check_rpc(conn, "declaring a retry queue", error, size) != 0)
            return -1;
    }
    amqp_confirm_select(conn, CONSUME_CHANNEL);
    if (check_rpc(conn, "confirm mode on the consumer channel", error, size) != 0)
        return -1;
    amqp_basic_qos(conn, CONSUME_CHANNEL, 0, c->prefetch, 0);
    if (check_rpc(conn, "the prefetch limit", error, size) != 0)
        return -1;
    amqp_basic_consume(conn, CONSUME_CHANNEL, amqp_cstring_bytes(c->queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (check_rpc(conn, "consuming", error, size) != 0)
        return -1;
    broker->consuming = true;
    broker->consumed_queue = c->queue;
    atomic_store(&broker->consuming_now, true);
    metrics_gauge_set(consumer_up, NULL, 1);
    broker->retry_next_tag = 1;
    log_info(NULL, "rabbitmq consuming", LOG_STRING("queue", c->queue), LOG_INT("prefetch", c->prefetch));
    return 0;
}

static bool consumer_port_gone(broker_t *broker, const consumer_t *c)
{
    pthread_mutex_lock(&broker->lock);
    bool gone = c->port == NULL;
    pthread_mutex_unlock(&broker->lock);
    return gone;
}

/* Closes the consumer's channel alone (the broker requeues what it had
 * delivered); settlements of it are dropped. Consuming starts again after
 * `retry_ms`, if the port is still there. */
static void close_consumer_channel(broker_t *broker, uint64_t retry_ms)
{
    amqp_rpc_reply_t reply = amqp_channel_close(broker->conn, CONSUME_CHANNEL, AMQP_REPLY_SUCCESS);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        char reason[ERROR_MAX];
        describe_reply(reply, "closing the consumer channel", reason, sizeof(reason));
        disconnect(broker, reason);
        return;
    }
    consumer_reset(broker);
    broker->generation++;
    broker->consumer_retry_ms = loop_now_ms() + retry_ms;
}

/* A consumer whose port has closed: the broker is told to stop sending. */
static void stop_consuming_if_orphaned(broker_t *broker)
{
    consumer_t *c;
    if (broker->conn != NULL && broker->consuming && (c = consumer_of(broker)) != NULL && consumer_port_gone(broker, c))
        close_consumer_channel(broker, 0);
}

/* Opens the consumer on a new connection. A queue the broker refuses (one
 * declared elsewhere with other arguments: 406) closes only the consumer's
 * channel: publishing goes on, and consuming is tried again every 5 s. */
static void start_consuming(broker_t *broker)
{
    consumer_t *c;
    if (broker->conn == NULL || broker->consuming || loop_now_ms() < broker->consumer_retry_ms ||
        (c = consumer_of(broker)) == NULL || consumer_port_gone(broker, c))
        return;
    char error[ERROR_MAX];
    if (open_consumer(broker, c, error, sizeof(error)) == 0)
        return;
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(broker->conn);
    if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        if (amqp_send_method(broker->conn, CONSUME_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) == AMQP_STATUS_OK) {
            log_warn(NULL, "rabbitmq refused the consumer; trying again in 5 s", LOG_STRING("queue", c->queue),
                     LOG_STRING("reason", error));
            broker->consumer_retry_ms = loop_now_ms() + BACKOFF_MAX_MS;
            return;
        }
    }
    disconnect(broker, error); /* and try again from a new connection, backing off */
}

static void copy_field(char **cursor, const char **field, const void *bytes, size_t len)
{
    if (len > 0)
        memcpy(*cursor, bytes, len);
    (*cursor)[len] = '\0';
    *field = *cursor;
    *cursor += len + 1;
}

/* The value of the header `key`, or NULL. */
static const amqp_field_value_t *header(const amqp_table_t *headers, const char *key)
{
    size_t len = strlen(key);
    for (int i = 0; i < headers->num_entries; i++) {
        const amqp_table_entry_t *e = &headers->entries[i];
        if (e->key.len == len && memcmp(e->key.bytes, key, len) == 0)
            return &e->value;
    }
    return NULL;
}

/* An integer header: true and `*out` when `key` is there as one. */
static bool header_int(const amqp_table_t *headers, const char *key, int64_t *out)
{
    const amqp_field_value_t *v = header(headers, key);
    if (v == NULL)
        return false;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return true;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return true;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return true;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return true;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return true;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return true;
    case AMQP_FIELD_KIND_I64: *out = v->value.i64; return true;
    default: return false;
    }
}

static unsigned attempt_of(const amqp_table_t *headers)
{
    int64_t n;
    return header_int(headers, ATTEMPT_HEADER, &n) && n >= 1 && n <= 1000 ? (unsigned)n : 1;
}

/* A string header, or NULL when `key` is missing or not a string. */
static const amqp_bytes_t *header_string(const amqp_table_t *headers, const char *key)
{
    const amqp_field_value_t *v = header(headers, key);
    return v != NULL && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES) ? &v->value.bytes : NULL;
}

/* Sends an assembled delivery to the consuming port, or drops it when
 * the port has gone (unsettled: the broker delivers it again later). */
static void deliver(broker_t *broker, broker_delivery_t *d)
{
    pthread_mutex_lock(&broker->lock);
    const consumer_t *c = broker->consumer;
    broker_port_t *port = c->port;
    if (port != NULL)
        h2o_multithread_send_message(&port->deliveries, &d->super);
    pthread_mutex_unlock(&broker->lock);
    count_operation(c->queue, "receive", "delivered", 1);
    broker->held++; /* acked or rejected later, or taken back with the channel */
    if (port == NULL)
        free(d);
}

/* The content header: the properties, and how long the body is. The
 * delivery is allocated here, whole, with room for its strings. */
static void on_delivery_header(broker_t *broker, const amqp_frame_t *frame)
{
    assembly_t *a = &broker->assembly;
    const amqp_basic_properties_t *p = frame->payload.properties.decoded;
    size_t body_size = (size_t)frame->payload.properties.body_size;
    if (body_size > DELIVERY_BODY_MAX) {
        log_warn(NULL, "rabbitmq message too large: dead-lettered unread", LOG_INT("bytes", (int64_t)body_size));
        consumer_t *c = consumer_of(broker);
        count_operation(c->queue, "settle", "dead_lettered", 1);
        amqp_basic_reject(broker->conn, CONSUME_CHANNEL, a->tag, 0);
        a->skip = true, a->body_size = body_size, a->received = 0;
        return;
    }
    static const amqp_table_t no_headers = {0, NULL};
    const amqp_table_t *headers = (p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : &no_headers;
    amqp_bytes_t type =
        (p->_flags & AMQP_BASIC_TYPE_FLAG) && p->type.len > 0 ? p->type : amqp_cstring_bytes(a->routing_key);
    amqp_bytes_t id = (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? p->message_id : amqp_empty_bytes;
    const amqp_bytes_t *trace = header_string(headers, "traceparent");
    amqp_bytes_t traceparent = trace != NULL ? *trace : amqp_empty_bytes;
    const amqp_bytes_t *original = header_string(headers, ROUTING_KEY_HEADER);
    amqp_bytes_t key = original != NULL ? *original : amqp_cstring_bytes(a->routing_key);
    amqp_bytes_t content_type = (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? p->content_type : amqp_empty_bytes;
    amqp_bytes_t app_id = (p->_flags & AMQP_BASIC_APP_ID_FLAG) ? p->app_id : amqp_empty_bytes;
    broker_delivery_t *d = calloc(1, sizeof(*d) + type.len + id.len + traceparent.len + key.len + content_type.len +
                                         app_id.len + body_size + 7);
    if (d == NULL) { /* out of memory: back to the queue, for later */
        amqp_basic_nack(broker->conn, CONSUME_CHANNEL, a->tag, 0, 1);
        a->skip = true, a->body_size = body_size, a->received = 0;
        return;
    }
    char *cursor = (char *)(d + 1);
    copy_field(&cursor, &d->type, type.bytes, type.len);
    copy_field(&cursor, &d->message_id, id.bytes, id.len);
    copy_field(&cursor, &d->traceparent, traceparent.bytes, traceparent.len);
    copy_field(&cursor, &d->routing_key, key.bytes, key.len);
    copy_field(&cursor, &d->content_type, content_type.bytes, content_type.len);
    copy_field(&cursor, &d->app_id, app_id.bytes, app_id.len);
    d->timestamp = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? p->timestamp : 0;
    d->body = cursor;
    d->body_len = body_size;
    cursor[body_size] = '\0';
    d->attempt = attempt_of(headers);
    d->redelivered = a->redelivered;
    d->tag = a->tag;
    d->generation = broker->generation;
    a->delivery = d, a->body = cursor, a->body_size = body_size, a->received = 0;
    if (body_size == 0) {
        a->delivery = NULL, a->active = false;
        deliver(broker, d);
    }
}

/* The content header of a basic.return: which retry copy came back. Its
 * body is skipped. */
static void on_return_header(broker_t *broker, const amqp_frame_t *frame)
{
    assembly_t *a = &broker->assembly;
    const amqp_basic_properties_t *p = frame->payload.properties.decoded;
    int64_t tag;
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && header_int(&p->headers, RETRY_TAG_HEADER, &tag))
        for (h2o_linklist_t *link = broker->retrying.next; link != &broker->retrying; link = link->next) {
            broker_delivery_t *d = H2O_STRUCT_FROM_MEMBER(broker_delivery_t, link, link);
            if (d->retry_tag == (uint64_t)tag)
                d->settle = SETTLE_RETURNED;
        }
    a->skip = true, a->body_size = (size_t)frame->payload.properties.body_size, a->received = 0;
    if (a->body_size == 0)
        *a = (assembly_t){0};
}

static void on_delivery_body(broker_t *broker, const amqp_frame_t *frame)
{
    assembly_t *a = &broker->assembly;
    size_t len = frame->payload.body_fragment.len, room = a->body_size - a->received;
    if (len > room)
        len = room;
    if (!a->skip)
        memcpy(a->body + a->received, frame->payload.body_fragment.bytes, len);
    a->received += len;
    if (a->received < a->body_size)
        return;
    broker_delivery_t *d = a->delivery;
    *a = (assembly_t){0};
    if (d != NULL)
        deliver(broker, d);
}

/* A confirm of retry copies: the deliveries they copy are settled now
 * (acked when the copy is safe; dead-lettered when the broker refused or
 * returned it). */
static void resolve_retries(broker_t *broker, uint64_t tag, bool multiple, bool acked)
{
    consumer_t *c = consumer_of(broker);
    h2o_linklist_t *link = broker->retrying.next;
    while (link != &broker->retrying && broker->conn != NULL) {
        broker_delivery_t *d = H2O_STRUCT_FROM_MEMBER(broker_delivery_t, link, link);
        link = link->next;
        if (d->retry_tag > tag)
            break; /* in tag order */
        if (d->retry_tag != tag && !multiple)
            continue;
        h2o_linklist_unlink(&d->link);
        /* A copy refused (nack) or unroutable (returned, then acked): the
         * delivery goes to the dead letters rather than vanish or loop. */
        bool safe = acked && d->settle != SETTLE_RETURNED;
        if (!safe)
            log_warn(NULL, "rabbitmq retry copy not taken: the delivery is dead-lettered",
                     LOG_STRING("queue", c->queue), LOG_STRING("message_id", d->message_id),
                     LOG_STRING("reason", acked ? "no route to its retry queue" : "refused (nack)"));
        int rc = safe ? amqp_basic_ack(broker->conn, CONSUME_CHANNEL, d->tag, 0)
                      : amqp_basic_reject(broker->conn, CONSUME_CHANNEL, d->tag, 0);
        count_operation(c->queue, "settle", safe ? "retried" : "dead_lettered", 1);
        broker->held--;
        free(d);
        if (rc != AMQP_STATUS_OK) {
            disconnect(broker, "settling a delivery failed");
            return;
        }
    }
}

static void on_consumer_frame(broker_t *broker, const amqp_frame_t *frame)
{
    assembly_t *a = &broker->assembly;
    if (!broker->consuming)
        return; /* left over from a channel closed since */
    if (frame->frame_type == AMQP_FRAME_HEADER) {
        if (a->active && a->delivery == NULL && !a->skip)
            (a->returning ? on_return_header : on_delivery_header)(broker, frame);
        return;
    }
    if (frame->frame_type == AMQP_FRAME_BODY) {
        if (a->active)
            on_delivery_body(broker, frame);
        return;
    }
    if (frame->frame_type != AMQP_FRAME_METHOD)
        return;
    switch (frame->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
        const amqp_basic_deliver_t *m = frame->payload.method.decoded;
        free(a->delivery); /* a delivery cut short: cannot happen on one channel, but never leak */
        *a = (assembly_t){.active = true, .tag = m->delivery_tag, .redelivered = m->redelivered != 0};
        snprintf(a->routing_key, sizeof(a->routing_key), "%.*s", (int)m->routing_key.len,
                 (const char *)m->routing_key.bytes);
        return;
    }
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *ack = frame->payload.method.decoded;
        resolve_retries(broker, ack->delivery_tag, ack->multiple, true);
        return;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *nack = frame->payload.method.decoded;
        resolve_retries(broker, nack->delivery_tag, nack->multiple, false);
        return;
    }
    case AMQP_BASIC_RETURN_METHOD:
        free(a->delivery);
        *a = (assembly_t){.active = true, .returning = true};
        return;
    case AMQP_BASIC_CANCEL_METHOD: {
        consumer_t *c = consumer_of(broker);
        log_warn(NULL, "rabbitmq cancelled the consumer (its queue deleted?); consuming again",
                 LOG_STRING("queue", c->queue));
        close_consumer_channel(broker, CANCEL_RETRY_MS);
        return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: closed_by_broker(broker, frame, "consumer channel closed by the broker"); return;
    default: return;
    }
}

/* A retry copy: the same message, to the retry queue of this attempt's
 * delay, with its attempt number one up. */
static int publish_retry(broker_t *broker, const consumer_t *c, broker_delivery_t *d)
{
    char queue[300];
    broker_retry_queue_name(c->queue, c->delays_ms[d->attempt - 1], queue, sizeof(queue));
    d->retry_tag = broker->retry_next_tag++;
    amqp_table_entry_t headers[4] = {
        {amqp_cstring_bytes(ATTEMPT_HEADER), {.kind = AMQP_FIELD_KIND_I32, .value.i32 = (int32_t)d->attempt + 1}},
        {amqp_cstring_bytes(RETRY_TAG_HEADER), {.kind = AMQP_FIELD_KIND_I64, .value.i64 = (int64_t)d->retry_tag}},
        utf8_entry(ROUTING_KEY_HEADER, d->routing_key),
        utf8_entry("traceparent", d->traceparent),
    };
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.type = amqp_cstring_bytes(d->type);
    props.headers = (amqp_table_t){d->traceparent[0] != '\0' ? 4 : 3, headers};
    /* the rest as the publisher set it */
    if (d->message_id[0] != '\0') {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(d->message_id);
    }
    if (d->content_type[0] != '\0') {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(d->content_type);
    }
    if (d->app_id[0] != '\0') {
        props._flags |= AMQP_BASIC_APP_ID_FLAG;
        props.app_id = amqp_cstring_bytes(d->app_id);
    }
    if (d->timestamp != 0) {
        props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        props.timestamp = d->timestamp;
    }
    d->deadline_ms = loop_now_ms() + broker->config.confirm_timeout_ms;
    h2o_linklist_insert(&broker->retrying, &d->link);
    /* mandatory: a copy with no queue to go to comes back (basic.return) */
    return amqp_basic_publish(broker->conn, CONSUME_CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(queue), 1, 0, &props,
                              (amqp_bytes_t){d->body_len, (void *)d->body});
}

static void take_settles(broker_t *broker)
{
    h2o_linklist_t taken;
    h2o_linklist_init_anchor(&taken);
    pthread_mutex_lock(&broker->lock);
    h2o_linklist_insert_list(&taken, &broker->settles);
    consumer_t *c = broker->consumer;
    pthread_mutex_unlock(&broker->lock);
    h2o_linklist_t waiting; /* retries while the broker blocks publishers */
    h2o_linklist_init_anchor(&waiting);
    while (!h2o_linklist_is_empty(&taken)) {
        broker_delivery_t *d = H2O_STRUCT_FROM_MEMBER(broker_delivery_t, link, taken.next);
        h2o_linklist_unlink(&d->link);
        if (broker->conn == NULL || !broker->consuming || d->generation != broker->generation) {
            free(d); /* its connection or channel has gone: the broker delivers it again */
            continue;
        }
        bool retry = d->settle == BROKER_RETRY && d->attempt <= c->retries; /* else: past its last attempt */
        if (retry && broker->blocked) {
            h2o_linklist_insert(&waiting, &d->link); /* a publish now could hang the link */
            continue;
        }
        int rc;
        if (d->settle == BROKER_ACK) {
            rc = amqp_basic_ack(broker->conn, CONSUME_CHANNEL, d->tag, 0);
            count_operation(c->queue, "settle", "acked", 1);
            broker->held--;
            free(d);
        } else if (retry) {
            rc = publish_retry(broker, c, d); /* acked once the copy is confirmed */
        } else {
            if (d->settle == BROKER_RETRY)
                log_warn(NULL, "rabbitmq delivery dead-lettered after its last attempt", LOG_STRING("queue", c->queue),
                         LOG_STRING("type", d->type), LOG_STRING("message_id", d->message_id),
                         LOG_INT("attempts", d->attempt));
            rc = amqp_basic_reject(broker->conn, CONSUME_CHANNEL, d->tag, 0); /* oms.dlx */
            count_operation(c->queue, "settle", "dead_lettered", 1);
            broker->held--;
            free(d);
        }
        if (rc != AMQP_STATUS_OK) {
            char reason[ERROR_MAX];
            snprintf(reason, sizeof(reason), "settling a delivery: %s", amqp_error_string2(rc));
            disconnect(broker, reason);
        }
    }
    if (!h2o_linklist_is_empty(&waiting)) {
        pthread_mutex_lock(&broker->lock);
        h2o_linklist_insert_list(&broker->settles, &waiting);
        pthread_mutex_unlock(&broker->lock);
    }
}

/* Once a second while consuming: how many messages wait in the queue and
 * how many consumers it has, from a passive declare on a channel of its
 * own (a queue gone closes that channel alone; it is opened again). */
static void measure_backlog(broker_t *broker)
{
    consumer_t *c;
    if (broker->conn == NULL || !broker->consuming || loop_now_ms() < broker->next_backlog_ms ||
        (c = consumer_of(broker)) == NULL)
        return;
    broker->next_backlog_ms = loop_now_ms() + BACKLOG_EVERY_MS;
    char error[ERROR_MAX];
    if (!broker->backlog_open) {
        amqp_channel_open(broker->conn, BACKLOG_CHANNEL);
        if (check_rpc(broker->conn, "opening the backlog channel", error, sizeof(error)) != 0) {
            disconnect(broker, error);
            return;
        }
        broker->backlog_open = true;
    }
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(broker->conn, BACKLOG_CHANNEL, amqp_cstring_bytes(c->queue), 1, 0, 0, 0, amqp_empty_table);
    if (ok == NULL) {
        amqp_rpc_reply_t reply = amqp_get_rpc_reply(broker->conn);
        amqp_channel_close_ok_t close_ok = {0};
        if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
            amqp_send_method(broker->conn, BACKLOG_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok) ==
                AMQP_STATUS_OK) {
            broker->backlog_open = false;
            return;
        }
        describe_reply(reply, "measuring the backlog", error, sizeof(error));
        disconnect(broker, error);
        return;
    }
    metrics_gauge_set(queue_messages, (const char *const[]){c->queue, "ready"}, ok->message_count);
    metrics_gauge_set(queue_messages, (const char *const[]){c->queue, "unacked"}, (double)broker->held);
    metrics_gauge_set(queue_consumers, (const char *const[]){c->queue}, ok->consumer_count);
}

/* --- the thread's loop ------------------------------------------------------- */

static void on_frame(broker_t *broker, const amqp_frame_t *frame)
{
    if (frame->channel == CONSUME_CHANNEL) {
        on_consumer_frame(broker, frame);
        return;
    }
    if (frame->frame_type != AMQP_FRAME_METHOD)
        return; /* content of a returned message: none, nothing on this channel is published mandatory */
    switch (frame->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *ack = frame->payload.method.decoded;
        resolve(broker, ack->delivery_tag, ack->multiple, ACKED);
        return;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *nack = frame->payload.method.decoded;
        resolve(broker, nack->delivery_tag, nack->multiple, NACKED);
        return;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        /* A publish now would never be read: librabbitmq would wait in its
         * send for good. Batches fail at once until UNBLOCKED. */
        const amqp_connection_blocked_t *blocked = frame->payload.method.decoded;
        broker->blocked = true;
        snprintf(broker->blocked_reason, sizeof(broker->blocked_reason), "%.*s", (int)blocked->reason.len,
                 (const char *)blocked->reason.bytes);
        set_error(broker, broker->blocked_reason);
        log_warn(NULL, "rabbitmq blocks publishers", LOG_STRING("reason", broker->blocked_reason));
        return;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        broker->blocked = false;
        set_error(broker, "");
        log_info(NULL, "rabbitmq takes publishes again");
        return;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        /* The broker closes on an error (an exchange deleted under us) or
         * when it shuts down; start again from a fresh connection. */
        closed_by_broker(broker, frame, "closed by the broker");
        return;
    }
    default: return;
    }
}

static void read_frames(broker_t *broker)
{
    struct timeval now = {0, 0};
    while (broker->conn != NULL) {
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame_noblock(broker->conn, &frame, &now);
        if (rc == AMQP_STATUS_TIMEOUT)
            return;
        if (rc != AMQP_STATUS_OK) {
            char reason[ERROR_MAX];
            snprintf(reason, sizeof(reason), "%s", amqp_error_string2(rc));
            disconnect(broker, reason);
            return;
        }
        on_frame(broker, &frame);
        if (broker->conn != NULL)
            amqp_maybe_release_buffers(broker->conn);
    }
}

/* The oldest confirm deadline, publishes and retry copies: UINT64_MAX when none. */
static uint64_t next_confirm_deadline(broker_t *broker)
{
    uint64_t until = UINT64_MAX;
    if (!h2o_linklist_is_empty(&broker->inflight))
        until = H2O_STRUCT_FROM_MEMBER(batch_t, link, broker->inflight.next)->deadline_ms;
    if (!h2o_linklist_is_empty(&broker->retrying)) {
        uint64_t retry = H2O_STRUCT_FROM_MEMBER(broker_delivery_t, link, broker->retrying.next)->deadline_ms;
        if (retry < until)
            until = retry;
    }
    return until;
}

static void check_deadlines(broker_t *broker)
{
    if (broker->conn == NULL || loop_now_ms() < next_confirm_deadline(broker))
        return;
    char reason[ERROR_MAX];
    snprintf(reason, sizeof(reason), "no confirm from RabbitMQ within %llu ms",
             (unsigned long long)broker->config.confirm_timeout_ms);
    disconnect(broker, reason);
}

/* Sleeps until the broker sends something, a request arrives, or the next
 * deadline (a reconnect, a confirm timeout, a heartbeat check). */
static void wait_for_work(broker_t *broker)
{
    uint64_t now = loop_now_ms(), until = now + IDLE_WAKE_MS;
    if (broker->conn == NULL && broker->next_attempt_ms < until)
        until = broker->next_attempt_ms;
    if (broker->conn != NULL && next_confirm_deadline(broker) < until)
        until = next_confirm_deadline(broker);
    int timeout = until > now ? (int)(until - now) : 0;
    if (broker->conn != NULL && (amqp_data_in_buffer(broker->conn) || amqp_frames_enqueued(broker->conn)))
        timeout = 0; /* librabbitmq already holds frames: the socket would not say so */
    struct pollfd fds[2] = {{.fd = broker->wake_fd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    if (broker->conn != NULL)
        fds[1].fd = amqp_get_sockfd(broker->conn);
    if (poll(fds, 2, timeout) > 0 && (fds[0].revents & POLLIN)) {
        uint64_t count;
        ssize_t n = read(broker->wake_fd, &count, sizeof(count));
        (void)n; /* a nonblocking eventfd: 8 bytes, or EAGAIN when already drained */
    }
}

static bool is_stopping(broker_t *broker)
{
    pthread_mutex_lock(&broker->lock);
    bool stopping = broker->stopping;
    pthread_mutex_unlock(&broker->lock);
    return stopping;
}

static void *link_main(void *arg)
{
    broker_t *broker = arg;
    while (!is_stopping(broker)) {
        if (broker->conn == NULL && loop_now_ms() >= broker->next_attempt_ms)
            try_connect(broker);
        stop_consuming_if_orphaned(broker);
        start_consuming(broker);
        take_requests(broker);
        take_settles(broker);
        measure_backlog(broker);
        wait_for_work(broker);
        read_frames(broker);
        check_deadlines(broker);
    }
    take_settles(broker); /* acks settled before the stop still go out */
    return NULL;
}

/* --- the API ------------------------------------------------------------------- */

broker_t *broker_start(const broker_config_t *config)
{
    broker_t *broker = calloc(1, sizeof(*broker));
    if (broker == NULL)
        return NULL;
    broker->config = *config;
    broker->url = strdup(config->url);
    broker->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (broker->url == NULL || broker->wake_fd < 0 || parse_url(broker->url, &broker->target) != 0) {
        log_error(NULL, "cannot start the rabbitmq link", LOG_STRING("reason", "bad AMQP_URL or out of resources"));
        if (broker->wake_fd >= 0)
            close(broker->wake_fd);
        free(broker->url);
        free(broker);
        return NULL;
    }
    pthread_mutex_init(&broker->lock, NULL);
    h2o_linklist_init_anchor(&broker->requests);
    h2o_linklist_init_anchor(&broker->inflight);
    h2o_linklist_init_anchor(&broker->settles);
    h2o_linklist_init_anchor(&broker->retrying);
    snprintf(broker->last_error, sizeof(broker->last_error), "not connected yet");
    atomic_store(&broker->socket_fd, -1);
    /* the thread never takes SIGTERM/SIGINT: the main thread waits for them */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    int rc = pthread_create(&broker->thread, NULL, link_main, broker);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0) {
        log_error(NULL, "cannot start the rabbitmq link", LOG_STRING("reason", strerror(rc)));
        close(broker->wake_fd);
        pthread_mutex_destroy(&broker->lock);
        free(broker->url);
        free(broker);
        return NULL;
    }
    return broker;
}

static void wake(broker_t *broker)
{
    uint64_t one = 1;
    ssize_t n = write(broker->wake_fd, &one, sizeof(one));
    (void)n; /* fails only when the counter is saturated: the thread is awake anyway */
}

static void free_batches(h2o_linklist_t *list)
{
    while (!h2o_linklist_is_empty(list)) {
        batch_t *b = H2O_STRUCT_FROM_MEMBER(batch_t, link, list->next);
        h2o_linklist_unlink(&b->link);
        free(b);
    }
}

void broker_stop(broker_t *broker)
{
    if (broker == NULL)
        return;
    pthread_mutex_lock(&broker->lock);
    broker->stopping = true;
    pthread_mutex_unlock(&broker->lock);
    wake(broker);
    /* The thread may be stuck in a send the broker never reads (librabbitmq
     * waits there without a deadline): after a while, cut the socket. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += STOP_GRACE_S;
    if (pthread_timedjoin_np(broker->thread, NULL, &deadline) != 0) {
        int fd = atomic_load(&broker->socket_fd);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        pthread_join(broker->thread, NULL);
    }
    if (broker->conn != NULL) {
        /* a polite close when the broker answers in time: it then logs a
         * clean disconnect instead of "connection closed abruptly" */
        amqp_connection_close(broker->conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(broker->conn);
    }
    metrics_gauge_set(connection_up, NULL, 0);
    free_batches(&broker->inflight);
    free_batches(&broker->requests);
    consumer_reset(broker);
    free_delivery_list(&broker->settles);
    free_consumer(broker->consumer);
    close(broker->wake_fd);
    pthread_mutex_destroy(&broker->lock);
    free(broker->url);
    free(broker);
}

bool broker_is_up(broker_t *broker)
{
    return atomic_load(&broker->up);
}

void broker_last_error(broker_t *broker, char *out, size_t size)
{
    pthread_mutex_lock(&broker->lock);
    snprintf(out, size, "%s", broker->last_error);
    pthread_mutex_unlock(&broker->lock);
}

static void on_answers(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    broker_port_t *port = H2O_STRUCT_FROM_MEMBER(broker_port_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        batch_t *b = H2O_STRUCT_FROM_MEMBER(batch_t, super.link, messages->next);
        h2o_linklist_unlink(&b->super.link);
        port->pending--;
        b->cb(b->data, b->confirmed, b->confirmed < b->count ? b->error : NULL);
        free(b);
    }
}

broker_port_t *broker_port_open(broker_t *broker, h2o_multithread_queue_t *queue)
{
    broker_port_t *port = calloc(1, sizeof(*port));
    if (port == NULL)
        return NULL;
    port->broker = broker;
    h2o_multithread_register_receiver(queue, &port->receiver, on_answers);
    return port;
}

void broker_port_close(broker_port_t *port)
{
    if (port == NULL)
        return;
    broker_t *broker = port->broker;
    /* All of it under the lock: the link thread frees a detached port once
     * its last batch is answered, which must not happen while this still
     * uses it (the lock order, broker then queue, is answer()'s too). */
    pthread_mutex_lock(&broker->lock);
    port->detached = true;
    bool last = port->outstanding == 0;
    while (!h2o_linklist_is_empty(&port->receiver._messages)) { /* answers nobody will read now */
        batch_t *b = H2O_STRUCT_FROM_MEMBER(batch_t, super.link, port->receiver._messages.next);
        h2o_linklist_unlink(&b->super.link);
        free(b);
    }
    h2o_multithread_unregister_receiver(port->receiver.queue, &port->receiver);
    if (port->delivery_cb != NULL) {
        /* deliveries not read yet stay unsettled: delivered again later */
        if (broker->consumer != NULL && broker->consumer->port == port)
            broker->consumer->port = NULL;
        while (!h2o_linklist_is_empty(&port->deliveries._messages)) {
            broker_delivery_t *d =
                H2O_STRUCT_FROM_MEMBER(broker_delivery_t, super.link, port->deliveries._messages.next);
            h2o_linklist_unlink(&d->super.link);
            free(d);
        }
        h2o_multithread_unregister_receiver(port->deliveries.queue, &port->deliveries);
    }
    pthread_mutex_unlock(&broker->lock);
    if (last)
        free(port);
}

size_t broker_port_pending(const broker_port_t *port)
{
    return port != NULL ? port->pending : 0;
}

int broker_publish(broker_port_t *port, const broker_message_t *messages, size_t count, broker_confirm_fn cb,
                   void *data)
{
    broker_t *broker = port->broker;
    batch_t *b = count > 0 && count <= BROKER_BATCH_MAX ? calloc(1, sizeof(*b) + count) : NULL;
    if (b == NULL)
        return -1;
    *b = (batch_t){.port = port, .messages = messages, .count = count, .cb = cb, .data = data};
    snprintf(b->exchange, sizeof(b->exchange), "%s", messages[0].exchange);
    pthread_mutex_lock(&broker->lock);
    h2o_linklist_insert(&broker->requests, &b->link);
    port->outstanding++;
    pthread_mutex_unlock(&broker->lock);
    port->pending++;
    wake(broker);
    return 0;
}

/* --- consuming: the loop's side ------------------------------------------------ */

const char *broker_consumer_problem(const broker_consumer_config_t *config)
{
    if (config->queue == NULL || config->queue[0] == '\0' || strlen(config->queue) > 200)
        return "the queue needs a name of 1 to 200 characters";
    if (config->bindings == NULL || config->bindings[0] == NULL)
        return "the queue needs at least one binding";
    for (size_t i = 0; config->bindings[i] != NULL; i++)
        if (config->bindings[i][0] == '\0' || strlen(config->bindings[i]) > 255)
            return "a binding must be 1 to 255 characters";
    if (config->prefetch == 0)
        return "the prefetch limit must be at least 1";
    if (config->retries > BROKER_RETRIES_MAX)
        return "too many retries";
    for (size_t i = 0; i < config->retries; i++)
        if (config->retry_delays_ms == NULL || config->retry_delays_ms[i] == 0)
            return "every retry needs a delay above 0 ms";
    return NULL;
}

static void on_deliveries(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    broker_port_t *port = H2O_STRUCT_FROM_MEMBER(broker_port_t, deliveries, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        broker_delivery_t *d = H2O_STRUCT_FROM_MEMBER(broker_delivery_t, super.link, messages->next);
        h2o_linklist_unlink(&d->super.link);
        port->delivery_cb(port->delivery_data, d);
    }
}

static void free_consumer(consumer_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->binding_count; i++)
        free(c->bindings[i]);
    free(c->bindings);
    free(c->queue);
    free(c);
}

int broker_consume(broker_port_t *port, const broker_consumer_config_t *config, broker_delivery_fn cb, void *data)
{
    broker_t *broker = port->broker;
    if (cb == NULL || broker_consumer_problem(config) != NULL || port->delivery_cb != NULL)
        return -1;
    consumer_t *c = calloc(1, sizeof(*c));
    size_t count = 0;
    while (config->bindings[count] != NULL)
        count++;
    if (c == NULL || (c->queue = strdup(config->queue)) == NULL ||
        (c->bindings = calloc(count, sizeof(char *))) == NULL) {
        free_consumer(c);
        return -1;
    }
    for (; c->binding_count < count; c->binding_count++)
        if ((c->bindings[c->binding_count] = strdup(config->bindings[c->binding_count])) == NULL) {
            free_consumer(c);
            return -1;
        }
    c->prefetch = config->prefetch;
    c->retries = config->retries;
    for (size_t i = 0; i < config->retries; i++)
        c->delays_ms[i] = config->retry_delays_ms[i];
    c->port = port;
    port->delivery_cb = cb;
    port->delivery_data = data;
    h2o_multithread_register_receiver(port->receiver.queue, &port->deliveries, on_deliveries);
    pthread_mutex_lock(&broker->lock);
    bool taken = broker->consumer != NULL;
    if (!taken)
        broker->consumer = c;
    pthread_mutex_unlock(&broker->lock);
    if (taken) {
        h2o_multithread_unregister_receiver(port->receiver.queue, &port->deliveries);
        port->delivery_cb = NULL;
        free_consumer(c);
        return -1;
    }
    wake(broker);
    return 0;
}

void broker_settle(broker_port_t *port, broker_delivery_t *delivery, broker_settlement_t how)
{
    broker_t *broker = port->broker;
    delivery->settle = how;
    pthread_mutex_lock(&broker->lock);
    h2o_linklist_insert(&broker->settles, &delivery->link);
    pthread_mutex_unlock(&broker->lock);
    wake(broker);
}

void broker_delivery_drop(broker_delivery_t *delivery)
{
    free(delivery);
}

bool broker_is_consuming(broker_t *broker)
{
    return atomic_load(&broker->consuming_now);
}
