#include "hlc.h"

uint64_t hlc_next(hlc *c, uint64_t now_ms)
{
    uint64_t wall = now_ms << 16;
    c->last = wall > c->last ? wall : c->last + 1;
    return c->last;
}

void hlc_observe(hlc *c, uint64_t version)
{
    if (version > c->last)
        c->last = version;
}
