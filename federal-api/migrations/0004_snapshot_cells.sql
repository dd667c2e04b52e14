-- Federal store, version 4: a snapshot's cells are stored as one row of arrays per
-- (municipality, period) instead of one row per cell (issue 7). Applied by `federal-api
-- migrate` (and at start) inside one transaction.
--
-- Why: a full resync of the country writes about 8.7 million cells in 129,000 snapshots.
-- One row per cell cost PostgreSQL a heap tuple and an entry in a six-column primary key
-- (three of them text) per cell, and a replaced snapshot a delete per cell; that was most of
-- the federal tier's CPU. The cells of a snapshot are only ever written, replaced and read
-- together (a municipality's or a district's answer reads whole snapshots of one period), so
-- they are stored together: one tuple and one index entry per snapshot. The province
-- aggregates (province_cells) are unchanged.
--
-- `cells` stays as a view with the same columns, so the district and municipality query and
-- every reader of cells keep working unchanged.

CREATE TABLE snapshot_cells (
    period_kind smallint NOT NULL,
    period text COLLATE "C" NOT NULL,
    municipality integer NOT NULL,
    indicator text[] NOT NULL,
    grouping text[] NOT NULL,
    key text[] NOT NULL,
    numerator bigint[] NOT NULL,
    denominator bigint[] NOT NULL,
    cell_key bigint[] NOT NULL,
    contributors bigint[] NOT NULL,
    PRIMARY KEY (period_kind, period, municipality),
    CHECK (cardinality(indicator) = cardinality(grouping)
           AND cardinality(indicator) = cardinality(key)
           AND cardinality(indicator) = cardinality(numerator)
           AND cardinality(indicator) = cardinality(denominator)
           AND cardinality(indicator) = cardinality(cell_key)
           AND cardinality(indicator) = cardinality(contributors))
) PARTITION BY LIST (period_kind);
-- Partitioned by period kind, as cells were (period_kind follows common/period.h). A snapshot
-- of a few hundred cells is a few kilobytes: each partition keeps it in the row, uncompressed,
-- rather than compressing it into the TOAST table at every write.
CREATE TABLE snapshot_cells_year PARTITION OF snapshot_cells FOR VALUES IN (0)
    WITH (toast_tuple_target = 8160);
CREATE TABLE snapshot_cells_quarter PARTITION OF snapshot_cells FOR VALUES IN (1)
    WITH (toast_tuple_target = 8160);
CREATE TABLE snapshot_cells_month PARTITION OF snapshot_cells FOR VALUES IN (2)
    WITH (toast_tuple_target = 8160);
CREATE TABLE snapshot_cells_bs_month PARTITION OF snapshot_cells FOR VALUES IN (3)
    WITH (toast_tuple_target = 8160);
CREATE TABLE snapshot_cells_fiscal_trimester PARTITION OF snapshot_cells FOR VALUES IN (4)
    WITH (toast_tuple_target = 8160);
CREATE TABLE snapshot_cells_fiscal_year PARTITION OF snapshot_cells FOR VALUES IN (5)
    WITH (toast_tuple_target = 8160);

INSERT INTO snapshot_cells (period_kind, period, municipality, indicator, grouping, key,
                            numerator, denominator, cell_key, contributors)
SELECT period_kind, period, municipality,
       array_agg(indicator ORDER BY indicator, grouping, key),
       array_agg(grouping ORDER BY indicator, grouping, key),
       array_agg(key ORDER BY indicator, grouping, key),
       array_agg(numerator ORDER BY indicator, grouping, key),
       array_agg(denominator ORDER BY indicator, grouping, key),
       array_agg(cell_key ORDER BY indicator, grouping, key),
       array_agg(contributors ORDER BY indicator, grouping, key)
  FROM cells
 GROUP BY period_kind, period, municipality;

DROP TABLE cells;

CREATE VIEW cells AS
SELECT s.period_kind, s.period, s.municipality, u.indicator, u.grouping, u.key, u.numerator,
       u.denominator, u.cell_key, u.contributors
  FROM snapshot_cells s
 CROSS JOIN LATERAL unnest(s.indicator, s.grouping, s.key, s.numerator, s.denominator,
                           s.cell_key, s.contributors)
       AS u(indicator, grouping, key, numerator, denominator, cell_key, contributors);

-- Applies one RollupBatch of province p_province in the caller's transaction; the contract of
-- version 1 is unchanged (same signature, same result). What changed: a replaced snapshot's
-- old cells are one deleted row, and the new cells of each applied snapshot are aggregated
-- into one row of arrays (in no particular order; readers group them).
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
        -- The replaced snapshots' cells, summed by province key (none for a first snapshot).
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), old AS (
            DELETE FROM snapshot_cells c USING ap
             WHERE c.period_kind = ap.kind AND c.period = ap.per AND c.municipality = ap.m
            RETURNING c.period, c.indicator, c.grouping, c.key, c.numerator, c.denominator,
                      c.cell_key, c.contributors
        )
        SELECT array_agg(o.period), array_agg(o.indicator), array_agg(o.grouping),
               array_agg(o.key), array_agg(o.nu), array_agg(o.de), array_agg(o.ck),
               array_agg(o.co)
          INTO o_per, o_ind, o_grp, o_key, o_num, o_den, o_ck, o_con
          FROM (SELECT old.period, u.indicator, u.grouping, u.key,
                       sum(u.numerator)::bigint AS nu, sum(u.denominator)::bigint AS de,
                       sum(u.cell_key)::bigint AS ck, sum(u.contributors)::bigint AS co
                  FROM old
                 CROSS JOIN LATERAL unnest(old.indicator, old.grouping, old.key,
                                           old.numerator, old.denominator, old.cell_key,
                                           old.contributors)
                       AS u(indicator, grouping, key, numerator, denominator, cell_key,
                            contributors)
                 GROUP BY old.period, u.indicator, u.grouping, u.key) o;

        -- The new cells (the arrays unnested once): one row of arrays per snapshot, and the
        -- province rows moved by the difference, in one statement.
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), nw AS (
            SELECT ap.i, ap.kind, ap.per AS period, ap.m, n.indicator, n.grouping,
                   n.key, n.numerator, n.denominator, n.cell_key, n.contributors
              FROM unnest(p_cell_snap, p_ind, p_grp, p_key, p_num, p_den, p_ck, p_con)
                   AS n(si, indicator, grouping, key, numerator, denominator, cell_key,
                        contributors)
              JOIN ap ON ap.i = n.si
        ), ins AS (
            INSERT INTO snapshot_cells (period_kind, period, municipality, indicator, grouping,
                                        key, numerator, denominator, cell_key, contributors)
            -- No ORDER BY: the seven aggregates of one group read the same rows in the same
            -- sequence, so the arrays stay aligned (an ORDER BY would sort each apart).
            SELECT nw.kind, nw.period, nw.m, array_agg(nw.indicator), array_agg(nw.grouping),
                   array_agg(nw.key), array_agg(nw.numerator), array_agg(nw.denominator),
                   array_agg(nw.cell_key), array_agg(nw.contributors)
              FROM nw
             GROUP BY nw.i, nw.kind, nw.period, nw.m
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
