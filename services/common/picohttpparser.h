/* picohttpparser.h - the HTTP/1 parser built into libh2o-evloop.
 *
 * h2o parses requests with picohttpparser, and Debian's libh2o-evloop
 * exports its functions but does not install this header; these are its
 * declarations (picohttpparser's API, unchanged for years). Code that must
 * read a request exactly as h2o will (request_guard.c, the native
 * gateway's framing guard) uses them instead of a parser of its own.
 */
#ifndef OMS_PICOHTTPPARSER_H
#define OMS_PICOHTTPPARSER_H

#include <stddef.h>
#include <sys/types.h>

struct phr_header {
    const char *name; /* NULL for a folded continuation line */
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Parses a request head. Returns its length in bytes, -1 when it is
 * malformed, -2 when it is incomplete. *num_headers is the capacity of
 * `headers` on entry and the count found on return. */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

/* Zero-filled before the first call. */
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

/* Decodes chunked data in place. Returns the bytes left over after the
 * last chunk, -1 for an error, -2 when more input is needed; *bufsz gets
 * the decoded length. */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
