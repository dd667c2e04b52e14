#include "fcoverage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faudit.h"
#include "geo.h"
#include "log.h"

#define FCOVERAGE_MAX_BODY (4u << 20)

static const char *fcoverage__calendar(const char *v)
{
    return strcmp(v, "2") == 0 ? "AD" : strcmp(v, "1") == 0 ? "BS" : "unknown";
}

static void fcoverage__on_rows(void *ud, const PGresult *res, const char *err)
{
    freq *f = ud;
    if (err) {
        log_error("coverage read failed: %s", err);
        freq_error(f, 503, "the federal store is unavailable; try again");
        return;
    }
    if (PQnfields(res) != 7) {
        log_error("coverage read: %d columns instead of 7", PQnfields(res));
        freq_error(f, 500, "unexpected answer from the federal store");
        return;
    }
    f->env->m->audit_rows++;
    sbuf b;
    sbuf_init(&b, FCOVERAGE_MAX_BODY);
    long long total_dead = 0;
    sbuf_puts(&b, "{\"municipalities\":[");
    for (int i = 0; i < PQntuples(res); i++) {
        unsigned long code = strtoul(PQgetvalue(res, i, 0), NULL, 10);
        const geo_local_level *g = geo_find((uint32_t)code);
        sbuf_printf(&b, "%s{\"municipality\":%lu,\"name\":", i ? "," : "", code);
        sbuf_json_str(&b, g ? g->name : "");
        sbuf_printf(&b,
                    ",\"province\":%s,\"records\":%s,\"dead_letters\":%s,\"last_sync_ms\":%s,"
                    "\"calendar\":\"%s\",\"updated_at\":",
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                    PQgetvalue(res, i, 4), fcoverage__calendar(PQgetvalue(res, i, 5)));
        sbuf_json_str(&b, PQgetvalue(res, i, 6));
        sbuf_puts(&b, "}");
        total_dead += strtoll(PQgetvalue(res, i, 3), NULL, 10);
    }
    sbuf_printf(&b, "],\"dead_letters\":%lld}\n", total_dead);
    freq_finish_sbuf(f, 200, NULL, &b);
    sbuf_free(&b);
}

void fcoverage_answer(freq *f)
{
    char prov[8];
    const char *v[FAUDIT_READ_PARAMS + 1];
    snprintf(prov, sizeof(prov), "%d", f->q.area_province);
    faudit_read_params(f, v);
    v[FAUDIT_READ_PARAMS] = prov;
    if (db_query(f->env->db,
                 FAUDIT_READ_SQL
                 " SELECT municipality, province, records, dead_letters, last_sync_ms, calendar,"
                 " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                 " FROM coverage WHERE $5::smallint = 0 OR province = $5::smallint"
                 " ORDER BY municipality",
                 FAUDIT_READ_PARAMS + 1, v, fcoverage__on_rows, f) != 0)
        freq_error(f, 503, "the federal store is busy; try again");
}
