/* log.h - structured JSON logs, one object per line on stdout.
 *
 * Every line has ts (RFC 3339 UTC with milliseconds), level, service, msg,
 * trace_id and span_id (empty outside a request), then the given fields:
 *
 *     log_info(&r->trace, "reservation held",
 *              LOG_STRING("order_id", order_id), LOG_INT("items", n));
 */
#ifndef OMS_LOG_H
#define OMS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

typedef enum log_field_type { LOG_FIELD_NONE, LOG_FIELD_STRING, LOG_FIELD_INT, LOG_FIELD_DOUBLE } log_field_type_t;

typedef struct log_field {
    const char *key;
    log_field_type_t type;
    union {
        struct {
            const char *base;
            size_t len;
        } string;
        int64_t integer;
        double number;
    } value;
} log_field_t;

#define LOG_STRING(k, s)      ((log_field_t){.key = (k), .type = LOG_FIELD_STRING, .value.string = {(s), (size_t)-1}})
#define LOG_STRING_N(k, s, n) ((log_field_t){.key = (k), .type = LOG_FIELD_STRING, .value.string = {(s), (n)}})
#define LOG_INT(k, i)         ((log_field_t){.key = (k), .type = LOG_FIELD_INT, .value.integer = (int64_t)(i)})
#define LOG_DOUBLE(k, d)      ((log_field_t){.key = (k), .type = LOG_FIELD_DOUBLE, .value.number = (double)(d)})

/* Service names are short identifiers (server.c checks OTEL_SERVICE_NAME):
 * a longer one is cut, so that a line always has room for its message. */
#define LOG_SERVICE_MAX 48

/* Sets the service name written on every line (at most LOG_SERVICE_MAX
 * bytes of it) and the level floor. */
void log_init(const char *service, log_level_t floor);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *name);

/* True when a line at `level` would be written. */
int log_enabled(log_level_t level);

/* Writes one line with `count` fields. `trace` may be NULL. The line is
 * written with a single write(2) so lines from threads never interleave. */
void log_write(log_level_t level, const trace_context_t *trace, const char *msg, const log_field_t *fields,
               size_t count);

/* Formats the line into buf instead of writing it (for tests); returns its
 * length including the final newline. */
size_t log_format(char *buf, size_t size, log_level_t level, const trace_context_t *trace, const char *msg,
                  const log_field_t *fields, size_t count);

#define LOG_FIELDS_(...) ((const log_field_t[]){{.type = LOG_FIELD_NONE}, __VA_ARGS__})
#define LOG_COUNT_(...)  (sizeof(LOG_FIELDS_(__VA_ARGS__)) / sizeof(log_field_t) - 1)
#define log_at(level, trace, msg, ...)                                                                                 \
    do {                                                                                                               \
        if (log_enabled(level))                                                                                        \
            log_write((level), (trace), (msg), LOG_FIELDS_(__VA_ARGS__) + 1, LOG_COUNT_(__VA_ARGS__));                 \
    } while (0)
#define log_debug(trace, ...) log_at(LOG_DEBUG, trace, __VA_ARGS__)
#define log_info(trace, ...)  log_at(LOG_INFO, trace, __VA_ARGS__)
#define log_warn(trace, ...)  log_at(LOG_WARN, trace, __VA_ARGS__)
#define log_error(trace, ...) log_at(LOG_ERROR, trace, __VA_ARGS__)

#endif
