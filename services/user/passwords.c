/* passwords.c - argon2id hashing and verification on the background pool.
 *
 * Argon2id (RFC 9106) is deliberately slow and memory-hard: with the
 * defaults (19 MiB, 2 passes, 1 lane: OWASP's recommended minimum) one hash
 * takes ~35 ms of one core. That is why it never runs on an event loop:
 * each call becomes a job on the work pool (work_pool.h) and the request
 * waits for it without blocking anyone else.
 *
 * The fault `user.cpu_burn` = N makes every job compute N extra hashes
 * (at most 50): the lab's "CPU saturation" scenario.
 */
#include <argon2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "user.h"

#define SALT_LEN        16
#define HASH_LEN        32
#define ENCODED_MAX     256
#define PASSWORD_BYTES  (USER_PASSWORD_MAX * 4) /* UTF-8: at most 4 bytes a character */
#define MAX_BURN_ROUNDS 50

/* In the request's memory (context.h): it stays valid while a pool thread
 * works on it, even if the client leaves; the password is wiped as soon as
 * the hash is computed. */
typedef struct password_job {
    http_request_t *r;
    void *data; /* the caller's, for its next step */
    bool verifying;
    bool against_dummy; /* the email is unknown: never a match */
    bool matches;       /* verifying: the result */
    int status;         /* ARGON2_OK or the library's error code */
    int burn_rounds;
    char password[PASSWORD_BYTES + 1];
    char hash[ENCODED_MAX]; /* verifying: the stored hash; hashing: the result */
    password_hashed_fn hashed;
    password_checked_fn checked;
} password_job_t;

/* Checked against when the email is unknown: same parameters, same cost. */
static char dummy_hash[ENCODED_MAX];

static int hash_encoded(const char *password, char *out, size_t size)
{
    unsigned char salt[SALT_LEN];
    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
        return ARGON2_MEMORY_ALLOCATION_ERROR; /* no entropy: refuse rather than reuse a salt */
    return argon2id_hash_encoded(user_config.argon2_iterations, user_config.argon2_memory_kib,
                                 user_config.argon2_parallelism, password, strlen(password), salt, sizeof(salt),
                                 HASH_LEN, out, size);
}

int passwords_init(void)
{
    char password[33];
    unsigned char random[16];
    if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
        return -1;
    for (size_t i = 0; i < sizeof(random); i++)
        snprintf(password + 2 * i, 3, "%02x", random[i]);
    int status = hash_encoded(password, dummy_hash, sizeof(dummy_hash));
    if (status != ARGON2_OK) {
        log_error(NULL, "argon2id parameters rejected", LOG_STRING("reason", argon2_error_message(status)));
        return -1;
    }
    return 0;
}

/* Runs on a pool thread. */
static void run_job(void *data)
{
    password_job_t *job = data;
    for (int i = 0; i < job->burn_rounds; i++) {
        char wasted[ENCODED_MAX];
        hash_encoded(job->password, wasted, sizeof(wasted));
    }
    if (job->verifying) {
        job->status = argon2id_verify(job->hash, job->password, strlen(job->password));
        job->matches = job->status == ARGON2_OK && !job->against_dummy;
        if (job->status == ARGON2_VERIFY_MISMATCH)
            job->status = ARGON2_OK;
    } else {
        job->status = hash_encoded(job->password, job->hash, sizeof(job->hash));
    }
    explicit_bzero(job->password, sizeof(job->password));
}

/* Back on the loop, with the client still there. */
static void on_job_done(void *data)
{
    password_job_t *job = data;
    http_request_t *r = job->r;
    if (job->status != ARGON2_OK)
        context_error(&r->super, job->verifying ? "password check failed" : "password hashing failed",
                      LOG_STRING("reason", argon2_error_message(job->status)));
    if (job->verifying)
        job->checked(job->data, job->matches);
    else if (job->status != ARGON2_OK)
        http_respond_error(r, 500, "internal_error", "the password could not be hashed");
    else
        job->hashed(job->data, job->hash);
}

static int submit(http_request_t *r, password_job_t *job)
{
    double burn = context_fault(&r->super, "cpu_burn");
    job->r = r;
    job->burn_rounds = burn >= MAX_BURN_ROUNDS ? MAX_BURN_ROUNDS : (int)burn;
    if (step_work(&r->super, run_job, on_job_done, job) != 0) {
        explicit_bzero(job->password, sizeof(job->password));
        http_add_header(r, "retry-after", "1");
        http_respond_error(r, 503, "busy", "too many password checks in progress; retry shortly");
        return -1;
    }
    return 0;
}

static password_job_t *new_job(http_request_t *r, const char *password, void *data)
{
    password_job_t *job = context_alloc(&r->super, sizeof(*job));
    job->data = data;
    snprintf(job->password, sizeof(job->password), "%s", password);
    return job;
}

int password_hash(http_request_t *r, const char *password, password_hashed_fn done, void *data)
{
    password_job_t *job = new_job(r, password, data);
    job->hashed = done;
    return submit(r, job);
}

int password_verify(http_request_t *r, const char *password, const char *hash, password_checked_fn done, void *data)
{
    password_job_t *job = new_job(r, password, data);
    job->verifying = true;
    job->against_dummy = hash == NULL;
    job->checked = done;
    snprintf(job->hash, sizeof(job->hash), "%s", hash != NULL ? hash : dummy_hash);
    return submit(r, job);
}
