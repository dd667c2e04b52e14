#include "netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

int netaddr_split(const char *hostport, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(hostport, ':');
    char *end = NULL;
    if (colon == NULL || (size_t)(colon - hostport) >= hostlen)
        return UV_EINVAL;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return UV_EINVAL;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    *port = (int)p;
    return 0;
}

const char *netaddr_bound(const char *hostport, int port, char *out, size_t outlen)
{
    char host[256];
    int configured;
    if (netaddr_split(hostport, host, sizeof(host), &configured) != 0)
        snprintf(out, outlen, "%s", hostport);
    else
        snprintf(out, outlen, "%s:%d", host, port);
    return out;
}

int netaddr_parse(const char *hostport, struct sockaddr_storage *out)
{
    char host[256];
    int port;
    if (netaddr_split(hostport, host, sizeof(host), &port) != 0)
        return UV_EINVAL;
    memset(out, 0, sizeof(*out));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0 ? 0 : UV_EINVAL;
}
