/* faults.c - fault flag snapshots: parsing, lookup, metrics. */
#include "faults.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static metrics_family_t *fault_active, *snapshots_applied;

void faults_metrics_register(void)
{
    static const char *const labels[] = {"fault", NULL};
    static const char *const worker_label[] = {"worker", NULL};
    fault_active = metrics_gauge("oms_fault_active", "1 while a lab fault flag is set in oms:faults, else 0.", labels);
    snapshots_applied =
        metrics_counter("oms_fault_snapshots_total",
                        "Fault flag snapshots read from Redis and applied, per worker thread.", worker_label);
}

bool faults_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= FAULTS_NAME_MAX)
        return false;
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0' || strchr(dot + 1, '.') != NULL)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!(*p == '.' || *p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* A bulk string with no NUL inside: read as a C string, "x.a\0junk" would
 * pass for "x.a" (and PUT /admin/faults could never clear it). */
static bool is_text(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING && strlen(reply->str) == reply->len;
}

void faults_parse(const redisReply *reply, faults_t *out)
{
    out->count = 0;
    for (size_t i = 0; i + 1 < reply->elements && out->count < FAULTS_MAX; i += 2) {
        const redisReply *key = reply->element[i], *value = reply->element[i + 1];
        if (!is_text(key) || !is_text(value) || !faults_valid_name(key->str))
            continue;
        char *end;
        double number = strtod(value->str, &end);
        if (end == value->str || *end != '\0' || !isfinite(number) || number == 0)
            continue;
        snprintf(out->items[out->count].name, FAULTS_NAME_MAX, "%s", key->str);
        out->items[out->count].value = number;
        out->count++;
    }
}

double faults_value(const faults_t *faults, const char *name)
{
    for (size_t i = 0; i < faults->count; i++)
        if (strcmp(faults->items[i].name, name) == 0)
            return faults->items[i].value;
    return 0;
}

/* Worker 0 speaks for the process: it logs changes and sets the gauge. */
static void report_changes(const faults_t *before, const faults_t *after)
{
    for (size_t i = 0; i < after->count; i++) {
        bool found = false;
        for (size_t j = 0; j < before->count && !found; j++)
            found = strcmp(before->items[j].name, after->items[i].name) == 0 &&
                    before->items[j].value == after->items[i].value;
        if (!found) {
            log_warn(NULL, "fault active", LOG_STRING("fault", after->items[i].name),
                     LOG_DOUBLE("value", after->items[i].value));
            metrics_gauge_set(fault_active, (const char *const[]){after->items[i].name}, 1);
        }
    }
    for (size_t j = 0; j < before->count; j++) {
        bool found = false;
        for (size_t i = 0; i < after->count && !found; i++)
            found = strcmp(before->items[j].name, after->items[i].name) == 0;
        if (!found) {
            log_info(NULL, "fault cleared", LOG_STRING("fault", before->items[j].name));
            metrics_gauge_set(fault_active, (const char *const[]){before->items[j].name}, 0);
        }
    }
}

void faults_report(const faults_t *before, const faults_t *after, size_t worker_index)
{
    if (worker_index == 0)
        report_changes(before, after);
    char index[24];
    snprintf(index, sizeof(index), "%zu", worker_index);
    metrics_counter_add(snapshots_applied, (const char *const[]){index}, 1);
}
