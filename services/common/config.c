/* config.c - environment variables with defaults and validation. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *config_string(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : fallback;
}

void config_error(config_errors_t *errors, const char *name, const char *fmt, ...)
{
    if (errors->count++ > 0)
        return;
    int used = snprintf(errors->first, sizeof(errors->first), "invalid %s: ", name);
    if (used < 0 || (size_t)used >= sizeof(errors->first))
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(errors->first + used, sizeof(errors->first) - (size_t)used, fmt, args);
    va_end(args);
    /* the value quoted may hold anything: the error stays one line */
    for (char *p = errors->first; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

int config_parse_long(const char *text, long *out)
{
    const char *digits = text[0] == '-' ? text + 1 : text;
    if (digits[0] < '0' || digits[0] > '9' || strspn(digits, "0123456789") != strlen(digits))
        return -1; /* strtol alone would take " 8", "+8" and "8 " */
    errno = 0;
    long value = strtol(text, NULL, 10);
    if (errno != 0)
        return -1;
    *out = value;
    return 0;
}

/* True when `text` is a decimal number: -?digits[.digits][(e|E)[+-]digits],
 * the only form strtod is allowed to see (it would also take spaces, '+',
 * hexadecimal, "inf" and "nan"). */
static bool is_decimal_number(const char *text)
{
    const char *p = text[0] == '-' ? text + 1 : text;
    size_t n = strspn(p, "0123456789");
    if (n == 0)
        return false;
    p += n;
    if (*p == '.') {
        n = strspn(++p, "0123456789");
        if (n == 0)
            return false;
        p += n;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        n = strspn(p, "0123456789");
        if (n == 0)
            return false;
        p += n;
    }
    return *p == '\0';
}

long config_long(config_errors_t *errors, const char *name, long fallback, long min, long max)
{
    const char *text = config_string(name, NULL);
    if (text == NULL)
        return fallback;
    long value;
    if (config_parse_long(text, &value) != 0) {
        config_error(errors, name, "'%s' is not a whole number", text);
        return fallback;
    }
    if (value < min || value > max) {
        config_error(errors, name, "%ld is outside %ld..%ld", value, min, max);
        return fallback;
    }
    return value;
}

double config_double(config_errors_t *errors, const char *name, double fallback, double min, double max)
{
    const char *text = config_string(name, NULL);
    if (text == NULL)
        return fallback;
    errno = 0;
    double value = is_decimal_number(text) ? strtod(text, NULL) : NAN;
    if (errno != 0 || !isfinite(value)) {
        config_error(errors, name, "'%s' is not a number", text);
        return fallback;
    }
    if (value < min || value > max) {
        config_error(errors, name, "%g is outside %g..%g", value, min, max);
        return fallback;
    }
    return value;
}

int config_choice(config_errors_t *errors, const char *name, const char *const *choices, int fallback_index)
{
    const char *text = config_string(name, NULL);
    if (text == NULL)
        return fallback_index;
    for (int i = 0; choices[i] != NULL; i++)
        if (strcasecmp(text, choices[i]) == 0)
            return i;
    config_error(errors, name, "'%s' is not one of the accepted values", text);
    return fallback_index;
}

const char *config_string_checked(config_errors_t *errors, const char *name, const char *fallback, size_t min_len,
                                  size_t max_len)
{
    const char *value = config_string(name, fallback);
    size_t len = value != NULL ? strlen(value) : 0;
    if (len < min_len || len > max_len) {
        config_error(errors, name, "length %zu is outside %zu..%zu", len, min_len, max_len);
        return fallback;
    }
    return value;
}

void config_exit_on_error(const config_errors_t *errors, const char *service)
{
    if (errors->count == 0)
        return;
    fprintf(stderr, "%s: configuration error: %s\n", service, errors->first);
    exit(2);
}
