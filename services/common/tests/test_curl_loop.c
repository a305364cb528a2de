/* Tests for curl_loop.c: transfers driven by the h2o loop finish through
 * the owner's callback, a slow one stalls nobody, connections are reused,
 * and a transfer taken out never calls back. The peer is a tiny HTTP
 * server on a thread of the test (a thread per connection). */
#include "test_support.h" /* first: it defines _GNU_SOURCE (memmem) */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curl_loop.h"
#include "test_loop.h"

static struct {
    int listener, port;
    pthread_t thread;
    atomic_int connections, requests;
} peer;

/* GET /slow waits 300 ms; anything else answers at once. Keep-alive. */
static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    size_t len = 0;
    for (;;) {
        char *end;
        while ((end = memmem(buf, len, "\r\n\r\n", 4)) == NULL) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
            if (n <= 0) {
                close(fd);
                return NULL;
            }
            len += (size_t)n;
        }
        peer.requests++;
        if (strncmp(buf, "GET /slow", 9) == 0)
            usleep(300 * 1000);
        static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (write(fd, answer, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1)
            break;
        size_t used = (size_t)(end - buf) + 4;
        memmove(buf, buf + used, len - used);
        len -= used;
    }
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(peer.listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        peer.connections++;
        pthread_t thread;
        if (pthread_create(&thread, NULL, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            pthread_detach(thread);
    }
}

static int setup(void **state)
{
    (void)state;
    peer.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    assert_int_equal(bind(peer.listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(peer.listener, 16), 0);
    getsockname(peer.listener, (struct sockaddr *)&addr, &len);
    peer.port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&peer.thread, NULL, accept_main, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    shutdown(peer.listener, SHUT_RDWR);
    close(peer.listener);
    pthread_join(peer.thread, NULL);
    return 0;
}

/* --- the owner ---------------------------------------------------------------------- */

typedef struct owner {
    curl_loop_t *cl;
    int done;
    CURL *order[4]; /* in the order they finished */
    CURLcode results[4];
} owner_t;

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    owner_t *o = arg;
    if (o->done < 4) {
        o->order[o->done] = easy;
        o->results[o->done] = result;
    }
    o->done++;
    curl_loop_remove(o->cl, easy);
}

static size_t discard(char *data, size_t size, size_t count, void *arg)
{
    (void)data, (void)arg;
    return size * count;
}

static CURL *transfer(const char *path)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", peer.port, path);
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    return easy;
}

/* A slow transfer and a quick one at once: the quick one finishes first,
 * both through the callback, both fine. */
static void test_transfers_finish_through_the_callback_and_a_slow_one_stalls_nobody(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    owner_t o = {0};
    o.cl = curl_loop_create(loop, on_done, &o);
    assert_non_null(o.cl);
    CURL *slow = transfer("/slow"), *quick = transfer("/quick");
    assert_int_equal(curl_loop_add(o.cl, slow), 0);
    assert_int_equal(curl_loop_add(o.cl, quick), 0);
    test_run_until(loop, o.done == 2);
    assert_int_equal(o.done, 2);
    assert_ptr_equal(o.order[0], quick);
    assert_ptr_equal(o.order[1], slow);
    assert_int_equal(o.results[0], CURLE_OK);
    assert_int_equal(o.results[1], CURLE_OK);
    long code = 0;
    curl_easy_getinfo(slow, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    curl_easy_cleanup(slow);
    curl_easy_cleanup(quick);
    curl_loop_destroy(o.cl);
    test_loop_free(loop);
}

/* One transfer after the other: the second goes out on the first's
 * connection (the multi handle's cache is the keep-alive pool). */
static void test_a_connection_is_reused_from_transfer_to_transfer(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    owner_t o = {0};
    o.cl = curl_loop_create(loop, on_done, &o);
    int before = peer.connections;
    for (int i = 0; i < 3; i++) {
        CURL *easy = transfer("/again");
        assert_int_equal(curl_loop_add(o.cl, easy), 0);
        test_run_until(loop, o.done == i + 1);
        assert_int_equal(o.results[i], CURLE_OK);
        curl_easy_cleanup(easy);
    }
    assert_int_equal(peer.connections - before, 1);
    curl_loop_destroy(o.cl);
    test_loop_free(loop);
}

/* A transfer taken out while under way never calls back, and the loop
 * can be destroyed with its connection still open. */
static void test_a_transfer_taken_out_never_calls_back(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    owner_t o = {0};
    o.cl = curl_loop_create(loop, on_done, &o);
    int requests = peer.requests;
    CURL *slow = transfer("/slow");
    assert_int_equal(curl_loop_add(o.cl, slow), 0);
    test_run_until(loop, peer.requests > requests); /* it reached the peer */
    assert_true(peer.requests > requests);
    curl_loop_remove(o.cl, slow);
    curl_easy_cleanup(slow);
    uint64_t until = loop_now_ms() + 600; /* past the peer's answer */
    while (loop_now_ms() < until)
        h2o_evloop_run(loop, 50);
    assert_int_equal(o.done, 0);
    curl_loop_destroy(o.cl);
    test_loop_free(loop);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfers_finish_through_the_callback_and_a_slow_one_stalls_nobody),
        cmocka_unit_test(test_a_connection_is_reused_from_transfer_to_transfer),
        cmocka_unit_test(test_a_transfer_taken_out_never_calls_back),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return failed;
}
