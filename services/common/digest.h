/* digest.h - HMAC-SHA256 (RFC 2104, FIPS 180-4), with OpenSSL.
 *
 * What the services sign and fingerprint with: JWT signatures (jwt.c),
 * and the keyed fingerprints of the requests an Idempotency-Key stands
 * for (order, payment). Keyed, because a fingerprint covers a card number:
 * a plain SHA-256 of so few digits could be reversed by trying them all.
 */
#ifndef OMS_DIGEST_H
#define OMS_DIGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN     32 /* bytes of a SHA-256 */
#define DIGEST_HEX_LEN 64

/* HMAC-SHA256 of `len` bytes of `data` under the NUL-terminated `key`. */
void digest_hmac_sha256(const char *key, const void *data, size_t len, uint8_t out[DIGEST_LEN]);

/* The same, as lower-case hex digits, NUL-terminated. */
void digest_hmac_sha256_hex(const char *key, const void *data, size_t len, char out[DIGEST_HEX_LEN + 1]);

/* The fingerprint of a request reduced to `canonical`, what makes it that
 * request: the hex HMAC-SHA256 of its compact, key-sorted JSON, so that
 * the same request hashes the same whatever its members' order or
 * spacing. The JSON text is wiped once hashed (it may hold a card number). */
void digest_json_fingerprint(const char *key, const json_t *canonical, char out[DIGEST_HEX_LEN + 1]);

#endif
