/* process_metrics.c - reads /proc/self for the process_* families. */
#include "process_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"

static double boot_time_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return 0;
    char line[256];
    double btime = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %lf", &btime) == 1)
            break;
    fclose(f);
    return btime;
}

static int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            count++;
    closedir(dir);
    return count - 1; /* the descriptor opendir itself holds */
}

static void append_gauge(buffer_t *out, const char *name, const char *type, const char *help, double value)
{
    buffer_appendf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", name, help, name, type, name);
    metrics_format_value(out, value);
    buffer_append(out, "\n", 1);
}

static void collect(buffer_t *out, void *data)
{
    (void)data;
    /* Fields 14-15 (utime, stime), 22 (starttime) in clock ticks, 23 (vsize)
     * in bytes and 24 (rss) in pages; the comm field may contain spaces, so
     * parsing starts after its closing parenthesis. */
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return;
    char stat[1024];
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *p = strrchr(stat, ')');
    unsigned long long utime, stime, starttime, vsize;
    long long rss;
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu "
                            "%llu %lld",
                            &utime, &stime, &starttime, &vsize, &rss) != 5)
        return;
    double ticks = (double)sysconf(_SC_CLK_TCK);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);

    append_gauge(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                 (double)(utime + stime) / ticks);
    append_gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                 (double)rss * (double)sysconf(_SC_PAGESIZE));
    append_gauge(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", (double)vsize);
    append_gauge(out, "process_open_fds", "gauge", "Number of open file descriptors.", count_open_fds());
    append_gauge(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                 limit.rlim_cur == RLIM_INFINITY ? -1 : (double)limit.rlim_cur);
    append_gauge(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                 boot_time_seconds() + (double)starttime / ticks);
}

void process_metrics_register(const char *version, const char *revision)
{
    static const char *const labels[] = {"version", "revision", NULL};
    metrics_family_t *build_info =
        metrics_gauge("oms_build_info", "Build of the running service; the value is always 1.", labels);
    metrics_gauge_set(build_info, (const char *const[]){version, revision}, 1);
    metrics_register_collector(collect, NULL);
}
