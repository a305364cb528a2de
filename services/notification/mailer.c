/* mailer.c - email over SMTP with libcurl, on the worker's loop.
 *
 * Each message is one curl easy handle on the worker's curl_loop (curl's
 * multi interface driven by the h2o loop: nothing blocks). The multi
 * handle keeps up to SMTP_CONNECTIONS connections to the server open and
 * reuses them: a message goes out on an idle connection with MAIL FROM,
 * RCPT TO and DATA, and no new TCP connection, greeting or EHLO
 * (CURLMOPT_MAXCONNECTS keeps them cached between bursts). At most that
 * many messages are handed to curl at once; the others wait here, in
 * order, so that SMTP_TIMEOUT_MS is each message's own time with the
 * server, not its wait in the queue (curl would count a wait for a free
 * connection against the timeout). The server closing a connection (a
 * restart) costs one reconnect, done by curl.
 *
 * The message is plain UTF-8 text with the headers RFC 5322 needs; the
 * subject and display names are RFC 2047 encoded words when not plain
 * ASCII, and stripped of control characters first, so no event data can
 * add a header. The Message-ID is the event's, the same on every attempt,
 * so a receiver can tell a resend (after a crash between the server's
 * "250 OK" and our record of it) from a new message.
 *
 * The fault notification.smtp_down fails every message without
 * connecting, as an unreachable server would.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buffer.h"
#include "curl_loop.h"
#include "loop_timer.h"
#include "notification.h"
#include "utf8.h"

typedef struct mail_job {
    struct mail_job *next, *prev; /* every job of the mailer */
    struct mail_job *waiting;     /* the next one waiting for a connection */
    bool started;                 /* handed to curl */
    mailer_t *mailer;
    CURL *easy; /* NULL when it never reached curl (the fault) */
    struct curl_slist *rcpt;
    buffer_t message;
    size_t sent; /* bytes of `message` curl has read */
    char error[CURL_ERROR_SIZE];
    loop_timer_t fail_later;
    mailer_fn cb;
    void *data;
} mail_job_t;

struct mailer {
    curl_loop_t *curl;
    mail_job_t *jobs;
    size_t active;                      /* handed to curl: at most smtp_connections */
    mail_job_t *waiting, *waiting_tail; /* prepared, in order */
    bool closing;
};

bool mailer_address_valid(const char *address)
{
    size_t len = strlen(address);
    const char *at = strchr(address, '@');
    if (len < 3 || len > 254 || at == NULL || at == address || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return false;
    for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("<>()[]\\,;:\"", *p) != NULL)
            return false;
    return true;
}

/* --- the message ------------------------------------------------------------------ */

/* `s` with every control character (CR and LF among them) made a space. */
static char *header_safe(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        out[i] = (i < n && ((unsigned char)s[i] < ' ' || s[i] == 0x7f)) ? ' ' : s[i];
    return out;
}

static bool plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p >= 0x7f || *p == '"' || *p == '=' || *p == '?')
            return false;
    return true;
}

/* Appends `s` as RFC 2047 "B" encoded words, each at most 45 bytes of
 * whole UTF-8 characters, folded onto continuation lines. */
static void append_encoded(buffer_t *out, const char *s)
{
    size_t len = strlen(s);
    size_t at = 0;
    bool first = true;
    while (at < len) {
        size_t take = utf8_prefix(s + at, len - at, 45);
        if (take == 0)
            take = len - at < 45 ? len - at : 45; /* not UTF-8: cut anywhere, it is encoded anyway */
        unsigned char b64[64];
        int n = EVP_EncodeBlock(b64, (const unsigned char *)s + at, (int)take);
        buffer_appendf(out, "%s=?UTF-8?B?%.*s?=", first ? "" : "\r\n ", n, (const char *)b64);
        first = false;
        at += take;
    }
}

static void append_phrase(buffer_t *out, const char *s)
{
    if (plain_ascii(s) && strlen(s) <= 900) /* longer: encoded words, folded (RFC 5322's 998 per line) */
        buffer_append_str(out, s);
    else
        append_encoded(out, s);
}

static int build_message(buffer_t *out, const mail_t *mail)
{
    char *subject = header_safe(mail->subject);
    char *to_name = mail->to_name != NULL ? header_safe(mail->to_name) : NULL;
    char *from_name = header_safe(notification_config.smtp_from_name);
    if (subject == NULL || from_name == NULL || (mail->to_name != NULL && to_name == NULL)) {
        free(subject), free(to_name), free(from_name);
        return -1;
    }
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buffer_appendf(out, "Date: %s\r\nFrom: ", date);
    append_phrase(out, from_name);
    buffer_appendf(out, " <%s>\r\nTo: ", notification_config.smtp_from);
    if (to_name != NULL && to_name[0] != '\0') {
        append_phrase(out, to_name);
        buffer_append_str(out, " ");
    }
    buffer_appendf(out, "<%s>\r\nSubject: ", mail->to);
    append_phrase(out, subject);
    buffer_appendf(out,
                   "\r\nMessage-ID: <%s@oms.local>\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
                   mail->message_id);
    for (const char *p = mail->text; *p != '\0'; p++) {
        if (*p == '\n')
            buffer_append(out, "\r\n", 2);
        else if (*p != '\r')
            buffer_append(out, p, 1);
    }
    buffer_append(out, "\r\n", 2);
    free(subject), free(to_name), free(from_name);
    return 0;
}

/* --- sending ------------------------------------------------------------------------- */

static void unlink_job(mailer_t *mailer, mail_job_t *job)
{
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        mailer->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
}

static void start(mail_job_t *job);

static void drop_waiting(mailer_t *mailer, mail_job_t *job)
{
    mail_job_t **p = &mailer->waiting, *previous = NULL;
    while (*p != NULL && *p != job) {
        previous = *p;
        p = &(*p)->waiting;
    }
    if (*p == NULL)
        return;
    *p = job->waiting;
    if (mailer->waiting_tail == job)
        mailer->waiting_tail = previous;
}

/* Hands waiting messages to curl while a connection is free. */
static void start_waiting(mailer_t *mailer)
{
    while (!mailer->closing && mailer->waiting != NULL &&
           mailer->active < (size_t)notification_config.smtp_connections) {
        mail_job_t *job = mailer->waiting;
        mailer->waiting = job->waiting;
        if (mailer->waiting == NULL)
            mailer->waiting_tail = NULL;
        start(job);
    }
}

static void finish(mail_job_t *job, const char *error)
{
    mailer_t *mailer = job->mailer;
    unlink_job(mailer, job);
    loop_timer_stop(&job->fail_later);
    if (job->started) {
        curl_loop_remove(mailer->curl, job->easy);
        mailer->active--;
    } else if (job->easy != NULL) {
        drop_waiting(mailer, job);
    }
    if (job->easy != NULL)
        curl_easy_cleanup(job->easy);
    curl_slist_free_all(job->rcpt);
    buffer_free(&job->message);
    job->cb(job->data, error);
    free(job);
    start_waiting(mailer);
}

static size_t read_message(char *out, size_t size, size_t count, void *arg)
{
    mail_job_t *job = arg;
    size_t left = job->message.len - job->sent;
    size_t n = size * count < left ? size * count : left;
    memcpy(out, job->message.data + job->sent, n);
    job->sent += n;
    return n;
}

static void on_transfer_done(void *owner, CURL *easy, CURLcode result)
{
    (void)owner;
    mail_job_t *job = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&job);
    if (result == CURLE_OK) {
        finish(job, NULL);
        return;
    }
    char error[CURL_ERROR_SIZE + 64];
    snprintf(error, sizeof(error), "%s", job->error[0] != '\0' ? job->error : curl_easy_strerror(result));
    finish(job, error);
}

static void on_fail_later(loop_timer_t *timer)
{
    mail_job_t *job = timer->data;
    finish(job, job->error);
}

static void start(mail_job_t *job)
{
    if (curl_loop_add(job->mailer->curl, job->easy) != 0) {
        curl_easy_cleanup(job->easy);
        job->easy = NULL;
        snprintf(job->error, sizeof(job->error), "%s", "the transfer could not be started");
        loop_timer_start(&job->fail_later, 0, on_fail_later, job);
        return;
    }
    job->started = true;
    job->mailer->active++;
}

static CURL *prepare(mail_job_t *job)
{
    const notification_config_t *cfg = &notification_config;
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return NULL;
    char from[300];
    snprintf(from, sizeof(from), "<%s>", cfg->smtp_from);
    curl_easy_setopt(easy, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, job->rcpt);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)job->message.len);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(easy, CURLOPT_READDATA, job);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)cfg->smtp_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->smtp_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, job->error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, job);
    return easy;
}

void mailer_send(mailer_t *mailer, worker_t *worker, const mail_t *mail, mailer_fn cb, void *data)
{
    mail_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        cb(data, "out of memory");
        return;
    }
    *job = (mail_job_t){.mailer = mailer, .cb = cb, .data = data, .next = mailer->jobs};
    if (mailer->jobs != NULL)
        mailer->jobs->prev = job;
    mailer->jobs = job;
    const char *error = NULL;
    char rcpt[300];
    snprintf(rcpt, sizeof(rcpt), "<%s>", mail->to);
    if (worker_fault(worker, "smtp_down") > 0)
        error = "SMTP is down (fault notification.smtp_down)";
    else if (!mailer_address_valid(mail->to))
        error = "not a valid recipient address";
    else if ((job->rcpt = curl_slist_append(NULL, rcpt)) == NULL || build_message(&job->message, mail) != 0 ||
             (job->easy = prepare(job)) == NULL)
        error = "out of memory";
    if (error != NULL) { /* answered from the loop, never from inside this call */
        snprintf(job->error, sizeof(job->error), "%s", error);
        loop_timer_start(&job->fail_later, 0, on_fail_later, job);
        return;
    }
    if (mailer->waiting_tail != NULL)
        mailer->waiting_tail->waiting = job;
    else
        mailer->waiting = job;
    mailer->waiting_tail = job;
    start_waiting(mailer);
}

mailer_t *mailer_create(h2o_evloop_t *loop)
{
    mailer_t *mailer = calloc(1, sizeof(*mailer));
    if (mailer == NULL)
        return NULL;
    mailer->curl = curl_loop_create(loop, on_transfer_done, mailer);
    if (mailer->curl == NULL) {
        free(mailer);
        return NULL;
    }
    curl_multi_setopt(curl_loop_multi(mailer->curl), CURLMOPT_MAXCONNECTS, notification_config.smtp_connections);
    return mailer;
}

void mailer_destroy(mailer_t *mailer)
{
    mailer->closing = true;
    while (mailer->jobs != NULL)
        finish(mailer->jobs, "shutting down");
    curl_loop_destroy(mailer->curl);
    free(mailer);
}
