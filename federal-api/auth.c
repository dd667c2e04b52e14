#include "auth.h"

#include <openssl/rand.h>
#include <string.h>
#include <strings.h>

#include "hex.h"
#include "tokens.h"

int auth_token_generate(char *out, size_t outlen)
{
    unsigned char rnd[32];
    if (outlen < AUTH_TOKEN_LEN + 1 || RAND_bytes(rnd, sizeof(rnd)) != 1)
        return REINT_EINVAL;
    memcpy(out, AUTH_TOKEN_PREFIX, 4);
    hex_encode(rnd, sizeof(rnd), out + 4);
    return 0;
}

/* The same SHA-256 hex as the node's and the hub's token files (tokens.h), so that a token's
 * hash is computed one way in the whole project. */
int auth_hash_hex(const char *token, char *out, size_t outlen)
{
    char hex[65];
    if (outlen < AUTH_HASH_HEX + 1 || tokens_hash_hex(token, hex) != 0)
        return REINT_EINVAL;
    memcpy(out, hex, AUTH_HASH_HEX + 1);
    return 0;
}

/* Our tokens carry lowercase hex digits only (hex_encode's), so nothing else is accepted. */
static int auth__lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int auth_parse_bearer(const char *header, char *out, size_t outlen)
{
    if (header == NULL || outlen < AUTH_TOKEN_LEN + 1 || strncasecmp(header, "Bearer ", 7) != 0)
        return REINT_EINVAL;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    if (n != AUTH_TOKEN_LEN || strncmp(t, AUTH_TOKEN_PREFIX, 4) != 0)
        return REINT_EINVAL;
    for (size_t i = 4; i < n; i++)
        if (!auth__lower_hex(t[i]))
            return REINT_EINVAL;
    memcpy(out, t, n);
    out[n] = '\0';
    return 0;
}

int auth_parse_role(const char *s, long province, enum auth_role *role, int *out_province)
{
    *out_province = 0;
    if (strcmp(s, "ministry") == 0)
        *role = AUTH_MINISTRY;
    else if (strcmp(s, "public") == 0)
        *role = AUTH_PUBLIC;
    else if (strcmp(s, "admin") == 0)
        *role = AUTH_ADMIN;
    else if (strcmp(s, "province") == 0 && province >= 1 && province <= 7) {
        *role = AUTH_PROVINCE;
        *out_province = (int)province;
        return 0;
    } else if (strncmp(s, "province:", 9) == 0 && s[9] >= '1' && s[9] <= '7' && s[10] == '\0' &&
               (province == 0 || province == s[9] - '0')) {
        *role = AUTH_PROVINCE;
        *out_province = s[9] - '0';
        return 0;
    } else
        return REINT_EINVAL;
    return province == 0 ? 0 : REINT_EINVAL;
}

enum auth_role auth_role_from_db(const char *s)
{
    if (strcmp(s, "ministry") == 0)
        return AUTH_MINISTRY;
    if (strcmp(s, "province") == 0)
        return AUTH_PROVINCE;
    if (strcmp(s, "public") == 0)
        return AUTH_PUBLIC;
    if (strcmp(s, "admin") == 0)
        return AUTH_ADMIN;
    return AUTH_NONE;
}

const char *auth_role_name(enum auth_role role)
{
    switch (role) {
    case AUTH_MINISTRY:
        return "ministry";
    case AUTH_PROVINCE:
        return "province";
    case AUTH_PUBLIC:
        return "public";
    case AUTH_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

int auth_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > AUTH_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}
