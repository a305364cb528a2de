/* router.c - templates are split into segments once; matching walks them. */
#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct segment {
    const char *text; /* literal text, or the parameter name */
    size_t len;
    bool is_param;
} segment_t;

typedef struct compiled_route {
    const router_route_t *route;
    size_t segment_count;
    segment_t segments[ROUTER_MAX_SEGMENTS];
} compiled_route_t;

struct router {
    size_t count;
    compiled_route_t routes[];
};

static int compile(const router_route_t *route, compiled_route_t *out, char *error, size_t error_size)
{
    const char *t = route->template;
    out->route = route;
    out->segment_count = 0;
    if (t == NULL || t[0] != '/') {
        snprintf(error, error_size, "route template '%s' must start with '/'", t != NULL ? t : "(null)");
        return -1;
    }
    size_t params = 0;
    while (*t == '/' && t[1] != '\0') {
        const char *start = ++t;
        while (*t != '\0' && *t != '/')
            t++;
        size_t len = (size_t)(t - start);
        if (out->segment_count == ROUTER_MAX_SEGMENTS || len == 0) {
            snprintf(error, error_size, "route template '%s' has an empty or extra segment", route->template);
            return -1;
        }
        segment_t *seg = &out->segments[out->segment_count++];
        if (start[0] == '{') {
            if (len < 3 || start[len - 1] != '}' || ++params > ROUTER_MAX_PARAMS) {
                snprintf(error, error_size, "route template '%s' has a malformed parameter", route->template);
                return -1;
            }
            *seg = (segment_t){start + 1, len - 2, true};
        } else {
            *seg = (segment_t){start, len, false};
        }
    }
    return 0;
}

router_t *router_create(const router_route_t *routes, size_t count, char *error, size_t error_size)
{
    router_t *router = malloc(sizeof(*router) + count * sizeof(compiled_route_t));
    if (router == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    router->count = count;
    for (size_t i = 0; i < count; i++) {
        if (compile(&routes[i], &router->routes[i], error, error_size) != 0) {
            free(router);
            return NULL;
        }
    }
    return router;
}

void router_free(router_t *router)
{
    free(router);
}

/* Splits `path` into at most ROUTER_MAX_SEGMENTS + 1 segments; returns the
 * count ("/" has none, "/a//b" has an empty middle segment). */
static size_t split_path(const char *path, size_t len, segment_t *out)
{
    size_t count = 0;
    size_t i = 0;
    if (len == 1 && path[0] == '/')
        return 0;
    while (i < len && count <= ROUTER_MAX_SEGMENTS) {
        i++; /* skip '/' */
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        out[count++] = (segment_t){path + start, i - start, false};
    }
    return count;
}

static bool path_matches(const compiled_route_t *route, const segment_t *parts, size_t part_count,
                         router_match_t *match)
{
    if (route->segment_count != part_count)
        return false;
    size_t params = 0;
    for (size_t i = 0; i < part_count; i++) {
        const segment_t *seg = &route->segments[i];
        if (seg->is_param) {
            if (parts[i].len == 0)
                return false;
            match->params[params++] = (router_param_t){seg->text, seg->len, parts[i].text, parts[i].len};
        } else if (seg->len != parts[i].len || memcmp(seg->text, parts[i].text, seg->len) != 0) {
            return false;
        }
    }
    match->param_count = params;
    return true;
}

static bool method_is(const char *route_method, const char *method, size_t len)
{
    return strlen(route_method) == len && memcmp(route_method, method, len) == 0;
}

router_result_t router_match(const router_t *router, const char *method, size_t method_len, const char *path,
                             size_t path_len, router_match_t *match, char *allow, size_t allow_size)
{
    segment_t parts[ROUTER_MAX_SEGMENTS + 1];
    if (allow_size > 0)
        allow[0] = '\0';
    if (path_len == 0 || path[0] != '/')
        return ROUTER_NOT_FOUND; /* h2o always normalises to a leading '/' */
    size_t part_count = split_path(path, path_len, parts);
    bool is_head = method_is("HEAD", method, method_len);
    size_t allow_len = 0;

    for (size_t i = 0; i < router->count; i++) {
        const compiled_route_t *route = &router->routes[i];
        router_match_t candidate;
        if (!path_matches(route, parts, part_count, &candidate))
            continue;
        candidate.route = route->route;
        if (method_is(route->route->method, method, method_len) ||
            (is_head && strcmp(route->route->method, "GET") == 0)) {
            *match = candidate;
            return ROUTER_FOUND;
        }
        int n = snprintf(allow + allow_len, allow_size - allow_len, "%s%s", allow_len > 0 ? ", " : "",
                         route->route->method);
        if (n > 0 && allow_len + (size_t)n < allow_size)
            allow_len += (size_t)n;
    }
    return allow_len > 0 ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

const router_param_t *router_param(const router_match_t *match, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < match->param_count; i++)
        if (match->params[i].name_len == len && memcmp(match->params[i].name, name, len) == 0)
            return &match->params[i];
    return NULL;
}
