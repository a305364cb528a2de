/* client_address.c - trusted-proxy aware client addresses. */
#include "client_address.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

/* Parses one textual address; returns its family, or 0 when it is none. */
static int parse_address(const char *text, unsigned char out[16])
{
    if (inet_pton(AF_INET, text, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, text, out) == 1)
        return AF_INET6;
    return 0;
}

static int parse_network(const char *text, client_network_t *network)
{
    char address[CLIENT_ADDRESS_TEXT_MAX];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (len == 0 || len >= sizeof(address))
        return -1;
    memcpy(address, text, len);
    address[len] = '\0';
    network->family = parse_address(address, network->address);
    if (network->family == 0)
        return -1;
    int max_bits = network->family == AF_INET ? 32 : 128;
    network->prefix_bits = max_bits;
    if (slash != NULL) {
        long bits;
        if (slash[1] == '-' || config_parse_long(slash + 1, &bits) != 0 || bits > max_bits)
            return -1; /* "/-0" would read as /0: trusting every address */
        network->prefix_bits = (int)bits;
    }
    return 0;
}

int client_networks_parse(const char *list, client_networks_t *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof(*out));
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        size_t len = strcspn(p, ", ");
        char item[64];
        if (len >= sizeof(item) || out->count == CLIENT_ADDRESS_MAX_NETWORKS) {
            snprintf(error, error_size, "at most %d networks of at most 63 characters", CLIENT_ADDRESS_MAX_NETWORKS);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_network(item, &out->items[out->count]) != 0) {
            snprintf(error, error_size, "'%s' is not an address or CIDR network", item);
            return -1;
        }
        out->count++;
        p += len;
    }
    return 0;
}

static bool network_contains(const client_network_t *network, int family, const unsigned char *address)
{
    if (network->family != family)
        return false;
    int whole = network->prefix_bits / 8, rest = network->prefix_bits % 8;
    if (memcmp(network->address, address, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (network->address[whole] & mask) == (address[whole] & mask);
}

bool client_networks_contain(const client_networks_t *networks, const char *address)
{
    unsigned char bytes[16];
    int family = parse_address(address, bytes);
    if (family == 0)
        return false;
    for (size_t i = 0; i < networks->count; i++)
        if (network_contains(&networks->items[i], family, bytes))
            return true;
    return false;
}

/* Copies the header entry ending just before `end` (trimmed) into `out` and
 * returns where the entry starts; `out` is "" when it is no address. */
static const char *previous_entry(const char *start, const char *end, char out[CLIENT_ADDRESS_TEXT_MAX])
{
    const char *entry_end = end;
    while (entry_end > start && (entry_end[-1] == ' ' || entry_end[-1] == '\t')) /* OWS: SP and HTAB */
        entry_end--;
    const char *entry_start = entry_end;
    while (entry_start > start && entry_start[-1] != ',')
        entry_start--;
    const char *trimmed = entry_start;
    while (trimmed < entry_end && (*trimmed == ' ' || *trimmed == '\t'))
        trimmed++;
    size_t len = (size_t)(entry_end - trimmed);
    unsigned char bytes[16];
    out[0] = '\0';
    if (len > 0 && len < CLIENT_ADDRESS_TEXT_MAX) {
        memcpy(out, trimmed, len);
        out[len] = '\0';
        if (parse_address(out, bytes) == 0)
            out[0] = '\0';
    }
    return entry_start;
}

void client_address_resolve(const client_networks_t *trusted, const char *peer, const char *forwarded,
                            size_t forwarded_len, char *out)
{
    snprintf(out, CLIENT_ADDRESS_TEXT_MAX, "%s", peer);
    if (forwarded == NULL || !client_networks_contain(trusted, peer))
        return;
    const char *end = forwarded + forwarded_len;
    while (end > forwarded) {
        char entry[CLIENT_ADDRESS_TEXT_MAX];
        const char *start = previous_entry(forwarded, end, entry);
        if (entry[0] == '\0')
            return; /* garbage: keep the last address that was believable */
        memcpy(out, entry, CLIENT_ADDRESS_TEXT_MAX);
        if (!client_networks_contain(trusted, entry))
            return;
        end = start > forwarded ? start - 1 : forwarded; /* skip the comma */
    }
}
