/* fuzz_json.c - request-body parsing and the field readers (json.h).
 *
 * Feeds: the input as a request body to json_parse_object(), then every
 * reader on each of the object's keys (and on a key it lacks), with the
 * bounds the services use.
 *
 * Asserts:
 *   - json_parse_object() returns an object exactly when jansson reads the
 *     whole input as one object without duplicate keys; otherwise NULL with
 *     a message;
 *   - json_read_string() follows its contract to the letter: absent and
 *     optional gives 0 and NULL; it returns 0 exactly for a string without
 *     NUL whose length in characters (code points) lies in the bounds, and
 *     then hands out jansson's own text;
 *   - json_read_int() returns 0 exactly for an integer (never a fraction)
 *     in bounds, with the exact value, and sets *present;
 *   - json_read_array() returns 0 exactly for an array with a size in bounds;
 *   - json_reject_unknown_fields() fails exactly when a key is not allowed,
 *     naming that key;
 *   - every failure names the field (whole characters of it, under 64 bytes)
 *     and says why, both in valid UTF-8: they are sent to the client as
 *     JSON strings.
 */
#include <limits.h>

#include "fuzz_support.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The error a reader filled in names `field` and is valid UTF-8. */
static void check_error(const json_field_error_t *error, const char *field)
{
    size_t len = strnlen(error->field, sizeof(error->field));
    FUZZ_CHECK(len < sizeof(error->field), "error field is not NUL-terminated");
    FUZZ_CHECK(strncmp(error->field, field, len) == 0, "error names '%s' for field '%s'", error->field,
               fuzz_show(field, strlen(field)));
    FUZZ_CHECK(len == strlen(field) || len + 4 >= sizeof(error->field) - 1,
               "error field '%s' cut short of '%s' with room left", error->field, fuzz_show(field, strlen(field)));
    FUZZ_CHECK(fuzz_utf8_valid(error->field, len), "error field is not valid UTF-8: '%s'",
               fuzz_show(error->field, len));
    size_t message_len = strnlen(error->message, sizeof(error->message));
    FUZZ_CHECK(message_len > 0 && message_len < sizeof(error->message), "error message empty or unterminated");
    FUZZ_CHECK(fuzz_utf8_valid(error->message, message_len), "error message is not valid UTF-8: '%s'",
               fuzz_show(error->message, message_len));
}

static void check_read_string(const json_t *object, const char *field)
{
    static const size_t bounds[][2] = {{0, SIZE_MAX}, {1, 3}, {3, 32}, {2, 2}, {1, 100}};
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        for (int required = 0; required <= 1; required++) {
            const json_t *value = json_object_get(object, field);
            const char *out = (const char *)&out;
            json_field_error_t error;
            int status = json_read_string(object, field, required, bounds[b][0], bounds[b][1], &out, &error);
            bool ok;
            if (value == NULL) {
                ok = !required;
            } else if (!json_is_string(value)) {
                ok = false;
            } else {
                size_t bytes = json_string_length(value), chars = fuzz_utf8_count(json_string_value(value), bytes);
                ok = strlen(json_string_value(value)) == bytes && chars >= bounds[b][0] && chars <= bounds[b][1];
            }
            FUZZ_CHECK((status == 0) == ok, "json_read_string(\"%s\", %zu..%zu) returned %d for %s",
                       fuzz_show(field, strlen(field)), bounds[b][0], bounds[b][1], status,
                       value == NULL           ? "an absent field"
                       : json_is_string(value) ? fuzz_show(json_string_value(value), json_string_length(value))
                                               : "a non-string");
            if (status == 0)
                FUZZ_CHECK(out == (value != NULL ? json_string_value(value) : NULL), "*out is not the field's text");
            else
                check_error(&error, field);
        }
    }
}

static void check_read_int(const json_t *object, const char *field)
{
    static const long long bounds[][2] = {
        {0, 100000000000LL}, {1, 1000}, {-10000000, 10000000}, {LLONG_MIN, LLONG_MAX}, {5, 5}};
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        for (int required = 0; required <= 1; required++) {
            const json_t *value = json_object_get(object, field);
            long long out = 12345;
            bool present = !value;
            json_field_error_t error;
            int status = json_read_int(object, field, required, bounds[b][0], bounds[b][1], &out, &present, &error);
            bool ok = value == NULL ? !required
                                    : json_is_integer(value) && json_integer_value(value) >= bounds[b][0] &&
                                          json_integer_value(value) <= bounds[b][1];
            FUZZ_CHECK((status == 0) == ok, "json_read_int(\"%s\", %lld..%lld) returned %d",
                       fuzz_show(field, strlen(field)), bounds[b][0], bounds[b][1], status);
            FUZZ_CHECK(present == (value != NULL), "*present is %d", present);
            if (status == 0 && value != NULL)
                FUZZ_CHECK(out == json_integer_value(value), "read %lld for %lld", out, json_integer_value(value));
            if (status == 0 && value == NULL)
                FUZZ_CHECK(out == 12345, "an absent field changed *out");
            if (status != 0)
                check_error(&error, field);
        }
    }
}

static void check_read_array(const json_t *object, const char *field)
{
    static const size_t bounds[][2] = {{1, 50}, {0, 0}, {0, SIZE_MAX}};
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        const json_t *value = json_object_get(object, field);
        json_t *out = NULL;
        json_field_error_t error;
        int status = json_read_array(object, field, true, bounds[b][0], bounds[b][1], &out, &error);
        bool ok =
            json_is_array(value) && json_array_size(value) >= bounds[b][0] && json_array_size(value) <= bounds[b][1];
        FUZZ_CHECK((status == 0) == ok, "json_read_array(\"%s\") returned %d", fuzz_show(field, strlen(field)), status);
        if (status == 0)
            FUZZ_CHECK(out == value, "*out is not the field's array");
        else
            check_error(&error, field);
    }
}

/* json_reject_unknown_fields with `allowed`: fails exactly when some key of
 * `object` is not in it, and names one such key. */
static void check_unknown_fields(const json_t *object, const char *const *allowed)
{
    json_field_error_t error;
    int status = json_reject_unknown_fields(object, allowed, &error);
    const char *key;
    const json_t *value;
    bool any_unknown = false, named = false;
    json_object_foreach((json_t *)object, key, value)
    {
        (void)value;
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL; i++)
            known |= strcmp(key, allowed[i]) == 0;
        if (!known) {
            any_unknown = true;
            size_t len = status != 0 ? strlen(error.field) : 0;
            bool this_one = status != 0 && strncmp(error.field, key, len) == 0 &&
                            (len == strlen(key) || len + 4 >= sizeof(error.field) - 1);
            if (this_one && !named)
                check_error(&error, key);
            named |= this_one;
        }
    }
    FUZZ_CHECK((status != 0) == any_unknown, "json_reject_unknown_fields returned %d", status);
    FUZZ_CHECK(status == 0 || named, "the error names '%s', no unknown key",
               fuzz_show(error.field, strlen(error.field)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_field_error_t error;
    json_t *object = json_parse_object((const char *)data, size, &error);
    json_t *reference = size > 0 ? json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL) : NULL;
    FUZZ_CHECK((object != NULL) == json_is_object(reference), "json_parse_object %s a body jansson reads as %s",
               object != NULL ? "accepted" : "refused", json_is_object(reference) ? "an object" : "no object");
    json_decref(reference);
    if (object == NULL) {
        check_error(&error, "");
        return 0;
    }

    const char *keys[8];
    size_t key_count = 0;
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value)
    {
        (void)value;
        if (key_count < sizeof(keys) / sizeof(keys[0]))
            keys[key_count++] = key;
    }
    keys[key_count < 8 ? key_count++ : 7] = "field-the-body-lacks";
    for (size_t i = 0; i < key_count; i++) {
        check_read_string(object, keys[i]);
        check_read_int(object, keys[i]);
        check_read_array(object, keys[i]);
    }

    static const char *const reservation[] = {"order_id", "items", NULL};
    static const char *const item[] = {"sku", "qty", NULL};
    static const char *const nothing[] = {NULL};
    check_unknown_fields(object, reservation);
    check_unknown_fields(object, item);
    check_unknown_fields(object, nothing);
    const char *all_but_first[9];
    size_t n = 0;
    for (size_t i = 1; i + 1 < key_count; i++)
        all_but_first[n++] = keys[i];
    all_but_first[n] = NULL;
    check_unknown_fields(object, all_but_first);

    json_decref(object);
    return 0;
}
