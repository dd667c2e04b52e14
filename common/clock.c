#include "clock.h"

#include <time.h>

#include "bscal.h"
#include "testhook.h"

#define CLOCK_NEPAL_OFFSET_MS ((5 * 60 + 45) * 60 * 1000)
#define CLOCK_DAY_MS          (86400 * 1000)

uint64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (testhook_enabled())
        ms = (uint64_t)((int64_t)ms + testhook_clock_offset_ms());
    return ms;
}

int32_t clock_today_utc(void)
{
    return (int32_t)(clock_now_ms() / CLOCK_DAY_MS);
}

int32_t clock_today_nepal(void)
{
    return clock_day_nepal(clock_now_ms());
}

int32_t clock_day_nepal(uint64_t ms)
{
    return (int32_t)((ms + CLOCK_NEPAL_OFFSET_MS) / CLOCK_DAY_MS);
}

uint64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
