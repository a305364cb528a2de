/* http_double.h - an h2o request without a socket, for tests that run
 * requests through http_dispatch (unit tests and the fuzz exchange).
 *
 * It builds the h2o_req_t that h2o would (path normalised by
 * h2o_url_normalize_path, the peer address the connection reports) and
 * captures what is sent back: status, headers (in req->res) and body.
 *
 *     http_double_t d;
 *     http_double_init(&d, "GET", "/api/x?y=1", "127.0.0.1");
 *     http_double_header(&d, "authorization", "Bearer ...");
 *     http_dispatch(&server, &worker, &d.req);
 *     ... run the loop until d.responded ...
 *     http_double_dispose(&d);
 *
 * Header-only: every function is static, for the one file that includes it.
 */
#ifndef OMS_HTTP_DOUBLE_H
#define OMS_HTTP_DOUBLE_H

#include <arpa/inet.h>
#include <h2o/url.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop_timer.h"

typedef struct http_double {
    h2o_req_t req;
    h2o_conn_t conn;
    h2o_pathconf_t pathconf;
    struct http_double_capture {
        h2o_ostream_t super;
        struct http_double *owner;
    } capture;
    char peer[64]; /* the connection's peer address ("" for none) */
    char *body;    /* what was sent, NUL-terminated; NULL before any */
    size_t body_len;
    int status;
    bool responded; /* the final chunk was sent */
    bool sent_after_final;
} http_double_t;

static inline socklen_t http_double_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    http_double_t *d = H2O_STRUCT_FROM_MEMBER(http_double_t, conn, conn);
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    memset(sa, 0, sizeof(struct sockaddr_in6));
    if (inet_pton(AF_INET, d->peer, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return sizeof(*v4);
    }
    if (inet_pton(AF_INET6, d->peer, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return sizeof(*v6);
    }
    return 0;
}

static const h2o_conn_callbacks_t http_double_callbacks = {.get_peername = http_double_peername};

static inline void http_double_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                                    h2o_send_state_t state)
{
    http_double_t *d = ((struct http_double_capture *)self)->owner;
    if (d->responded)
        d->sent_after_final = true;
    for (size_t i = 0; i < bufcnt; i++) {
        d->body = realloc(d->body, d->body_len + bufs[i].len + 1);
        if (d->body == NULL)
            abort();
        memcpy(d->body + d->body_len, bufs[i].base, bufs[i].len);
        d->body_len += bufs[i].len;
        d->body[d->body_len] = '\0';
    }
    if (!h2o_send_state_is_in_progress(state)) {
        d->responded = true;
        d->status = req->res.status;
    }
}

/* Starts a request `method target` from `peer` (an address, or ""). */
static inline void http_double_init(http_double_t *d, const char *method, const char *target, const char *peer)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->peer, sizeof(d->peer), "%s", peer);
    d->conn.callbacks = &http_double_callbacks;
    d->capture.super.do_send = http_double_send;
    d->capture.owner = d;
    h2o_init_request(&d->req, &d->conn, NULL);
    d->req.version = 0x101;
    d->req.pathconf = &d->pathconf;
    d->req._ostr_top = &d->capture.super;
    d->req.method = h2o_strdup(&d->req.pool, method, SIZE_MAX);
    d->req.path = h2o_strdup(&d->req.pool, target, SIZE_MAX);
    d->req.path_normalized =
        h2o_url_normalize_path(&d->req.pool, d->req.path.base, d->req.path.len, &d->req.query_at, &d->req.norm_indexes);
}

/* Adds a request header; `name` is lower-cased as h2o does. */
static inline void http_double_header_n(http_double_t *d, const char *name, size_t name_len, const char *value,
                                        size_t value_len)
{
    h2o_iovec_t n = h2o_strdup(&d->req.pool, name, name_len);
    h2o_strtolower(n.base, n.len);
    h2o_iovec_t v = h2o_strdup(&d->req.pool, value, value_len);
    h2o_add_header_by_str(&d->req.pool, &d->req.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

static inline void http_double_header(http_double_t *d, const char *name, const char *value)
{
    http_double_header_n(d, name, strlen(name), value, strlen(value));
}

static inline void http_double_body(http_double_t *d, const char *body, size_t len)
{
    d->req.entity = h2o_strdup(&d->req.pool, body, len);
}

/* A response header's value (NUL-terminated copy in the request pool), or
 * NULL when absent. */
static inline const char *http_double_response_header(http_double_t *d, const char *name)
{
    ssize_t index = h2o_find_header_by_str(&d->req.res.headers, name, strlen(name), -1);
    if (index < 0)
        return NULL;
    h2o_iovec_t value = d->req.res.headers.entries[index].value;
    return h2o_strdup(&d->req.pool, value.base, value.len).base;
}

/* Ends the request as h2o does when it is done with it (answered or the
 * client gone): what the handler keeps must survive this. */
static inline void http_double_dispose(http_double_t *d)
{
    h2o_dispose_request(&d->req);
    free(d->body);
    d->body = NULL;
}

#endif
