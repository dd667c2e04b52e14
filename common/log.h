/* One line per event on stderr: "2026-11-27T21:00:00.123Z provincial-hub info: message". */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_SECURITY };

/* Sets the program name printed on each line and the lowest level shown. */
void log_init(const char *program, enum log_level min_level);
/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
/* Security events (identity mismatch, forged records) are never filtered out. */
#define log_security(...) log_msg(LOG_SECURITY, __VA_ARGS__)

#endif
