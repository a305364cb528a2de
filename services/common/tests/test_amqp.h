/* test_amqp.h - a blocking RabbitMQ client for the tests' side: a queue of
 * the test's own bound to oms.events, and reading what arrived on it.
 *
 * The broker is the test stack's (OMS_TEST_AMQP_URL, as
 * scripts/run-tests.sh exports it). The queue is exclusive: it goes when
 * the test's connection closes. Header-only (static inline), for the one
 * file that includes it, after test_support.h.
 */
#ifndef OMS_TEST_AMQP_H
#define OMS_TEST_AMQP_H

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "broker.h"

#define TEST_AMQP_CHANNEL 1

typedef struct test_queue {
    amqp_connection_state_t conn;
    char name[128];
} test_queue_t;

/* One message as the test reads it (copied out of librabbitmq's buffers). */
typedef struct test_message {
    char routing_key[128];
    char message_id[128];
    char type[128];
    char content_type[64];
    char traceparent[128]; /* "" when the header is missing */
    int delivery_mode;
    uint64_t timestamp;
    char body[4096];
} test_message_t;

static inline const char *test_amqp_url(void)
{
    return test_env("OMS_TEST_AMQP_URL");
}

static inline void test_amqp_check(amqp_connection_state_t conn, const char *what)
{
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        fail_msg("RabbitMQ (OMS_TEST_AMQP_URL) refused %s (reply type %d)", what, (int)reply.reply_type);
}

static inline void test_queue_open_on(test_queue_t *q, const char *exchange, const char *binding);

/* Connects, and binds a new exclusive queue to oms.events with `binding`
 * (the exchange must exist: a broker link has declared it). */
static inline void test_queue_open(test_queue_t *q, const char *binding)
{
    test_queue_open_on(q, BROKER_EVENTS_EXCHANGE, binding);
}

/* The same on another topic exchange (oms.dlx: what is dead-lettered). */
static inline void test_queue_open_on(test_queue_t *q, const char *exchange, const char *binding)
{
    char *url = strdup(test_amqp_url());
    struct amqp_connection_info info;
    amqp_default_connection_info(&info);
    if (url == NULL || amqp_parse_url(url, &info) != AMQP_STATUS_OK)
        fail_msg("OMS_TEST_AMQP_URL is not an amqp:// URL");
    q->conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(q->conn);
    if (socket == NULL || amqp_socket_open(socket, info.host, info.port) != AMQP_STATUS_OK)
        fail_msg("cannot connect to RabbitMQ at %s:%d", info.host, info.port);
    amqp_rpc_reply_t login = amqp_login(q->conn, info.vhost[0] != '\0' ? info.vhost : "/", 0, 131072, 0,
                                        AMQP_SASL_METHOD_PLAIN, info.user, info.password);
    if (login.reply_type != AMQP_RESPONSE_NORMAL)
        fail_msg("RabbitMQ refused the test's login");
    free(url);
    amqp_channel_open(q->conn, TEST_AMQP_CHANNEL);
    test_amqp_check(q->conn, "a channel");
    /* as broker.c declares it, so that a test may bind before any link has */
    amqp_exchange_declare(q->conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, 1,
                          0, 0, amqp_empty_table);
    test_amqp_check(q->conn, "declaring the exchange");
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(q->conn, TEST_AMQP_CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    test_amqp_check(q->conn, "the test queue");
    snprintf(q->name, sizeof(q->name), "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);
    amqp_queue_bind(q->conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(q->name), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(binding), amqp_empty_table);
    test_amqp_check(q->conn, "binding the test queue");
}

static inline void test_queue_close(test_queue_t *q)
{
    amqp_channel_close(q->conn, TEST_AMQP_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(q->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(q->conn);
}

static inline void test_copy_bytes(char *out, size_t size, amqp_bytes_t bytes)
{
    snprintf(out, size, "%.*s", (int)bytes.len, bytes.bytes != NULL ? (const char *)bytes.bytes : "");
}

/* Takes the next message off the queue (acknowledged); false when empty. */
static inline bool test_queue_get(test_queue_t *q, test_message_t *m)
{
    amqp_rpc_reply_t reply = amqp_basic_get(q->conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(q->name), 1);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        fail_msg("basic.get on the test queue failed");
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return false;
    amqp_basic_get_ok_t *ok = reply.reply.decoded;
    memset(m, 0, sizeof(*m));
    test_copy_bytes(m->routing_key, sizeof(m->routing_key), ok->routing_key);
    amqp_message_t message;
    reply = amqp_read_message(q->conn, TEST_AMQP_CHANNEL, &message, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        fail_msg("reading a message off the test queue failed");
    const amqp_basic_properties_t *p = &message.properties;
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        test_copy_bytes(m->message_id, sizeof(m->message_id), p->message_id);
    if (p->_flags & AMQP_BASIC_TYPE_FLAG)
        test_copy_bytes(m->type, sizeof(m->type), p->type);
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        test_copy_bytes(m->content_type, sizeof(m->content_type), p->content_type);
    if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
        m->delivery_mode = p->delivery_mode;
    if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        m->timestamp = p->timestamp;
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            if (e->key.len == 11 && memcmp(e->key.bytes, "traceparent", 11) == 0 &&
                (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES))
                test_copy_bytes(m->traceparent, sizeof(m->traceparent), e->value.value.bytes);
        }
    test_copy_bytes(m->body, sizeof(m->body), message.body);
    amqp_destroy_message(&message);
    amqp_maybe_release_buffers(q->conn);
    return true;
}

/* Messages ready in the queue `name` (not those delivered and unsettled),
 * read with a passive declare; the queue must exist. */
static inline uint32_t test_queue_ready(test_queue_t *q, const char *name)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(q->conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    test_amqp_check(q->conn, "a passive declare");
    uint32_t count = ok->message_count;
    amqp_maybe_release_buffers(q->conn);
    return count;
}

/* Publishes straight into the queue `name` (the default exchange). */
static inline void test_queue_put(test_queue_t *q, const char *name, const char *id, const void *body, size_t len)
{
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.message_id = amqp_cstring_bytes(id);
    props.type = amqp_cstring_bytes("unit.put");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (amqp_basic_publish(q->conn, TEST_AMQP_CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(name), 0, 0, &props,
                           (amqp_bytes_t){len, (void *)body}) != AMQP_STATUS_OK)
        fail_msg("publishing into %s failed", name);
}

static inline void test_queue_delete(test_queue_t *q, const char *name)
{
    amqp_queue_delete(q->conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(name), 0, 0);
    test_amqp_check(q->conn, "deleting a queue");
}

/* Waits (bounded by TEST_WAIT_MS, running `loop` meanwhile when not NULL)
 * for `count` messages; returns how many were read into `out`. */
static inline size_t test_queue_take(test_queue_t *q, h2o_evloop_t *loop, test_message_t *out, size_t count)
{
    size_t got = 0;
    uint64_t deadline = loop_now_ms() + TEST_WAIT_MS;
    while (got < count && loop_now_ms() < deadline) {
        if (test_queue_get(q, &out[got])) {
            got++;
            continue;
        }
        if (loop != NULL)
            h2o_evloop_run(loop, 10);
        else
            usleep(10000);
    }
    return got;
}

#endif
