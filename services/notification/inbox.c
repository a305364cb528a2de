/* inbox.c - the in-app channel, as the customer (or admin) reads it:
 *
 *   GET  /api/notifications?limit=&offset=&unread=true   newest first, with the unread count
 *   POST /api/notifications/{id}/read                     marks one read (idempotent)
 *
 * A customer sees their own notifications; an admin also sees the admins'
 * (low stock, alerts). Anybody else's notification does not exist for the
 * caller: 404, the same as one that does not exist at all.
 */
#include <string.h>

#include "notification.h"
#include "uuid.h"

/* The caller's user id for the statements: an admin token's sub need not
 * be a user's UUID (then it owns nothing of its own). */
static const char *owner_of(const jwt_claims_t *who)
{
    return uuid_is_valid(who->sub) ? who->sub : "00000000-0000-0000-0000-000000000000";
}

static void answer_list(void *data, const PGresult *result)
{
    http_respond_json_text(data, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void list_inbox(http_request_t *r, const jwt_claims_t *who)
{
    http_page_t page;
    if (!http_query_page(r, 20, 100, &page))
        return;
    const char *unread = http_query_param(r, "unread");
    if (unread != NULL && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0) {
        json_field_error_t error;
        json_fail(&error, "unread", "unread must be true or false");
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {owner_of(who), who->role == JWT_ROLE_ADMIN ? "true" : "false",
                            unread != NULL ? unread : "false", page.limit_text, page.offset_text};
    step_query(&r->super, "inbox_list", params, answer_list, r);
}

void inbox_handle_list(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, list_inbox);
}

static void answer_read(void *data, const PGresult *result)
{
    http_request_t *r = data;
    if (PQntuples(result) == 0) {
        http_respond_error(r, 404, "not_found", "no notification with id %s", http_path_param(r, "id"));
        return;
    }
    http_respond_json_text(r, 200, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
}

static void mark_read(http_request_t *r, const jwt_claims_t *who)
{
    const char *id = http_path_param(r, "id");
    if (id == NULL || !uuid_is_valid(id)) {
        json_field_error_t error;
        json_fail(&error, "id", "id must be a notification's UUID");
        http_respond_field_error(r, &error);
        return;
    }
    const char *params[] = {id, owner_of(who), who->role == JWT_ROLE_ADMIN ? "true" : "false"};
    step_query(&r->super, "inbox_read", params, answer_read, r);
}

void inbox_handle_read(http_request_t *r)
{
    auth_require(r, JWT_ROLE_CUSTOMER, mark_read);
}
