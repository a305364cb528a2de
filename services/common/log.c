/* log.c - JSON log lines written with one write(2) each. */
#include "log.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

#define LOG_LINE_MAX 8192
/* What a truncated line holds after its message: the ids, the truncated
 * flag and the closing brace. */
#define TRUNCATED_ENVELOPE 96

static char service_json[6 * LOG_SERVICE_MAX + 3] = "\"unknown\""; /* escaped once, at log_init */
static size_t service_json_len = 9;
static log_level_t level_floor = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

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

static void put_escaped(line_t *line, const char *s, size_t n);

void log_init(const char *service, log_level_t floor)
{
    line_t line = {service_json, sizeof(service_json), 0};
    put_escaped(&line, service, utf8_prefix(service, strlen(service), LOG_SERVICE_MAX));
    service_json_len = line.len;
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

/* Writes the JSON form of the character at s (n bytes available) into
 * out (at least 6 bytes); returns how many input bytes it took. Escapes
 * what JSON requires and every control character (utf8_is_control: C1
 * controls and U+2028/U+2029 are line breaks to some readers, so escaped
 * the line stays one line everywhere), and replaces a byte that is not
 * valid UTF-8 (a raw path, a header) with U+FFFD. *out_len gets the length. */
static size_t escape_character(const char *s, size_t n, char *out, size_t *out_len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = (unsigned char)s[0];
    uint32_t code_point = c;
    size_t len = c < 0x80 ? 1 : utf8_decode(s, n, &code_point);
    if (len == 0) {
        memcpy(out, "\\ufffd", 6);
        *out_len = 6;
        return 1;
    }
    const char *short_escape = c == '"'    ? "\\\""
                               : c == '\\' ? "\\\\"
                               : c == '\n' ? "\\n"
                               : c == '\r' ? "\\r"
                               : c == '\t' ? "\\t"
                                           : NULL;
    if (short_escape != NULL) {
        memcpy(out, short_escape, 2);
        *out_len = 2;
    } else if (utf8_is_control(code_point)) {
        char esc[6] = {'\\',
                       'u',
                       hex[code_point >> 12],
                       hex[code_point >> 8 & 0xf],
                       hex[code_point >> 4 & 0xf],
                       hex[code_point & 0xf]};
        memcpy(out, esc, 6);
        *out_len = 6;
    } else {
        memcpy(out, s, len);
        *out_len = len;
    }
    return len;
}

/* Writes s as a JSON string. With `end` below the line's size, stops before
 * the first character that would not fit before `end` (the closing quote
 * included), so a cut string is still whole characters; returns false when
 * it had to. */
static bool put_escaped_until(line_t *line, const char *s, size_t n, size_t end)
{
    put(line, "\"", 1);
    bool whole = true;
    for (size_t i = 0; i < n;) {
        char piece[6];
        size_t piece_len;
        size_t used = escape_character(s + i, n - i, piece, &piece_len);
        if (line->len + piece_len + 1 > end) {
            whole = false;
            break;
        }
        put(line, piece, piece_len);
        i += used;
    }
    put(line, "\"", 1);
    return whole;
}

static void put_escaped(line_t *line, const char *s, size_t n)
{
    put_escaped_until(line, s, n, SIZE_MAX);
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
    put(&line, service_json, service_json_len);
    put_str(&line, ",\"msg\":");
    /* the fallback must fit whatever message the caller passed: as much of
     * it as leaves room for the rest of the envelope */
    put_escaped_until(&line, msg, strlen(msg),
                      truncated && line.size > TRUNCATED_ENVELOPE ? line.size - TRUNCATED_ENVELOPE : SIZE_MAX);
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
