/* registration.c - POST /api/users/register {email, password, name}.
 *
 *   validate -> is the email taken? -> hash the password (background pool)
 *   -> insert the user and its user.registered event (one transaction) -> 201
 *
 * The early "taken?" check spares a 35 ms hash for an obvious duplicate; the
 * unique index still decides a race between two sign-ups.
 */
#include <string.h>

#include "log.h"
#include "utf8.h"
#include "user.h"

typedef struct registration {
    http_request_t *r;
    const char *email;
    const char *name;
    char *password; /* request pool; wiped once handed to the hash job */
} registration_t;

/* Reads and checks the body into `reg`; answers 400 and returns -1 when a
 * field is wrong. */
static int read_registration(http_request_t *r, registration_t *reg)
{
    json_t *body = http_read_json_body(r);
    if (body == NULL)
        return -1;
    static const char *const allowed[] = {"email", "password", "name", NULL};
    const char *email, *password, *name;
    json_field_error_t error;
    int status = json_reject_unknown_fields(body, allowed, &error);
    if (status == 0)
        status = user_read_credentials(body, &email, &password, &error);
    size_t password_chars = status == 0 ? utf8_length(password, strlen(password)) : 0;
    if (status == 0 && (password_chars < USER_PASSWORD_MIN || password_chars > USER_PASSWORD_MAX))
        status =
            json_fail(&error, "password", "password must be %d to %d characters", USER_PASSWORD_MIN, USER_PASSWORD_MAX);
    if (status == 0)
        status = json_read_text(body, "name", true, 1, USER_NAME_MAX, &name, &error);
    if (status == 0) {
        reg->email = h2o_strdup(&r->req->pool, email, SIZE_MAX).base;
        reg->name = h2o_strdup(&r->req->pool, name, SIZE_MAX).base;
        reg->password = h2o_strdup(&r->req->pool, password, SIZE_MAX).base;
    }
    json_decref(body);
    if (status != 0) {
        user_count_registration("invalid");
        http_respond_field_error(r, &error);
    }
    return status;
}

static void on_registered(void *data, const pg_reply_t *reply)
{
    registration_t *reg = data;
    http_request_t *r = reg->r;
    if (!http_request_resume(r))
        return;
    if (reply->status == PG_ERROR && strcmp(reply->sqlstate, "23505") == 0) {
        user_count_registration("duplicate");
        http_respond_error(r, 409, "email_taken", "an account with this email already exists");
        return;
    }
    if (!http_check_pg_reply(r, reply))
        return;
    user_count_registration("created");
    json_t *user = json_loads(PQgetvalue(reply->result, 0, 0), 0, NULL);
    log_info(&r->trace, "user registered", LOG_STRING("user_id", json_string_value(json_object_get(user, "id"))),
             LOG_STRING("client", r->client));
    http_respond_json(r, 201, user);
}

static void on_password_hashed(http_request_t *r, const char *hash)
{
    registration_t *reg = r->state;
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&r->trace, traceparent);
    const char *params[] = {reg->email, reg->name, hash, traceparent};
    http_request_hold(r);
    pg_query(r->worker->pg, "user_register", params, on_registered, reg);
}

static void on_email_checked(void *data, const pg_reply_t *reply)
{
    registration_t *reg = data;
    http_request_t *r = reg->r;
    if (!http_request_resume(r) || !http_check_pg_reply(r, reply))
        return;
    if (PQntuples(reply->result) > 0) {
        user_count_registration("duplicate");
        http_respond_error(r, 409, "email_taken", "an account with this email already exists");
        return;
    }
    password_hash(r, reg->password, on_password_hashed);
    explicit_bzero(reg->password, strlen(reg->password));
}

void registration_handle(http_request_t *r)
{
    registration_t *reg = http_request_alloc(r, sizeof(*reg));
    reg->r = r;
    r->state = reg;
    if (read_registration(r, reg) != 0)
        return;
    const char *params[] = {reg->email};
    http_request_hold(r);
    pg_query(r->worker->pg, "user_email_taken", params, on_email_checked, reg);
}
