/* fuzz_config.c - configuration values read from the environment (config.h).
 *
 * Feeds: the input (up to its first NUL, as an environment variable holds
 * it) as the value of one variable, read by config_long, config_double,
 * config_choice and config_string_checked with the bounds services use,
 * and by config_parse_long. The variable is set with putenv() on a buffer
 * this file owns: setenv() would keep a copy of every value ever set.
 *
 * Asserts:
 *   - an empty value is the fallback, without an error;
 *   - config_long and config_parse_long accept exactly -?[0-9]+ (no space,
 *     no '+') within long's range and, for config_long, within [min, max],
 *     and return its value; anything else is the fallback plus one error;
 *   - config_double accepts exactly -?digits[.digits][(e|E)[+-]digits]
 *     with a finite value in [min, max] (no spaces, '+', hex, inf or nan);
 *   - config_choice returns the index of the choice equal to the value
 *     ignoring case, or the fallback plus one error;
 *   - config_string_checked returns the value itself exactly when its length
 *     is in bounds, else the fallback plus one error;
 *   - every recorded error names the variable and is a single line (it is
 *     printed as one line at start-up), counted once.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <strings.h>

#include "config.h"
#include "fuzz_support.h"

#define NAME      "FUZZ_VALUE"
#define VALUE_MAX 8192

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char variable[sizeof(NAME "=") + VALUE_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memcpy(variable, NAME "=", sizeof(NAME "="));
    if (putenv(variable) != 0)
        abort();
    return 0;
}

static void check_errors(const config_errors_t *errors, int expected)
{
    FUZZ_CHECK(errors->count == expected, "%d errors recorded, expected %d (%s)", errors->count, expected,
               errors->first);
    if (expected == 0)
        return;
    FUZZ_CHECK(strncmp(errors->first, "invalid " NAME ": ", strlen("invalid " NAME ": ")) == 0,
               "the error does not name the variable: '%s'", fuzz_show(errors->first, strlen(errors->first)));
    FUZZ_CHECK(strpbrk(errors->first, "\r\n") == NULL, "the error is not one line: '%s'",
               fuzz_show(errors->first, strlen(errors->first)));
}

/* -?[0-9]+ within long's range, read without strtol. */
static bool reference_long(const char *text, long *out)
{
    size_t len = strlen(text);
    if (!fuzz_is_plain_integer(text, len))
        return false;
    bool negative = text[0] == '-';
    unsigned long limit = negative ? (unsigned long)LONG_MAX + 1 : (unsigned long)LONG_MAX, value = 0;
    for (const char *p = text + negative; *p != '\0'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (value > (limit - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *out = negative ? (long)(0 - value) : (long)value;
    return true;
}

static bool decimal_syntax(const char *p)
{
    if (*p == '-')
        p++;
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

static void check_long(const char *value)
{
    static const long bounds[][2] = {{1, 65535}, {-10, 10}, {LONG_MIN, LONG_MAX}, {0, 0}, {1024, 64 << 20}};
    long parsed = 0;
    bool plain = reference_long(value, &parsed);
    long out = 424242;
    int status = config_parse_long(value, &out);
    FUZZ_CHECK((status == 0) == plain, "config_parse_long %s '%s'", status == 0 ? "accepted" : "refused",
               fuzz_show(value, strlen(value)));
    if (status == 0)
        FUZZ_CHECK(out == parsed, "config_parse_long read %ld, not %ld", out, parsed);
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        config_errors_t errors = {0};
        long got = config_long(&errors, NAME, -7777, bounds[b][0], bounds[b][1]);
        bool empty = value[0] == '\0';
        bool ok = plain && parsed >= bounds[b][0] && parsed <= bounds[b][1];
        FUZZ_CHECK(got == (empty ? -7777
                           : ok  ? parsed
                                 : -7777),
                   "config_long(%ld..%ld) gave %ld for '%s'", bounds[b][0], bounds[b][1], got,
                   fuzz_show(value, strlen(value)));
        check_errors(&errors, empty || ok ? 0 : 1);
    }
}

static void check_double(const char *value)
{
    static const double bounds[][2] = {{0, 1}, {-1e9, 1e9}, {-HUGE_VAL, HUGE_VAL}};
    bool syntax = decimal_syntax(value);
    errno = 0;
    double parsed = syntax ? strtod(value, NULL) : NAN;
    bool number = syntax && errno == 0 && isfinite(parsed);
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        config_errors_t errors = {0};
        double got = config_double(&errors, NAME, -7777.5, bounds[b][0], bounds[b][1]);
        bool empty = value[0] == '\0';
        bool ok = number && parsed >= bounds[b][0] && parsed <= bounds[b][1];
        double expected = empty || !ok ? -7777.5 : parsed;
        FUZZ_CHECK(got == expected, "config_double(%g..%g) gave %g for '%s' (expected %g)", bounds[b][0], bounds[b][1],
                   got, fuzz_show(value, strlen(value)), expected);
        check_errors(&errors, empty || ok ? 0 : 1);
    }
}

static void check_choice(const char *value)
{
    static const char *const choices[] = {"debug", "info", "warn", "error", NULL};
    config_errors_t errors = {0};
    int got = config_choice(&errors, NAME, choices, 1);
    int expected = 1;
    bool found = false;
    for (int i = 0; choices[i] != NULL && !found; i++)
        if (strcasecmp(value, choices[i]) == 0)
            expected = i, found = true;
    FUZZ_CHECK(got == expected, "config_choice gave %d for '%s'", got, fuzz_show(value, strlen(value)));
    check_errors(&errors, found || value[0] == '\0' ? 0 : 1);
}

static void check_string(const char *value)
{
    static const size_t bounds[][2] = {{1, 64}, {0, 0}, {16, 4096}, {14, 14}};
    static const char fallback[] = "fallback-value"; /* 14 bytes */
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        config_errors_t errors = {0};
        const char *got = config_string_checked(&errors, NAME, fallback, bounds[b][0], bounds[b][1]);
        const char *seen = value[0] != '\0' ? getenv(NAME) : fallback;
        size_t len = strlen(seen);
        bool ok = len >= bounds[b][0] && len <= bounds[b][1];
        FUZZ_CHECK(got == (ok ? seen : fallback), "config_string_checked(%zu..%zu) for a value of %zu bytes",
                   bounds[b][0], bounds[b][1], len);
        check_errors(&errors, ok ? 0 : 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= VALUE_MAX)
        return 0;
    char *value = fuzz_cstring((const char *)data, size);
    memcpy(variable + sizeof(NAME "=") - 1, value, strlen(value) + 1);
    check_long(value);
    check_double(value);
    check_choice(value);
    check_string(value);
    free(value);
    return 0;
}
