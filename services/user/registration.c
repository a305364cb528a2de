/* registration.c - POST /api/users/register {email, password, name}.
 *
 *   read_registration -> user_email_taken? (PostgreSQL) -> hash_password
 *   (background pool) -> insert_user (the user and its user.registered
 *   event, one transaction) -> answer_registered 201
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
    char *password; /* request memory; wiped once handed to the hash job */
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
        reg->email = context_strdup(&r->super, email, SIZE_MAX);
        reg->name = context_strdup(&r->super, name, SIZE_MAX);
        reg->password = context_strdup(&r->super, password, SIZE_MAX);
    }
    json_decref(body);
    if (status != 0) {
        user_count_registration("invalid");
        http_respond_field_error(r, &error);
    }
    return status;
}

static void answer_email_taken(http_request_t *r)
{
    user_count_registration("duplicate");
    http_respond_error(r, 409, "email_taken", "an account with this email already exists");
}

static void answer_registered(void *data, const PGresult *result)
{
    registration_t *reg = data;
    http_request_t *r = reg->r;
    user_count_registration("created");
    json_t *user = json_loads(PQgetvalue(result, 0, 0), 0, NULL);
    context_info(&r->super, "user registered", LOG_STRING("user_id", json_string_value(json_object_get(user, "id"))),
                 LOG_STRING("client", r->client));
    http_respond_json(r, 201, user);
}

/* The unique index decides a race between two sign-ups of one email. */
static bool answer_race(void *data, const pg_reply_t *reply)
{
    registration_t *reg = data;
    if (strcmp(reply->sqlstate, "23505") != 0)
        return false;
    answer_email_taken(reg->r);
    return true;
}

static void insert_user(void *data, const char *hash)
{
    registration_t *reg = data;
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&reg->r->super.trace, traceparent);
    const char *params[] = {reg->email, reg->name, hash, traceparent};
    step_query_catch(&reg->r->super, "user_register", params, answer_registered, answer_race, reg);
}

static void hash_password(void *data, const PGresult *result)
{
    registration_t *reg = data;
    if (PQntuples(result) > 0) {
        answer_email_taken(reg->r);
        return;
    }
    password_hash(reg->r, reg->password, insert_user, reg);
    explicit_bzero(reg->password, strlen(reg->password));
}

void registration_handle(http_request_t *r)
{
    registration_t *reg = context_alloc(&r->super, sizeof(*reg));
    reg->r = r;
    if (read_registration(r, reg) != 0)
        return;
    const char *params[] = {reg->email};
    step_query(&r->super, "user_email_taken", params, hash_password, reg);
}
