#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "testhook.h"

int fs_read_all(const char *path, size_t max, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return REINT_EIO;
    }
    uint8_t *buf = malloc(max);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", path);
        return REINT_ENOMEM;
    }
    if (failed || n == max) {
        snprintf(err, errlen, failed ? "cannot read %s" : "%s is too large", path);
        free(buf);
        return failed ? REINT_EIO : REINT_ETOOBIG;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The process's umask, read without changing it (umask(2) would, for every thread). */
static mode_t fs__umask(void)
{
    char line[128];
    unsigned mask = 022;
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Umask: %o", &mask) == 1)
            break;
    if (f)
        fclose(f);
    return (mode_t)mask;
}

int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    return fs_write_atomic_like(path, data, len, NULL, err, errlen);
}

int fs_write_atomic_like(const char *path, const void *data, size_t len, const struct stat *like,
                         char *err, size_t errlen)
{
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.new.XXXXXX", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "path too long: %s", path);
        return REINT_EIO;
    }
    /* A name of its own, made with O_EXCL: never a file or a link someone put there (a
     * daemon's user planting X.new -> /etc/shadow before root rewrites X), and never another
     * writer's half-written file. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return REINT_EIO;
    }
    /* The mode (mkostemp's is 0600), and like's owner and group: a file the daemon reads
     * through its group must stay readable to it, so one that cannot keep them is not
     * written. Without like, the file replaced keeps its mode, and a new one gets 0644 under
     * the process's umask, as open() would give it. */
    struct stat old;
    mode_t mode = like                    ? (like->st_mode & 07777)
                  : stat(path, &old) == 0 ? (old.st_mode & 07777)
                                          : (0644 & ~fs__umask());
    if (fchmod(fd, mode) != 0 || (like && fchown(fd, like->st_uid, like->st_gid) != 0)) {
        snprintf(err, errlen, "cannot give %s the mode %04o%s of %s: %s", tmp, (unsigned)mode,
                 like ? " and the owner and group" : "", path, strerror(errno));
        close(fd);
        unlink(tmp);
        return REINT_EIO;
    }
    const char *p = data;
    size_t left = len;
    if (testhook_fire("fs_write_atomic")) { /* tests: a full disk, once the file is begun */
        errno = ENOSPC;
        left = len + 1;
    }
    while (left > 0 && left <= len) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    if (left > 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return REINT_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        return REINT_EIO;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* The pid written in the lock file, or 0. */
static long fs__lock_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int fs_dir_usable(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return REINT_EINVAL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        return REINT_EINVAL;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "%s: %s (the daemon's user must be able to create files in it)", dir,
                 strerror(errno));
        return REINT_EINVAL;
    }
    return 0;
}

int fs_lock_pidfile(const char *path, int *fd, long *holder, char *err, size_t errlen)
{
    *fd = -1;
    *holder = 0;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return REINT_EIO;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        *holder = fs__lock_pid(f);
        close(f);
        if (e == EWOULDBLOCK)
            return REINT_EEXIST;
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return REINT_EIO;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(f);
        return REINT_EIO;
    }
    *fd = f;
    return 0;
}

int fs_lock_held(const char *path, long *holder)
{
    *holder = 0;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return 0;
    int held = 0;
    if (flock(f, LOCK_SH | LOCK_NB) != 0) {
        held = errno == EWOULDBLOCK;
        if (held)
            *holder = fs__lock_pid(f);
    }
    close(f);
    return held;
}
