/* domain.c - the shapes the services agree on (domain.h). */
#include "domain.h"

#include <stdio.h>
#include <string.h>

#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER  "abcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"

bool domain_valid_sku(const char *sku)
{
    size_t len = strlen(sku);
    return len >= 3 && len <= DOMAIN_SKU_MAX && sku[0] != '-' && strspn(sku, UPPER DIGITS "-") == len;
}

bool domain_valid_order_id(const char *order_id)
{
    size_t len = strlen(order_id);
    return len >= 1 && len <= DOMAIN_ORDER_ID_MAX && strspn(order_id, UPPER LOWER DIGITS "_-") == len;
}

bool domain_valid_currency(const char *currency)
{
    return strlen(currency) == 3 && strspn(currency, UPPER) == 3;
}

/* The Luhn check (ISO/IEC 7812): from the rightmost digit leftwards, double
 * every second digit (subtracting 9 when that passes 9); the sum of all is
 * a multiple of 10. It catches every single mistyped digit and most swaps
 * of two neighbours. */
bool domain_valid_card_number(const char *number)
{
    size_t len = strlen(number);
    if (len < 12 || len > DOMAIN_CARD_MAX || strspn(number, DIGITS) != len)
        return false;
    int sum = 0;
    for (size_t i = 0; i < len; i++) {
        int digit = number[len - 1 - i] - '0';
        if (i % 2 == 1) {
            digit *= 2;
            if (digit > 9)
                digit -= 9;
        }
        sum += digit;
    }
    return sum % 10 == 0;
}

int domain_read_line(const json_t *items, size_t index, long long max_qty, const char **sku, long long *qty,
                     json_field_error_t *error)
{
    const json_t *item = json_array_get(items, index);
    static const char *const fields[] = {"sku", "qty", NULL};
    char field[32];
    snprintf(field, sizeof(field), "items[%zu]", index);
    if (!json_is_object(item))
        return json_fail(error, field, "%s must be an object with sku and qty", field);
    json_field_error_t inner;
    if (json_reject_unknown_fields(item, fields, &inner) != 0 ||
        json_read_string(item, "sku", true, 3, DOMAIN_SKU_MAX, sku, &inner) != 0 ||
        json_read_int(item, "qty", true, 1, max_qty, qty, NULL, &inner) != 0) {
        char path[sizeof(field) + sizeof(inner.field)];
        snprintf(path, sizeof(path), "%s.%s", field, inner.field);
        return json_fail(error, path, "%s: %s", field, inner.message);
    }
    char path[sizeof(field) + 4];
    snprintf(path, sizeof(path), "%s.sku", field);
    if (!domain_valid_sku(*sku))
        return json_fail(error, path, "%s: sku must be 3 to 32 characters of A-Z, 0-9 and '-'", field);
    for (size_t i = 0; i < index; i++) {
        const char *earlier = json_string_value(json_object_get(json_array_get(items, i), "sku"));
        if (earlier != NULL && strcmp(earlier, *sku) == 0)
            return json_fail(error, path, "%s: sku %s appears twice; sum the quantities", field, *sku);
    }
    return 0;
}
