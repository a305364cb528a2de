/* buffer.h - a growable byte buffer for building text (metrics, SQL params).
 *
 * Allocation failure aborts: these buffers are small and a service that
 * cannot allocate a few kilobytes cannot do anything useful anyway.
 */
#ifndef OMS_BUFFER_H
#define OMS_BUFFER_H

#include <stddef.h>

typedef struct buffer {
    char *data; /* NUL-terminated while len < cap */
    size_t len, cap;
} buffer_t;

#define BUFFER_INIT ((buffer_t){NULL, 0, 0})

/* Appends n bytes. */
void buffer_append(buffer_t *buf, const char *s, size_t n);

/* Appends a NUL-terminated string. */
void buffer_append_str(buffer_t *buf, const char *s);

/* Appends printf-style formatted text. */
void buffer_appendf(buffer_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Releases the memory; the buffer may be reused afterwards. */
void buffer_free(buffer_t *buf);

#endif
