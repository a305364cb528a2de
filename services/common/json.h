/* json.h - reading and validating JSON request bodies with jansson.
 *
 * Each reader checks one field of an object and, on failure, fills a
 * json_field_error_t naming the field and what was wrong, so the handler
 * answers 400 with a message a client can act on. Integers are exact
 * (jansson keeps them as long long); a float where an integer is expected is
 * an error, never silently truncated.
 */
#ifndef OMS_JSON_H
#define OMS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct json_field_error {
    char field[64];
    char message[192];
} json_field_error_t;

/* Parses `len` bytes as a JSON object (duplicate keys rejected, no trailing
 * garbage). Returns a new reference or NULL with the error filled in. */
json_t *json_parse_object(const char *text, size_t len, json_field_error_t *error);

/* Reads a string field. Absent and not `required`: *out = NULL, returns 0.
 * Returns -1 when present but not a string, when it holds a NUL, or when
 * its length in characters (code points) is outside [min_len, max_len]. */
int json_read_string(const json_t *object, const char *field, bool required, size_t min_len, size_t max_len,
                     const char **out, json_field_error_t *error);

/* Like json_read_string, for text a person typed (a name): also refuses
 * control and invisible formatting characters (utf8_is_control) and text
 * that is only spaces. */
int json_read_text(const json_t *object, const char *field, bool required, size_t min_len, size_t max_len,
                   const char **out, json_field_error_t *error);

/* Reads an integer field in [min, max]. Absent and not `required`: returns 0
 * with *present false. */
int json_read_int(const json_t *object, const char *field, bool required, long long min, long long max, long long *out,
                  bool *present, json_field_error_t *error);

/* Reads a whole number of cents, given as an integer. */
#define json_read_cents(o, f, req, out, present, err) json_read_int(o, f, req, 0, 100000000000LL, out, present, err)

/* Reads an array field with between min_items and max_items elements. */
int json_read_array(const json_t *object, const char *field, bool required, size_t min_items, size_t max_items,
                    json_t **out, json_field_error_t *error);

/* Fails with "unknown field" when `object` has a key not in `allowed`
 * (NULL-terminated); catches typos such as "quantity" for "qty". */
int json_reject_unknown_fields(const json_t *object, const char *const *allowed, json_field_error_t *error);

/* Fills an error (printf-style message) for a field; returns -1. */
int json_fail(json_field_error_t *error, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
