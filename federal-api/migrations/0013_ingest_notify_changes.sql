-- Federal store, version 13: the ingest announces only the months whose data appears or goes
-- (issue 17). Applied by `federal-api migrate` (and at start) inside one transaction.
--
-- Every federal-api process keeps the approval coverage of recent answers until a commit
-- touches one of its months (federal-api/fcovcache.h). Until now each ingest call announced
-- every month and BS month it stored a snapshot of, although a coverage counts only whether a
-- municipality-month holds data (a snapshot_cells row: one exists only for a snapshot with
-- cells): under any steady ingest the current months were announced by every batch, and their
-- answers always read their coverage again (1-1.5 % of bench/national.py's answers, enough to
-- set its p99). fed_ingest_batch now compares the month rows it deletes with those it inserts
-- and announces, itself, the periods of the municipality-months that gained or lost their row;
-- the caller no longer passes the months. Same signature, contract and result as version 7,
-- work_mem of version 10 set again (CREATE OR REPLACE resets what ALTER FUNCTION set).
CREATE OR REPLACE FUNCTION fed_ingest_batch(p_province smallint, p_incarnation bytea,
                                            p_last_seq bigint, p_munis integer[],
                                            p_periods text[], p_kinds smallint[],
                                            p_revisions bigint[], p_cell_snap integer[],
                                            p_ind text[], p_grp text[], p_key text[],
                                            p_num bigint[], p_den bigint[], p_ck bigint[],
                                            p_con bigint[], p_nk bigint[], p_t1 bigint[],
                                            p_t2 bigint[])
RETURNS integer LANGUAGE plpgsql SET work_mem = '64MB' AS $$
DECLARE
    applied integer := 0;
    a_i integer[];
    a_m integer[];
    a_per text[];
    a_kind smallint[];
    z_per text[];
    z_ind text[];
    z_grp text[];
    z_key text[];
    o_per text[];
    o_ind text[];
    o_grp text[];
    o_key text[];
    o_num bigint[];
    o_den bigint[];
    o_ck bigint[];
    o_con bigint[];
    o_nk bigint[];
    -- The month and BS-month snapshots (municipality, period) whose cells row went (g_) and
    -- came (n_), and the periods of those whose existence changed.
    g_m integer[];
    g_per text[];
    n_m integer[];
    n_per text[];
    changed text;
BEGIN
    -- The newest snapshot of each (municipality, period) in the batch, upserted into its
    -- header only when newer than what is stored; RETURNING lists the ones that won (their
    -- header rows stay locked to the end of the transaction).
    WITH inp AS (
        SELECT DISTINCT ON (t.m, t.per) t.m, t.per, t.kind, t.rev, t.i
          FROM unnest(p_munis, p_periods, p_kinds, p_revisions)
               WITH ORDINALITY AS t(m, per, kind, rev, i)
         ORDER BY t.m, t.per, t.rev DESC, t.i DESC
    ), up AS (
        INSERT INTO snapshots AS s (municipality, period, period_kind, province, revision,
                                    updated_at)
        SELECT inp.m, inp.per, inp.kind, p_province, inp.rev, clock_timestamp()
          FROM inp ORDER BY inp.m, inp.per
        ON CONFLICT (municipality, period) DO UPDATE
           SET revision = excluded.revision, updated_at = excluded.updated_at
         WHERE s.revision < excluded.revision
        RETURNING s.municipality, s.period
    )
    SELECT array_agg(inp.i), array_agg(inp.m), array_agg(inp.per), array_agg(inp.kind)
      INTO a_i, a_m, a_per, a_kind
      FROM up JOIN inp ON inp.m = up.municipality AND inp.per = up.period;

    IF a_i IS NOT NULL THEN
        applied := array_length(a_i, 1);
        -- The replaced snapshots' cells, summed by province key (none for a first snapshot),
        -- and their tops.
        DELETE FROM cell_tops t
         USING unnest(a_m, a_per) AS ap(m, per)
         WHERE t.municipality = ap.m AND t.period = ap.per;
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), old AS (
            DELETE FROM snapshot_cells c USING ap
             WHERE c.period_kind = ap.kind AND c.period = ap.per AND c.municipality = ap.m
            RETURNING c.period, c.indicator, c.grouping, c.key, c.numerator, c.denominator,
                      c.cell_key, c.contributors, c.numerator_key, c.period_kind,
                      c.municipality
        ), gone AS (
            SELECT array_agg(old.municipality) AS m, array_agg(old.period) AS per
              FROM old WHERE old.period_kind IN (2, 3)
        )
        SELECT array_agg(o.period), array_agg(o.indicator), array_agg(o.grouping),
               array_agg(o.key), array_agg(o.nu), array_agg(o.de), array_agg(o.ck),
               array_agg(o.co), array_agg(o.nk), (SELECT gone.m FROM gone),
               (SELECT gone.per FROM gone)
          INTO o_per, o_ind, o_grp, o_key, o_num, o_den, o_ck, o_con, o_nk, g_m, g_per
          FROM (SELECT old.period, u.indicator, u.grouping, u.key,
                       sum(u.numerator)::bigint AS nu, sum(u.denominator)::bigint AS de,
                       sum(u.cell_key)::bigint AS ck, sum(u.contributors)::bigint AS co,
                       sum(u.numerator_key)::bigint AS nk
                  FROM old
                 CROSS JOIN LATERAL unnest(old.indicator, old.grouping, old.key,
                                           old.numerator, old.denominator, old.cell_key,
                                           old.contributors, old.numerator_key)
                       AS u(indicator, grouping, key, numerator, denominator, cell_key,
                            contributors, numerator_key)
                 GROUP BY old.period, u.indicator, u.grouping, u.key) o;

        -- The new cells (the arrays unnested once): one row of arrays per snapshot, the tops
        -- of its sums, and the province rows moved by the difference, in one statement.
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), nw AS (
            SELECT ap.i, ap.kind, ap.per AS period, ap.m, n.indicator, n.grouping,
                   n.key, n.numerator, n.denominator, n.cell_key, n.contributors,
                   n.numerator_key, n.top1, n.top2
              FROM unnest(p_cell_snap, p_ind, p_grp, p_key, p_num, p_den, p_ck, p_con, p_nk,
                          p_t1, p_t2)
                   AS n(si, indicator, grouping, key, numerator, denominator, cell_key,
                        contributors, numerator_key, top1, top2)
              JOIN ap ON ap.i = n.si
        ), ins AS (
            INSERT INTO snapshot_cells (period_kind, period, municipality, indicator, grouping,
                                        key, numerator, denominator, cell_key, contributors,
                                        numerator_key)
            -- No ORDER BY: the aggregates of one group read the same rows in the same
            -- sequence, so the arrays stay aligned (an ORDER BY would sort each apart).
            SELECT nw.kind, nw.period, nw.m, array_agg(nw.indicator), array_agg(nw.grouping),
                   array_agg(nw.key), array_agg(nw.numerator), array_agg(nw.denominator),
                   array_agg(nw.cell_key), array_agg(nw.contributors),
                   array_agg(nw.numerator_key)
              FROM nw
             GROUP BY nw.i, nw.kind, nw.period, nw.m
            RETURNING period_kind, period, municipality
        ), born AS (
            SELECT array_agg(ins.municipality) AS m, array_agg(ins.period) AS per
              FROM ins WHERE ins.period_kind IN (2, 3)
        ), tops AS (
            INSERT INTO cell_tops (municipality, period, province, indicator, grouping, key,
                                   top1, top2)
            SELECT nw.m, nw.period, p_province, nw.indicator, nw.grouping, nw.key, nw.top1,
                   nw.top2
              FROM nw
             WHERE nw.top1 > 0
        ), d AS (
            SELECT u.period, u.indicator, u.grouping, u.key, sum(u.numerator)::bigint AS nu,
                   sum(u.denominator)::bigint AS de, sum(u.cell_key)::bigint AS ck,
                   sum(u.contributors)::bigint AS co, sum(u.numerator_key)::bigint AS nk
              FROM (SELECT nw.period, nw.indicator, nw.grouping, nw.key, nw.numerator,
                           nw.denominator, nw.cell_key, nw.contributors, nw.numerator_key
                      FROM nw
                    UNION ALL
                    SELECT o.period, o.indicator, o.grouping, o.key, -o.nu, -o.de, -o.ck, -o.co,
                           -o.nk
                      FROM unnest(o_per, o_ind, o_grp, o_key, o_num, o_den, o_ck, o_con, o_nk)
                           AS o(period, indicator, grouping, key, nu, de, ck, co, nk)) u
             GROUP BY u.period, u.indicator, u.grouping, u.key
        ), up AS (
            INSERT INTO province_cells AS pc (province, period, indicator, grouping, key,
                                              numerator, denominator, cell_key, contributors,
                                              numerator_key)
            SELECT p_province, d.period, d.indicator, d.grouping, d.key, d.nu, d.de,
                   ((d.ck % 4294967296) + 4294967296) % 4294967296, d.co,
                   ((d.nk % 4294967296) + 4294967296) % 4294967296
              FROM d
             WHERE d.nu <> 0 OR d.de <> 0 OR d.co <> 0 OR d.ck % 4294967296 <> 0
                OR d.nk % 4294967296 <> 0
             ORDER BY d.period, d.indicator, d.grouping, d.key
            ON CONFLICT (province, period, indicator, grouping, key) DO UPDATE
               SET numerator = pc.numerator + excluded.numerator,
                   denominator = pc.denominator + excluded.denominator,
                   cell_key = (pc.cell_key + excluded.cell_key) % 4294967296,
                   contributors = pc.contributors + excluded.contributors,
                   numerator_key = (pc.numerator_key + excluded.numerator_key) % 4294967296
        )
        -- Only a row whose delta lowers something can fall to zero.
        SELECT array_agg(d.period), array_agg(d.indicator), array_agg(d.grouping),
               array_agg(d.key), (SELECT born.m FROM born), (SELECT born.per FROM born)
          INTO z_per, z_ind, z_grp, z_key, n_m, n_per
          FROM d
         WHERE d.nu < 0 OR d.de < 0 OR d.co < 0;

        -- A month's data appeared (a cells row where there was none) or went (none where
        -- there was one): the approval coverage of the answers holding that month changes, so
        -- every federal-api process hears of it (fcovcache.h). A replacement that keeps cells
        -- changes no coverage and says nothing.
        SELECT string_agg(DISTINCT x.per, ',' ORDER BY x.per) INTO changed
          FROM ((SELECT * FROM unnest(g_m, g_per) EXCEPT SELECT * FROM unnest(n_m, n_per))
                UNION ALL
                (SELECT * FROM unnest(n_m, n_per) EXCEPT SELECT * FROM unnest(g_m, g_per)))
               AS x(m, per);
        IF changed IS NOT NULL THEN
            PERFORM pg_notify('fed_coverage',
                              CASE WHEN length(changed) > 7900 THEN '*' ELSE changed END);
        END IF;

        IF z_per IS NOT NULL THEN
            DELETE FROM province_cells
             WHERE province = p_province
               AND (period, indicator, grouping, key) IN
                   (SELECT * FROM unnest(z_per, z_ind, z_grp, z_key))
               AND numerator = 0 AND denominator = 0 AND contributors = 0;
        END IF;
    END IF;

    INSERT INTO hub_positions (province, incarnation, acked_seq, updated_at)
    VALUES (p_province, p_incarnation, p_last_seq, clock_timestamp())
    ON CONFLICT (province, incarnation) DO UPDATE
       SET acked_seq = greatest(hub_positions.acked_seq, excluded.acked_seq),
           updated_at = excluded.updated_at;
    INSERT INTO province_status (province, last_commit, batches, snapshots_applied)
    VALUES (p_province, clock_timestamp(), 1, applied)
    ON CONFLICT (province) DO UPDATE
       SET last_commit = excluded.last_commit, batches = province_status.batches + 1,
           snapshots_applied = province_status.snapshots_applied + excluded.snapshots_applied;
    RETURN applied;
END
$$;
