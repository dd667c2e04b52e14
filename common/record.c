#include "record.h"

#include "bscal.h"

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

/* A month pair (Gregorian month, BS month) of an event: two real months that overlap, the
 * overlap beginning no later than tomorrow. */
static int record__pair(int32_t ad, int32_t bs, int32_t today, record_error *err,
                        const char *field_ad, const char *field_bs)
{
    int32_t a0, a1, b0, b1, first, last;
    if (bscal_month_span(0, ad, &a0, &a1) != 0 || ad / 100 < 1943 || ad / 100 > 2100)
        return record__fail(err, field_ad, "%lld is not a Gregorian YYYYMM month (1943..2100)", ad);
    int rc = bscal_month_span(1, bs, &b0, &b1);
    if (rc == REINT_ERANGE)
        return record__fail(err, field_bs, "%lld is outside the BS calendar table (2000..2099)",
                            bs);
    if (rc != 0)
        return record__fail(err, field_bs, "%lld is not a BS YYYYMM month", bs);
    if (bscal_pair_span(ad, bs, &first, &last) != 0) {
        err->field = field_bs;
        snprintf(err->reason, sizeof(err->reason),
                 "BS month %04d-%02d does not overlap the Gregorian month %04d-%02d of %s",
                 (int)(bs / 100), (int)(bs % 100), (int)(ad / 100), (int)(ad % 100), field_ad);
        return REINT_EINVAL;
    }
    if (first > today + 1) {
        err->field = field_ad;
        snprintf(err->reason, sizeof(err->reason),
                 "the months %04d-%02d and BS %04d-%02d are in the future", (int)(ad / 100),
                 (int)(ad % 100), (int)(bs / 100), (int)(bs % 100));
        return REINT_EINVAL;
    }
    return 0;
}

/* A message that carries a field this build does not know is refused: a receiver stores no
 * bytes it cannot read (a modified sender could hide personal data in them). */
static int record__known(const ProtobufCMessage *m, const char *field, record_error *err)
{
    if (m == NULL || m->n_unknown_fields == 0)
        return 0;
    err->field = field;
    snprintf(err->reason, sizeof(err->reason),
             "carries field number %u, which protocol version 2 does not define; unknown "
             "fields are never stored",
             (unsigned)m->unknown_fields[0].tag);
    return REINT_EINVAL;
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
    if ((rc = record__pair(p->registered_month, p->registered_bs_month, today, err,
                           "person.registered_month", "person.registered_bs_month")))
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
    if ((rc = record__pair(s->month, s->bs_month, today, err, "service.month", "service.bs_month")))
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
    if ((rc = record__pair(e->month, e->bs_month, today, err, "enterprise.month",
                           "enterprise.bs_month")))
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
    if ((rc = record__known(&r->base, "record", err)) != 0)
        return rc;
    switch (r->body_case) {
    case REINT__V1__RECORD__BODY_PERSON:
        rc = record__known(&r->person->base, "person", err);
        break;
    case REINT__V1__RECORD__BODY_SERVICE:
        rc = record__known(&r->service->base, "service", err);
        break;
    case REINT__V1__RECORD__BODY_ENTERPRISE:
        rc = record__known(&r->enterprise->base, "enterprise", err);
        break;
    case REINT__V1__RECORD__BODY_AVAILABILITY:
        rc = record__known(&r->availability->base, "availability", err);
        break;
    case REINT__V1__RECORD__BODY_MONTH_CLOSE:
        rc = record__known(&r->month_close->base, "month_close", err);
        break;
    case REINT__V1__RECORD__BODY_TOMBSTONE:
        rc = record__known(&r->tombstone->base, "tombstone", err);
        break;
    default:
        break;
    }
    if (rc != 0)
        return rc;
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

/* --- protocol-1 days ------------------------------------------------------------------------ */

/* Reads the varint of an unknown field as an int32 (proto3 int32: a negative value is sent as
 * ten bytes of its 64-bit two's complement). Returns 0 or REINT_EINVAL. */
static int record__varint32(const ProtobufCMessageUnknownField *f, int32_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (f->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT)
        return REINT_EINVAL;
    for (; i < f->len && i < 10; i++) {
        v |= (uint64_t)(f->data[i] & 0x7f) << (7 * i);
        if (!(f->data[i] & 0x80))
            break;
    }
    if (i >= f->len || i >= 10)
        return REINT_EINVAL;
    *out = (int32_t)(uint32_t)v;
    return 0;
}

/* Goes through the unknown fields of a body: the protocol-1 day (field day_tag, with
 * RECORD_V1_DAYS) is read into *day and *had set (0 and 0 when absent); any other is refused,
 * unless the flags say to drop it. */
static int record__unknowns(const ProtobufCMessage *m, const char *name, uint32_t day_tag,
                            int flags, int32_t *day, int *had, record_error *err)
{
    *day = 0;
    *had = 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *f = &m->unknown_fields[i];
        if ((flags & RECORD_V1_DAYS) && day_tag != 0 && f->tag == day_tag) {
            if (record__varint32(f, day) != 0) {
                err->field = name;
                snprintf(err->reason, sizeof(err->reason),
                         "the protocol-1 day (field %u) is not an int32", (unsigned)day_tag);
                return REINT_EINVAL;
            }
            *had = 1;
            continue;
        }
        if (flags & RECORD_STRIP_UNKNOWN)
            continue;
        err->field = name;
        snprintf(err->reason, sizeof(err->reason),
                 "carries field number %u, which protocol version 2 does not define; unknown "
                 "fields are never stored",
                 (unsigned)f->tag);
        return REINT_EINVAL;
    }
    return 0;
}

/* The pair of a protocol-1 event into *ad, *bs, or a refusal naming the day's old field: from
 * its day when the body carried one (had); from day 0 when it carries neither a day nor a
 * pair (proto3 leaves a zero day out). A pair the body already carries, and no day, is kept:
 * upgrading a record twice changes nothing. */
static int record__v1_pair(int32_t day, int had, const char *field, int32_t *ad, int32_t *bs,
                           record_error *err)
{
    if (!had && (*ad != 0 || *bs != 0))
        return 0;
    if (bscal_pair_of_day(day, ad, bs) != 0)
        return record__fail(err, field,
                            "protocol-1 day %lld is outside the BS calendar table "
                            "(1943-04-14 .. 2043-04-13)",
                            day);
    return 0;
}

int record_upgrade(const Reint__V1__Record *in, int flags, record_upgraded *out, record_error *err)
{
    int32_t day = 0;
    int rc = 0, had = 0;
    err->field = "";
    err->reason[0] = '\0';
    memset(out, 0, sizeof(*out));
    out->rec = *in;
    out->rec.base.n_unknown_fields = 0;
    out->rec.base.unknown_fields = NULL;
    if (in->base.n_unknown_fields && !(flags & RECORD_STRIP_UNKNOWN) &&
        (rc = record__known(&in->base, "record", err)) != 0)
        return rc;
    const ProtobufCMessage *body = NULL;
    switch (in->body_case) {
    case REINT__V1__RECORD__BODY_PERSON:
        out->body.person = *in->person;
        out->rec.person = &out->body.person;
        body = &in->person->base;
        if ((rc = record__unknowns(body, "person", 7, flags, &day, &had, err)) != 0)
            return rc;
        if ((flags & RECORD_V1_DAYS) &&
            (rc = record__v1_pair(day, had, "person.registered_day",
                                  &out->body.person.registered_month,
                                  &out->body.person.registered_bs_month, err)) != 0)
            return rc;
        break;
    case REINT__V1__RECORD__BODY_SERVICE:
        out->body.service = *in->service;
        out->rec.service = &out->body.service;
        body = &in->service->base;
        if ((rc = record__unknowns(body, "service", 4, flags, &day, &had, err)) != 0)
            return rc;
        if ((flags & RECORD_V1_DAYS) &&
            (rc = record__v1_pair(day, had, "service.day", &out->body.service.month,
                                  &out->body.service.bs_month, err)) != 0)
            return rc;
        break;
    case REINT__V1__RECORD__BODY_ENTERPRISE:
        out->body.enterprise = *in->enterprise;
        out->rec.enterprise = &out->body.enterprise;
        body = &in->enterprise->base;
        if ((rc = record__unknowns(body, "enterprise", 4, flags, &day, &had, err)) != 0)
            return rc;
        if ((flags & RECORD_V1_DAYS) &&
            (rc = record__v1_pair(day, had, "enterprise.day", &out->body.enterprise.month,
                                  &out->body.enterprise.bs_month, err)) != 0)
            return rc;
        break;
    case REINT__V1__RECORD__BODY_AVAILABILITY:
        out->body.availability = *in->availability;
        out->rec.availability = &out->body.availability;
        body = &in->availability->base;
        rc = record__unknowns(body, "availability", 0, flags, &day, &had, err);
        break;
    case REINT__V1__RECORD__BODY_MONTH_CLOSE:
        out->body.month_close = *in->month_close;
        out->rec.month_close = &out->body.month_close;
        body = &in->month_close->base;
        rc = record__unknowns(body, "month_close", 0, flags, &day, &had, err);
        break;
    case REINT__V1__RECORD__BODY_TOMBSTONE:
        out->body.tombstone = *in->tombstone;
        out->rec.tombstone = &out->body.tombstone;
        body = &in->tombstone->base;
        rc = record__unknowns(body, "tombstone", 0, flags, &day, &had, err);
        break;
    default:
        break;
    }
    if (rc != 0)
        return rc;
    /* The copy's body carries no unknown field: each was read (a day) or dropped (strip). */
    if (body != NULL) {
        ProtobufCMessage *copy = (ProtobufCMessage *)&out->body;
        copy->n_unknown_fields = 0;
        copy->unknown_fields = NULL;
    }
    return 0;
}
