/* request_guard.c - see request_guard.h. */
#include "request_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "picohttpparser.h"

static const char http2_preface[] = "PRI * HTTP/2";

/* After a refusal the connection lingers, as nginx's lingering_close does:
 * the answer is followed by a FIN, and what the client is still sending (the
 * rest of an oversized head) is read and dropped until it closes, for at
 * most LINGER_MS and LINGER_BYTES. Closing at once with unread bytes makes
 * the kernel send a reset, which can destroy the answer before the client
 * reads it. */
enum { LINGER_MS = 2000, LINGER_BYTES = 4 * 1024 * 1024 };

typedef struct guard {
    h2o_accept_ctx_t *ctx;
    loop_timer_t timeout;
    char *response; /* the refusal: the socket writes from it, it does not copy */
    size_t drained;
} guard_t;

static void release(h2o_socket_t *sock)
{
    guard_t *guard = sock->data;
    loop_timer_stop(&guard->timeout);
    free(guard->response);
    free(guard);
    sock->data = NULL;
}

static void release_and_close(h2o_socket_t *sock)
{
    release(sock);
    h2o_socket_close(sock);
}

static void on_linger_timeout(loop_timer_t *timer)
{
    release_and_close(timer->data);
}

static void on_drain(h2o_socket_t *sock, const char *err)
{
    if (err != NULL) { /* the client closed (or the connection broke) */
        release_and_close(sock);
        return;
    }
    guard_t *guard = sock->data;
    guard->drained += sock->input->size;
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (guard->drained > LINGER_BYTES)
        release_and_close(sock);
}

static void on_refusal_written(h2o_socket_t *sock, const char *err)
{
    if (err != NULL || shutdown(h2o_socket_get_fd(sock), SHUT_WR) != 0) {
        release_and_close(sock);
        return;
    }
    guard_t *guard = sock->data;
    h2o_buffer_consume(&sock->input, sock->input->size);
    loop_timer_start(&guard->timeout, LINGER_MS, on_linger_timeout, sock);
    h2o_socket_read_start(sock, on_drain);
}

/* Answers 400 with DESIGN's JSON error, then lingers and closes. */
static void refuse(h2o_socket_t *sock, const char *reason)
{
    guard_t *guard = sock->data;
    loop_timer_stop(&guard->timeout);
    h2o_socket_read_stop(sock);
    char body[256];
    int body_len =
        snprintf(body, sizeof(body), "{\"error\":{\"code\":\"invalid_request\",\"message\":\"%s\"}}", reason);
    guard->response = malloc(512);
    if (guard->response == NULL) {
        release_and_close(sock);
        return;
    }
    int len = snprintf(guard->response, 512,
                       "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                       "Content-Length: %d\r\n\r\n%s",
                       body_len, body);
    h2o_iovec_t buf = h2o_iovec_init(guard->response, (size_t)len);
    h2o_socket_write(sock, &buf, 1, on_refusal_written);
}

static void hand_over(h2o_socket_t *sock)
{
    guard_t *guard = sock->data;
    h2o_accept_ctx_t *ctx = guard->ctx;
    release(sock);
    h2o_socket_read_stop(sock);
    h2o_accept(ctx, sock);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    if (err != NULL) {
        release_and_close(sock);
        return;
    }
    const char *input = sock->input->bytes;
    size_t len = sock->input->size;
    size_t preface = len < sizeof(http2_preface) - 1 ? len : sizeof(http2_preface) - 1;
    if (preface > 0 && memcmp(input, http2_preface, preface) == 0) {
        if (preface == sizeof(http2_preface) - 1)
            hand_over(sock); /* HTTP/2 with prior knowledge: h2o's own business */
        return;
    }
    const char *method, *path;
    size_t method_len, path_len, header_count = H2O_MAX_HEADERS;
    int minor_version;
    struct phr_header headers[H2O_MAX_HEADERS];
    size_t head_len = len < H2O_MAX_REQLEN ? len : H2O_MAX_REQLEN;
    int parsed = phr_parse_request(input, head_len, &method, &method_len, &path, &path_len, &minor_version, headers,
                                   &header_count, 0);
    if (parsed >= 0)
        hand_over(sock);
    else if (parsed == -1)
        refuse(sock, "the request line or a header is malformed");
    else if (head_len == H2O_MAX_REQLEN)
        refuse(sock, "the request head is too large");
    /* else incomplete: wait for more */
}

static void on_timeout(loop_timer_t *timer)
{
    release_and_close(timer->data);
}

void request_guard_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, uint64_t timeout_ms)
{
    guard_t *guard = calloc(1, sizeof(*guard));
    if (guard == NULL) {
        h2o_accept(ctx, sock); /* no memory for the check: h2o still parses safely */
        return;
    }
    guard->ctx = ctx;
    sock->data = guard;
    loop_timer_start(&guard->timeout, timeout_ms, on_timeout, sock);
    h2o_socket_read_start(sock, on_read);
}
