/* client_address.h - who is calling: the peer, or the client behind a proxy.
 *
 * Behind the gateway every request's peer is the gateway, so the client's
 * address travels in X-Forwarded-For, which each proxy appends to. Anyone
 * can send that header, though, so it is believed only when the peer is a
 * trusted proxy (TRUSTED_PROXIES), and then read from the right: the first
 * address that is not itself a trusted proxy is the client. Per-IP limits
 * (login brute-force protection) depend on this not being spoofable.
 */
#ifndef OMS_CLIENT_ADDRESS_H
#define OMS_CLIENT_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define CLIENT_ADDRESS_MAX_NETWORKS 16
#define CLIENT_ADDRESS_TEXT_MAX     46 /* INET6_ADDRSTRLEN */

typedef struct client_network {
    int family; /* AF_INET or AF_INET6 */
    unsigned char address[16];
    int prefix_bits;
} client_network_t;

typedef struct client_networks {
    size_t count;
    client_network_t items[CLIENT_ADDRESS_MAX_NETWORKS];
} client_networks_t;

/* Parses a comma-separated list of addresses and CIDR networks
 * ("127.0.0.0/8, ::1, 172.16.0.0/12"). Returns 0, or -1 with a reason. */
int client_networks_parse(const char *list, client_networks_t *out, char *error, size_t error_size);

/* True when the textual address `address` lies in one of `networks`. */
bool client_networks_contain(const client_networks_t *networks, const char *address);

/* Writes the client's address into `out` (at least CLIENT_ADDRESS_TEXT_MAX
 * bytes): `peer` itself unless it is trusted and `forwarded` (the header's
 * value, may be NULL) names an address, as described above. Malformed
 * header entries stop the walk at the last address found. */
void client_address_resolve(const client_networks_t *trusted, const char *peer, const char *forwarded,
                            size_t forwarded_len, char *out);

#endif
