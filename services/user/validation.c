/* validation.c - the shape of emails, ids and text that clients send. */
#include <ctype.h>
#include <string.h>

#include "user.h"

static bool is_alnum_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A domain: dot-separated labels of letters, digits and inner '-', at least
 * two labels, the last one letters only (a top-level domain). */
static bool valid_domain(const char *domain)
{
    size_t labels = 0;
    const char *label = domain;
    for (;;) {
        size_t len = strcspn(label, ".");
        if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
            return false;
        for (size_t i = 0; i < len; i++)
            if (!is_alnum_ascii(label[i]) && label[i] != '-')
                return false;
        labels++;
        if (label[len] == '\0') {
            for (size_t i = 0; i < len; i++)
                if (!isalpha((unsigned char)label[i]))
                    return false;
            return labels >= 2 && len >= 2;
        }
        label += len + 1;
    }
}

int user_parse_account_role(const char *name, jwt_role_t *role)
{
    jwt_role_t parsed;
    if (jwt_role_parse(name, &parsed) != 0 || parsed == JWT_ROLE_SERVICE)
        return -1;
    *role = parsed;
    return 0;
}

bool user_valid_email(const char *email)
{
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len < 6 || len > USER_EMAIL_MAX || at == NULL || strchr(at + 1, '@') != NULL)
        return false;
    size_t local_len = (size_t)(at - email);
    if (local_len == 0 || local_len > 64 || email[0] == '.' || at[-1] == '.' || strstr(email, "..") != NULL)
        return false;
    /* The unquoted local part of RFC 5322 (atext and dots). */
    static const char local_extra[] = "!#$%&'*+/=?^_`{|}~.-";
    for (const char *p = email; p < at; p++)
        if (!is_alnum_ascii(*p) && strchr(local_extra, *p) == NULL)
            return false;
    return valid_domain(at + 1);
}

void user_lower_ascii(const char *text, char *out, size_t size)
{
    size_t i = 0;
    for (; i + 1 < size && text[i] != '\0'; i++)
        out[i] = (char)tolower((unsigned char)text[i]);
    out[i] = '\0';
}

int user_read_credentials(const json_t *body, const char **email, const char **password, json_field_error_t *error)
{
    int status = json_read_string(body, "email", true, 1, USER_EMAIL_MAX, email, error);
    if (status == 0 && !user_valid_email(*email))
        status = json_fail(error, "email", "email must be an address like name@example.com");
    if (status == 0)
        status = json_read_string(body, "password", true, 1, USER_PASSWORD_MAX * 4, password, error);
    return status;
}
