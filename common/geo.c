/* Lookups over the local-level table that tools/embed_tables.sh compiles in. */
#include "geo.h"

#include <stddef.h>

/* Defined in the generated build/gen/tables.c, ordered by code (the script checks it). */
extern const unsigned geo__nlevels;
extern const geo_local_level geo__levels[];
extern const char *const geo__province_names[8];

const geo_local_level *geo_find(uint32_t code)
{
    size_t lo = 0, hi = geo__nlevels;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t c = geo__levels[mid].code;
        if (c == code)
            return &geo__levels[mid];
        if (c < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const geo_local_level *geo_all(unsigned *n)
{
    if (n != NULL)
        *n = geo__nlevels;
    return geo__levels;
}

const char *geo_province_name(unsigned province)
{
    if (province < 1 || province > 7)
        return NULL;
    return geo__province_names[province];
}
