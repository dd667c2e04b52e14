/* Test-only hooks: a shifted wall clock and injected faults. The system tests run the shipped
 * binaries, so the hooks exist in every build, but nothing arms them unless the process was
 * started with the explicit switch (--enable-test-hooks, which calls testhook_enable()); a
 * daemon so started logs it loudly at startup and shows it in /metrics. Without the switch
 * every query below answers "off" at the cost of one branch. */
#ifndef COMMON_TESTHOOK_H
#define COMMON_TESTHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Switches the hooks on for this process and logs a warning saying so. */
void testhook_enable(const char *program);
int testhook_enabled(void);

/* Makes the wall clock (clock_now_ms) run shifted by the number of seconds written in the
 * file at path (a decimal integer, may be negative; a missing or empty file means 0). The
 * file is read again whenever it changes, so a test can move a running daemon's clock.
 * Returns 0, or REINT_EFORBIDDEN (hooks not enabled) / REINT_EIO with err set. */
int testhook_clock_file(const char *path, char *err, size_t errlen);
/* The current shift in milliseconds (0 when no clock file is set). */
int64_t testhook_clock_offset_ms(void);

/* Arms the fault named name: testhook_fire(name) answers 1 on the after-th call from now
 * (1 = the next) and 0 before and after, so a fault strikes once. spec is "name" or
 * "name:after". Returns 0, REINT_EFORBIDDEN (hooks not enabled) or REINT_EINVAL. */
int testhook_arm(const char *spec);
/* 1 when the fault named name strikes at this call; always 0 without the switch. */
int testhook_fire(const char *name);
/* Faults that have struck since the start, for /metrics. */
uint64_t testhook_fired_total(void);

/* The three command-line options of every daemon, applied: enable (--enable-test-hooks),
 * clock_file (--test-clock FILE, may be NULL) and faults (--test-fault NAME[:N][,...], may be
 * NULL). A clock or a fault without enable is refused. Returns 0, or a REINT_E* code with
 * err set (the caller exits with a usage error). */
int testhook_setup(const char *program, int enable, const char *clock_file, const char *faults,
                   char *err, size_t errlen);

#endif
