/* request_guard.c - see request_guard.h. */
#include "request_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picohttpparser.h"

static const char http2_preface[] = "PRI * HTTP/2";

typedef struct guard {
    h2o_accept_ctx_t *ctx;
    loop_timer_t timeout;
} guard_t;

static void release(h2o_socket_t *sock)
{
    guard_t *guard = sock->data;
    loop_timer_stop(&guard->timeout);
    free(guard);
    sock->data = NULL;
}

static void on_refusal_written(h2o_socket_t *sock, const char *err)
{
    (void)err;
    free(sock->data); /* the response: the socket writes from it, it does not copy */
    sock->data = NULL;
    h2o_socket_close(sock);
}

/* Answers 400 with DESIGN's JSON error, then closes. */
static void refuse(h2o_socket_t *sock, const char *reason)
{
    release(sock);
    h2o_socket_read_stop(sock);
    char body[256];
    int body_len =
        snprintf(body, sizeof(body), "{\"error\":{\"code\":\"invalid_request\",\"message\":\"%s\"}}", reason);
    char *response = malloc(512);
    if (response == NULL) {
        h2o_socket_close(sock);
        return;
    }
    int len = snprintf(response, 512,
                       "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                       "Content-Length: %d\r\n\r\n%s",
                       body_len, body);
    sock->data = response;
    h2o_iovec_t buf = h2o_iovec_init(response, (size_t)len);
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
        release(sock);
        h2o_socket_close(sock);
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
    h2o_socket_t *sock = timer->data;
    release(sock);
    h2o_socket_close(sock);
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
