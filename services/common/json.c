/* json.c - field readers over jansson. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int json_fail(json_field_error_t *error, const char *field, const char *fmt, ...)
{
    snprintf(error->field, sizeof(error->field), "%s", field);
    va_list args;
    va_start(args, fmt);
    vsnprintf(error->message, sizeof(error->message), fmt, args);
    va_end(args);
    return -1;
}

json_t *json_parse_object(const char *text, size_t len, json_field_error_t *error)
{
    if (text == NULL || len == 0) {
        json_fail(error, "", "request body is empty; a JSON object is required");
        return NULL;
    }
    json_error_t parse_error;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &parse_error);
    if (root == NULL) {
        json_fail(error, "", "malformed JSON at line %d, column %d: %s", parse_error.line, parse_error.column,
                  parse_error.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        json_fail(error, "", "request body must be a JSON object");
        return NULL;
    }
    return root;
}

static const char *type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

int json_read_string(const json_t *object, const char *field, bool required, size_t min_len, size_t max_len,
                     const char **out, json_field_error_t *error)
{
    const json_t *value = json_object_get(object, field);
    *out = NULL;
    if (value == NULL)
        return required ? json_fail(error, field, "%s is required", field) : 0;
    if (!json_is_string(value))
        return json_fail(error, field, "%s must be a string, not %s", field, type_name(value));
    size_t len = json_string_length(value);
    if (len < min_len || len > max_len)
        return json_fail(error, field, "%s must be %zu to %zu characters long", field, min_len, max_len);
    if (strlen(json_string_value(value)) != len)
        return json_fail(error, field, "%s must not contain NUL characters", field);
    *out = json_string_value(value);
    return 0;
}

int json_read_int(const json_t *object, const char *field, bool required, long long min, long long max, long long *out,
                  bool *present, json_field_error_t *error)
{
    const json_t *value = json_object_get(object, field);
    if (present != NULL)
        *present = value != NULL;
    if (value == NULL)
        return required ? json_fail(error, field, "%s is required", field) : 0;
    if (!json_is_integer(value))
        return json_fail(error, field, "%s must be an integer, not %s", field, type_name(value));
    long long n = json_integer_value(value);
    if (n < min || n > max)
        return json_fail(error, field, "%s must be between %lld and %lld", field, min, max);
    *out = n;
    return 0;
}

int json_read_array(const json_t *object, const char *field, bool required, size_t min_items, size_t max_items,
                    json_t **out, json_field_error_t *error)
{
    json_t *value = json_object_get(object, field);
    *out = NULL;
    if (value == NULL)
        return required ? json_fail(error, field, "%s is required", field) : 0;
    if (!json_is_array(value))
        return json_fail(error, field, "%s must be an array, not %s", field, type_name(value));
    size_t n = json_array_size(value);
    if (n < min_items || n > max_items)
        return json_fail(error, field, "%s must have %zu to %zu items", field, min_items, max_items);
    *out = value;
    return 0;
}

int json_reject_unknown_fields(const json_t *object, const char *const *allowed, json_field_error_t *error)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)object, key, value)
    {
        (void)value;
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return json_fail(error, key, "unknown field '%.64s'", key);
    }
    return 0;
}
