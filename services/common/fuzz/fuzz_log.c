/* fuzz_log.c - the JSON log writer (log.h) with arbitrary bytes.
 *
 * Feeds: the input's first byte is a separator; the rest, split at it, is
 * the service name, the message, then key/value pairs (up to 7 fields).
 * A value is a string of any bytes (NUL included, via LOG_STRING_N) unless
 * its key starts with '#' (an integer read from it), '~' (a double, inf and
 * nan included) or '!' (a NULL string); a key starting with '*' repeats its
 * value 64 times and a service name starting with '*' repeats the message
 * 64 times, to reach the line limit. The separator byte also picks the level
 * and whether there is a trace context. The service name is cut to
 * LOG_SERVICE_MAX bytes, as log_init does. Each input is written with
 * log_write() (stdout is a memory file here, read back) and formatted with
 * log_format() into 512- and 2048-byte buffers.
 *
 * Asserts, for every line:
 *   - it is exactly one line: it ends with '\n', holds no other line break
 *     and fits its buffer (LOG_LINE_MAX for log_write);
 *   - it is valid UTF-8 and jansson parses it as one JSON object;
 *   - ts is RFC 3339 UTC with milliseconds, level/service/msg/trace_id/
 *     span_id are what was logged (text compared after decoding: invalid
 *     UTF-8 bytes become U+FFFD, nothing else changes), unless a field
 *     reuses that key;
 *   - a line marked truncated keeps the message whenever it could fit;
 *   - unless it says "truncated": true, every field is there with its value
 *     (keys logged twice are skipped: a JSON object keeps one); it says
 *     truncated only when the fields could not have fitted.
 */
#define _GNU_SOURCE /* memfd_create */
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_support.h"
#include "log.h"
#include "trace.h"
#include "utf8.h"

#define LINE_MAX_BYTES 8192 /* log.c's LOG_LINE_MAX */
#define MAX_FIELDS     7
#define REPEAT         64
#define INPUT_MAX      16384 /* longer inputs are skipped */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int out_fd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int fd = memfd_create("log", 0);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
        abort();
    close(fd);
    out_fd = STDOUT_FILENO;
    return 0;
}

/* What a JSON string of `len` bytes decodes to once written: every byte
 * that is not part of valid UTF-8 replaced by U+FFFD. */
static size_t sanitized(const char *s, size_t len, char *out)
{
    size_t n = 0;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t k = fuzz_utf8_sequence((const unsigned char *)s + i, len - i, &cp);
        if (k == 0) {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3, i++;
        } else {
            memcpy(out + n, s + i, k);
            n += k, i += k;
        }
    }
    return n;
}

/* An upper bound of the bytes the writer needs for `len` bytes as a JSON
 * string (6 per byte at worst, plus quotes). */
static size_t escaped_bound(size_t len)
{
    return 6 * len + 2;
}

static void check_string(const json_t *value, const char *s, size_t len, const char *what)
{
    static char want[3 * REPEAT * INPUT_MAX];
    size_t want_len = sanitized(s, len, want);
    FUZZ_CHECK(json_is_string(value) && json_string_length(value) == want_len &&
                   memcmp(json_string_value(value), want, want_len) == 0,
               "%s is not what was logged ('%s')", what, fuzz_show(s, len));
}

typedef struct logged {
    log_level_t level;
    const char *service, *msg;
    const trace_context_t *trace;
    log_field_t fields[MAX_FIELDS];
    size_t count;
    size_t msg_len;
} logged_t;

/* `key` as the line spells it once decoded (a NUL-terminated copy). */
static const char *decoded_key(const char *key, char *out)
{
    out[sanitized(key, strlen(key), out)] = '\0';
    return out;
}

/* True when `key` (as decoded) appears more than once among the envelope's
 * keys and the fields' (a JSON object keeps one of them). */
static bool key_repeated(const logged_t *l, const char *key)
{
    static const char *const envelope[] = {"ts", "level", "service", "msg", "trace_id", "span_id", "truncated"};
    static char mine[3 * INPUT_MAX + 1], other[3 * INPUT_MAX + 1];
    decoded_key(key, mine);
    int seen = 0;
    for (size_t i = 0; i < sizeof(envelope) / sizeof(envelope[0]); i++)
        seen += strcmp(mine, envelope[i]) == 0;
    for (size_t i = 0; i < l->count; i++)
        seen += strcmp(mine, decoded_key(l->fields[i].key, other)) == 0;
    return seen > 1;
}

static void check_line(const logged_t *l, const char *line, size_t len, size_t size, const char *how)
{
    FUZZ_CHECK(len > 0 && len <= size, "%s: a line of %zu bytes for a buffer of %zu", how, len, size);
    FUZZ_CHECK(line[len - 1] == '\n' && memchr(line, '\n', len - 1) == NULL, "%s: not exactly one line: '%s'", how,
               fuzz_show(line, len));
    FUZZ_CHECK(fuzz_utf8_valid(line, len), "%s: the line is not valid UTF-8: '%s'", how, fuzz_show(line, len));
    json_error_t error;
    json_t *doc = json_loadb(line, len - 1, JSON_ALLOW_NUL, &error);
    FUZZ_CHECK(json_is_object(doc), "%s: the line is no JSON object (%s at %d): '%s'", how, error.text, error.position,
               fuzz_show(line, len));

    /* the envelope; a field may reuse one of its keys (keys are the code's
     * constants, never client input), and then JSON keeps only one */
    const char *ts = json_string_value(json_object_get(doc, "ts"));
    if (!key_repeated(l, "ts"))
        FUZZ_CHECK(ts != NULL && strlen(ts) == 24 && ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' &&
                       ts[16] == ':' && ts[19] == '.' && ts[23] == 'Z' && strspn(ts, "0123456789-T:.Z") == 24,
                   "%s: ts '%s'", how, ts != NULL ? ts : "(none)");
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *level = json_string_value(json_object_get(doc, "level"));
    if (!key_repeated(l, "level"))
        FUZZ_CHECK(level != NULL && strcmp(level, levels[l->level]) == 0, "%s: level '%s'", how, level ? level : "");
    if (!key_repeated(l, "service"))
        check_string(json_object_get(doc, "service"), l->service, strlen(l->service), "service");
    const char *trace_id = json_string_value(json_object_get(doc, "trace_id"));
    const char *span_id = json_string_value(json_object_get(doc, "span_id"));
    if (!key_repeated(l, "trace_id"))
        FUZZ_CHECK(trace_id != NULL && strcmp(trace_id, l->trace != NULL ? l->trace->trace_id : "") == 0,
                   "%s: trace_id is not the trace's", how);
    if (!key_repeated(l, "span_id"))
        FUZZ_CHECK(span_id != NULL && strcmp(span_id, l->trace != NULL ? l->trace->span_id : "") == 0,
                   "%s: span_id is not the trace's", how);

    bool truncated = json_is_true(json_object_get(doc, "truncated")); /* no field can be true */
    /* a truncated line keeps the message whenever it could fit, escaped
     * six-fold at worst, beside the envelope (under 200 bytes) */
    bool msg_fits = 200 + escaped_bound(strlen(l->service)) + escaped_bound(l->msg_len) <= size;
    if (!key_repeated(l, "msg") && (!truncated || msg_fits))
        check_string(json_object_get(doc, "msg"), l->msg, l->msg_len, "msg");
    /* at most what the whole line needs: the envelope's fixed text and ids
     * (under 150 bytes), then each field's comma, key, colon and value */
    size_t need = 150 + escaped_bound(l->msg_len) + escaped_bound(strlen(l->service));
    for (size_t i = 0; i < l->count; i++) {
        const log_field_t *f = &l->fields[i];
        need += 2 + escaped_bound(strlen(f->key));
        need += f->type == LOG_FIELD_STRING && f->value.string.base != NULL ? escaped_bound(f->value.string.len) : 32;
        if (truncated || key_repeated(l, f->key))
            continue;
        static char key[3 * INPUT_MAX + 1];
        const json_t *value = json_object_get(doc, decoded_key(f->key, key));
        FUZZ_CHECK(value != NULL, "%s: field '%s' is missing from a line not marked truncated", how,
                   fuzz_show(f->key, strlen(f->key)));
        switch (f->type) {
        case LOG_FIELD_STRING:
            if (f->value.string.base == NULL)
                FUZZ_CHECK(json_is_null(value), "%s: a NULL string is not null", how);
            else
                check_string(value, f->value.string.base, f->value.string.len, "a string field");
            break;
        case LOG_FIELD_INT:
            FUZZ_CHECK(json_is_integer(value) && json_integer_value(value) == f->value.integer,
                       "%s: integer %lld written as something else", how, (long long)f->value.integer);
            break;
        case LOG_FIELD_DOUBLE:
            if (!isfinite(f->value.number)) {
                FUZZ_CHECK(json_is_null(value), "%s: a non-finite number is not null", how);
            } else {
                double got = json_number_value(value), want = f->value.number;
                FUZZ_CHECK(json_is_number(value) && fabs(got - want) <= 1e-5 * fabs(want) + 1e-300,
                           "%s: %.17g written as %.17g", how, want, got);
            }
            break;
        case LOG_FIELD_NONE: break;
        }
    }
    if (truncated)
        FUZZ_CHECK(need > size, "%s: marked truncated though the fields need at most %zu of %zu bytes", how, need,
                   size);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX)
        return 0;
    unsigned char separator = data[0];
    fuzz_parts_t parts;
    fuzz_split(data + 1, size - 1, (char)separator, 2 + 2 * MAX_FIELDS, &parts);

    logged_t l = {.level = (log_level_t)(separator % 4)};
    char *owned[2 + 2 * MAX_FIELDS + 2] = {0};
    size_t owned_count = 0;
    char *service = fuzz_cstring(parts.part[0], parts.len[0]);
    owned[owned_count++] = service;
    service[utf8_prefix(service, strlen(service), LOG_SERVICE_MAX)] = '\0'; /* what log_init keeps */
    bool repeat_msg = service[0] == '*';
    l.service = service;
    char *msg_once = fuzz_cstring(parts.count > 1 ? parts.part[1] : "", parts.count > 1 ? parts.len[1] : 0);
    owned[owned_count++] = msg_once;
    size_t once = strlen(msg_once), times = repeat_msg ? REPEAT : 1;
    char *msg = malloc(once * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(msg + i * once, msg_once, once);
    msg[once * times] = '\0';
    owned[owned_count++] = msg;
    l.msg = msg;
    l.msg_len = once * times;

    for (size_t p = 2; p + 1 < parts.count && l.count < MAX_FIELDS; p += 2) {
        char *key = fuzz_cstring(parts.part[p], parts.len[p]);
        owned[owned_count++] = key;
        const char *value = parts.part[p + 1];
        size_t value_len = parts.len[p + 1];
        log_field_t *f = &l.fields[l.count++];
        char *text = fuzz_cstring(value, value_len);
        if (key[0] == '#') {
            *f = LOG_INT(key, strtoll(text, NULL, 0));
        } else if (key[0] == '~') {
            *f = LOG_DOUBLE(key, strtod(text, NULL));
        } else if (key[0] == '!') {
            *f = LOG_STRING(key, NULL);
        } else if (key[0] == '*') {
            char *repeated = malloc(value_len * REPEAT + 1);
            for (size_t i = 0; i < REPEAT; i++)
                memcpy(repeated + i * value_len, value, value_len);
            owned[owned_count++] = repeated;
            *f = LOG_STRING_N(key, repeated, value_len * REPEAT);
        } else {
            *f = LOG_STRING_N(key, value, value_len);
        }
        free(text);
    }

    trace_context_t trace;
    if (separator & 4) {
        trace_start_server_span(&trace, NULL, 0);
        l.trace = &trace;
    }

    log_init(l.service, LOG_DEBUG);
    static char line[LINE_MAX_BYTES * 2];
    if (lseek(out_fd, 0, SEEK_SET) != 0 || ftruncate(out_fd, 0) != 0)
        abort();
    log_write(l.level, l.trace, l.msg, l.fields, l.count);
    ssize_t len = pread(out_fd, line, sizeof(line), 0);
    FUZZ_CHECK(len > 0, "log_write wrote nothing");
    check_line(&l, line, (size_t)len, LINE_MAX_BYTES, "log_write");

    static const size_t sizes[] = {512, 2048};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memset(line, 0x55, sizes[i] + 16);
        size_t n = log_format(line, sizes[i], l.level, l.trace, l.msg, l.fields, l.count);
        check_line(&l, line, n, sizes[i], "log_format");
        FUZZ_CHECK((unsigned char)line[sizes[i]] == 0x55, "log_format wrote past its buffer");
    }

    log_init("unknown", LOG_INFO);
    for (size_t i = 0; i < owned_count; i++)
        free(owned[i]);
    return 0;
}
