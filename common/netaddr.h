/* "HOST:PORT" strings of the configs, parsed once for every tier. */
#ifndef COMMON_NETADDR_H
#define COMMON_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Splits "127.0.0.1:7401" into host (NUL-terminated, at most hostlen bytes) and port
 * (0..65535). Returns 0 or UV_EINVAL. */
int netaddr_split(const char *hostport, char *host, size_t hostlen, int *port);
/* "HOST:PORT" for a log line: hostport's host with the port a listener bound (the config's
 * may be 0, a free port), into out; hostport as it is when it does not split. Returns out. */
const char *netaddr_bound(const char *hostport, int port, char *out, size_t outlen);
/* Parses "IPv4:PORT" or "IPv6:PORT" into a socket address. Returns 0 or UV_EINVAL. */
int netaddr_parse(const char *hostport, struct sockaddr_storage *out);

#endif
