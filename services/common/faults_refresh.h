/* faults_refresh.h - keeps a worker's fault snapshot current: a chore that
 * reads oms:faults from Redis about once a second. While Redis cannot
 * answer, the last snapshot stays in force. */
#ifndef OMS_FAULTS_REFRESH_H
#define OMS_FAULTS_REFRESH_H

#include "chore.h"
#include "worker.h"

#define FAULTS_REFRESH_INTERVAL_MS 1000

/* Starts refreshing `worker`'s snapshot at once, then every interval;
 * stop it with chore_stop(chore). Needs the worker's Redis client. */
void faults_refresh_start(chore_t *chore, worker_t *worker);

#endif
