#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

static const char *log__program = "reintegration";
static enum log_level log__min = LOG_INFO;

void log_init(const char *program, enum log_level min_level)
{
    log__program = program;
    log__min = min_level;
}

int log_parse_level(const char *s, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error", "SECURITY"};
    char line[2048];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (level < log__min && level != LOG_SECURITY)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", stamp, ts.tv_nsec / 1000000, log__program,
                 names[level]);
    if (n < 0)
        return;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m >= (int)sizeof(line) - n) {
        /* Cut at the buffer: a character it split is left out whole, not shown as '?'. */
        size_t len = strlen(line), i = len;
        while (i > 0 && ((unsigned char)line[i - 1] & 0xC0) == 0x80)
            i--;
        if (i > 0 && (unsigned char)line[i - 1] >= 0xC0 &&
            utf8_len((const unsigned char *)line + i - 1, len - (i - 1)) == 0)
            line[i - 1] = '\0';
    }
    /* One line of UTF-8 (a message may quote a peer's bytes: no line breaks, terminal
     * escapes or broken sequences reach the log), one write per line so that lines from
     * concurrent processes never interleave. */
    char out[sizeof(line)];
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    size_t len = utf8_scrub(out, sizeof(out) - 1, line);
    out[len] = '\n';
    fwrite(out, 1, len + 1, stderr);
}
