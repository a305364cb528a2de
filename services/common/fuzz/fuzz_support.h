/* fuzz_support.h - what every fuzz target shares: a failure macro that
 * names the broken invariant, an input splitter, and reference checks
 * (UTF-8, control bytes, percent-decoding) written from the RFCs rather than
 * from the code under test, so that a target compares two independent
 * readings of the same input.
 *
 * Header-only (static inline) so each target includes what it uses.
 */
#ifndef OMS_FUZZ_SUPPORT_H
#define OMS_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stops the run when `cond` is false: prints the invariant and a printf-style
 * detail to stderr, then aborts so that libFuzzer keeps the input as a
 * reproducer (crash-<sha1> in the working directory). */
#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "\ninvariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Prints `len` bytes for a failure message: printable ASCII as is, every
 * other byte as \xNN. At most 200 bytes are shown; the text stays valid
 * for the next three calls (one message may show four values). */
static inline const char *fuzz_show(const void *bytes, size_t len)
{
    static char buffers[4][4 * 200 + 8];
    static unsigned next;
    char *out = buffers[next++ % 4];
    const unsigned char *p = bytes;
    size_t n = 0;
    for (size_t i = 0; i < len && i < 200; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            out[n++] = (char)p[i];
        else
            n += (size_t)snprintf(out + n, sizeof(buffers[0]) - n, "\\x%02x", p[i]);
    }
    if (len > 200)
        n += (size_t)snprintf(out + n, sizeof(buffers[0]) - n, "...");
    out[n] = '\0';
    return out;
}

/* --- splitting an input ------------------------------------------------------ */

#define FUZZ_MAX_PARTS 16

typedef struct fuzz_parts {
    size_t count;
    const char *part[FUZZ_MAX_PARTS];
    size_t len[FUZZ_MAX_PARTS];
} fuzz_parts_t;

/* Splits `size` bytes at each `separator` into at most `max` parts (the last
 * part keeps the rest, separators included). An empty input has one empty
 * part. */
static inline void fuzz_split(const void *data, size_t size, char separator, size_t max, fuzz_parts_t *out)
{
    const char *p = data, *end = p + size;
    if (max > FUZZ_MAX_PARTS)
        max = FUZZ_MAX_PARTS;
    out->count = 0;
    while (out->count + 1 < max) {
        const char *next = memchr(p, separator, (size_t)(end - p));
        if (next == NULL)
            break;
        out->part[out->count] = p;
        out->len[out->count++] = (size_t)(next - p);
        p = next + 1;
    }
    out->part[out->count] = p;
    out->len[out->count++] = (size_t)(end - p);
}

/* A NUL-terminated copy of `len` bytes (free it); the copy ends at the first
 * NUL, as an environment variable or a C string argument would. */
static inline char *fuzz_cstring(const char *s, size_t len)
{
    const char *nul = memchr(s, '\0', len);
    if (nul != NULL)
        len = (size_t)(nul - s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

/* --- reference checks -------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static inline size_t fuzz_utf8_sequence(const unsigned char *s, size_t n, uint32_t *code_point)
{
    if (n == 0)
        return 0;
    unsigned char b = s[0];
    size_t len;
    unsigned char second_low = 0x80, second_high = 0xbf;
    uint32_t cp;
    if (b < 0x80) {
        *code_point = b;
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        len = 2, cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3, cp = b & 0x0f;
        if (b == 0xe0)
            second_low = 0xa0;
        if (b == 0xed)
            second_high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4, cp = b & 0x07;
        if (b == 0xf0)
            second_low = 0x90;
        if (b == 0xf4)
            second_high = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < second_low || s[1] > second_high)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *code_point = cp;
    return len;
}

/* True when all `len` bytes are well-formed UTF-8. */
static inline bool fuzz_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = fuzz_utf8_sequence(p + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Code points of well-formed UTF-8 text (bytes that are not count one each). */
static inline size_t fuzz_utf8_count(const void *s, size_t len)
{
    const unsigned char *p = s;
    uint32_t cp;
    size_t count = 0;
    for (size_t i = 0; i < len; count++) {
        size_t n = fuzz_utf8_sequence(p + i, len - i, &cp);
        i += n > 0 ? n : 1;
    }
    return count;
}

static inline bool fuzz_is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* True when any of the `len` bytes is a control byte (0x00-0x1f, 0x7f). */
static inline bool fuzz_has_control(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len; i++)
        if (fuzz_is_control(p[i]))
            return true;
    return false;
}

static inline int fuzz_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes `len` bytes into `out` (room for len bytes); "%" not
 * followed by two hex digits stays as it is. With `plus_is_space`, '+' is a
 * space (application/x-www-form-urlencoded). Returns the decoded length. */
static inline size_t fuzz_percent_decode(const char *s, size_t len, bool plus_is_space, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && fuzz_hex_value(s[i + 1]) >= 0 && fuzz_hex_value(s[i + 2]) >= 0) {
            out[n++] = (char)(fuzz_hex_value(s[i + 1]) << 4 | fuzz_hex_value(s[i + 2]));
            i += 2;
        } else {
            out[n++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    return n;
}

/* True when `text` (len bytes) is -?[0-9]+ exactly. */
static inline bool fuzz_is_plain_integer(const char *text, size_t len)
{
    size_t i = len > 0 && text[0] == '-' ? 1 : 0;
    if (i == len)
        return false;
    for (; i < len; i++)
        if (text[i] < '0' || text[i] > '9')
            return false;
    return true;
}

/* --- text a person typed ---------------------------------------------------- */

typedef enum fuzz_verdict { FUZZ_INVALID, FUZZ_VALID, FUZZ_UNSURE } fuzz_verdict_t;

/* Combines two verdicts: invalid wins, then unsure. */
static inline fuzz_verdict_t fuzz_both(fuzz_verdict_t a, fuzz_verdict_t b)
{
    return a == FUZZ_INVALID || b == FUZZ_INVALID ? FUZZ_INVALID
           : a == FUZZ_UNSURE || b == FUZZ_UNSURE ? FUZZ_UNSURE
                                                  : FUZZ_VALID;
}

/* Unicode format characters (general category Cf) and the line and
 * paragraph separators: invisible, so a name may refuse them. */
static inline bool fuzz_is_invisible(uint32_t c)
{
    return c == 0xad || (c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x180e ||
           (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f) ||
           c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || c == 0x110bd || (c >= 0x1bca0 && c <= 0x1bca3) ||
           (c >= 0x1d173 && c <= 0x1d17a) || c == 0xe0001 || (c >= 0xe0020 && c <= 0xe007f);
}

/* Judges valid UTF-8 text a person typed (a name): a control character
 * (C0, DEL, C1) or only spaces is invalid; an invisible character may be
 * refused or not (unsure); anything else is valid. */
static inline fuzz_verdict_t fuzz_judge_text(const char *s, size_t len)
{
    fuzz_verdict_t verdict = FUZZ_VALID;
    bool only_spaces = len > 0;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = fuzz_utf8_sequence((const unsigned char *)s + i, len - i, &cp);
        if (n == 0)
            return FUZZ_INVALID;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return FUZZ_INVALID;
        if (fuzz_is_invisible(cp))
            verdict = FUZZ_UNSURE;
        only_spaces &= cp == ' ';
        i += n;
    }
    return only_spaces ? FUZZ_INVALID : verdict;
}

#endif
