-- Federal store, version 3: a faster snapshot ingest (issue 5). Same tables and the same
-- fed_ingest_batch signature and semantics as version 1; applied by `federal-api migrate` (and
-- at start) inside one transaction.

-- Each ingest batch moves most of its province's rows of the periods it touches. At the
-- default fillfactor (100) a page has no room for the new version of a row, so nearly every
-- update went to another page and added an entry to the primary key (0.3 % HOT updates in
-- the 12-month benchmark, the index then spending its time in bottom-up deletion of the dead
-- entries). With room left on each page the updates are HOT: no index entry, and page
-- pruning reclaims the old versions (98 % HOT). It takes effect for pages written from now
-- on; a database already holding data gets it as its rows move.
ALTER TABLE province_cells SET (fillfactor = 30);

-- Applies one RollupBatch of province p_province in the caller's transaction; see version 1
-- for the contract, which is unchanged. What changed: the batch's cell arrays are unnested
-- once and feed both the insert into cells and the province delta (the old cells of replaced
-- snapshots are deleted first, in their own statement, and their sums carried over in
-- arrays), and only province rows whose delta lowers a value are checked for having fallen
-- to zero (values are never negative, so no other row can reach zero).
CREATE OR REPLACE FUNCTION fed_ingest_batch(p_province smallint, p_incarnation bytea,
                                            p_last_seq bigint, p_munis integer[],
                                            p_periods text[], p_kinds smallint[],
                                            p_revisions bigint[], p_cell_snap integer[],
                                            p_ind text[], p_grp text[], p_key text[],
                                            p_num bigint[], p_den bigint[], p_ck bigint[],
                                            p_con bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
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
BEGIN
    -- The newest snapshot of each (municipality, period) in the batch, upserted into its
    -- header only when newer than what is stored; RETURNING lists the ones that won.
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
        -- The replaced snapshots' cells, summed by province key (none for a first snapshot).
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), old AS (
            DELETE FROM cells c USING ap
             WHERE c.period_kind = ap.kind AND c.period = ap.per AND c.municipality = ap.m
            RETURNING c.period, c.indicator, c.grouping, c.key, c.numerator, c.denominator,
                      c.cell_key, c.contributors
        )
        SELECT array_agg(o.period), array_agg(o.indicator), array_agg(o.grouping),
               array_agg(o.key), array_agg(o.nu), array_agg(o.de), array_agg(o.ck),
               array_agg(o.co)
          INTO o_per, o_ind, o_grp, o_key, o_num, o_den, o_ck, o_con
          FROM (SELECT old.period, old.indicator, old.grouping, old.key,
                       sum(old.numerator)::bigint AS nu, sum(old.denominator)::bigint AS de,
                       sum(old.cell_key)::bigint AS ck, sum(old.contributors)::bigint AS co
                  FROM old GROUP BY old.period, old.indicator, old.grouping, old.key) o;

        -- The new cells (the arrays unnested once), and the province rows moved by the
        -- difference, in one statement.
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), nw AS (
            SELECT ap.kind, ap.per AS period, ap.m, n.indicator, n.grouping, n.key,
                   n.numerator, n.denominator, n.cell_key, n.contributors
              FROM unnest(p_cell_snap, p_ind, p_grp, p_key, p_num, p_den, p_ck, p_con)
                   AS n(si, indicator, grouping, key, numerator, denominator, cell_key,
                        contributors)
              JOIN ap ON ap.i = n.si
        ), ins AS (
            INSERT INTO cells (period_kind, period, municipality, indicator, grouping, key,
                               numerator, denominator, cell_key, contributors)
            SELECT nw.kind, nw.period, nw.m, nw.indicator, nw.grouping, nw.key, nw.numerator,
                   nw.denominator, nw.cell_key, nw.contributors
              FROM nw
        ), d AS (
            SELECT u.period, u.indicator, u.grouping, u.key, sum(u.numerator)::bigint AS nu,
                   sum(u.denominator)::bigint AS de, sum(u.cell_key)::bigint AS ck,
                   sum(u.contributors)::bigint AS co
              FROM (SELECT nw.period, nw.indicator, nw.grouping, nw.key, nw.numerator,
                           nw.denominator, nw.cell_key, nw.contributors
                      FROM nw
                    UNION ALL
                    SELECT o.period, o.indicator, o.grouping, o.key, -o.nu, -o.de, -o.ck, -o.co
                      FROM unnest(o_per, o_ind, o_grp, o_key, o_num, o_den, o_ck, o_con)
                           AS o(period, indicator, grouping, key, nu, de, ck, co)) u
             GROUP BY u.period, u.indicator, u.grouping, u.key
        ), up AS (
            INSERT INTO province_cells AS pc (province, period, indicator, grouping, key,
                                              numerator, denominator, cell_key, contributors)
            SELECT p_province, d.period, d.indicator, d.grouping, d.key, d.nu, d.de,
                   ((d.ck % 4294967296) + 4294967296) % 4294967296, d.co
              FROM d
             WHERE d.nu <> 0 OR d.de <> 0 OR d.co <> 0 OR d.ck % 4294967296 <> 0
             ORDER BY d.period, d.indicator, d.grouping, d.key
            ON CONFLICT (province, period, indicator, grouping, key) DO UPDATE
               SET numerator = pc.numerator + excluded.numerator,
                   denominator = pc.denominator + excluded.denominator,
                   cell_key = (pc.cell_key + excluded.cell_key) % 4294967296,
                   contributors = pc.contributors + excluded.contributors
        )
        -- Only a row whose delta lowers something can fall to zero.
        SELECT array_agg(d.period), array_agg(d.indicator), array_agg(d.grouping),
               array_agg(d.key)
          INTO z_per, z_ind, z_grp, z_key
          FROM d
         WHERE d.nu < 0 OR d.de < 0 OR d.co < 0;

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
