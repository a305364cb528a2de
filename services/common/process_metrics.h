/* process_metrics.h - process_* metrics as Prometheus client libraries name
 * them (CPU seconds, resident and virtual memory, open and max file
 * descriptors, start time), read from /proc when /metrics is scraped. */
#ifndef OMS_PROCESS_METRICS_H
#define OMS_PROCESS_METRICS_H

/* Registers the process collector and oms_build_info{version,revision}. */
void process_metrics_register(const char *version, const char *revision);

#endif
