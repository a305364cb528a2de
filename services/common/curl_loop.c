/* curl_loop.c - curl's sockets and timer on the h2o loop.
 *
 * curl tells us which sockets to watch (on_curl_socket) and when to wake
 * it (on_curl_timer); the loop tells curl when a socket is ready
 * (curl_multi_socket_action), and finished transfers come back through
 * curl_multi_info_read (collect_finished) to the owner.
 */
#include "curl_loop.h"

#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "loop_timer.h"

/* A socket curl asked us to watch (through a dup of its fd). */
typedef struct watch {
    struct watch *next;
    curl_loop_t *cl;
    curl_socket_t fd;
    h2o_socket_t *sock;
    int what; /* CURL_POLL_IN, _OUT, _INOUT */
} watch_t;

struct curl_loop {
    h2o_evloop_t *loop;
    CURLM *multi;
    loop_timer_t timer; /* curl's own timeout */
    watch_t *watches;
    curl_loop_done_fn done;
    void *owner;
};

static void collect_finished(curl_loop_t *cl)
{
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read(cl->multi, &left)) != NULL)
        if (message->msg == CURLMSG_DONE)
            cl->done(cl->owner, message->easy_handle, message->data.result);
}

static void socket_action(curl_loop_t *cl, curl_socket_t fd, int events)
{
    int running;
    curl_multi_socket_action(cl->multi, fd, events, &running);
    collect_finished(cl);
}

static bool watch_alive(curl_loop_t *cl, const watch_t *watch)
{
    for (const watch_t *w = cl->watches; w != NULL; w = w->next)
        if (w == watch)
            return true;
    return false;
}

static void on_writable(h2o_socket_t *sock, const char *err);

static void arm_write(watch_t *watch)
{
    if ((watch->what & CURL_POLL_OUT) && !h2o_socket_is_writing(watch->sock))
        h2o_socket_notify_write(watch->sock, on_writable);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    watch_t *watch = sock->data;
    socket_action(watch->cl, watch->fd, err != NULL ? CURL_CSELECT_ERR : CURL_CSELECT_IN);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    watch_t *watch = sock->data;
    curl_loop_t *cl = watch->cl;
    socket_action(cl, watch->fd, err != NULL ? CURL_CSELECT_ERR : CURL_CSELECT_OUT);
    if (watch_alive(cl, watch)) /* curl may have dropped the socket meanwhile */
        arm_write(watch);
}

static void drop_watch(curl_loop_t *cl, watch_t *watch)
{
    for (watch_t **p = &cl->watches; *p != NULL; p = &(*p)->next)
        if (*p == watch) {
            *p = watch->next;
            break;
        }
    h2o_socket_read_stop(watch->sock);
    h2o_socket_close(watch->sock); /* closes our dup, not curl's fd */
    free(watch);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socket_data)
{
    curl_loop_t *cl = arg;
    watch_t *watch = socket_data;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (watch != NULL)
            drop_watch(cl, watch);
        curl_multi_assign(cl->multi, fd, NULL);
        return 0;
    }
    if (watch == NULL) {
        int copy = dup(fd);
        watch = copy >= 0 ? calloc(1, sizeof(*watch)) : NULL;
        if (watch == NULL) {
            if (copy >= 0)
                close(copy);
            return -1; /* curl fails the transfer */
        }
        watch->cl = cl;
        watch->fd = fd;
        watch->sock = h2o_evloop_socket_create(cl->loop, copy, H2O_SOCKET_FLAG_DONT_READ);
        watch->sock->data = watch;
        watch->next = cl->watches;
        cl->watches = watch;
        curl_multi_assign(cl->multi, fd, watch);
    }
    watch->what = what;
    if (what & CURL_POLL_IN)
        h2o_socket_read_start(watch->sock, on_readable);
    else
        h2o_socket_read_stop(watch->sock);
    arm_write(watch);
    return 0;
}

static void on_timer(loop_timer_t *timer)
{
    socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    curl_loop_t *cl = arg;
    (void)multi;
    if (timeout_ms < 0)
        loop_timer_stop(&cl->timer);
    else
        loop_timer_start(&cl->timer, (uint64_t)timeout_ms, on_timer, cl);
    return 0;
}

curl_loop_t *curl_loop_create(h2o_evloop_t *loop, curl_loop_done_fn done, void *owner)
{
    curl_loop_t *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    cl->loop = loop;
    cl->done = done;
    cl->owner = owner;
    cl->multi = curl_multi_init();
    if (cl->multi == NULL) {
        free(cl);
        return NULL;
    }
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    return cl;
}

CURLM *curl_loop_multi(curl_loop_t *cl)
{
    return cl->multi;
}

int curl_loop_add(curl_loop_t *cl, CURL *easy)
{
    return curl_multi_add_handle(cl->multi, easy) == CURLM_OK ? 0 : -1;
}

void curl_loop_remove(curl_loop_t *cl, CURL *easy)
{
    curl_multi_remove_handle(cl->multi, easy);
}

void curl_loop_destroy(curl_loop_t *cl)
{
    curl_multi_cleanup(cl->multi); /* closes its sockets: REMOVE drops the watches */
    while (cl->watches != NULL)
        drop_watch(cl, cl->watches);
    loop_timer_stop(&cl->timer);
    free(cl);
}
