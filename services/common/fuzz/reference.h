/* reference.h - what the service targets share to read a request the way
 * the README says it must be read, independently of the handlers: body
 * members of a given type and size, UUIDs, path segments, and checks of
 * the statement parameters a handler sent to PostgreSQL.
 *
 * Header-only (static inline), on top of exchange.h and fuzz_support.h.
 */
#ifndef OMS_FUZZ_REFERENCE_H
#define OMS_FUZZ_REFERENCE_H

#include <jansson.h>
#include <string.h>

#include "exchange.h"
#include "fuzz_support.h"

/* The request body as a JSON value (duplicate keys refused), or NULL. */
static inline json_t *fuzz_body_of(const fuzz_exchange_t *ex)
{
    return ex->body != NULL && ex->body_len > 0 ? json_loadb(ex->body, ex->body_len, JSON_REJECT_DUPLICATES, NULL)
                                                : NULL;
}

/* True when every key of `object` is in `allowed` (NULL-terminated). */
static inline bool fuzz_only_keys(const json_t *object, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)object, key, value)
    {
        (void)value;
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL; i++)
            known |= strcmp(key, allowed[i]) == 0;
        if (!known)
            return false;
    }
    return true;
}

/* A string member of `min`..`max` characters without NUL; *out its text or
 * NULL when absent. `text`: a name, judged by fuzz_judge_text too. */
static inline fuzz_verdict_t fuzz_string_field(const json_t *body, const char *key, bool required, size_t min,
                                               size_t max, bool text, const char **out)
{
    const json_t *value = json_object_get(body, key);
    *out = NULL;
    if (value == NULL)
        return required ? FUZZ_INVALID : FUZZ_VALID;
    if (!json_is_string(value))
        return FUZZ_INVALID;
    const char *s = json_string_value(value);
    size_t bytes = json_string_length(value), chars = fuzz_utf8_count(s, bytes);
    if (strlen(s) != bytes || chars < min || chars > max)
        return FUZZ_INVALID;
    *out = s;
    return text ? fuzz_judge_text(s, bytes) : FUZZ_VALID;
}

/* An integer member in [min, max]; *out its decimal text or "" when absent. */
static inline fuzz_verdict_t fuzz_int_field(const json_t *body, const char *key, bool required, long long min,
                                            long long max, char out[24])
{
    const json_t *value = json_object_get(body, key);
    out[0] = '\0';
    if (value == NULL)
        return required ? FUZZ_INVALID : FUZZ_VALID;
    if (!json_is_integer(value) || json_integer_value(value) < min || json_integer_value(value) > max)
        return FUZZ_INVALID;
    snprintf(out, 24, "%lld", (long long)json_integer_value(value));
    return FUZZ_VALID;
}

/* RFC 4122's text form: 8-4-4-4-12 hex digits, either case. */
static inline bool fuzz_valid_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : fuzz_hex_value(s[i]) < 0)
            return false;
    }
    return true;
}

/* The order id peers exchange (README): 1 to 64 ASCII letters, digits,
 * '_' and '-'. */
static inline bool fuzz_valid_order_id(const char *s)
{
    size_t len = strlen(s);
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The W3C shape a service formats its own span in: 00-<32 hex>-<16 hex>-<2 hex>. */
static inline bool fuzz_is_traceparent(const char *value)
{
    if (value == NULL || strlen(value) != 55)
        return false;
    for (size_t i = 0; i < 55; i++) {
        bool dash = i == 2 || i == 35 || i == 52;
        if (dash ? value[i] != '-' : strchr("0123456789abcdef", value[i]) == NULL)
            return false;
    }
    return true;
}

static inline bool fuzz_same_param(const char *got, const char *want)
{
    return got == NULL ? want == NULL : want != NULL && strcmp(got, want) == 0;
}

/* Aborts unless `call` had exactly the parameters `want` (NULL: SQL NULL). */
static inline void fuzz_check_params(const fuzz_backend_call_t *call, const char *const *want, size_t count)
{
    FUZZ_CHECK(call->arg_count == count, "%s with %zu parameters", call->name, call->arg_count);
    for (size_t i = 0; i < count; i++)
        FUZZ_CHECK(fuzz_same_param(call->args[i], want[i]), "%s parameter %zu is '%s', the body says '%s'", call->name,
                   i + 1, call->args[i] != NULL ? fuzz_show(call->args[i], call->arg_lens[i]) : "NULL",
                   want[i] != NULL ? fuzz_show(want[i], strlen(want[i])) : "NULL");
}

/* The one path segment between `prefix` and `suffix`, or NULL. */
static inline const char *fuzz_segment_after(const fuzz_exchange_t *ex, const char *prefix, const char *suffix,
                                             size_t *len)
{
    size_t prefix_len = strlen(prefix), suffix_len = strlen(suffix);
    if (ex->path_len <= prefix_len + suffix_len || memcmp(ex->path, prefix, prefix_len) != 0 ||
        memcmp(ex->path + ex->path_len - suffix_len, suffix, suffix_len) != 0)
        return NULL;
    *len = ex->path_len - prefix_len - suffix_len;
    const char *segment = ex->path + prefix_len;
    return memchr(segment, '/', *len) == NULL ? segment : NULL;
}

/* With PostgreSQL answering "down" (exchange.h): a request answered
 * without asking it was refused for what it is (a 4xx), and one that asked
 * gets the 503 of a dependency that is unavailable. */
static inline void fuzz_check_database_down_status(const fuzz_exchange_t *ex)
{
    if (ex->call_count == 0)
        FUZZ_CHECK(ex->status >= 400 && ex->status < 500, "%d without asking the database", ex->status);
    else
        FUZZ_CHECK(ex->status == 503, "%d once the database answered 'down'", ex->status);
}

#endif
