/* Validation of upstream records and the domain enumerations' text names.
 * Every tier validates what it receives with the same rules; a bad record is refused with
 * the field it failed on and a reason, and nothing else is lost with it. */
#ifndef COMMON_RECORD_H
#define COMMON_RECORD_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"

typedef struct record_error {
    const char *field; /* e.g. "person.registered_day" (static string) */
    char reason[160];
} record_error;

/* Earliest day accepted anywhere: BS 2000-01-01 = 1943-04-14. */
#define RECORD_MIN_DAY (-9759)

/* Checks one record's shape and values. today is the receiver's Gregorian day (days since
 * 1970-01-01); dates more than one day after it are refused. Enumeration values the tier
 * does not know are accepted (schema evolution). Returns 0 or REINT_EINVAL with err set.
 * The municipality is not checked here: that is a security check of the caller. */
int record_validate(const Reint__V1__Record *r, int32_t today, record_error *err);

/* Kind of a record body (RECORD_KIND_*), 0 when no body is set. For a tombstone, the kind
 * of the record it deletes. */
int record_kind(const Reint__V1__Record *r);

/* Parses a domain name ("female", "Returnee", "SEED_FUNDING"), case-insensitive, against a
 * protobuf enum whose value names carry a prefix (SEX_FEMALE). Returns 0 with *out set, or
 * REINT_EINVAL. The name "UNKNOWN" is not accepted: an unknown value is an empty cell. */
int record_enum_parse(const ProtobufCEnumDescriptor *d, const char *s, int *out);
/* Domain name of a value ("FEMALE"), or "UNKNOWN" for 0 and values this build does not know. */
const char *record_enum_name(const ProtobufCEnumDescriptor *d, int value);
/* Writes "FEMALE, MALE, OTHER" into buf. */
void record_enum_list(const ProtobufCEnumDescriptor *d, char *buf, size_t len);

#endif
