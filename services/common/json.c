/* json.c - field readers over jansson. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* Copies NUL-terminated `text` into `out`, cut where no character splits. */
static void copy_whole_characters(char *out, size_t size, const char *text)
{
    size_t len = utf8_prefix(text, strlen(text), size - 1);
    memcpy(out, text, len);
    out[len] = '\0';
}

int json_fail(json_field_error_t *error, const char *field, const char *fmt, ...)
{
    copy_whole_characters(error->field, sizeof(error->field), field);
    char message[sizeof(error->message) * 2];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    copy_whole_characters(error->message, sizeof(error->message), message);
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
        /* jansson quotes the text near the error and may cut it inside a
         * character: keep only its whole characters */
        parse_error.text[utf8_valid_prefix(parse_error.text, strlen(parse_error.text))] = '\0';
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
    const char *text = json_string_value(value);
    size_t bytes = json_string_length(value), chars = utf8_length(text, bytes);
    if (chars < min_len || chars > max_len)
        return json_fail(error, field, "%s must be %zu to %zu characters long", field, min_len, max_len);
    if (strlen(text) != bytes)
        return json_fail(error, field, "%s must not contain NUL characters", field);
    *out = text;
    return 0;
}

int json_read_text(const json_t *object, const char *field, bool required, size_t min_len, size_t max_len,
                   const char **out, json_field_error_t *error)
{
    if (json_read_string(object, field, required, min_len, max_len, out, error) != 0)
        return -1;
    if (*out == NULL)
        return 0;
    size_t len = strlen(*out);
    if (!utf8_printable(*out, len)) {
        *out = NULL;
        return json_fail(error, field, "%s must not contain control or invisible formatting characters", field);
    }
    if (len > 0 && strspn(*out, " ") == len) {
        *out = NULL;
        return json_fail(error, field, "%s must not be only spaces", field);
    }
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
        if (!known) {
            char quoted[65];
            copy_whole_characters(quoted, sizeof(quoted), key);
            return json_fail(error, key, "unknown field '%s'", quoted);
        }
    }
    return 0;
}
