/* log.c - JSON log lines written with one write(2) each. */
#include "log.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

#define LOG_LINE_MAX 8192

static const char *service_name = "unknown";
static log_level_t level_floor = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, log_level_t floor)
{
    service_name = service;
    level_floor = floor;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_WARN;
    return -1;
}

int log_enabled(log_level_t level)
{
    return level >= level_floor;
}

/* A bounded writer: output past the end is dropped, never overflowed. */
typedef struct line {
    char *buf;
    size_t size, len;
} line_t;

static void put(line_t *line, const char *s, size_t n)
{
    if (line->len + n > line->size)
        n = line->size > line->len ? line->size - line->len : 0;
    memcpy(line->buf + line->len, s, n);
    line->len += n;
}

static void put_str(line_t *line, const char *s)
{
    put(line, s, strlen(s));
}

/* Writes s as a JSON string: escapes what JSON requires and every control
 * character (utf8_is_control), and replaces bytes that are not valid UTF-8
 * (a raw path, a header) with U+FFFD. */
static void put_escaped(line_t *line, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(line, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            uint32_t code_point;
            size_t len = utf8_decode(s + i, n - i, &code_point);
            if (len == 0) {
                put(line, "\\ufffd", 6);
            } else if (utf8_is_control(code_point)) {
                /* C1 controls and U+2028/U+2029 are line breaks to some
                 * readers: escaped, the line stays one line everywhere */
                char esc[6] = {'\\', 'u', hex[code_point >> 12], hex[code_point >> 8 & 0xf], hex[code_point >> 4 & 0xf],
                               hex[code_point & 0xf]};
                put(line, esc, 6);
                i += len - 1;
            } else {
                put(line, s + i, len);
                i += len - 1;
            }
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(line, esc, 2);
        } else if (c == '\n') {
            put(line, "\\n", 2);
        } else if (c == '\r') {
            put(line, "\\r", 2);
        } else if (c == '\t') {
            put(line, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            put(line, esc, 6);
        } else {
            put(line, (const char *)&c, 1);
        }
    }
    put(line, "\"", 1);
}

static size_t format_line(char *buf, size_t size, log_level_t level, const trace_context_t *trace, const char *msg,
                          const log_field_t *fields, size_t count, bool truncated);

static void put_key(line_t *line, const char *key)
{
    put(line, ",", 1);
    put_escaped(line, key, strlen(key));
    put(line, ":", 1);
}

size_t log_format(char *buf, size_t size, log_level_t level, const trace_context_t *trace, const char *msg,
                  const log_field_t *fields, size_t count)
{
    size_t len = format_line(buf, size, level, trace, msg, fields, count, false);
    if (len == 0) /* did not fit: keep the envelope and say so */
        len = format_line(buf, size, level, trace, msg, NULL, 0, true);
    return len;
}

/* Returns the line's length, or 0 when it did not fit in size bytes. */
static size_t format_line(char *buf, size_t size, log_level_t level, const trace_context_t *trace, const char *msg,
                          const log_field_t *fields, size_t count, bool truncated)
{
    line_t line = {buf, size - 1, 0}; /* keep room for the newline */
    struct timespec now;
    struct tm tm;
    char ts[40];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    put_str(&line, "{\"ts\":\"");
    put_str(&line, ts);
    put_str(&line, "\",\"level\":\"");
    put_str(&line, level_names[level]);
    put_str(&line, "\",\"service\":");
    put_escaped(&line, service_name, strlen(service_name));
    put_str(&line, ",\"msg\":");
    put_escaped(&line, msg, strlen(msg));
    put_str(&line, ",\"trace_id\":\"");
    put_str(&line, trace != NULL ? trace->trace_id : "");
    put_str(&line, "\",\"span_id\":\"");
    put_str(&line, trace != NULL ? trace->span_id : "");
    put_str(&line, "\"");
    for (size_t i = 0; i < count; i++) {
        const log_field_t *f = &fields[i];
        char number[40];
        put_key(&line, f->key);
        switch (f->type) {
        case LOG_FIELD_STRING:
            if (f->value.string.base == NULL) {
                put_str(&line, "null");
            } else {
                size_t len = f->value.string.len == (size_t)-1 ? strlen(f->value.string.base) : f->value.string.len;
                put_escaped(&line, f->value.string.base, len);
            }
            break;
        case LOG_FIELD_INT:
            snprintf(number, sizeof(number), "%lld", (long long)f->value.integer);
            put_str(&line, number);
            break;
        case LOG_FIELD_DOUBLE:
            if (isfinite(f->value.number)) {
                snprintf(number, sizeof(number), "%.6g", f->value.number);
                put_str(&line, number);
            } else {
                put_str(&line, "null");
            }
            break;
        case LOG_FIELD_NONE: put_str(&line, "null"); break;
        }
    }
    if (truncated)
        put_str(&line, ",\"truncated\":true");
    put(&line, "}", 1);
    if (line.len == line.size && !truncated)
        return 0;
    buf[line.len++] = '\n';
    return line.len;
}

void log_write(log_level_t level, const trace_context_t *trace, const char *msg, const log_field_t *fields,
               size_t count)
{
    char buf[LOG_LINE_MAX];
    size_t len = log_format(buf, sizeof(buf), level, trace, msg, fields, count);
    ssize_t written = write(STDOUT_FILENO, buf, len);
    (void)written; /* nowhere to report a failed log write */
}
