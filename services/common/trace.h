/* trace.h - W3C trace context (https://www.w3.org/TR/trace-context/).
 *
 * A request's trace context is parsed from the incoming `traceparent` header
 * or started fresh; the server span gets a new span id either way, and the
 * response carries `traceparent` with that span id. Span export is a later
 * concern: the context keeps everything a span needs (ids, parent, flags).
 */
#ifndef OMS_TRACE_H
#define OMS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_ID_HEX_LEN      32
#define TRACE_SPAN_ID_HEX_LEN 16
#define TRACE_TRACEPARENT_LEN 55
#define TRACE_FLAG_SAMPLED    0x01

typedef struct trace_context {
    char trace_id[TRACE_ID_HEX_LEN + 1];       /* lower-case hex, NUL-terminated */
    char span_id[TRACE_SPAN_ID_HEX_LEN + 1];   /* this span */
    char parent_id[TRACE_SPAN_ID_HEX_LEN + 1]; /* caller's span, "" when this is a root */
    uint8_t flags;
} trace_context_t;

/* Parses a traceparent header value. Returns 0 and fills trace_id, parent_id
 * (from the header's span id) and flags, or -1 when the value is invalid
 * (wrong length or version, non-hex or upper-case digits, all-zero ids). */
int trace_parse_traceparent(const char *value, size_t len, trace_context_t *out);

/* Starts the context of a server span: continues the trace in `traceparent`
 * (may be NULL) when it is valid, else starts a new sampled trace. Never
 * fails. Returns true when an incoming traceparent was continued. */
bool trace_start_server_span(trace_context_t *ctx, const char *traceparent, size_t len);

/* Starts a child span of `parent` in `child` (same trace, new span id). */
void trace_start_child_span(trace_context_t *child, const trace_context_t *parent);

/* Writes the 55-character traceparent for ctx's own span plus a NUL into buf. */
void trace_format_traceparent(const trace_context_t *ctx, char buf[TRACE_TRACEPARENT_LEN + 1]);

#endif
