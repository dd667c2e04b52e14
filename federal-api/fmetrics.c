#include "fmetrics.h"

#include <string.h>

#include "metrics.h"

void fmetrics_count_status(fmetrics *m, int status)
{
    switch (status) {
    case 200:
    case 201:
        m->ok++;
        break;
    case 400:
    case 422:
        m->bad_request++;
        break;
    case 401:
        m->unauthorized++;
        break;
    case 403:
        m->forbidden++;
        break;
    case 404:
        m->not_found++;
        break;
    case 429:
        m->rate_limited++;
        break;
    default:
        if (status >= 500)
            m->unavailable++;
    }
}

void fmetrics_respond(http_req *r, const fmetrics *m, const fmetrics_sources *src)
{
    static const http_server_stats none_http;
    static const loopwatch none_loop;
    const db_pool *db = src->db;
    const fingest *ingest = src->ingest;
    const fcovcache *covcache = src->covcache;
    const tls_ctx *sync_tls = src->sync_tls;
    const http_server_stats *https = src->https ? src->https : &none_http;
    const http_server_stats *http = src->http ? src->http : &none_http;
    const loopwatch *loop = src->loop ? src->loop : &none_loop;
    db_metrics dm;
    fingest_metrics im;
    memset(&im, 0, sizeof(im));
    db_get_metrics(db, &dm);
    if (ingest)
        fingest_get_metrics(ingest, &im);
    fcovcache_metrics cm;
    memset(&cm, 0, sizeof(cm));
    if (covcache)
        fcovcache_get_metrics(covcache, &cm);
    ftokcache_metrics tm;
    memset(&tm, 0, sizeof(tm));
    if (src->tokcache)
        ftokcache_get_metrics(src->tokcache, &tm);
    const metric rows[] = {
        METRIC_C("federal_http_requests_total", "HTTP requests received.", m->requests),
        METRIC_H("federal_loop_busy_seconds",
                 "Time each turn of the event loop ran callbacks (not waiting for I/O).",
                 &loop->busy),
        METRIC_H("federal_loop_cpu_seconds",
                 "CPU time of the event loop's thread in each turn (less than busy: it waited "
                 "for a core).",
                 &loop->cpu),
        METRICS_HTTP("federal_https_server", *https),
        METRICS_HTTP("federal_plain_http_server", *http),
        METRIC_C("federal_http_ok_total", "Requests answered 200.", m->ok),
        METRIC_C("federal_http_bad_request_total", "Requests refused 400.", m->bad_request),
        METRIC_C("federal_http_unauthorized_total", "Requests refused 401.", m->unauthorized),
        METRIC_C("federal_http_forbidden_total", "Requests refused 403.", m->forbidden),
        METRIC_C("federal_http_rate_limited_total", "Requests refused 429.", m->rate_limited),
        METRIC_C("federal_http_unavailable_total", "Requests answered 5xx.", m->unavailable),
        METRIC_C("federal_audit_rows_total", "Audit rows written.", m->audit_rows),
        METRIC_C("federal_sessions_created_total", "Dashboard sign-ins (sessions started).",
                 m->sessions_created),
        METRIC_C("federal_open_reads_total",
                 "Anonymous reads of the open-data routes (counted per route and day in "
                 "open_reads, not audited one by one).",
                 m->open_reads),
        METRIC_C("federal_open_limited_total",
                 "Anonymous reads refused 429: their address read too much.", m->open_limited),
        METRIC_C("federal_coverage_cache_hits_total",
                 "Answers whose approval coverage was kept (no commit touched its months).",
                 cm.hits),
        METRIC_C("federal_coverage_cache_misses_total",
                 "Answers whose approval coverage was read from the store.", cm.misses),
        METRIC_G("federal_coverage_listening",
                 "Pool connections listening for coverage changes (0: every answer reads it).",
                 cm.listening),
        METRIC_C("federal_coverage_notifications_total",
                 "Notifications of committed changes to months' coverage received.",
                 cm.notifications),
        METRIC_C("federal_token_cache_hits_total",
                 "Bearer tokens found valid in memory (the tokens table unchanged since).",
                 tm.hits),
        METRIC_C("federal_token_cache_misses_total", "Bearer tokens looked up in the store.",
                 tm.misses),
        METRIC_C("federal_token_cache_drops_total",
                 "Times the kept tokens were dropped (the tokens table changed, a connection "
                 "began listening).",
                 tm.drops),
        METRIC_C("federal_db_queries_total", "Statements sent to PostgreSQL.", dm.queries),
        METRIC_C("federal_db_errors_total", "Statements that failed.", dm.errors),
        METRIC_C("federal_db_connects_total", "Connections established.", dm.connects),
        METRIC_C("federal_db_disconnects_total", "Connections lost.", dm.disconnects),
        METRIC_G("federal_db_connected", "Pool connections up now.", dm.connected),
        METRIC_G("federal_db_queued", "Statements waiting for a connection.", dm.queued),
        METRIC_C("federal_ingest_connections_total", "Hub connections accepted.",
                 im.rx.connections),
        METRIC_G("federal_ingest_connected", "Hub connections open.", im.rx.connected),
        METRIC_C("federal_ingest_sessions_total", "Hub sessions started with Hello.",
                 im.rx.sessions),
        METRIC_C("federal_ingest_sessions_revoked_total",
                 "Hub sessions closed because a CRL reload revoked their certificate.",
                 im.rx.revoked_closed),
        METRIC_C("federal_ingest_handshakes_refused_total",
                 "Hub connections whose certificate was refused (revoked, of another CA, "
                 "expired), each logged as a SECURITY line with its address.",
                 im.rx.handshakes_refused),
        METRIC_C("federal_ingest_sessions_aged_total",
                 "Hub sessions closed at their maximum age (the hub handshakes again).",
                 im.rx.sessions_aged),
        METRIC_C("federal_ingest_connections_refused_total",
                 "Hub connections refused over the sync port's caps.", im.rx.conns_refused),
        METRIC_C("federal_ingest_clock_refusals_total",
                 "Batches or Hellos refused for versions or clocks ahead of this tier.",
                 im.rx.clock_refusals),
        METRIC_C("federal_ingest_protocol_errors_total", "Hub sessions closed for protocol errors.",
                 im.rx.protocol_errors),
        METRIC_C("federal_ingest_version_refusals_total",
                 "Hellos refused for a protocol version this tier does not speak.",
                 im.rx.version_refusals),
        METRIC_C("federal_ingest_coverage_updates_total", "Coverage messages stored from hubs.",
                 im.coverage_updates),
        METRIC_C("federal_ingest_batches_total", "Rollup batches received.", im.batches),
        METRIC_C("federal_ingest_batches_committed_total", "Rollup batches committed.",
                 im.batches_committed),
        METRIC_C("federal_ingest_snapshots_received_total", "Snapshots received.",
                 im.snapshots_received),
        METRIC_C("federal_ingest_snapshots_applied_total",
                 "Snapshots that replaced an older revision.", im.snapshots_applied),
        METRIC_C("federal_ingest_snapshots_refused_total", "Snapshots refused by validation.",
                 im.snapshots_refused),
        METRIC_C("federal_ingest_cells_received_total", "Cells received.", im.cells_received),
        METRIC_C("federal_ingest_security_events_total",
                 "Batches refused for another province's snapshot.", im.rx.security_events),
        METRIC_C("federal_ingest_db_errors_total", "Batches the store failed.", im.db_errors),
        METRIC_C("federal_directives_published_total", "Directives published here.",
                 m->directives_published),
        METRIC_C("federal_ingest_directives_sent_total", "Directives sent to hubs.",
                 im.directives_sent),
        METRIC_C("federal_ingest_directive_acks_total", "DirectiveAcks received from hubs.",
                 im.directive_acks),
    };
    /* Without a sync TLS context the CRL expiry row still appears, at 0, so that a scrape
     * alarms on it rather than missing it. */
    metrics_respond(r, rows, sizeof(rows) / sizeof(rows[0]),
                    sync_tls ? tls_ctx_crl_next_update(sync_tls) : 0);
}
