/* curl_loop.h - libcurl's multi interface driven by an h2o loop.
 *
 * curl says which sockets to watch and when to wake it; this watches them
 * on the loop (through dup()ed fds, so h2o and curl never close each
 * other's descriptor) and keeps curl's timer on loop_timer, so transfers
 * never block the loop. Finished transfers are handed to the owner's
 * `done` callback, which removes the easy handle (curl_loop_remove) and
 * may start others from there. The multi handle's connection cache is
 * the keep-alive pool of every transfer added to it: one curl_loop per
 * client per thread.
 *
 * Used by http_client.h (calls to peers) and by the notification
 * service's SMTP mailer.
 */
#ifndef OMS_CURL_LOOP_H
#define OMS_CURL_LOOP_H

#include <curl/curl.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

typedef struct curl_loop curl_loop_t;

/* A transfer has finished with `result` (CURLE_OK: see the easy handle's
 * CURLINFO_*). Runs on the loop. */
typedef void (*curl_loop_done_fn)(void *owner, CURL *easy, CURLcode result);

/* A multi handle on `loop`. NULL when libcurl refuses (out of memory). */
curl_loop_t *curl_loop_create(h2o_evloop_t *loop, curl_loop_done_fn done, void *owner);

/* The multi handle, for options (CURLMOPT_MAX_HOST_CONNECTIONS, ...). */
CURLM *curl_loop_multi(curl_loop_t *cl);

/* Starts a transfer. Returns 0, or -1 when curl refuses it (the handle is
 * then the caller's again). */
int curl_loop_add(curl_loop_t *cl, CURL *easy);

/* Takes a transfer out (finished or not); the handle is the caller's. */
void curl_loop_remove(curl_loop_t *cl, CURL *easy);

/* Closes curl's connections and frees the loop's side. Every transfer
 * must have been removed. */
void curl_loop_destroy(curl_loop_t *cl);

#endif
