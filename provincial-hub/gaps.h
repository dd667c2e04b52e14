/* What a provincial officer reviews: one row per local level of the province (from the
 * geography, enrolled or not), and the province's indicators, both read from the rollup
 * engine's cells (provincial-hub/rollup.h) and the ingest's nodes table. */
#ifndef PROVINCIAL_HUB_GAPS_H
#define PROVINCIAL_HUB_GAPS_H

#include "error.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Opens a read-only connection to the hub store at path for the reports, so that they run in
 * a worker thread on a connection of their own, never on the ingest's loop and connection;
 * the rollup engine's virtual table rollup_cells is registered on it, as the reports read
 * it. The reports below work on it as on the store's own connection. One thread at a time
 * may use it; the caller closes it with store_close(). Returns 0 or REINT_EDB with err. */
int gaps_reader_open(const char *path, sqlite3 **out, char *err, size_t errlen);

/* The gap report for period (a period string; NULL: the BS fiscal year of today) on day
 * today. Each row: code, name, district, enrolled, calendar (the calendar its months are due
 * in: "AD" or "BS", a node that did not say counting as BS; null when not enrolled),
 * dead_letters (records of it the hub refused or dropped and holds as dead letters) and
 * dead_letters_last_reason (the latest one's reason, null when none), last_sync (ISO time of the
 * last batch of records, or null), last_sync_age_days, last_contact (of the node's last Hello or
 * batch, or null) and last_contact_age_days, month (the last completed BS month), month_closed,
 * month_on_time, participants_registered, participants_served (those of them with a delivered
 * service), share_served (participants_served / participants_registered, null when none
 * registered), persons_served (distinct persons with a delivered service in the period),
 * referrals_pending (total and by service type), services_unavailable (service types), targets
 * (directive targets of this municipality with their actuals) and flags (enrolled_silent: no
 * record for 30 days; enrolled_offline: no contact for 30 days; not_enrolled, referrals_overdue,
 * services_unavailable, month_not_closed, month_closed_late). sort names a numeric or text field
 * (prefix '-' for descending); default: code. *out is owned by the caller. Returns 0, REINT_EINVAL
 * (bad period or sort, err set), REINT_ENOMEM or REINT_EDB. */
int gaps_report(sqlite3 *db, unsigned province, const char *period, const char *sort, int32_t today,
                json_t **out, char *err, size_t errlen);
/* Enrolled nodes with no record (*silent) and with no contact (*offline) for the days after
 * which the report flags them, for /metrics. Returns 0 or REINT_EDB. */
int gaps_node_counts(sqlite3 *db, int64_t *silent, int64_t *offline);

/* An indicator for this province: total and cells by the declared grouping `by`
 * (validated against the catalogue), optionally for one municipality or district of it:
 * {"indicator", "period", "by", "province", "area": {"level", "code", "name", ...}, "cells"}.
 * Ratios are summed numerators over summed denominators.
 *
 * by may start with "district" or "municipality" (alone or followed by one declared grouping,
 * "municipality,sex"), and series may be "bs_month" or "trimester" (period a fiscal year) or
 * "month" (period a Gregorian year): the answer is then {"indicator", "by", "series" (null
 * when none), "period", "province", "answers": [...]}, one answer per area (in code order)
 * and period (in time order), each exactly the single answer of that area and period.
 * Returns 0, REINT_EINVAL (err set), REINT_ENOMEM or REINT_EDB. */
int gaps_indicator(sqlite3 *db, unsigned province, const char *code, const char *period,
                   const char *by, const char *series, uint32_t municipality, unsigned district,
                   json_t **out, char *err, size_t errlen);

/* The cells of a report's "answers" as flat rows (level, code, name, period, the grouping's
 * dimensions, value, ...) for its CSV: a new array, or NULL when out of memory. */
json_t *gaps_answers_rows(const json_t *report);

/* Renders the "rows" (gaps) or "cells" (indicator) array of a report as CSV: a header of the
 * first row's fields, then one CRLF-terminated line per row. *out (NUL-terminated, *len bytes)
 * is malloc'd and the caller frees it. Returns 0, REINT_EINVAL (no such array) or
 * REINT_ENOMEM (out of memory, or past the CSV's maximum; *out is then NULL: never a
 * truncated text). */
int gaps_csv(const json_t *report, const char *array, char **out, size_t *len);

#endif
