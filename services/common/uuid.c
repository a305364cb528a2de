/* uuid.c - UUID shape check and generation. */
#include "uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "random.h"

bool uuid_is_valid(const char *text)
{
    if (strlen(text) != UUID_TEXT_LEN)
        return false;
    for (int i = 0; i < UUID_TEXT_LEN; i++) {
        char c = text[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    return true;
}

void uuid_generate_v4(char out[UUID_TEXT_LEN + 1])
{
    uint64_t high = random_u64(), low = random_u64();
    high = (high & ~0xf000ULL) | 0x4000ULL;                      /* version 4 */
    low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* variant 10 */
    snprintf(out, UUID_TEXT_LEN + 1, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(high >> 32),
             (unsigned)((high >> 16) & 0xffff), (unsigned)(high & 0xffff), (unsigned)(low >> 48),
             (unsigned long long)(low & 0xffffffffffffULL));
}
