#include "record.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RID_BYTES 16

static size_t record__prefix_len(const ProtobufCEnumDescriptor *d)
{
    /* Value 0 is always PREFIX_UNKNOWN or PREFIX_UNSPECIFIED; the prefix ends at its last '_'. */
    const char *z = d->values[0].name;
    const char *u = strrchr(z, '_');
    return u ? (size_t)(u - z) + 1 : 0;
}

int record_enum_parse(const ProtobufCEnumDescriptor *d, const char *s, int *out)
{
    size_t p = record__prefix_len(d);
    for (unsigned i = 1; i < d->n_values; i++) {
        if (strcasecmp(d->values[i].name + p, s) == 0) {
            *out = d->values[i].value;
            return 0;
        }
    }
    return REINT_EINVAL;
}

const char *record_enum_name(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (v == NULL || value == 0)
        return "UNKNOWN";
    return v->name + record__prefix_len(d);
}

void record_enum_list(const ProtobufCEnumDescriptor *d, char *buf, size_t len)
{
    size_t p = record__prefix_len(d), o = 0;
    buf[0] = '\0';
    for (unsigned i = 1; i < d->n_values && o < len; i++) {
        int n = snprintf(buf + o, len - o, "%s%s", i > 1 ? ", " : "", d->values[i].name + p);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static int record__fail(record_error *err, const char *field, const char *fmt, long long v)
{
    err->field = field;
    snprintf(err->reason, sizeof(err->reason), fmt, v);
    return REINT_EINVAL;
}

static int record__day(int32_t day, int32_t today, record_error *err, const char *field)
{
    if (day < RECORD_MIN_DAY)
        return record__fail(err, field, "day %lld is before 1943-04-14 (BS 2000-01-01)", day);
    if (day > today + 1)
        return record__fail(err, field, "day %lld is in the future", day);
    return 0;
}

static int record__enum(int v, record_error *err, const char *field)
{
    if (v < 0)
        return record__fail(err, field, "negative enumeration value %lld", v);
    return 0;
}

static int record__country(const char *c, record_error *err, const char *field)
{
    if (c == NULL || c[0] == '\0')
        return 0;
    if (strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z') {
        err->field = field;
        snprintf(err->reason, sizeof(err->reason),
                 "\"%.8s\" is not an ISO 3166 alpha-2 code (two capital letters)", c);
        return REINT_EINVAL;
    }
    return 0;
}

static int record__person(const Reint__V1__Person *p, int32_t today, record_error *err)
{
    int rc;
    if ((rc = record__enum((int)p->category, err, "person.category")) ||
        (rc = record__enum((int)p->sex, err, "person.sex")) ||
        (rc = record__enum((int)p->age_band, err, "person.age_band")) ||
        (rc = record__enum((int)p->caste_group, err, "person.caste_group")) ||
        (rc = record__enum((int)p->disability, err, "person.disability")) ||
        (rc = record__enum((int)p->family_member_abroad, err, "person.family_member_abroad")) ||
        (rc = record__enum((int)p->remigration_intention, err, "person.remigration_intention")) ||
        (rc = record__enum((int)p->consent, err, "person.consent")))
        return rc;
    if ((rc = record__day(p->registered_day, today, err, "person.registered_day")))
        return rc;
    if ((rc = record__country(p->destination_country, err, "person.destination_country")))
        return rc;
    if (p->years_abroad < -1 || p->years_abroad > 80)
        return record__fail(err, "person.years_abroad", "%lld is outside -1..80", p->years_abroad);
    if (p->return_month != 0) {
        int y = p->return_month / 100, m = p->return_month % 100;
        if (y < 1943 || y > 2100 || m < 1 || m > 12)
            return record__fail(err, "person.return_month", "%lld is not a YYYYMM month",
                                p->return_month);
    }
    return 0;
}

static int record__service(const Reint__V1__Service *s, int32_t today, record_error *err)
{
    int rc;
    if (s->person_id.len != RID_BYTES)
        return record__fail(err, "service.person_id", "length %lld, expected 16 bytes",
                            (long long)s->person_id.len);
    if ((rc = record__enum((int)s->type, err, "service.type")) ||
        (rc = record__enum((int)s->status, err, "service.status")) ||
        (rc = record__enum((int)s->provider, err, "service.provider")) ||
        (rc = record__enum((int)s->programme, err, "service.programme")))
        return rc;
    if ((rc = record__day(s->day, today, err, "service.day")))
        return rc;
    if (s->amount_npr < -1 || s->amount_npr > 100000000000LL)
        return record__fail(err, "service.amount_npr", "%lld is outside 0..100000000000",
                            s->amount_npr);
    return 0;
}

static int record__enterprise(const Reint__V1__Enterprise *e, int32_t today, record_error *err)
{
    int rc;
    if (e->owner_id.len != RID_BYTES)
        return record__fail(err, "enterprise.owner_id", "length %lld, expected 16 bytes",
                            (long long)e->owner_id.len);
    if ((rc = record__enum((int)e->action, err, "enterprise.action")) ||
        (rc = record__enum((int)e->sector, err, "enterprise.sector")) ||
        (rc = record__enum((int)e->registered, err, "enterprise.registered")) ||
        (rc = record__enum((int)e->status, err, "enterprise.status")))
        return rc;
    if ((rc = record__day(e->day, today, err, "enterprise.day")))
        return rc;
    if (e->employees < -1 || e->employees > 100000)
        return record__fail(err, "enterprise.employees", "%lld is outside 0..100000", e->employees);
    return 0;
}

int record_kind(const Reint__V1__Record *r)
{
    switch (r->body_case) {
    case REINT__V1__RECORD__BODY_PERSON:
        return REINT__V1__RECORD_KIND__RECORD_KIND_PERSON;
    case REINT__V1__RECORD__BODY_SERVICE:
        return REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE;
    case REINT__V1__RECORD__BODY_ENTERPRISE:
        return REINT__V1__RECORD_KIND__RECORD_KIND_ENTERPRISE;
    case REINT__V1__RECORD__BODY_AVAILABILITY:
        return REINT__V1__RECORD_KIND__RECORD_KIND_AVAILABILITY;
    case REINT__V1__RECORD__BODY_MONTH_CLOSE:
        return REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE;
    case REINT__V1__RECORD__BODY_TOMBSTONE:
        return (int)r->tombstone->kind;
    default:
        return 0;
    }
}

int record_validate(const Reint__V1__Record *r, int32_t today, record_error *err)
{
    int rc;
    err->field = "";
    err->reason[0] = '\0';
    if (r->id.len != RID_BYTES)
        return record__fail(err, "id", "length %lld, expected 16 bytes", (long long)r->id.len);
    if (r->version == 0)
        return record__fail(err, "version", "version %lld must be above 0", 0);
    switch (r->body_case) {
    case REINT__V1__RECORD__BODY_PERSON:
        return record__person(r->person, today, err);
    case REINT__V1__RECORD__BODY_SERVICE:
        return record__service(r->service, today, err);
    case REINT__V1__RECORD__BODY_ENTERPRISE:
        return record__enterprise(r->enterprise, today, err);
    case REINT__V1__RECORD__BODY_AVAILABILITY:
        if ((rc = record__enum((int)r->availability->service, err, "availability.service")) ||
            (rc = record__enum((int)r->availability->provider, err, "availability.provider")))
            return rc;
        return record__day(r->availability->as_of_day, today, err, "availability.as_of_day");
    case REINT__V1__RECORD__BODY_MONTH_CLOSE:
        if (r->month_close->month < 1 || r->month_close->month > 12)
            return record__fail(err, "month_close.month", "%lld is outside 1..12",
                                r->month_close->month);
        if (r->month_close->year < 1943 || r->month_close->year > 2100)
            return record__fail(err, "month_close.year", "%lld is outside 1943..2100",
                                r->month_close->year);
        return record__day(r->month_close->closed_day, today, err, "month_close.closed_day");
    case REINT__V1__RECORD__BODY_TOMBSTONE:
        if (r->tombstone->kind <= 0)
            return record__fail(err, "tombstone.kind", "kind %lld is not a record kind",
                                (long long)r->tombstone->kind);
        return 0;
    default:
        return record__fail(err, "body", "no record body (kind %lld)", (long long)r->body_case);
    }
}
