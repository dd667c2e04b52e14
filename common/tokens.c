#include "tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "hex.h"
#include "rid.h"

#define TOKENS_LINE_MAX 512

typedef struct tokens_entry {
    char name[TOKENS_NAME_MAX];
    uint8_t hash[32];
    enum tokens_role role;
} tokens_entry;

static const char *const tokens__roles[] = {
    [TOKENS_OFFICER] = "officer", [TOKENS_REVIEWER] = "reviewer", [TOKENS_ADMIN] = "admin"};

const char *tokens_role_name(enum tokens_role role)
{
    return (unsigned)role < sizeof(tokens__roles) / sizeof(tokens__roles[0]) ? tokens__roles[role]
                                                                             : "officer";
}

int tokens_role_parse(const char *s, enum tokens_role *role)
{
    for (size_t i = 0; i < sizeof(tokens__roles) / sizeof(tokens__roles[0]); i++) {
        if (strcmp(s, tokens__roles[i]) == 0) {
            *role = (enum tokens_role)i;
            return 0;
        }
    }
    return REINT_EINVAL;
}

struct tokens_table {
    struct stat file; /* of the file as read: a change is seen by comparing (tokens_changed) */
    size_t n;
    tokens_entry e[];
};

static int tokens__sha256(const char *s, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return -1;
    return 0;
}

int tokens_hash_hex(const char *token, char hex[65])
{
    uint8_t h[32];
    if (tokens__sha256(token, strlen(token), h) != 0)
        return -1;
    hex_encode(h, 32, hex);
    return 0;
}

/* Parses one line of the tokens file into t. Returns 1 for an entry, 0 for a blank or
 * comment line, -1 with a reason in why. */
static int tokens__line(char *line, tokens_entry *t, const char **why)
{
    char *p = line, *name, *hex;
    size_t n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#' || *p == '\n' || *p == '\r')
        return 0;
    name = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        p++;
    n = (size_t)(p - name);
    if (n >= TOKENS_NAME_MAX) {
        *why = "the name is longer than 63 characters";
        return -1;
    }
    memcpy(t->name, name, n);
    t->name[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] < 0x21 || name[i] == 0x7F) {
            *why = "the name has a control character";
            return -1;
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    hex = p;
    if (strnlen(hex, 64) != 64 || hex_decode(hex, 64, t->hash) != 0) {
        *why = "expected \"name sha256hex\" (64 hex digits of the token's SHA-256)";
        return -1;
    }
    p = hex + 64;
    t->role = TOKENS_OFFICER;
    if (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
        *why = "expected \"name sha256hex\" (64 hex digits of the token's SHA-256)";
        return -1;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0' && *p != '\r' && *p != '\n') {
        char role[16];
        size_t rn = 0;
        while (p[rn] && p[rn] != ' ' && p[rn] != '\t' && p[rn] != '\r' && p[rn] != '\n')
            rn++;
        if (rn >= sizeof(role)) {
            *why = "the role is not officer, reviewer or admin";
            return -1;
        }
        memcpy(role, p, rn);
        role[rn] = '\0';
        if (tokens_role_parse(role, &t->role) != 0) {
            *why = "the role is not officer, reviewer or admin";
            return -1;
        }
        p += rn;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p != '\0') {
        *why = "unexpected text after the role";
        return -1;
    }
    return 1;
}

int tokens_load(tokens_table **out, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[TOKENS_LINE_MAX + 2];
    tokens_table *t = NULL;
    size_t cap = 16;
    long lineno = 0;
    int rc = REINT_EINVAL;
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return REINT_EIO;
    }
    t = malloc(sizeof(*t) + cap * sizeof(tokens_entry));
    if (t == NULL)
        goto nomem;
    t->n = 0;
    if (fstat(fileno(f), &t->file) != 0)
        memset(&t->file, 0, sizeof(t->file));
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *why = NULL;
        lineno++;
        if (strlen(line) > TOKENS_LINE_MAX) {
            snprintf(err, errlen, "%s line %ld: line longer than %d bytes", path, lineno,
                     TOKENS_LINE_MAX);
            goto fail;
        }
        if (t->n == cap) {
            if (cap >= TOKENS_MAX) {
                snprintf(err, errlen, "%s line %ld: more than %d tokens", path, lineno, TOKENS_MAX);
                goto fail;
            }
            tokens_table *nt = realloc(t, sizeof(*t) + 2 * cap * sizeof(tokens_entry));
            if (nt == NULL)
                goto nomem;
            t = nt;
            cap *= 2;
        }
        int r = tokens__line(line, &t->e[t->n], &why);
        if (r < 0) {
            snprintf(err, errlen, "%s line %ld: %s", path, lineno, why);
            goto fail;
        }
        t->n += (size_t)r;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = REINT_EIO;
        goto fail;
    }
    fclose(f);
    *out = t;
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
    rc = REINT_EIO;
fail:
    fclose(f);
    free(t);
    return rc;
}

void tokens_free(tokens_table *t)
{
    free(t);
}

size_t tokens_count(const tokens_table *t)
{
    return t ? t->n : 0;
}

int tokens_changed(const tokens_table *t, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (t == NULL)
        return 1;
    if (st.st_dev != t->file.st_dev || st.st_ino != t->file.st_ino)
        return 2;
    return st.st_size != t->file.st_size || st.st_mtim.tv_sec != t->file.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != t->file.st_mtim.tv_nsec;
}

int tokens_only_added(const tokens_table *old, const tokens_table *new)
{
    if (new == NULL)
        return 0;
    if (old == NULL)
        return 1;
    for (size_t i = 0; i < old->n; i++) {
        const tokens_entry *a = &old->e[i];
        size_t j = 0;
        while (j < new->n &&
               (strcmp(a->name, new->e[j].name) != 0 || memcmp(a->hash, new->e[j].hash, 32) != 0 ||
                a->role != new->e[j].role))
            j++;
        if (j == new->n)
            return 0;
    }
    return 1;
}

/* Every entry is compared, in constant time, so the time taken says nothing about which
 * hash came closest. */
const char *tokens_check(const tokens_table *t, const char *h)
{
    return tokens_check_role(t, h, NULL);
}

const char *tokens_check_role(const tokens_table *t, const char *h, enum tokens_role *role)
{
    uint8_t hash[32];
    const char *who = NULL;
    if (h == NULL || t == NULL)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n == 0 || tokens__sha256(h, n, hash) != 0)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        int eq = CRYPTO_memcmp(hash, t->e[i].hash, 32) == 0;
        if (eq && who == NULL) {
            who = t->e[i].name;
            if (role)
                *role = t->e[i].role;
        }
    }
    return who;
}

int tokens_issue(const char *path, const char *name, char *out, size_t outlen, char *err,
                 size_t errlen)
{
    return tokens_issue_role(path, name, TOKENS_OFFICER, out, outlen, err, errlen);
}

/* A new random token for name into out, and the file's line for it into line. */
static int tokens__make(const char *name, enum tokens_role role, char *out, size_t outlen,
                        char *line, size_t linelen, char *err, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[24];
    char hash[65];
    size_t n = strlen(name);
    if (n == 0 || n >= TOKENS_NAME_MAX || outlen < 2 * sizeof(raw) + 1) {
        snprintf(err, errlen, "names are 1 to %d characters", TOKENS_NAME_MAX - 1);
        return REINT_EINVAL;
    }
    for (const char *p = name; *p; p++) {
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            snprintf(err, errlen, "names use letters, digits, - _ .");
            return REINT_EINVAL;
        }
    }
    if (rid_random(raw, sizeof(raw)) != 0) {
        snprintf(err, errlen, "no randomness");
        return REINT_EIO;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * sizeof(raw)] = '\0';
    if (tokens_hash_hex(out, hash) != 0)
        return REINT_EIO;
    /* An officer's line has no role, so that an older binary still reads the file. */
    if (role == TOKENS_OFFICER)
        snprintf(line, linelen, "%s %s\n", name, hash);
    else
        snprintf(line, linelen, "%s %s %s\n", name, hash, tokens_role_name(role));
    return 0;
}

/* Why path could not be opened, into err: a link in the file's place is said so. */
static void tokens__open_err(const char *path, char *err, size_t errlen)
{
    if (errno == ELOOP)
        snprintf(err, errlen,
                 "%s is a symbolic link: the tokens file is written only where it is, never "
                 "through a link",
                 path);
    else
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
}

/* The directory path is in, into buf: returns buf, or "." for a bare name. */
static const char *tokens__dir(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == NULL)
        return ".";
    *(slash == buf ? slash + 1 : slash) = '\0';
    return buf;
}

/* Holds the lock of path's directory for one change of the tokens file: an append of `token`
 * landing in the old file while `token --replace` rewrites it would be lost at the rename.
 * Returns the directory's descriptor (close it to unlock), or -1 (then unlocked). */
static int tokens__lock(const char *path)
{
    char dir[4096];
    int fd = open(tokens__dir(path, dir, sizeof(dir)), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void tokens__unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Appends line to path, made 0600 when new (O_EXCL: never through a link), and never
 * through a link when it exists either. */
static int tokens__append(const char *path, const char *line, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        /* A file made now by root (`token` run with sudo) goes to the owner of its directory,
         * the daemon's user, who could not read a root-owned 0600 file. */
        char dir[4096];
        struct stat ds;
        if (geteuid() == 0 && stat(tokens__dir(path, dir, sizeof(dir)), &ds) == 0 &&
            ds.st_uid != 0 && fchown(fd, ds.st_uid, ds.st_gid) != 0) {
            snprintf(err, errlen, "%s: cannot give it to the directory's owner: %s", path,
                     strerror(errno));
            close(fd);
            unlink(path);
            return REINT_EIO;
        }
    } else if (errno == EEXIST) {
        fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    }
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (f == NULL) {
        tokens__open_err(path, err, errlen);
        if (fd >= 0)
            close(fd);
        return REINT_EIO;
    }
    fputs(line, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        snprintf(err, errlen, "%s: cannot write", path);
        return REINT_EIO;
    }
    fclose(f);
    return 0;
}

int tokens_issue_role(const char *path, const char *name, enum tokens_role role, char *out,
                      size_t outlen, char *err, size_t errlen)
{
    char line[TOKENS_LINE_MAX];
    int rc = tokens__make(name, role, out, outlen, line, sizeof(line), err, errlen);
    if (rc != 0)
        return rc;
    int lock = tokens__lock(path);
    /* A file that does not parse is not added to: the daemon would not take it, and the
     * token printed would be refused (an operator's attack found it so). */
    tokens_table *t = NULL;
    if (access(path, F_OK) == 0 && tokens_load(&t, path, err, errlen) != 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0, "; fix the file first");
        rc = REINT_EMALFORMED;
    } else {
        rc = tokens__append(path, line, err, errlen);
    }
    tokens_free(t);
    tokens__unlock(lock);
    return rc;
}

size_t tokens_named(const tokens_table *t, const char *name, unsigned *roles)
{
    size_t n = 0;
    *roles = 0;
    for (size_t i = 0; t && i < t->n; i++) {
        if (strcmp(t->e[i].name, name) == 0) {
            n++;
            *roles |= 1u << t->e[i].role;
        }
    }
    return n;
}

int tokens_replace(const char *path, const char *name, int issue, const enum tokens_role *role,
                   enum tokens_role *used, char *out, size_t outlen, size_t *removed, char *err,
                   size_t errlen)
{
    char line[TOKENS_LINE_MAX + 2], copy[TOKENS_LINE_MAX + 2];
    size_t cap = 4096, len = 0;
    long lineno = 0;
    enum tokens_role last = TOKENS_OFFICER;
    unsigned roles = 0; /* the roles of name's tokens, a bit each */
    struct stat st;
    int rc = REINT_EIO;
    *removed = 0;
    int lock = tokens__lock(path);
    /* Not through a link: what is rewritten is the file the daemon reads, nothing else. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        tokens__open_err(path, err, errlen);
        if (f)
            fclose(f);
        else if (fd >= 0)
            close(fd);
        tokens__unlock(lock);
        return REINT_EIO;
    }
    char *buf = malloc(cap);
    if (buf == NULL)
        goto nomem;
    /* Every other line is kept as it is written, comments and blank lines too. */
    while (fgets(line, sizeof(line), f) != NULL) {
        tokens_entry e;
        const char *why = NULL;
        size_t n = strlen(line);
        lineno++;
        if (n > TOKENS_LINE_MAX) {
            snprintf(err, errlen, "%s line %ld: line longer than %d bytes; fix the file first",
                     path, lineno, TOKENS_LINE_MAX);
            rc = REINT_EMALFORMED;
            goto fail;
        }
        memcpy(copy, line, n + 1);
        int r = tokens__line(copy, &e, &why);
        if (r < 0) {
            snprintf(err, errlen, "%s line %ld: %s; fix the file first", path, lineno, why);
            rc = REINT_EMALFORMED;
            goto fail;
        }
        if (r == 1 && strcmp(e.name, name) == 0) {
            (*removed)++;
            last = e.role;
            roles |= 1u << e.role;
            continue;
        }
        if (len + n + TOKENS_LINE_MAX + 2 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL)
                goto nomem;
            buf = nb;
        }
        memcpy(buf + len, line, n);
        len += n;
        if (n > 0 && line[n - 1] != '\n')
            buf[len++] = '\n';
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto fail;
    }
    if (*removed == 0) {
        snprintf(err, errlen, "%s holds no token of %s", path, name);
        rc = REINT_ENOTFOUND;
        goto fail;
    }
    if (issue && role == NULL && (roles & (roles - 1)) != 0) {
        /* Which of them the new token should have is the operator's to say. */
        snprintf(err, errlen,
                 "%s has tokens of several roles (%s%s%s%s%s): give the new one's with --role",
                 name, roles & 1u << TOKENS_OFFICER ? "officer" : "",
                 roles & 1u << TOKENS_OFFICER && roles >> (TOKENS_OFFICER + 1) ? ", " : "",
                 roles & 1u << TOKENS_REVIEWER ? "reviewer" : "",
                 roles & 1u << TOKENS_REVIEWER && roles & 1u << TOKENS_ADMIN ? ", " : "",
                 roles & 1u << TOKENS_ADMIN ? "admin" : "");
        rc = REINT_EINVAL;
        goto fail;
    }
    if (issue) {
        enum tokens_role r = role ? *role : last;
        rc = tokens__make(name, r, out, outlen, buf + len, cap - len, err, errlen);
        if (rc != 0)
            goto fail;
        len += strlen(buf + len);
        if (used)
            *used = r;
    }
    fclose(f);
    rc = fs_write_atomic_like(path, buf, len, &st, err, errlen);
    free(buf);
    tokens__unlock(lock);
    return rc;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
    rc = REINT_EIO;
fail:
    fclose(f);
    free(buf);
    tokens__unlock(lock);
    return rc;
}

/* The roles of a mask as words ("reviewer, admin"), into out. */
static const char *tokens__roles_text(unsigned roles, char *out, size_t len)
{
    out[0] = '\0';
    for (int r = TOKENS_OFFICER; r <= TOKENS_ADMIN; r++) {
        if (roles & 1u << r) {
            size_t n = strlen(out);
            snprintf(out + n, len - n, "%s%s", n ? ", " : "", tokens__roles[r]);
        }
    }
    return out;
}

int tokens_command(const char *prog, const char *path, const char *name, int revoke, int replace,
                   const enum tokens_role *role, int roles)
{
    char err[700], token[128], words[64];
    size_t removed = 0;
    int rc;
    if (revoke || replace) {
        enum tokens_role used = TOKENS_OFFICER;
        rc = tokens_replace(path, name, replace, role, &used, token, sizeof(token), &removed, err,
                            sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "%s token: %s\n", prog, err);
            return rc == REINT_ENOTFOUND || rc == REINT_EINVAL ? 2 : 1;
        }
        fprintf(stderr, "%zu token%s of %s withdrawn", removed, removed == 1 ? "" : "s", name);
        if (replace)
            fprintf(stderr, "; the new one%s%s%s follows", roles ? " (" : "",
                    roles ? tokens__roles[used] : "", roles ? ")" : "");
        fputc('\n', stderr);
        tokens_table *t = NULL;
        if (!replace && tokens_load(&t, path, err, sizeof(err)) == 0 && tokens_count(t) == 0)
            fprintf(stderr,
                    "no token is left in %s: nobody can use the API until `token NAME` makes "
                    "one\n",
                    path);
        tokens_free(t);
        if (replace)
            printf("%s\n", token);
        return 0;
    }
    /* A second token for a name is allowed (two machines of one person), but said: the
     * first stays valid, which a rotation does not want. */
    tokens_table *t = NULL;
    unsigned had = 0;
    size_t n = access(path, F_OK) == 0 && tokens_load(&t, path, err, sizeof(err)) == 0
                   ? tokens_named(t, name, &had)
                   : 0;
    tokens_free(t);
    rc = tokens_issue_role(path, name, role ? *role : TOKENS_OFFICER, token, sizeof(token), err,
                           sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s token: %s\n", prog, err);
        return rc == REINT_EINVAL ? 2 : 1;
    }
    if (n)
        fprintf(stderr,
                "%s already had %zu token%s%s%s%s; this adds another, and the old one%s stay%s "
                "valid (`token --replace` withdraws them)\n",
                name, n, n == 1 ? "" : "s", roles ? " (" : "",
                roles ? tokens__roles_text(had, words, sizeof(words)) : "", roles ? ")" : "",
                n == 1 ? "" : "s", n == 1 ? "s" : "");
    printf("%s\n", token);
    return 0;
}
