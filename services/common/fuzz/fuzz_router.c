/* fuzz_router.c - route matching and the path/query parameter readers.
 *
 * Feeds: an HTTP/1-style request (exchange.h: "METHOD TARGET" line,
 * header lines, empty line, body) against a route table with the templates
 * of the inventory and user services, the health and admin endpoints, and
 * one template with ROUTER_MAX_PARAMS parameters.
 *
 * Asserts, on router_match() called directly with the method and the
 * target's path (the bytes before '?', whatever they are):
 *   - the result, the matched route and the Allow list equal those of an
 *     independent reference matcher (first route in table order; a path
 *     matches only when it starts with '/' and has as many '/'-separated
 *     segments as the template, literals equal, parameters non-empty);
 *   - every parameter value is non-empty, lies inside the path, holds no
 *     '/', carries the template's name, is what router_param() returns, and
 *     substituting the values into the template gives back the path.
 * And, on the same request through http_dispatch() (the path normalised by
 * h2o as a server would), in the handler:
 *   - http_path_param() is exactly the segment of h2o's normalised path
 *     (decoded once, by h2o: "%2541" is "%41", not "A") and no path
 *     parameter a handler sees contains a control byte (0x00-0x1f, 0x7f);
 *   - http_query_param() is the first pair's value, percent-decoded once
 *     with '+' as space, never with a control byte;
 *   - http_query_long() accepts exactly -?[0-9]+ within its bounds (no
 *     sign '+', no spaces), and otherwise answers 400;
 *   - r->client is "" or a valid IPv4/IPv6 address;
 * plus the response promises exchange.h checks for every request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "exchange.h"
#include "fuzz_support.h"
#include "http.h"
#include "router.h"

/* Longer inputs are skipped: they only repeat what shorter ones reach. */
#define INPUT_MAX 8192

static void check_handler(http_request_t *r);

static const router_route_t routes[] = {
    {"GET", "/api/inventory/products", check_handler},
    {"POST", "/api/inventory/products", check_handler},
    {"GET", "/api/inventory/products/{sku}", check_handler},
    {"PATCH", "/api/inventory/products/{sku}", check_handler},
    {"POST", "/api/inventory/reservations", check_handler},
    {"POST", "/api/inventory/reservations/{id}/commit", check_handler},
    {"POST", "/api/inventory/reservations/{id}/release", check_handler},
    {"POST", "/api/users/register", check_handler},
    {"POST", "/api/users/login", check_handler},
    {"POST", "/api/users/logout", check_handler},
    {"GET", "/api/users/me", check_handler},
    {"GET", "/api/users", check_handler},
    {"PATCH", "/api/users/{id}", check_handler},
    {"GET", "/health/live", check_handler},
    {"GET", "/health/ready", check_handler},
    {"GET", "/metrics", check_handler},
    {"GET", "/admin/faults", check_handler},
    {"PUT", "/admin/faults", check_handler},
    {"DELETE", "/fuzz/{a}/and/{b}/{c}/{d}", check_handler},
};
#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

static router_t *router;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    router = fuzz_exchange_router(routes, ROUTE_COUNT);
    fuzz_exchange_setup("fuzz", NULL, 0);
    return 0;
}

/* --- the reference matcher ----------------------------------------------------- */

typedef struct span {
    const char *text;
    size_t len;
} span_t;

/* Splits an absolute path into segments; returns -1 when it does not start
 * with '/' or has more than `max`. "/" has no segments. */
static int segments_of(const char *path, size_t len, span_t *out, size_t max)
{
    if (len == 0 || path[0] != '/')
        return -1;
    if (len == 1)
        return 0;
    size_t count = 0, start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i == len || path[i] == '/') {
            if (count == max)
                return -1;
            out[count++] = (span_t){path + start, i - start};
            start = i + 1;
        }
    }
    return (int)count;
}

static bool is_param(span_t segment)
{
    return segment.len >= 3 && segment.text[0] == '{' && segment.text[segment.len - 1] == '}';
}

static bool reference_path_matches(const char *template, const char *path, size_t len)
{
    span_t want[ROUTER_MAX_SEGMENTS], got[ROUTER_MAX_SEGMENTS + 1];
    int want_count = segments_of(template, strlen(template), want, ROUTER_MAX_SEGMENTS);
    int got_count = segments_of(path, len, got, ROUTER_MAX_SEGMENTS + 1);
    if (got_count < 0 || want_count != got_count)
        return false;
    for (int i = 0; i < want_count; i++) {
        if (is_param(want[i]) ? got[i].len == 0
                              : want[i].len != got[i].len || memcmp(want[i].text, got[i].text, got[i].len) != 0)
            return false;
    }
    return true;
}

static bool method_equals(const char *route_method, const char *method, size_t len)
{
    return strlen(route_method) == len && memcmp(route_method, method, len) == 0;
}

/* --- router_match on its own ---------------------------------------------------- */

static void check_router_match(const char *method, size_t method_len, const char *path, size_t path_len)
{
    router_match_t match;
    char allow[256];
    router_result_t result = router_match(router, method, method_len, path, path_len, &match, allow, sizeof(allow));

    const router_route_t *expected = NULL;
    char expected_allow[256] = "";
    size_t allow_len = 0;
    bool is_head = method_equals("HEAD", method, method_len);
    for (size_t i = 0; i < ROUTE_COUNT && expected == NULL; i++) {
        if (!reference_path_matches(routes[i].template, path, path_len))
            continue;
        if (method_equals(routes[i].method, method, method_len) || (is_head && strcmp(routes[i].method, "GET") == 0))
            expected = &routes[i];
        else
            allow_len += (size_t)snprintf(expected_allow + allow_len, sizeof(expected_allow) - allow_len, "%s%s",
                                          allow_len > 0 ? ", " : "", routes[i].method);
    }
    router_result_t expected_result = expected != NULL ? ROUTER_FOUND
                                      : allow_len > 0  ? ROUTER_METHOD_NOT_ALLOWED
                                                       : ROUTER_NOT_FOUND;
    FUZZ_CHECK(result == expected_result, "router_match gives %d, the reference %d for path '%s'", result,
               expected_result, fuzz_show(path, path_len));
    if (result == ROUTER_METHOD_NOT_ALLOWED)
        FUZZ_CHECK(strcmp(allow, expected_allow) == 0, "Allow '%s', expected '%s'", allow, expected_allow);
    if (result != ROUTER_FOUND)
        return;
    FUZZ_CHECK(match.route == expected, "matched %s %s, expected %s %s", match.route->method, match.route->template,
               expected->method, expected->template);

    /* the parameters: inside the path, named as in the template, and the
     * template with them substituted is the path again */
    char rebuilt[INPUT_MAX + 16];
    size_t rebuilt_len = 0, param = 0;
    span_t segments[ROUTER_MAX_SEGMENTS];
    int count = segments_of(expected->template, strlen(expected->template), segments, ROUTER_MAX_SEGMENTS);
    for (int i = 0; i < count; i++) {
        span_t piece = segments[i];
        if (is_param(segments[i])) {
            FUZZ_CHECK(param < match.param_count, "fewer parameters (%zu) than the template has", match.param_count);
            const router_param_t *p = &match.params[param++];
            FUZZ_CHECK(p->name_len == piece.len - 2 && memcmp(p->name, piece.text + 1, p->name_len) == 0,
                       "parameter %zu is named '%.*s'", param, (int)p->name_len, p->name);
            FUZZ_CHECK(p->value_len > 0 && p->value >= path && p->value + p->value_len <= path + path_len,
                       "parameter '%.*s' does not lie inside the path", (int)p->name_len, p->name);
            FUZZ_CHECK(memchr(p->value, '/', p->value_len) == NULL, "parameter '%.*s' holds a '/'", (int)p->name_len,
                       p->name);
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)p->name_len, p->name);
            FUZZ_CHECK(router_param(&match, name) == p, "router_param(\"%s\") is not the parameter", name);
            piece = (span_t){p->value, p->value_len};
        }
        FUZZ_CHECK(rebuilt_len + 1 + piece.len < sizeof(rebuilt), "path too long to rebuild");
        rebuilt[rebuilt_len++] = '/';
        memcpy(rebuilt + rebuilt_len, piece.text, piece.len);
        rebuilt_len += piece.len;
    }
    if (count == 0)
        rebuilt[rebuilt_len++] = '/';
    FUZZ_CHECK(param == match.param_count, "%zu parameters for a template with %zu", match.param_count, param);
    FUZZ_CHECK(rebuilt_len == path_len && memcmp(rebuilt, path, path_len) == 0,
               "the template with its parameters is '%s', not the path", fuzz_show(rebuilt, rebuilt_len));
}

/* --- what a handler sees --------------------------------------------------------- */

/* The reference value of query parameter `name`: the first pair whose
 * decoded key is `name`. Returns false when there is none. */
static bool reference_query_value(const h2o_req_t *req, const char *name, char *out, size_t *out_len)
{
    if (req->query_at == SIZE_MAX)
        return false;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    char key[INPUT_MAX];
    while (p < end) {
        const char *pair_end = memchr(p, '&', (size_t)(end - p));
        if (pair_end == NULL)
            pair_end = end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        const char *key_end = eq != NULL ? eq : pair_end;
        size_t key_len = fuzz_percent_decode(p, (size_t)(key_end - p), true, key);
        if (key_len == strlen(name) && memcmp(key, name, key_len) == 0) {
            *out_len = eq != NULL ? fuzz_percent_decode(eq + 1, (size_t)(pair_end - eq - 1), true, out) : 0;
            return true;
        }
        p = pair_end + 1;
    }
    return false;
}

static void check_query_param(http_request_t *r, const char *name)
{
    static char expected[INPUT_MAX];
    size_t expected_len = 0;
    bool present = reference_query_value(r->req, name, expected, &expected_len);
    const char *value = http_query_param(r, name);
    FUZZ_CHECK((value != NULL) == present, "query parameter '%s' %s", fuzz_show(name, strlen(name)),
               present ? "missed" : "invented");
    if (value == NULL)
        return;
    size_t len = strlen(value);
    FUZZ_CHECK(!fuzz_has_control(value, len), "query parameter '%s' reaches the handler with a control byte: '%s'",
               fuzz_show(name, strlen(name)), fuzz_show(value, len));
    FUZZ_CHECK(len == expected_len && memcmp(value, expected, len) == 0, "query parameter '%s' is '%s'",
               fuzz_show(name, strlen(name)), fuzz_show(value, len));
}

/* Whether a plain integer text lies in [min, max]; false for any other text. */
static bool plain_integer_in(const char *text, size_t len, long min, long max, long *value)
{
    if (!fuzz_is_plain_integer(text, len))
        return false;
    /* leading zeros change nothing ("0002" is 2): drop them before the
     * length check */
    bool negative = text[0] == '-';
    size_t start = negative ? 1 : 0;
    while (start + 1 < len && text[start] == '0')
        start++;
    if (len - start > 20)
        return false;
    char copy[24];
    size_t n = 0;
    if (negative)
        copy[n++] = '-';
    memcpy(copy + n, text + start, len - start);
    copy[n + len - start] = '\0';
    errno = 0;
    *value = strtol(copy, NULL, 10);
    return errno == 0 && *value >= min && *value <= max;
}

static void check_handler(http_request_t *r)
{
    FUZZ_CHECK(strcmp(r->route, r->match.route->template) == 0, "route label %s", r->route);
    size_t client_len = strnlen(r->client, sizeof(r->client));
    unsigned char address[16];
    FUZZ_CHECK(client_len == 0 || (client_len < sizeof(r->client) && (inet_pton(AF_INET, r->client, address) == 1 ||
                                                                      inet_pton(AF_INET6, r->client, address) == 1)),
               "r->client is '%s'", fuzz_show(r->client, client_len));

    /* path parameters: h2o's normalised segment, decoded once, no control byte */
    for (size_t i = 0; i < r->match.param_count; i++) {
        const router_param_t *p = &r->match.params[i];
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)p->name_len, p->name);
        FUZZ_CHECK(!fuzz_has_control(p->value, p->value_len),
                   "path parameter '%s' reaches the handler with a control byte: '%s'", name,
                   fuzz_show(p->value, p->value_len));
        const char *value = http_path_param(r, name);
        FUZZ_CHECK(value != NULL && strlen(value) == p->value_len && memcmp(value, p->value, p->value_len) == 0,
                   "http_path_param(\"%s\") is '%s' for the segment '%s'", name,
                   value != NULL ? fuzz_show(value, strlen(value)) : "(null)", fuzz_show(p->value, p->value_len));
    }
    FUZZ_CHECK(http_path_param(r, "no-such-parameter") == NULL, "a parameter the template does not have");

    /* query parameters: the names the services read, and every key sent */
    static const char *const names[] = {"limit", "offset", "category", "role", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        check_query_param(r, names[i]);
    if (r->req->query_at != SIZE_MAX) {
        const char *p = r->req->path.base + r->req->query_at + 1, *end = r->req->path.base + r->req->path.len;
        for (int pairs = 0; p < end && pairs < 8; pairs++) {
            const char *pair_end = memchr(p, '&', (size_t)(end - p));
            if (pair_end == NULL)
                pair_end = end;
            const char *eq = memchr(p, '=', (size_t)(pair_end - p));
            char key[INPUT_MAX];
            size_t key_len = fuzz_percent_decode(p, (size_t)((eq != NULL ? eq : pair_end) - p), true, key);
            key[key_len] = '\0';
            if (strlen(key) == key_len)
                check_query_param(r, key);
            p = pair_end + 1;
        }
    }

    /* http_query_long last: on a bad value it answers 400 itself */
    char text[INPUT_MAX];
    size_t text_len = 0;
    bool present = reference_query_value(r->req, "limit", text, &text_len);
    long expected = 20, value = -1;
    bool acceptable = !present || plain_integer_in(text, text_len, 1, 100, &expected);
    bool accepted = http_query_long(r, "limit", 20, 1, 100, &value);
    FUZZ_CHECK(accepted == acceptable, "http_query_long %s limit='%s' (only -?[0-9]+ in 1..100 is a limit)",
               accepted ? "accepted" : "refused", fuzz_show(text, text_len));
    if (accepted) {
        FUZZ_CHECK(value == expected, "limit read as %ld, expected %ld", value, expected);
        http_respond_json(r, 200, json_pack("{s:b}", "ok", 1));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_MAX)
        return 0;
    const char *text = (const char *)data;
    const char *line_end = memchr(text, '\n', size);
    size_t line_len = line_end != NULL ? (size_t)(line_end - text) : size;
    const char *space = memchr(text, ' ', line_len);
    if (space != NULL) {
        const char *path = space + 1;
        size_t rest = line_len - (size_t)(path - text);
        const char *cut = memchr(path, '?', rest);
        const char *path_end = memchr(path, ' ', rest);
        size_t path_len = (size_t)((cut != NULL && (path_end == NULL || cut < path_end) ? cut
                                    : path_end != NULL                                  ? path_end
                                                                                        : path + rest) -
                                   path);
        check_router_match(text, (size_t)(space - text), path, path_len);
    }

    fuzz_exchange_t ex;
    if (!fuzz_exchange_parse(text, size, &ex))
        return 0;
    fuzz_exchange_run(router, &ex);
    fuzz_exchange_clear(&ex);
    return 0;
}
