/* utf8.h - strict UTF-8: decoding, validation, character counts, safe
 * truncation and the control characters that text from clients must not
 * carry.
 *
 * "Valid" means what RFC 3629 allows: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing beyond U+10FFFF, no stray continuation bytes,
 * and no lead byte 0xC0, 0xC1 or 0xF5..0xFF.
 */
#ifndef OMS_UTF8_H
#define OMS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the character at `s` (`n` bytes available). Returns its length
 * in bytes (1 to 4) with the code point in *code_point, or 0 when the bytes
 * there are not one valid character (including one cut short by `n`). */
size_t utf8_decode(const char *s, size_t n, uint32_t *code_point);

/* True when all `n` bytes are valid UTF-8. */
bool utf8_valid(const char *s, size_t n);

/* The length of the longest prefix of `s` (`n` bytes) that is valid
 * UTF-8: where to cut text that someone else cut carelessly. */
size_t utf8_valid_prefix(const char *s, size_t n);

/* The number of characters (code points) of valid UTF-8 text. */
size_t utf8_length(const char *s, size_t n);

/* The length of the longest prefix of `s` (`n` bytes) that is at most
 * `max_bytes` long and does not end inside a character: where to cut text
 * that must stay valid UTF-8. */
size_t utf8_prefix(const char *s, size_t n, size_t max_bytes);

/* True for characters that control rather than show text: C0 controls,
 * DEL, C1 controls (U+0080..U+009F), and the invisible format characters
 * that reorder or hide text (bidirectional overrides and isolates,
 * zero-width characters, line and paragraph separators, the byte-order
 * mark, interlinear annotations). */
bool utf8_is_control(uint32_t code_point);

/* True when all `n` bytes are valid UTF-8 holding no utf8_is_control
 * character: text that shows as what it is. */
bool utf8_printable(const char *s, size_t n);

#endif
