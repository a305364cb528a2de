/* router.h - method + path-template routing.
 *
 * Templates are absolute paths whose segments are literals or `{name}`
 * parameters, e.g. "/api/inventory/products/{sku}". A parameter matches one
 * non-empty segment. The matched template (not the raw path) is what metrics
 * and logs use as `route`, which keeps their cardinality bounded.
 */
#ifndef OMS_ROUTER_H
#define OMS_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS   4
#define ROUTER_MAX_SEGMENTS 12

struct http_request;
typedef void (*http_handler_fn)(struct http_request *r);

typedef struct router_route {
    const char *method;   /* "GET", "POST", ... */
    const char *template; /* "/api/inventory/products/{sku}" */
    http_handler_fn handler;
} router_route_t;

typedef struct router_param {
    const char *name;
    size_t name_len;
    const char *value; /* points into the matched path; not NUL-terminated */
    size_t value_len;
} router_param_t;

typedef struct router_match {
    const router_route_t *route;
    size_t param_count;
    router_param_t params[ROUTER_MAX_PARAMS];
} router_match_t;

typedef enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED } router_result_t;

typedef struct router router_t;

/* Builds a router over `routes` (which must outlive it). Returns NULL and
 * writes the reason to `error` when a template is malformed (not starting
 * with '/', an empty or unclosed parameter, too many segments or params). */
router_t *router_create(const router_route_t *routes, size_t count, char *error, size_t error_size);

void router_free(router_t *router);

/* Matches a request. `path` must exclude the query string. On
 * ROUTER_METHOD_NOT_ALLOWED, `allow` receives the comma-separated methods the
 * path accepts (e.g. "GET, PATCH"). HEAD is answered by GET routes. */
router_result_t router_match(const router_t *router, const char *method, size_t method_len, const char *path,
                             size_t path_len, router_match_t *match, char *allow, size_t allow_size);

/* Returns the value of parameter `name` (NUL-terminated name) or NULL. */
const router_param_t *router_param(const router_match_t *match, const char *name);

#endif
