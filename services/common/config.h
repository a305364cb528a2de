/* config.h - service configuration read from environment variables.
 *
 * Every setting has a safe lab default. A value that is present but invalid
 * stops start-up with one line naming the variable (config_fail), because a
 * service that silently falls back to a default hides a deployment mistake.
 */
#ifndef OMS_CONFIG_H
#define OMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Collects the first configuration error seen, so tests can inspect it. */
typedef struct config_errors {
    int count;
    char first[256];
} config_errors_t;

/* Returns the variable's value, or `fallback` when unset or empty. */
const char *config_string(const char *name, const char *fallback);

/* Parses a whole decimal number: an optional '-' and digits, nothing else
 * (no spaces, no '+'), within long's range. Returns 0, or -1. */
int config_parse_long(const char *text, long *out);

/* Reads an integer in [min, max]; records an error naming the variable and
 * returns `fallback` when the value is not a whole number in range. */
long config_long(config_errors_t *errors, const char *name, long fallback, long min, long max);

/* Reads a number in [min, max]; same error handling as config_long. */
double config_double(config_errors_t *errors, const char *name, double fallback, double min, double max);

/* Reads one of `choices` (NULL-terminated) and returns its index; records an
 * error and returns `fallback_index` when the value is not one of them. */
int config_choice(config_errors_t *errors, const char *name, const char *const *choices, int fallback_index);

/* Reads a string whose length lies in [min_len, max_len]. */
const char *config_string_checked(config_errors_t *errors, const char *name, const char *fallback, size_t min_len,
                                  size_t max_len);

/* Records an error for `name` with a printf-style reason (used by callers that
 * validate a value's shape themselves, e.g. URLs). */
void config_error(config_errors_t *errors, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At start-up: if any error was recorded, prints the first one to stderr as
 * a single line and exits with status 2. */
void config_exit_on_error(const config_errors_t *errors, const char *service);

#endif
