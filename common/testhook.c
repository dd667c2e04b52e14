#include "testhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

#define TESTHOOK_MAX_FAULTS  8
#define TESTHOOK_NAME_MAX    48
#define TESTHOOK_RECHECK_MS  50
#define TESTHOOK_MAX_SECONDS (200LL * 365 * 86400)

typedef struct testhook_fault {
    char name[TESTHOOK_NAME_MAX];
    long remaining; /* calls until it strikes; 0 once it has */
} testhook_fault;

static atomic_int testhook__on;
static pthread_mutex_t testhook__lock = PTHREAD_MUTEX_INITIALIZER;
static char testhook__clock_path[512];
static int64_t testhook__offset_ms;
static struct timespec testhook__mtime;
static uint64_t testhook__checked_ms; /* monotonic time of the last look at the file */
static testhook_fault testhook__faults[TESTHOOK_MAX_FAULTS];
static int testhook__n_faults;
static uint64_t testhook__fired;

void testhook_enable(const char *program)
{
    atomic_store(&testhook__on, 1);
    log_warn("TEST HOOKS ENABLED in %s: clock shifts and injected faults may be armed; never "
             "run a production %s with --enable-test-hooks",
             program, program);
}

int testhook_enabled(void)
{
    return atomic_load_explicit(&testhook__on, memory_order_relaxed);
}

static uint64_t testhook__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads the clock file again when it changed. Called with the lock held. */
static void testhook__reload(void)
{
    struct stat sb;
    if (stat(testhook__clock_path, &sb) != 0) {
        testhook__offset_ms = 0;
        memset(&testhook__mtime, 0, sizeof(testhook__mtime));
        return;
    }
    if (sb.st_mtim.tv_sec == testhook__mtime.tv_sec &&
        sb.st_mtim.tv_nsec == testhook__mtime.tv_nsec)
        return;
    testhook__mtime = sb.st_mtim;
    char buf[64] = "";
    FILE *f = fopen(testhook__clock_path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long s = strtoll(buf, &end, 10);
    while (end && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (n == 0 || end == buf) {
        s = 0;
    } else if (errno != 0 || (end && *end != '\0') || s > TESTHOOK_MAX_SECONDS ||
               s < -TESTHOOK_MAX_SECONDS) {
        log_error("test clock file %s: \"%s\" is not a whole number of seconds; clock unchanged",
                  testhook__clock_path, buf);
        return;
    }
    if (s * 1000 != testhook__offset_ms)
        log_warn("TEST CLOCK: wall clock shifted by %lld s (from %s)", s, testhook__clock_path);
    testhook__offset_ms = s * 1000;
}

int testhook_clock_file(const char *path, char *err, size_t errlen)
{
    if (!testhook_enabled()) {
        snprintf(err, errlen, "a test clock needs --enable-test-hooks as well");
        return REINT_EFORBIDDEN;
    }
    if (strlen(path) >= sizeof(testhook__clock_path)) {
        snprintf(err, errlen, "test clock path longer than %zu bytes",
                 sizeof(testhook__clock_path) - 1);
        return REINT_EINVAL;
    }
    pthread_mutex_lock(&testhook__lock);
    snprintf(testhook__clock_path, sizeof(testhook__clock_path), "%s", path);
    memset(&testhook__mtime, 0, sizeof(testhook__mtime));
    testhook__reload();
    testhook__checked_ms = testhook__mono_ms();
    pthread_mutex_unlock(&testhook__lock);
    log_warn("TEST CLOCK from %s: the wall clock follows this file", path);
    return 0;
}

int64_t testhook_clock_offset_ms(void)
{
    if (!testhook_enabled())
        return 0;
    pthread_mutex_lock(&testhook__lock);
    int64_t v = 0;
    if (testhook__clock_path[0]) {
        uint64_t now = testhook__mono_ms();
        if (now - testhook__checked_ms >= TESTHOOK_RECHECK_MS) {
            testhook__checked_ms = now;
            testhook__reload();
        }
        v = testhook__offset_ms;
    }
    pthread_mutex_unlock(&testhook__lock);
    return v;
}

int testhook_arm(const char *spec)
{
    if (!testhook_enabled())
        return REINT_EFORBIDDEN;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    long after = 1;
    if (n == 0 || n >= TESTHOOK_NAME_MAX)
        return REINT_EINVAL;
    if (colon) {
        char *end = NULL;
        errno = 0;
        after = strtol(colon + 1, &end, 10);
        if (errno != 0 || end == colon + 1 || *end != '\0' || after < 1 || after > 1000000000L)
            return REINT_EINVAL;
    }
    pthread_mutex_lock(&testhook__lock);
    int rc = 0;
    testhook_fault *f = NULL;
    for (int i = 0; i < testhook__n_faults; i++)
        if (strlen(testhook__faults[i].name) == n && !strncmp(testhook__faults[i].name, spec, n))
            f = &testhook__faults[i];
    if (f == NULL && testhook__n_faults == TESTHOOK_MAX_FAULTS)
        rc = REINT_EINVAL;
    else if (f == NULL)
        f = &testhook__faults[testhook__n_faults++];
    if (f) {
        snprintf(f->name, sizeof(f->name), "%.*s", (int)n, spec);
        f->remaining = after;
        log_warn("TEST FAULT armed: %s strikes at call %ld from now", f->name, after);
    }
    pthread_mutex_unlock(&testhook__lock);
    return rc;
}

int testhook_fire(const char *name)
{
    if (!testhook_enabled())
        return 0;
    int fire = 0;
    pthread_mutex_lock(&testhook__lock);
    for (int i = 0; i < testhook__n_faults; i++) {
        testhook_fault *f = &testhook__faults[i];
        if (f->remaining > 0 && strcmp(f->name, name) == 0 && --f->remaining == 0) {
            fire = 1;
            testhook__fired++;
        }
    }
    pthread_mutex_unlock(&testhook__lock);
    if (fire)
        log_warn("TEST FAULT %s struck", name);
    return fire;
}

uint64_t testhook_fired_total(void)
{
    pthread_mutex_lock(&testhook__lock);
    uint64_t v = testhook__fired;
    pthread_mutex_unlock(&testhook__lock);
    return v;
}

int testhook_setup(const char *program, int enable, const char *clock_file, const char *faults,
                   char *err, size_t errlen)
{
    if (!enable && (clock_file || faults)) {
        snprintf(err, errlen, "--test-clock and --test-fault need --enable-test-hooks as well");
        return REINT_EFORBIDDEN;
    }
    if (!enable)
        return 0;
    testhook_enable(program);
    int rc = clock_file ? testhook_clock_file(clock_file, err, errlen) : 0;
    if (rc != 0 || faults == NULL)
        return rc;
    char spec[256];
    const char *p = faults;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof(spec) ||
            (snprintf(spec, sizeof(spec), "%.*s", (int)n, p), testhook_arm(spec) != 0)) {
            snprintf(err, errlen, "--test-fault \"%.*s\" is not NAME or NAME:N (N from 1)",
                     (int)(n < 64 ? n : 64), p);
            return REINT_EINVAL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}
