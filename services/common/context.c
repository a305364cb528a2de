/* context.c - the unit of work's lifetime, memory, failure and logs. */
#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void context_init(context_t *c, const context_ops_t *ops, worker_t *worker)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->worker = worker;
    c->started_ns = loop_now_ns();
    c->refs = 1;
    h2o_mem_init_pool(&c->pool);
    worker->busy++;
}

context_t *context_hold(context_t *c)
{
    c->refs++;
    return c;
}

void context_release(context_t *c)
{
    if (--c->refs > 0)
        return;
    worker_t *worker = c->worker;
    h2o_mem_clear_pool(&c->pool);
    c->ops->release(c);
    worker->busy--;
}

void context_cancel(context_t *c)
{
    c->cancelled = true;
}

void *context_alloc(context_t *c, size_t size)
{
    void *p = h2o_mem_alloc_pool(&c->pool, size);
    memset(p, 0, size);
    return p;
}

char *context_strdup(context_t *c, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        len = strlen(s);
    char *copy = h2o_mem_alloc_pool(&c->pool, len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

void context_add_field(context_t *c, const char *key, const char *value)
{
    if (c->field_count == CONTEXT_FIELDS_MAX)
        return;
    c->fields[c->field_count++] = LOG_STRING(key, context_strdup(c, value, SIZE_MAX));
}

void context_fail(context_t *c, int status, const char *code, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    char message[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    c->ops->fail(c, status, code, message);
}

void context_unavailable(context_t *c, const char *dependency, const char *reason)
{
    context_warn(c, "dependency unavailable", LOG_STRING("dependency", dependency), LOG_STRING("reason", reason));
    context_fail(c, 503, "dependency_unavailable", "%s is unavailable", dependency);
}

double context_fault(const context_t *c, const char *suffix)
{
    return worker_fault(c->worker, suffix);
}

void context_log_write(const context_t *c, log_level_t level, const char *msg, const log_field_t *fields, size_t count)
{
    log_field_t all[CONTEXT_FIELDS_MAX + 32];
    size_t n = 0;
    for (size_t i = 0; i < c->field_count; i++)
        all[n++] = c->fields[i];
    for (size_t i = 0; i < count && n < sizeof(all) / sizeof(all[0]); i++)
        all[n++] = fields[i];
    log_write(level, &c->trace, msg, all, n);
}
