/* The process's wall clock: CLOCK_REALTIME, shifted only by a test clock file when the test
 * hooks are enabled (testhook.h). Every "now" and "today" of the product comes from here, so
 * a system test can age a running daemon without touching its store. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <stdint.h>

/* Milliseconds since 1970-01-01 UTC. */
uint64_t clock_now_ms(void);
/* Today's Gregorian day in UTC, as days since 1970-01-01. */
int32_t clock_today_utc(void);
/* Today's day in Nepal (UTC+05:45), whatever the machine's zone: the municipal office's
 * calendar day, and the day on which the hub decides what is due. */
int32_t clock_today_nepal(void);
/* The day in Nepal of ms since the epoch (days since 1970-01-01). */
int32_t clock_day_nepal(uint64_t ms);

/* Milliseconds of CLOCK_MONOTONIC, for durations and deadlines (never shifted). */
uint64_t clock_mono_ms(void);

#endif
