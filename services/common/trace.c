/* trace.c - traceparent parsing, formatting and id generation. */
#include "trace.h"

#include <stdio.h>
#include <string.h>

#include "random.h"

static bool is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool is_all_zero(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != '0')
            return false;
    return true;
}

static int hex_value(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void write_random_hex(char *out, size_t hex_len)
{
    static const char digits[] = "0123456789abcdef";
    do {
        for (size_t i = 0; i < hex_len; i += 16) {
            uint64_t bits = random_u64();
            for (size_t j = 0; j < 16 && i + j < hex_len; j++, bits >>= 4)
                out[i + j] = digits[bits & 0xf];
        }
    } while (is_all_zero(out, hex_len));
    out[hex_len] = '\0';
}

int trace_parse_traceparent(const char *value, size_t len, trace_context_t *out)
{
    /* version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55 */
    if (len < TRACE_TRACEPARENT_LEN)
        return -1;
    if (value[2] != '-' || value[35] != '-' || value[52] != '-')
        return -1;
    if (!is_lower_hex(value, 2) || !is_lower_hex(value + 3, 32) || !is_lower_hex(value + 36, 16) ||
        !is_lower_hex(value + 53, 2))
        return -1;
    if (memcmp(value, "ff", 2) == 0)
        return -1;
    /* Version 00 is exactly 55 characters; later versions may append
     * "-"-separated fields, which we ignore as the spec asks. */
    if (memcmp(value, "00", 2) == 0 ? len != TRACE_TRACEPARENT_LEN
                                    : (len > TRACE_TRACEPARENT_LEN && value[TRACE_TRACEPARENT_LEN] != '-'))
        return -1;
    if (is_all_zero(value + 3, 32) || is_all_zero(value + 36, 16))
        return -1;
    memcpy(out->trace_id, value + 3, 32);
    out->trace_id[32] = '\0';
    memcpy(out->parent_id, value + 36, 16);
    out->parent_id[16] = '\0';
    out->flags = (uint8_t)(hex_value(value[53]) << 4 | hex_value(value[54]));
    return 0;
}

bool trace_start_server_span(trace_context_t *ctx, const char *traceparent, size_t len)
{
    bool continued = traceparent != NULL && trace_parse_traceparent(traceparent, len, ctx) == 0;
    if (!continued) {
        write_random_hex(ctx->trace_id, TRACE_ID_HEX_LEN);
        ctx->parent_id[0] = '\0';
        ctx->flags = TRACE_FLAG_SAMPLED;
    }
    write_random_hex(ctx->span_id, TRACE_SPAN_ID_HEX_LEN);
    return continued;
}

void trace_start_child_span(trace_context_t *child, const trace_context_t *parent)
{
    memcpy(child->trace_id, parent->trace_id, sizeof(child->trace_id));
    memcpy(child->parent_id, parent->span_id, sizeof(child->parent_id));
    child->flags = parent->flags;
    write_random_hex(child->span_id, TRACE_SPAN_ID_HEX_LEN);
}

void trace_format_traceparent(const trace_context_t *ctx, char buf[TRACE_TRACEPARENT_LEN + 1])
{
    snprintf(buf, TRACE_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", ctx->trace_id, ctx->span_id, ctx->flags);
}
