/* validation.c - the shape of what clients send: order ids, currencies and
 * card numbers. */
#include <string.h>

#include "payment.h"

bool payment_valid_order_id(const char *order_id)
{
    size_t len = strlen(order_id);
    return len >= 1 && len <= PAYMENT_ORDER_ID_MAX &&
           strspn(order_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

bool payment_valid_currency(const char *currency)
{
    return strlen(currency) == 3 && strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3;
}

/* The Luhn check (ISO/IEC 7812): from the rightmost digit leftwards, double
 * every second digit (subtracting 9 when that passes 9); the sum of all is
 * a multiple of 10. It catches every single mistyped digit and most swaps
 * of two neighbours. */
bool payment_valid_card_number(const char *number)
{
    size_t len = strlen(number);
    if (len < 12 || len > 19 || strspn(number, "0123456789") != len)
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
