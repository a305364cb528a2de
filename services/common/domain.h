/* domain.h - the shapes of what the services pass each other, checked the
 * same way wherever they arrive: SKUs, order ids, currencies, card numbers
 * and the order line {sku, qty}.
 *
 * An order id travels from the order service to inventory (a reservation's
 * order_id) and payment (a charge's); a SKU from the catalogue to every
 * order line. A service that accepted a shape its peer refuses would fail
 * in the middle of a saga instead of at the client's request.
 */
#ifndef OMS_DOMAIN_H
#define OMS_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

#define DOMAIN_SKU_MAX      32
#define DOMAIN_ORDER_ID_MAX 64
#define DOMAIN_CARD_MAX     19

/* A catalogue SKU: 3 to 32 of A-Z, 0-9 and '-', not starting with '-'. */
bool domain_valid_sku(const char *sku);

/* An order id as peers take it: 1 to 64 letters, digits, '_' and '-' (a
 * UUID, or a client's own id for a reservation). */
bool domain_valid_order_id(const char *order_id);

/* A currency code's shape (ISO 4217): three upper-case letters. */
bool domain_valid_currency(const char *currency);

/* A card number: 12 to 19 digits that pass the Luhn check. */
bool domain_valid_card_number(const char *number);

/* Reads line `index` of an order's `items` array (the lines before it
 * read already): an object {sku, qty} and nothing else, sku a valid SKU
 * that no earlier line has (a client sums the quantities), qty in
 * [1, max_qty]. Returns 0 with *sku (the element's own string) and *qty,
 * or -1 with `error` naming the field as "items[<index>]" or
 * "items[<index>].<member>". */
int domain_read_line(const json_t *items, size_t index, long long max_qty, const char **sku, long long *qty,
                     json_field_error_t *error);

#endif
