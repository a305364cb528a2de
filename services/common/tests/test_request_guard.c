/* Tests for request_guard.c: a connection whose first request head is
 * well-formed (whole, or in pieces; or HTTP/2 with prior knowledge) goes to
 * h2o with every byte read so far; a malformed or oversized head gets a
 * JSON 400 and is closed gracefully: a client still sending reads the whole
 * answer and an end of stream, never a reset. h2o_accept is replaced here, so the test sees
 * what would have reached h2o. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "request_guard.h"

static int accepted;
static char accepted_input[1024];

/* Stands in for h2o's: records the hand-over and closes the socket. */
void h2o_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock)
{
    (void)ctx;
    accepted++;
    size_t n = sock->input->size < sizeof(accepted_input) - 1 ? sock->input->size : sizeof(accepted_input) - 1;
    memcpy(accepted_input, sock->input->bytes, n);
    accepted_input[n] = '\0';
    h2o_socket_close(sock);
}

typedef struct fixture {
    h2o_evloop_t *loop;
    int client;
    h2o_accept_ctx_t ctx;
} fixture_t;

static void start(fixture_t *f)
{
    accepted = 0;
    accepted_input[0] = '\0';
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    f->loop = h2o_evloop_create();
    assert_int_equal(loop_timers_init(f->loop), 0);
    f->client = fds[1];
    h2o_socket_t *server = h2o_evloop_socket_create(f->loop, fds[0], 0);
    request_guard_accept(&f->ctx, server, 5000);
}

static void send_text(fixture_t *f, const char *text, size_t len)
{
    assert_int_equal(write(f->client, text, len), (ssize_t)len);
    for (int i = 0; i < 20; i++)
        h2o_evloop_run(f->loop, 5);
}

/* Reads what the guard answered until it closed the connection. */
static size_t read_answer(fixture_t *f, char *out, size_t size)
{
    size_t n = 0;
    for (int i = 0; i < 200 && n < size - 1; i++) {
        h2o_evloop_run(f->loop, 5);
        ssize_t got = recv(f->client, out + n, size - 1 - n, MSG_DONTWAIT);
        if (got == 0)
            break;
        if (got > 0)
            n += (size_t)got;
    }
    out[n] = '\0';
    return n;
}

static void finish(fixture_t *f)
{
    close(f->client);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(f->loop, 1);
    loop_timers_dispose();
    h2o_evloop_destroy(f->loop);
}

static void test_a_whole_head_goes_to_h2o(void **state)
{
    (void)state;
    fixture_t f;
    start(&f);
    const char request[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}";
    send_text(&f, request, sizeof(request) - 1);
    assert_int_equal(accepted, 1);
    assert_string_equal(accepted_input, request); /* nothing read is lost */
    finish(&f);
}

static void test_a_head_in_pieces_waits_then_goes_to_h2o(void **state)
{
    (void)state;
    fixture_t f;
    start(&f);
    send_text(&f, "GET /x HT", 9);
    assert_int_equal(accepted, 0);
    send_text(&f, "TP/1.1\r\nHost: a\r\n", 17);
    assert_int_equal(accepted, 0);
    send_text(&f, "\r\n", 2);
    assert_int_equal(accepted, 1);
    assert_string_equal(accepted_input, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    finish(&f);
}

static void test_http2_prior_knowledge_goes_to_h2o(void **state)
{
    (void)state;
    fixture_t f;
    start(&f);
    send_text(&f, "PRI * HT", 8);
    assert_int_equal(accepted, 0);
    send_text(&f, "TP/2.0\r\n\r\nSM\r\n\r\n", 16);
    assert_int_equal(accepted, 1);
    finish(&f);
}

static void test_a_malformed_head_gets_json_400(void **state)
{
    (void)state;
    static const char *const heads[] = {"GARBAGE\r\n\r\n", "GET /x HTTP/1.1\r\nno colon\r\n\r\n",
                                        "GET /x HTTP/7\r\n\r\n"};
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        fixture_t f;
        start(&f);
        send_text(&f, heads[i], strlen(heads[i]));
        char answer[1024];
        read_answer(&f, answer, sizeof(answer));
        assert_int_equal(accepted, 0);
        assert_non_null(strstr(answer, "HTTP/1.1 400 Bad Request\r\n"));
        assert_non_null(strstr(answer, "Content-Type: application/json\r\n"));
        assert_non_null(strstr(answer, "Connection: close\r\n"));
        assert_non_null(strstr(answer, "\r\n\r\n{\"error\":{\"code\":\"invalid_request\",\"message\":\""));
        finish(&f);
    }
}

static void test_an_oversized_head_gets_json_400(void **state)
{
    (void)state;
    fixture_t f;
    start(&f);
    static char big[H2O_MAX_REQLEN + 100];
    memcpy(big, "GET /x HTTP/1.1\r\nX-Big: ", 24);
    memset(big + 24, 'a', sizeof(big) - 24);
    size_t sent = 0;
    char answer[1024] = "";
    while (sent < sizeof(big)) { /* the socket buffer is smaller than the head */
        ssize_t n = send(f.client, big + sent, sizeof(big) - sent, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
        h2o_evloop_run(f.loop, 5);
        ssize_t got = recv(f.client, answer, sizeof(answer) - 1, MSG_DONTWAIT | MSG_PEEK);
        if (got > 0)
            break;
    }
    read_answer(&f, answer, sizeof(answer));
    assert_int_equal(accepted, 0);
    assert_non_null(strstr(answer, "400 Bad Request"));
    assert_non_null(strstr(answer, "too large"));
    finish(&f);
}

/* The client sends a head four times the limit in one go, as curl or a
 * browser would, and only then reads: it finds the whole answer and an end
 * of stream. Closing at once with the rest unread would reset the
 * connection, and the answer could be gone before the client read it. */
static void test_a_client_still_sending_reads_the_answer_not_a_reset(void **state)
{
    (void)state;
    fixture_t f;
    start(&f);
    static char big[4 * H2O_MAX_REQLEN];
    memcpy(big, "GET /x HTTP/1.1\r\nX-Big: ", 24);
    memset(big + 24, 'a', sizeof(big) - 24);
    size_t sent = 0;
    for (int i = 0; i < 2000 && sent < sizeof(big); i++) {
        ssize_t n = send(f.client, big + sent, sizeof(big) - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK); /* never a reset or a broken pipe */
        else
            sent += (size_t)n;
        h2o_evloop_run(f.loop, 5);
    }
    assert_int_equal(sent, sizeof(big)); /* the guard kept reading after its answer */
    char answer[1024];
    size_t n = 0;
    ssize_t got = -1;
    for (int i = 0; i < 400 && got != 0; i++) {
        h2o_evloop_run(f.loop, 5);
        got = recv(f.client, answer + n, sizeof(answer) - 1 - n, MSG_DONTWAIT);
        if (got < 0)
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        else
            n += (size_t)got;
    }
    assert_int_equal(got, 0); /* an end of stream while the client is still open */
    answer[n] = '\0';
    assert_int_equal(accepted, 0);
    assert_non_null(strstr(answer, "400 Bad Request"));
    assert_non_null(strstr(answer, "too large"));
    finish(&f); /* the client closes: the guard lets go of everything (LeakSanitizer) */
}

/* True once the guard has closed its end: a write to it breaks. */
static bool peer_closed(int fd)
{
    return send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EPIPE;
}

/* A client that neither reads nor closes is not waited for forever: the
 * guard closes its side a little while after the answer. */
static void test_a_refused_client_that_stays_is_closed_after_a_while(void **state)
{
    (void)state;
    fixture_t f;
    start(&f);
    send_text(&f, "GARBAGE\r\n\r\n", 11);
    uint64_t deadline = loop_now_ms() + 10000; /* generous, for a 2 s linger */
    while (!peer_closed(f.client) && loop_now_ms() < deadline)
        h2o_evloop_run(f.loop, 5);
    assert_true(peer_closed(f.client));
    finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_whole_head_goes_to_h2o),
        cmocka_unit_test(test_a_head_in_pieces_waits_then_goes_to_h2o),
        cmocka_unit_test(test_http2_prior_knowledge_goes_to_h2o),
        cmocka_unit_test(test_a_malformed_head_gets_json_400),
        cmocka_unit_test(test_an_oversized_head_gets_json_400),
        cmocka_unit_test(test_a_client_still_sending_reads_the_answer_not_a_reset),
        cmocka_unit_test(test_a_refused_client_that_stays_is_closed_after_a_while),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
