/* utf8.c - strict UTF-8 (RFC 3629). */
#include "utf8.h"

size_t utf8_decode(const char *s, size_t n, uint32_t *code_point)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *code_point = p[0];
        return 1;
    }
    size_t len;
    uint32_t cp, min;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2, cp = p[0] & 0x1f, min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3, cp = p[0] & 0x0f, min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4, cp = p[0] & 0x07, min = 0x10000;
    } else {
        return 0; /* a continuation byte, 0xC0/0xC1 (always overlong) or 0xF5..0xFF */
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    *code_point = cp;
    return len;
}

size_t utf8_valid_prefix(const char *s, size_t n)
{
    uint32_t cp;
    size_t i = 0;
    for (size_t len; i < n && (len = utf8_decode(s + i, n - i, &cp)) > 0;)
        i += len;
    return i;
}

bool utf8_valid(const char *s, size_t n)
{
    return utf8_valid_prefix(s, n) == n;
}

size_t utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) /* not a continuation byte */
            count++;
    return count;
}

size_t utf8_prefix(const char *s, size_t n, size_t max_bytes)
{
    if (n <= max_bytes)
        return n;
    size_t cut = max_bytes;
    /* back off over continuation bytes to the start of the cut character */
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

bool utf8_is_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || /* C0, DEL, C1 */
           c == 0x061c ||                          /* Arabic letter mark */
           (c >= 0x200b && c <= 0x200f) ||         /* zero-width space/joiners, LRM, RLM */
           (c >= 0x2028 && c <= 0x202e) ||         /* line/paragraph separators, bidi embeddings */
           (c >= 0x2060 && c <= 0x206f) ||         /* word joiner, invisible operators, bidi isolates */
           c == 0xfeff ||                          /* byte-order mark / zero-width no-break space */
           (c >= 0xfff9 && c <= 0xfffb);           /* interlinear annotation */
}

bool utf8_printable(const char *s, size_t n)
{
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0 || utf8_is_control(cp))
            return false;
        i += len;
    }
    return true;
}
