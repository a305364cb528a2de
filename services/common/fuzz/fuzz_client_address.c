/* fuzz_client_address.c - TRUSTED_PROXIES lists and X-Forwarded-For.
 *
 * Feeds three lines: a TRUSTED_PROXIES value to client_networks_parse(),
 * a peer address, and an X-Forwarded-For value (absent without a second
 * line break, or when it holds a control byte other than HTAB, which h2o
 * refuses in a header) to client_address_resolve() and
 * client_networks_contain().
 *
 * Asserts, against a reference reading written here:
 *   - a list parses exactly when every item (separated by ',' and ' ') is
 *     an IPv4/IPv6 address, optionally followed by '/' and a prefix length
 *     of plain digits (no sign, no space) no larger than the family's bits,
 *     with at most CLIENT_ADDRESS_MAX_NETWORKS items of under 64 bytes; and
 *     then every network's family, address and prefix are the item's;
 *   - client_networks_contain() agrees with a bitwise prefix comparison;
 *   - client_address_resolve() gives the peer unless the peer is trusted
 *     and the header names an address; then it walks the header from the
 *     right, entries trimmed of optional whitespace (SP and HTAB, RFC 9110
 *     section 5.6.3), and stops at the first address that is not a trusted
 *     proxy, or keeps the last believable one at the first entry that is
 *     no address; the result is NUL-terminated within
 *     CLIENT_ADDRESS_TEXT_MAX and is the peer or a valid address.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "client_address.h"
#include "fuzz_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct reference_network {
    int family;
    unsigned char address[16];
    int bits;
} reference_network_t;

static int address_of(const char *text, size_t len, unsigned char out[16])
{
    char copy[CLIENT_ADDRESS_TEXT_MAX];
    if (len == 0 || len >= sizeof(copy) || memchr(text, '\0', len) != NULL)
        return 0;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (inet_pton(AF_INET, copy, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, copy, out) == 1)
        return AF_INET6;
    return 0;
}

/* The reference list parser; returns the count or -1. */
static int reference_parse(const char *list, reference_network_t *out)
{
    int count = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            return count;
        size_t len = strcspn(p, ", ");
        if (len >= 64 || count == CLIENT_ADDRESS_MAX_NETWORKS)
            return -1;
        const char *slash = memchr(p, '/', len);
        size_t address_len = slash != NULL ? (size_t)(slash - p) : len;
        reference_network_t *n = &out[count];
        n->family = address_of(p, address_len, n->address);
        if (n->family == 0)
            return -1;
        int max = n->family == AF_INET ? 32 : 128;
        n->bits = max;
        if (slash != NULL) {
            const char *digits = slash + 1, *end = p + len;
            if (digits == end)
                return -1;
            long bits = 0;
            for (const char *d = digits; d < end; d++) {
                if (*d < '0' || *d > '9')
                    return -1;
                bits = bits > 1000 ? bits : bits * 10 + (*d - '0');
            }
            if (bits > max)
                return -1;
            n->bits = (int)bits;
        }
        count++;
        p += len;
    }
}

static bool reference_contains(const reference_network_t *networks, int count, const char *text, size_t len)
{
    unsigned char address[16];
    int family = address_of(text, len, address);
    if (family == 0)
        return false;
    for (int i = 0; i < count; i++) {
        const reference_network_t *n = &networks[i];
        if (n->family != family)
            continue;
        bool inside = true;
        for (int bit = 0; bit < n->bits && inside; bit++)
            inside = ((n->address[bit / 8] ^ address[bit / 8]) & (0x80 >> (bit % 8))) == 0;
        if (inside)
            return true;
    }
    return false;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The reference X-Forwarded-For walk; writes the expected result. */
static void reference_resolve(const reference_network_t *networks, int count, const char *peer, const char *forwarded,
                              size_t forwarded_len, char *out, size_t *out_len)
{
    *out_len = strlen(peer);
    memcpy(out, peer, *out_len);
    if (forwarded == NULL || !reference_contains(networks, count, peer, strlen(peer)))
        return;
    const char *end = forwarded + forwarded_len;
    for (;;) {
        const char *start = end;
        while (start > forwarded && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && is_ows(*a))
            a++;
        while (b > a && is_ows(b[-1]))
            b--;
        unsigned char bytes[16];
        if (address_of(a, (size_t)(b - a), bytes) == 0)
            return;
        *out_len = (size_t)(b - a);
        memcpy(out, a, *out_len);
        if (!reference_contains(networks, count, a, (size_t)(b - a)) || start == forwarded)
            return;
        end = start - 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parts_t parts;
    fuzz_split(data, size, '\n', 3, &parts);
    char *list = fuzz_cstring(parts.part[0], parts.len[0]);
    char *peer = parts.count > 1 ? fuzz_cstring(parts.part[1], parts.len[1]) : fuzz_cstring("127.0.0.1", 9);
    const char *forwarded = parts.count > 2 ? parts.part[2] : NULL;
    size_t forwarded_len = parts.count > 2 ? parts.len[2] : 0;
    for (size_t i = 0; i < forwarded_len; i++)
        if (fuzz_is_control((unsigned char)forwarded[i]) && forwarded[i] != '\t')
            forwarded_len = 0, forwarded = NULL; /* h2o refuses such a header value */

    client_networks_t networks;
    char error[256] = "";
    int status = client_networks_parse(list, &networks, error, sizeof(error));
    reference_network_t expected[CLIENT_ADDRESS_MAX_NETWORKS];
    int expected_count = reference_parse(list, expected);
    FUZZ_CHECK((status == 0) == (expected_count >= 0), "client_networks_parse %s '%s' (%s)",
               status == 0 ? "accepted" : "refused", fuzz_show(list, strlen(list)), error);
    if (status != 0) {
        FUZZ_CHECK(error[0] != '\0', "refused without a reason");
        goto Done;
    }
    FUZZ_CHECK(networks.count == (size_t)expected_count, "%zu networks, expected %d", networks.count, expected_count);
    for (int i = 0; i < expected_count; i++) {
        const client_network_t *n = &networks.items[i];
        FUZZ_CHECK(n->family == expected[i].family && n->prefix_bits == expected[i].bits &&
                       memcmp(n->address, expected[i].address, n->family == AF_INET ? 4 : 16) == 0,
                   "network %d is not its item: family %d, /%d for /%d", i, n->family, n->prefix_bits,
                   expected[i].bits);
    }

    if (strlen(peer) < CLIENT_ADDRESS_TEXT_MAX) {
        FUZZ_CHECK(client_networks_contain(&networks, peer) ==
                       reference_contains(expected, expected_count, peer, strlen(peer)),
                   "client_networks_contain disagrees for '%s'", fuzz_show(peer, strlen(peer)));
        char out[CLIENT_ADDRESS_TEXT_MAX + 16];
        memset(out, 'X', sizeof(out));
        client_address_resolve(&networks, peer, forwarded, forwarded_len, out);
        size_t len = strnlen(out, CLIENT_ADDRESS_TEXT_MAX);
        FUZZ_CHECK(len < CLIENT_ADDRESS_TEXT_MAX, "the client address is not NUL-terminated in time");
        unsigned char bytes[16];
        FUZZ_CHECK(strcmp(out, peer) == 0 || address_of(out, len, bytes) != 0, "client '%s' is no address",
                   fuzz_show(out, len));
        char want[CLIENT_ADDRESS_TEXT_MAX + 1];
        size_t want_len;
        reference_resolve(expected, expected_count, peer, forwarded, forwarded_len, want, &want_len);
        FUZZ_CHECK(len == want_len && memcmp(out, want, len) == 0,
                   "client '%s' for X-Forwarded-For '%s'; the reference reads '%s'", fuzz_show(out, len),
                   forwarded != NULL ? fuzz_show(forwarded, forwarded_len) : "(none)", fuzz_show(want, want_len));
    }
Done:
    free(list);
    free(peer);
    return 0;
}
