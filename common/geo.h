/* Nepal's geography, compiled in from data/nepal_local_levels.csv: 7 provinces,
 * 77 districts, 753 local levels with their official codes. */
#ifndef COMMON_GEO_H
#define COMMON_GEO_H

#include <stdint.h>

typedef struct geo_local_level {
    uint32_t code; /* P·DD·LL, e.g. 10703 */
    uint8_t province;
    uint8_t district;
    const char *name;          /* "Dhankuta Municipality" */
    const char *district_name; /* "Dhankuta" */
    const char *province_name; /* "Koshi" */
    const char *type;          /* "Municipality", "Rural Municipality", ... */
} geo_local_level;

/* The local level with this code, or NULL when the code is not an official one. */
const geo_local_level *geo_find(uint32_t code);
/* All local levels, ordered by code; *n receives the count (753). */
const geo_local_level *geo_all(unsigned *n);
/* Province name for 1..7, NULL otherwise. */
const char *geo_province_name(unsigned province);

#endif
