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
    const char *field; /* e.g. "person.registered_bs_month" (static string) */
    char reason[160];
} record_error;

/* Earliest day accepted anywhere: BS 2000-01-01 = 1943-04-14. */
#define RECORD_MIN_DAY (-9759)

/* Checks one record's shape and values. today is the receiver's Gregorian day (days since
 * 1970-01-01); dates more than one day after it are refused, and so is a month pair whose
 * overlap begins more than one day after it. A month pair (Gregorian month, BS month, YYYYMM
 * each: the registration of a Person, the day of a Service or an Enterprise) must name two
 * months that overlap by the BS table. Enumeration values the tier does not know are
 * accepted (schema evolution), but a field it does not know is not: a record or body that
 * carries an unknown field is refused (no unknown bytes are stored upstream; a receiver turns
 * a protocol-1 record's days into pairs with record_upgrade() first). Returns 0 or
 * REINT_EINVAL with err set. The municipality is not checked here: that is a security check
 * of the caller. */
int record_validate(const Reint__V1__Record *r, int32_t today, record_error *err);

/* A record as an upstream tier keeps it: a shallow copy of a received or stored record and
 * of its body, without a protocol-1 day and without unknown fields. Its pointers (id, strings,
 * bytes) point into the record it was made from, which must outlive it; nothing in it is
 * freed. Pack it with reint__v1__record__pack(&u.rec, ...). */
typedef struct record_upgraded {
    Reint__V1__Record rec;
    union {
        Reint__V1__Person person;
        Reint__V1__Service service;
        Reint__V1__Enterprise enterprise;
        Reint__V1__Availability availability;
        Reint__V1__MonthClose month_close;
        Reint__V1__Tombstone tombstone;
    } body;
} record_upgraded;

/* record_upgrade() flags. */
enum {
    /* The record comes from a protocol-1 sender (or a store written before protocol 2): the
     * day of a Person (field 7), Service or Enterprise (field 4), reserved in protocol 2 and
     * so an unknown field here, becomes the event's month pair, and is dropped. A body with
     * no such field and no pair had the day 0 (1970-01-01: proto3 leaves zeros out); one
     * that already has a pair keeps it (so that upgrading twice changes nothing). */
    RECORD_V1_DAYS = 1,
    /* Every other unknown field is dropped (a stored body being migrated). Without this flag
     * a record that carries one is refused. */
    RECORD_STRIP_UNKNOWN = 2,
};

/* Makes *out from in as the flags say. Returns 0, or REINT_EINVAL with err set (an unknown
 * field without RECORD_STRIP_UNKNOWN; a protocol-1 day that is not a varint or lies outside
 * the BS table). */
int record_upgrade(const Reint__V1__Record *in, int flags, record_upgraded *out, record_error *err);

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
