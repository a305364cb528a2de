/* buffer.c - growable byte buffer. */
#include "buffer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(buffer_t *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap)
        return;
    size_t cap = buf->cap != 0 ? buf->cap : 256;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    char *data = realloc(buf->data, cap);
    if (data == NULL)
        abort();
    buf->data = data;
    buf->cap = cap;
}

void buffer_append(buffer_t *buf, const char *s, size_t n)
{
    reserve(buf, n);
    memcpy(buf->data + buf->len, s, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
}

void buffer_append_str(buffer_t *buf, const char *s)
{
    buffer_append(buf, s, strlen(s));
}

void buffer_appendf(buffer_t *buf, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int needed = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (needed < 0)
        return;
    reserve(buf, (size_t)needed);
    va_start(args, fmt);
    vsnprintf(buf->data + buf->len, (size_t)needed + 1, fmt, args);
    va_end(args);
    buf->len += (size_t)needed;
}

void buffer_free(buffer_t *buf)
{
    free(buf->data);
    *buf = BUFFER_INIT;
}
