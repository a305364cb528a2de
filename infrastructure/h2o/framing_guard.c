/*
 * framing_guard: the native gateway's front door, in front of the h2o server.
 *
 * Why it exists. RFC 9112 §6.3 says a request whose body length is
 * ambiguous (two different Content-Length values, or Transfer-Encoding
 * together with Content-Length) must be refused with 400 and the
 * connection closed: two parsers that pick different lengths see different
 * requests in the same bytes (request smuggling). h2o 2.2.5 keeps the first
 * Content-Length, lets Transfer-Encoding override it, and keeps the
 * connection open; no setting changes that, and its mruby handlers never see
 * either header. So this small relay sits on the gateway port, checks each
 * request head, and passes the bytes through unchanged to h2o on a Unix
 * socket.
 *
 * Why it cannot disagree with h2o. It parses with the same parser:
 * picohttpparser, the copy built into libh2o-evloop 2.2.5 (the one compiled
 * into the h2o binary), for request heads and chunked bodies alike. It
 * forwards a request only once its head is complete and its framing is
 * unambiguous, and it follows the body with the same length rules h2o uses,
 * so both always agree where the next request starts.
 *
 * Per connection:
 *
 *   client --> [in: checked bytes | unchecked bytes] --> h2o (Unix socket)
 *   client <-- [out]                                 <-- h2o
 *
 * Request side, one state per position in the byte stream:
 *   READING_HEAD -> (head complete, framing checked) -> READING_FIXED_BODY
 *   or READING_CHUNKED_BODY -> READING_HEAD ...
 * A refused request is never forwarded: the guard stops reading the client,
 * closes h2o's side for writing, relays the answers to the requests before
 * it (pipelining), then sends its own JSON error with Connection: close,
 * and finally drains the client briefly so the answer is not lost to a
 * reset (a "lingering close").
 *
 * Limits. Slow or idle clients are bounded by h2o's own timeouts: every
 * client has its own connection to h2o, opened at accept, and when h2o
 * closes it the guard closes the client. The guard holds at most
 * --max-connections clients (then it stops accepting, as h2o does).
 *
 * Usage: framing-guard --listen 127.0.0.1:8080 --upstream /path/h2o.sock
 *                      [--max-connections 4096] [--max-body-bytes 8388608]
 * Each refusal is logged as one JSON line on stdout. SIGTERM or SIGINT
 * closes every connection and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "picohttpparser.h" /* services/common: h2o's own parser */

#define HEAD_MAX        (16 * 1024) /* request line + headers; h2o allows more, so nothing h2o refuses gets through */
#define BUFFER_SIZE     (32 * 1024) /* per direction, allocated only while bytes wait in it */
#define MAX_HEADERS     100         /* h2o's H2O_MAX_HEADERS */
#define LINGER_MS       2000        /* how long a refused client may keep sending before we close */
#define EVENTS_PER_WAIT 256

/* ---- refusals ---------------------------------------------------------------------------------- */

/* A request the guard answers itself, in DESIGN's error shape. */
typedef struct {
    int status;
    const char *reason;
    const char *code;
    const char *message;
} refusal_t;

static const refusal_t MALFORMED = {400, "Bad Request", "invalid_request", "the request is malformed"};
static const refusal_t FOLDED_HEADER = {400, "Bad Request", "invalid_request",
                                        "a header field is folded over several lines"};
static const refusal_t CONFLICTING_LENGTHS = {400, "Bad Request", "invalid_request",
                                              "Content-Length appears with different values"};
static const refusal_t LENGTH_AND_CHUNKED = {400, "Bad Request", "invalid_request",
                                             "Transfer-Encoding and Content-Length must not be sent together"};
static const refusal_t INVALID_LENGTH = {400, "Bad Request", "invalid_request",
                                         "Content-Length must be a decimal number"};
static const refusal_t REPEATED_TRANSFER_ENCODING = {400, "Bad Request", "invalid_request",
                                                     "Transfer-Encoding must appear only once"};
static const refusal_t CHUNKED_IN_HTTP10 = {400, "Bad Request", "invalid_request",
                                            "Transfer-Encoding is not allowed in HTTP/1.0"};
static const refusal_t BROKEN_CHUNKED_BODY = {400, "Bad Request", "invalid_request", "the chunked body is malformed"};
static const refusal_t UNKNOWN_TRANSFER_CODING = {501, "Not Implemented", "not_implemented",
                                                  "the only supported Transfer-Encoding is chunked"};
static const refusal_t BODY_TOO_LARGE = {413, "Payload Too Large", "payload_too_large", "request body is too large"};
static const refusal_t UNKNOWN_EXPECTATION = {417, "Expectation Failed", "expectation_failed",
                                              "the only supported Expect is 100-continue"};
static const refusal_t HEAD_TOO_LARGE = {431, "Request Header Fields Too Large", "request_header_too_large",
                                         "the request line and headers exceed 16 KiB"};
static const refusal_t GATEWAY_UNREACHABLE = {502, "Bad Gateway", "upstream_unavailable", "h2o is unavailable"};
static const refusal_t GATEWAY_BUSY = {503, "Service Unavailable", "gateway_busy", "h2o is not accepting connections"};

/* ---- buffers ------------------------------------------------------------------------------------ */

/* Bytes waiting to move in one direction. `data` exists only while len > 0,
 * so an idle keep-alive connection costs no buffer memory. */
typedef struct {
    char *data;
    size_t len;
} buffer_t;

/* Makes room for BUFFER_SIZE bytes; returns -1 when out of memory. */
static int buffer_reserve(buffer_t *buf)
{
    if (buf->data == NULL && (buf->data = malloc(BUFFER_SIZE)) == NULL)
        return -1;
    return 0;
}

/* Drops the first n bytes; frees the storage once it is empty. */
static void buffer_consume(buffer_t *buf, size_t n)
{
    memmove(buf->data, buf->data + n, buf->len - n);
    buf->len -= n;
    if (buf->len == 0) {
        free(buf->data);
        buf->data = NULL;
    }
}

static void buffer_free(buffer_t *buf)
{
    free(buf->data);
    *buf = (buffer_t){NULL, 0};
}

/* ---- connections -------------------------------------------------------------------------------- */

typedef enum { READING_HEAD, READING_FIXED_BODY, READING_CHUNKED_BODY } request_state_t;

struct connection;

/* One socket of a connection, as registered with epoll. */
typedef struct {
    struct connection *conn;
    int fd;
    uint32_t events; /* what epoll watches; 0: not registered (so a hang-up cannot spin the loop) */
} endpoint_t;

/* A doubly linked list of connections. */
typedef struct {
    struct connection *head, *tail;
} list_t;

typedef struct connection {
    endpoint_t client, upstream;
    char client_name[64]; /* address:port, for logs */
    buffer_t in;          /* client -> h2o; the first `checked` bytes may be forwarded */
    size_t checked;
    buffer_t out; /* h2o -> client */
    request_state_t state;
    size_t body_left; /* READING_FIXED_BODY: bytes of the body still to come */
    size_t body_seen; /* READING_CHUNKED_BODY: decoded bytes so far */
    struct phr_chunked_decoder chunked;
    const refusal_t *refusal; /* set once a request is refused */
    bool client_done;         /* nothing more is read from the client (end of stream, or h2o went away) */
    bool upstream_eof, upstream_shut, refusal_queued;
    int64_t linger_until; /* set once the refusal is sent: drain the client until then */
    list_t *list;         /* active, lingering (oldest first) or closed */
    struct connection *prev, *next;
} connection_t;

static struct {
    int epoll_fd, listen_fd;
    struct sockaddr_un upstream;
    size_t max_connections, max_body_bytes, count;
    bool accepting;
    list_t active, lingering;
    list_t closed;             /* freed after the current batch of events, which may still point at them */
    char scratch[BUFFER_SIZE]; /* the chunked decoder rewrites its input: it decodes a copy */
} guard;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One JSON log line, DESIGN's shape (ts, level, service, msg, fields). */
static void log_line(const char *level, const char *msg, const char *fields)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    printf("{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"service\":\"gateway\",\"msg\":\"%s\"%s%s}\n", when,
           ts.tv_nsec / 1000000, level, msg, fields[0] ? "," : "", fields);
    fflush(stdout);
}

/* Moves a connection to the tail of `list`. */
static void list_move(connection_t *conn, list_t *list)
{
    if (conn->list != NULL) {
        *(conn->prev ? &conn->prev->next : &conn->list->head) = conn->next;
        *(conn->next ? &conn->next->prev : &conn->list->tail) = conn->prev;
    }
    conn->prev = list->tail;
    conn->next = NULL;
    *(list->tail ? &list->tail->next : &list->head) = conn;
    list->tail = conn;
    conn->list = list;
}

/* Makes epoll watch exactly `events` on the endpoint (none: unregistered). */
static void watch(endpoint_t *ep, uint32_t events)
{
    if (ep->fd < 0 || ep->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = ep};
    int op = events == 0 ? EPOLL_CTL_DEL : ep->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    epoll_ctl(guard.epoll_fd, op, ep->fd, &ev);
    ep->events = events;
}

static void close_endpoint(endpoint_t *ep)
{
    if (ep->fd >= 0)
        close(ep->fd); /* also removes it from epoll */
    ep->fd = -1;
    ep->events = 0;
}

/* Closes both sockets and releases the buffers; the connection itself is
 * freed after the current batch of events. Resumes accepting if the limit
 * had stopped it. */
static void connection_close(connection_t *conn)
{
    close_endpoint(&conn->client);
    close_endpoint(&conn->upstream);
    buffer_free(&conn->in);
    buffer_free(&conn->out);
    list_move(conn, &guard.closed);
    guard.count--;
    if (!guard.accepting && guard.count < guard.max_connections) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(guard.epoll_fd, EPOLL_CTL_MOD, guard.listen_fd, &ev);
        guard.accepting = true;
    }
}

/* Refuses the request being read: nothing more is read from the client or
 * sent to h2o (beyond requests already checked), and the answer follows
 * h2o's answers to those. */
static void refuse(connection_t *conn, const refusal_t *refusal)
{
    conn->refusal = refusal;
    conn->in.len = conn->checked; /* the refused bytes are never forwarded */
    if (conn->in.len == 0)
        buffer_free(&conn->in);
    char fields[256];
    snprintf(fields, sizeof(fields), "\"status\":%d,\"reason\":\"%s\",\"client\":\"%s\"", refusal->status,
             refusal->message, conn->client_name);
    log_line("warn", "request refused", fields);
}

/* Appends the refusal's response to `out` (it is the last thing sent). */
static void queue_refusal(connection_t *conn)
{
    const refusal_t *r = conn->refusal;
    char body[256];
    int body_len =
        snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", r->code, r->message);
    if (buffer_reserve(&conn->out) != 0)
        return;
    int len = snprintf(conn->out.data + conn->out.len, BUFFER_SIZE - conn->out.len,
                       "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                       "Connection: close\r\n\r\n%s",
                       r->status, r->reason, body_len, body);
    if (len > 0 && (size_t)len < BUFFER_SIZE - conn->out.len)
        conn->out.len += (size_t)len;
    conn->refusal_queued = true;
}

/* ---- request framing ------------------------------------------------------------------------------ */

static bool name_is(const struct phr_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool value_is(const struct phr_header *h, const char *value)
{
    return h->value_len == strlen(value) && strncasecmp(h->value, value, h->value_len) == 0;
}

/* Reads a Content-Length value (digits only, as h2o requires); values above
 * `cap` read as cap + 1. Returns -1 if it is not a number. */
static int parse_length(const struct phr_header *h, size_t cap, size_t *length)
{
    if (h->value_len == 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        if (n <= cap)
            n = n * 10 + (size_t)(h->value[i] - '0');
    }
    *length = n > cap ? cap + 1 : n;
    return 0;
}

/* Decides how the body of a parsed head is framed, the way h2o will read
 * it; returns the refusal when the framing is ambiguous or unsupported. */
static const refusal_t *check_framing(connection_t *conn, int minor_version, const struct phr_header *headers,
                                      size_t count)
{
    const struct phr_header *transfer_encoding = NULL, *expect = NULL;
    bool has_length = false;
    size_t length = 0;

    for (size_t i = 0; i < count; i++) {
        const struct phr_header *h = &headers[i];
        if (h->name == NULL)
            return &FOLDED_HEADER;
        if (name_is(h, "content-length")) {
            size_t value;
            if (parse_length(h, guard.max_body_bytes, &value) != 0)
                return &INVALID_LENGTH;
            if (has_length && value != length)
                return &CONFLICTING_LENGTHS;
            has_length = true;
            length = value;
        } else if (name_is(h, "transfer-encoding")) {
            if (transfer_encoding != NULL)
                return &REPEATED_TRANSFER_ENCODING;
            transfer_encoding = h;
        } else if (name_is(h, "expect")) {
            expect = h;
        }
    }

    if (transfer_encoding != NULL) {
        if (has_length)
            return &LENGTH_AND_CHUNKED;
        if (minor_version == 0)
            return &CHUNKED_IN_HTTP10;
        if (!value_is(transfer_encoding, "chunked"))
            return &UNKNOWN_TRANSFER_CODING;
    } else if (has_length && length > guard.max_body_bytes) {
        return &BODY_TOO_LARGE;
    }
    /* h2o looks at Expect only when a body is announced */
    if ((transfer_encoding != NULL || has_length) && expect != NULL && !value_is(expect, "100-continue"))
        return &UNKNOWN_EXPECTATION;

    if (transfer_encoding != NULL) {
        conn->state = READING_CHUNKED_BODY;
        conn->chunked = (struct phr_chunked_decoder){.consume_trailer = 1}; /* as h2o reads trailers */
        conn->body_seen = 0;
    } else if (length > 0) {
        conn->state = READING_FIXED_BODY;
        conn->body_left = length;
    } else {
        conn->state = READING_HEAD; /* no body */
    }
    return NULL;
}

/* Step READING_HEAD: one complete, unambiguous head becomes checked. */
static bool read_head(connection_t *conn)
{
    const char *method, *path;
    size_t method_len, path_len, count = MAX_HEADERS;
    int minor_version;
    struct phr_header headers[MAX_HEADERS];
    size_t available = conn->in.len - conn->checked;

    int head_len = phr_parse_request(conn->in.data + conn->checked, available, &method, &method_len, &path, &path_len,
                                     &minor_version, headers, &count, 0);
    if (head_len == -2) {
        if (available >= HEAD_MAX)
            refuse(conn, &HEAD_TOO_LARGE);
        return false; /* wait for more */
    }
    if (head_len < 0 || (size_t)head_len > HEAD_MAX) {
        refuse(conn, head_len < 0 ? &MALFORMED : &HEAD_TOO_LARGE);
        return false;
    }
    const refusal_t *refusal = check_framing(conn, minor_version, headers, count);
    if (refusal != NULL) {
        refuse(conn, refusal);
        return false;
    }
    conn->checked += (size_t)head_len;
    return true;
}

/* Step READING_FIXED_BODY: Content-Length bytes pass as they come. */
static bool read_fixed_body(connection_t *conn)
{
    size_t n = conn->in.len - conn->checked;
    if (n > conn->body_left)
        n = conn->body_left;
    conn->checked += n;
    conn->body_left -= n;
    if (conn->body_left == 0)
        conn->state = READING_HEAD;
    return conn->checked < conn->in.len;
}

/* Step READING_CHUNKED_BODY: the decoder finds where the body ends (and
 * counts its decoded size, which h2o limits too). */
static bool read_chunked_body(connection_t *conn)
{
    size_t raw = conn->in.len - conn->checked, decoded = raw;
    memcpy(guard.scratch, conn->in.data + conn->checked, raw);
    ssize_t rest = phr_decode_chunked(&conn->chunked, guard.scratch, &decoded);
    if (rest == -1) {
        refuse(conn, &BROKEN_CHUNKED_BODY);
        return false;
    }
    conn->body_seen += decoded;
    if (conn->body_seen > guard.max_body_bytes) {
        refuse(conn, &BODY_TOO_LARGE);
        return false;
    }
    if (rest == -2) { /* the body goes on */
        conn->checked += raw;
        return false;
    }
    conn->checked += raw - (size_t)rest; /* `rest` bytes belong to the next request */
    conn->state = READING_HEAD;
    return true;
}

/* Checks as much of the unchecked input as possible. */
static void check_input(connection_t *conn)
{
    bool more = true;
    while (more && conn->refusal == NULL && conn->checked < conn->in.len) {
        switch (conn->state) {
        case READING_HEAD: more = read_head(conn); break;
        case READING_FIXED_BODY: more = read_fixed_body(conn); break;
        case READING_CHUNKED_BODY: more = read_chunked_body(conn); break;
        }
    }
}

/* ---- moving bytes ------------------------------------------------------------------------------------ */

/* Reads what fits into `buf`; returns bytes read, 0 at end of stream,
 * -1 on error, -2 when nothing is there yet. */
static ssize_t read_into(int fd, buffer_t *buf)
{
    if (buf->len == BUFFER_SIZE)
        return -2; /* full: read again once it drains */
    if (buffer_reserve(buf) != 0)
        return -1;
    ssize_t n = recv(fd, buf->data + buf->len, BUFFER_SIZE - buf->len, 0);
    if (n > 0)
        buf->len += (size_t)n;
    else if (buf->len == 0)
        buffer_free(buf);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -2 : -1;
    return n;
}

/* Writes up to n bytes from the front of `buf`; returns -1 on error. */
static int write_from(int fd, buffer_t *buf, size_t n)
{
    if (n == 0)
        return 0;
    ssize_t sent = send(fd, buf->data, n, MSG_NOSIGNAL);
    if (sent < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    buffer_consume(buf, (size_t)sent);
    return (int)sent;
}

/* After any event: decides what comes next, and what to watch for it, or
 * closes the connection once there is nothing left to do. */
static void connection_update(connection_t *conn)
{
    if (conn->list == &guard.lingering)
        return; /* only reads (and discards) until end of stream or time-out */
    /* h2o has everything it will get: tell it so, once */
    bool request_side_done = conn->refusal != NULL || conn->client_done;
    if (request_side_done && conn->in.len == 0 && !conn->upstream_shut) {
        shutdown(conn->upstream.fd, SHUT_WR);
        conn->upstream_shut = true;
    }
    if (conn->upstream_eof && conn->refusal != NULL && !conn->refusal_queued && conn->out.len == 0)
        queue_refusal(conn);
    /* h2o is done and the client has everything: close, or linger after a refusal */
    if (conn->upstream_eof && conn->out.len == 0) {
        if (conn->refusal == NULL || conn->client_done) {
            connection_close(conn);
            return;
        }
        shutdown(conn->client.fd, SHUT_WR);
        close_endpoint(&conn->upstream);
        conn->linger_until = now_ms() + LINGER_MS;
        list_move(conn, &guard.lingering);
        watch(&conn->client, EPOLLIN);
        return;
    }

    uint32_t client = 0, upstream = 0;
    if (!request_side_done && !conn->upstream_eof && conn->in.len < BUFFER_SIZE)
        client |= EPOLLIN;
    if (conn->out.len > 0)
        client |= EPOLLOUT;
    if (!conn->upstream_eof && conn->out.len < BUFFER_SIZE)
        upstream |= EPOLLIN;
    if (conn->checked > 0 && !conn->upstream_shut)
        upstream |= EPOLLOUT;
    watch(&conn->client, client);
    watch(&conn->upstream, upstream);
}

/* Sends checked bytes to h2o. If h2o is gone, whatever it still says is
 * relayed, but no more requests go to it. */
static void send_upstream(connection_t *conn)
{
    if (conn->checked == 0 || conn->upstream_shut)
        return;
    int sent = write_from(conn->upstream.fd, &conn->in, conn->checked);
    if (sent < 0) {
        conn->client_done = conn->upstream_shut = true;
        buffer_free(&conn->in);
        conn->checked = 0;
        return;
    }
    conn->checked -= (size_t)sent;
}

static void on_client_event(connection_t *conn, uint32_t events)
{
    if (conn->list == &guard.lingering) { /* discard whatever still comes, until end of stream */
        char sink[4096];
        ssize_t n = recv(conn->client.fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            connection_close(conn);
        return;
    }
    if ((events & EPOLLOUT) && write_from(conn->client.fd, &conn->out, conn->out.len) < 0) {
        connection_close(conn);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t n = read_into(conn->client.fd, &conn->in);
        if (n == -1) {
            connection_close(conn);
            return;
        }
        if (n == 0) {
            conn->client_done = true;
            conn->in.len = conn->checked; /* a partial request is dropped, as h2o would drop it */
            if (conn->in.len == 0)
                buffer_free(&conn->in);
        } else if (n > 0) {
            check_input(conn);
            send_upstream(conn);
        }
    }
    connection_update(conn);
}

static void on_upstream_event(connection_t *conn, uint32_t events)
{
    if (events & EPOLLOUT)
        send_upstream(conn);
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t n = read_into(conn->upstream.fd, &conn->out);
        if (n == 0 || n == -1) {
            conn->upstream_eof = true;
            conn->client_done = true; /* requests not yet sent will not be answered */
            conn->in.len = conn->checked = 0;
            buffer_free(&conn->in);
        }
        if (conn->out.len > 0 && write_from(conn->client.fd, &conn->out, conn->out.len) < 0) {
            connection_close(conn);
            return;
        }
    }
    connection_update(conn);
}

/* ---- accepting ----------------------------------------------------------------------------------------- */

/* The PROXY protocol v1 line that tells h2o who the client is, so its
 * access log and X-Forwarded-For name the client, not the guard. */
static int proxy_line(int fd, char *line, size_t size, char *client_name, size_t name_size)
{
    struct sockaddr_in peer, local;
    socklen_t peer_len = sizeof(peer), local_len = sizeof(local);
    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &local_len) != 0 || peer.sin_family != AF_INET)
        return -1;
    char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, src, sizeof(src));
    inet_ntop(AF_INET, &local.sin_addr, dst, sizeof(dst));
    snprintf(client_name, name_size, "%s:%u", src, ntohs(peer.sin_port));
    return snprintf(line, size, "PROXY TCP4 %s %s %u %u\r\n", src, dst, ntohs(peer.sin_port), ntohs(local.sin_port));
}

/* Opens the connection's way to h2o; on failure the client gets 502 or 503. */
static void connect_upstream(connection_t *conn)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&guard.upstream, sizeof(guard.upstream)) == 0) {
        conn->upstream.fd = fd;
        return;
    }
    /* a Unix socket connects at once or not at all; EAGAIN means its queue is full */
    const refusal_t *refusal = errno == EAGAIN ? &GATEWAY_BUSY : &GATEWAY_UNREACHABLE;
    if (fd >= 0)
        close(fd);
    refuse(conn, refusal);
    conn->upstream_eof = conn->upstream_shut = true; /* nothing to wait for: answer at once */
}

static void accept_clients(void)
{
    while (guard.count < guard.max_connections) {
        int fd = accept4(guard.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                break; /* out of descriptors: wait for a connection to close */
            return;
        }
        connection_t *conn = calloc(1, sizeof(*conn));
        if (conn == NULL) {
            close(fd);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* relayed pieces must not wait for ACKs */
        conn->client = (endpoint_t){conn, fd, 0};
        conn->upstream = (endpoint_t){conn, -1, 0};
        list_move(conn, &guard.active);
        guard.count++;

        char line[128];
        int len = proxy_line(fd, line, sizeof(line), conn->client_name, sizeof(conn->client_name));
        if (len < 0 || buffer_reserve(&conn->in) != 0) {
            connection_close(conn);
            continue;
        }
        connect_upstream(conn);
        if (conn->refusal == NULL) {
            memcpy(conn->in.data, line, (size_t)len);
            conn->in.len = conn->checked = (size_t)len;
        } else {
            buffer_free(&conn->in);
        }
        connection_update(conn);
    }
    /* at the limit (or out of descriptors): stop accepting until one closes */
    struct epoll_event ev = {.events = 0, .data.ptr = NULL};
    epoll_ctl(guard.epoll_fd, EPOLL_CTL_MOD, guard.listen_fd, &ev);
    guard.accepting = false;
}

/* ---- main ------------------------------------------------------------------------------------------------ */

static int listen_on(const char *spec)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (*end != '\0' || port < 1 || port > 65535 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: framing-guard --listen ADDRESS:PORT --upstream UNIX_SOCKET "
                    "[--max-connections N] [--max-body-bytes N]\n");
    exit(2);
}

static void parse_arguments(int argc, char **argv, const char **listen_spec)
{
    static const struct option options[] = {{"listen", required_argument, NULL, 'l'},
                                            {"upstream", required_argument, NULL, 'u'},
                                            {"max-connections", required_argument, NULL, 'c'},
                                            {"max-body-bytes", required_argument, NULL, 'b'},
                                            {NULL, 0, NULL, 0}};
    const char *upstream = NULL;
    guard.max_connections = 4096;
    guard.max_body_bytes = 8 * 1024 * 1024;
    for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        char *end;
        switch (opt) {
        case 'l': *listen_spec = optarg; break;
        case 'u': upstream = optarg; break;
        case 'c':
        case 'b': {
            unsigned long long value = strtoull(optarg, &end, 10);
            if (*end != '\0' || value == 0)
                usage();
            *(opt == 'c' ? &guard.max_connections : &guard.max_body_bytes) = (size_t)value;
            break;
        }
        default: usage();
        }
    }
    if (*listen_spec == NULL || upstream == NULL || strlen(upstream) >= sizeof(guard.upstream.sun_path))
        usage();
    guard.upstream.sun_family = AF_UNIX;
    strcpy(guard.upstream.sun_path, upstream);
}

/* Closes lingering connections whose time is up; returns the epoll wait
 * until the next one is due (-1: none lingers). */
static int expire_lingering(void)
{
    int64_t now = now_ms();
    while (guard.lingering.head != NULL) {
        connection_t *oldest = guard.lingering.head;
        if (oldest->linger_until > now)
            return (int)(oldest->linger_until - now);
        connection_close(oldest);
    }
    return -1;
}

static void free_closed(void)
{
    while (guard.closed.head != NULL) {
        connection_t *conn = guard.closed.head;
        guard.closed.head = conn->next;
        free(conn);
    }
    guard.closed.tail = NULL;
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL;
    parse_arguments(argc, argv, &listen_spec);

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);

    guard.listen_fd = listen_on(listen_spec);
    guard.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (guard.listen_fd < 0 || guard.epoll_fd < 0 || signal_fd < 0) {
        fprintf(stderr, "framing-guard: cannot listen on %s: %s\n", listen_spec, strerror(errno));
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(guard.epoll_fd, EPOLL_CTL_ADD, guard.listen_fd, &ev);
    ev.data.ptr = &signal_fd;
    epoll_ctl(guard.epoll_fd, EPOLL_CTL_ADD, signal_fd, &ev);
    guard.accepting = true;

    char fields[256];
    snprintf(fields, sizeof(fields), "\"listen\":\"%s\",\"upstream\":\"%s\",\"max_connections\":%zu", listen_spec,
             guard.upstream.sun_path, guard.max_connections);
    log_line("info", "framing guard started", fields);

    bool running = true;
    while (running) {
        struct epoll_event events[EVENTS_PER_WAIT];
        int timeout = expire_lingering();
        free_closed();
        int n = epoll_wait(guard.epoll_fd, events, EVENTS_PER_WAIT, timeout);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                accept_clients();
            } else if (events[i].data.ptr == &signal_fd) {
                running = false;
            } else {
                endpoint_t *ep = events[i].data.ptr;
                /* an earlier event of this batch may have closed the connection */
                if (ep->fd < 0 || ep->conn->list == &guard.closed)
                    continue;
                if (ep == &ep->conn->client)
                    on_client_event(ep->conn, events[i].events);
                else
                    on_upstream_event(ep->conn, events[i].events);
            }
        }
    }

    while (guard.active.head != NULL)
        connection_close(guard.active.head);
    while (guard.lingering.head != NULL)
        connection_close(guard.lingering.head);
    free_closed();
    close(guard.listen_fd);
    close(guard.epoll_fd);
    close(signal_fd);
    log_line("info", "framing guard stopped", "");
    return 0;
}
