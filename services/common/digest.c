/* digest.c - HMAC-SHA256 with OpenSSL (digest.h). */
#include "digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

void digest_hmac_sha256(const char *key, const void *data, size_t len, uint8_t out[DIGEST_LEN])
{
    unsigned int out_len = DIGEST_LEN;
    if (HMAC(EVP_sha256(), key, (int)strlen(key), data, len, out, &out_len) == NULL || out_len != DIGEST_LEN)
        abort(); /* no SHA-256 in this OpenSSL: nothing could be signed or checked */
}

void digest_hmac_sha256_hex(const char *key, const void *data, size_t len, char out[DIGEST_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[DIGEST_LEN];
    digest_hmac_sha256(key, data, len, digest);
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[DIGEST_HEX_LEN] = '\0';
}

void digest_json_fingerprint(const char *key, const json_t *canonical, char out[DIGEST_HEX_LEN + 1])
{
    char *text = json_dumps(canonical, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        abort(); /* out of memory: no fingerprint to compare keys with */
    size_t len = strlen(text);
    digest_hmac_sha256_hex(key, text, len, out);
    explicit_bzero(text, len);
    free(text);
}
