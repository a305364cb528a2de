/* fuzz_traceparent.c - W3C traceparent parsing (trace.h).
 *
 * Feeds: the input as a `traceparent` header value to
 * trace_parse_traceparent() and trace_start_server_span().
 *
 * Asserts:
 *   - a value is accepted exactly when the W3C Trace Context rules, read
 *     independently here, accept it: version two lower-case hex digits other
 *     than "ff"; then "-" 32 hex "-" 16 hex "-" 2 hex, all lower-case; trace
 *     and parent ids not all zeros; version 00 exactly 55 characters, a later
 *     version possibly longer but then with '-' at offset 55;
 *   - an accepted value's ids and flags are copied exactly (NUL-terminated),
 *     and formatting them gives the value back (version 00);
 *   - trace_start_server_span() continues the trace exactly when the value
 *     parses, and always ends with well-formed ids: lower-case hex, not all
 *     zeros, a fresh span id; the traceparent it formats parses again with
 *     the same trace id; a child span keeps the trace and points to it.
 */
#include "fuzz_support.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != '0')
            return false;
    return true;
}

static bool reference_accepts(const char *v, size_t len)
{
    if (len < 55 || !lower_hex(v, 2) || memcmp(v, "ff", 2) == 0)
        return false;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-')
        return false;
    if (!lower_hex(v + 3, 32) || !lower_hex(v + 36, 16) || !lower_hex(v + 53, 2))
        return false;
    if (all_zero(v + 3, 32) || all_zero(v + 36, 16))
        return false;
    if (memcmp(v, "00", 2) == 0)
        return len == 55;
    return len == 55 || v[55] == '-';
}

/* A well-formed id: `len` lower-case hex digits, not all zeros, then NUL. */
static void check_id(const char *id, size_t len, const char *what)
{
    FUZZ_CHECK(strnlen(id, len + 1) == len && lower_hex(id, len) && !all_zero(id, len), "%s '%s' is malformed", what,
               fuzz_show(id, strnlen(id, len + 1)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *value = (const char *)data;
    trace_context_t parsed;
    memset(&parsed, 0x5a, sizeof(parsed));
    int status = trace_parse_traceparent(value, size, &parsed);
    bool expected = reference_accepts(value, size);
    FUZZ_CHECK((status == 0) == expected, "trace_parse_traceparent %s '%s'", status == 0 ? "accepted" : "refused",
               fuzz_show(value, size));
    if (status == 0) {
        check_id(parsed.trace_id, TRACE_ID_HEX_LEN, "trace id");
        check_id(parsed.parent_id, TRACE_SPAN_ID_HEX_LEN, "parent id");
        FUZZ_CHECK(memcmp(parsed.trace_id, value + 3, 32) == 0 && memcmp(parsed.parent_id, value + 36, 16) == 0,
                   "ids not copied from the header");
        unsigned flags = (unsigned)(fuzz_hex_value(value[53]) << 4 | fuzz_hex_value(value[54]));
        FUZZ_CHECK(parsed.flags == flags, "flags %02x for '%.2s'", parsed.flags, value + 53);
        trace_context_t as_span = parsed;
        memcpy(as_span.span_id, parsed.parent_id, sizeof(as_span.span_id));
        char formatted[TRACE_TRACEPARENT_LEN + 1];
        trace_format_traceparent(&as_span, formatted);
        if (memcmp(value, "00", 2) == 0)
            FUZZ_CHECK(memcmp(formatted, value, TRACE_TRACEPARENT_LEN) == 0, "formats back as '%s'", formatted);
    }

    trace_context_t span;
    memset(&span, 0x5a, sizeof(span));
    bool continued = trace_start_server_span(&span, size > 0 ? value : NULL, size);
    FUZZ_CHECK(continued == (status == 0), "trace_start_server_span continued=%d for a value that %s", continued,
               status == 0 ? "parses" : "does not parse");
    check_id(span.trace_id, TRACE_ID_HEX_LEN, "server span trace id");
    check_id(span.span_id, TRACE_SPAN_ID_HEX_LEN, "server span id");
    if (continued) {
        FUZZ_CHECK(strcmp(span.trace_id, parsed.trace_id) == 0 && strcmp(span.parent_id, parsed.parent_id) == 0 &&
                       span.flags == parsed.flags,
                   "the server span does not continue the incoming trace");
    } else {
        FUZZ_CHECK(span.parent_id[0] == '\0' && span.flags == TRACE_FLAG_SAMPLED, "a new trace with a parent or flags");
    }

    char out[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&span, out);
    trace_context_t again;
    FUZZ_CHECK(strlen(out) == TRACE_TRACEPARENT_LEN && trace_parse_traceparent(out, strlen(out), &again) == 0 &&
                   strcmp(again.trace_id, span.trace_id) == 0 && strcmp(again.parent_id, span.span_id) == 0,
               "the outgoing traceparent '%s' does not parse back", out);

    trace_context_t child;
    trace_start_child_span(&child, &span);
    check_id(child.span_id, TRACE_SPAN_ID_HEX_LEN, "child span id");
    FUZZ_CHECK(strcmp(child.trace_id, span.trace_id) == 0 && strcmp(child.parent_id, span.span_id) == 0 &&
                   child.flags == span.flags,
               "the child span does not continue its parent");
    return 0;
}
