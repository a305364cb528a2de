/* user_metrics.c - the user service's business metrics.
 *
 * oms_logins_total{outcome} is the lab's security signal: a password
 * spraying run shows as bad_credentials climbing across many accounts, a
 * brute-force run as locked climbing for a few.
 */
#include "metrics.h"
#include "user.h"

static metrics_family_t *logins, *registrations, *cache_requests;

void user_metrics_register(void)
{
    static const char *const outcome[] = {"outcome", NULL};
    logins = metrics_counter("oms_logins_total",
                             "Login attempts by outcome (success, bad_credentials, locked, invalid).", outcome);
    registrations =
        metrics_counter("oms_registrations_total", "Sign-ups by outcome (created, duplicate, invalid).", outcome);
    static const char *const result[] = {"result", NULL};
    cache_requests = metrics_counter("oms_user_cache_requests_total",
                                     "User document lookups in the Redis cache (hit, miss, error, bypass).", result);
    /* Every outcome is exported from the start, so rate() works at once. */
    static const char *const login_outcomes[] = {"success", "bad_credentials", "locked", "invalid"};
    for (size_t i = 0; i < sizeof(login_outcomes) / sizeof(login_outcomes[0]); i++)
        metrics_counter_add(logins, (const char *const[]){login_outcomes[i]}, 0);
    static const char *const registration_outcomes[] = {"created", "duplicate", "invalid"};
    for (size_t i = 0; i < sizeof(registration_outcomes) / sizeof(registration_outcomes[0]); i++)
        metrics_counter_add(registrations, (const char *const[]){registration_outcomes[i]}, 0);
}

void user_count_login(const char *outcome)
{
    metrics_counter_add(logins, (const char *const[]){outcome}, 1);
}

void user_count_registration(const char *outcome)
{
    metrics_counter_add(registrations, (const char *const[]){outcome}, 1);
}

void user_count_cache(const char *result)
{
    metrics_counter_add(cache_requests, (const char *const[]){result}, 1);
}
