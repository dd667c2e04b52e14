/* The OpenAPI 3 descriptions of the three HTTP APIs, compiled in from docs/openapi/ (one JSON file
 * each) by tools/embed_file.sh and served at /v1/openapi.json. Each is NUL-terminated; _len
 * excludes the NUL. Static data: never freed. */
#ifndef COMMON_OPENAPI_H
#define COMMON_OPENAPI_H

#include <stddef.h>

extern const char openapi_federal[];
extern const size_t openapi_federal_len;
extern const char openapi_hub[];
extern const size_t openapi_hub_len;
extern const char openapi_node[];
extern const size_t openapi_node_len;

#endif
