/* request_guard.h - the first request head of a connection, checked before
 * h2o takes the connection, so that a malformed one gets DESIGN's JSON 400.
 *
 * h2o 2.2.5 answers a request head it cannot parse with a fixed text/plain
 * "Bad Request" written straight to the socket, past every filter. The
 * guard reads a new HTTP/1 connection's first head with the same parser
 * (picohttpparser, inside libh2o), answers a malformed or oversized one
 * itself with a JSON error and closes (after a FIN, reading and dropping
 * what the client still sends for a moment, so that the answer is not lost
 * to a reset), and hands every well-formed
 * connection (and HTTP/2 with prior knowledge) to h2o with the bytes read
 * so far. Later requests on a kept-alive connection are h2o's alone: a
 * client that sends a broken head after a good one still gets h2o's text.
 */
#ifndef OMS_REQUEST_GUARD_H
#define OMS_REQUEST_GUARD_H

#include <stdint.h>

#include "loop_timer.h"

/* Takes a freshly accepted socket: once its first request head has arrived
 * whole and well-formed, calls h2o_accept(ctx, sock); otherwise answers 400
 * (or closes a connection that sent nothing within `timeout_ms`). `ctx`
 * must outlive the connection. */
void request_guard_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, uint64_t timeout_ms);

#endif
