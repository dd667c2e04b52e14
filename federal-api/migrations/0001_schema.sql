-- Federal store, version 1: snapshot headers, municipality cells partitioned by period kind,
-- per-province aggregates maintained at ingest, hub positions, tokens and the audit log.
-- Applied by `federal-api migrate` (and at start) inside one transaction.

CREATE TABLE geo (
    municipality integer PRIMARY KEY,
    district smallint NOT NULL,
    province smallint NOT NULL CHECK (province BETWEEN 1 AND 7)
);
CREATE INDEX geo_district ON geo (district);

-- One header per (municipality, period): the revision of the snapshot now stored. Replacing a
-- snapshot locks this row (UPDATE ... WHERE revision < new), so a replayed older revision
-- changes nothing.
CREATE TABLE snapshots (
    municipality integer NOT NULL,
    period text NOT NULL,
    period_kind smallint NOT NULL,
    province smallint NOT NULL,
    revision bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (municipality, period)
);

-- period_kind follows common/period.h: 0 year, 1 quarter, 2 month, 3 BS month,
-- 4 fiscal trimester, 5 fiscal year. key holds the grouping's values joined by ','.
CREATE TABLE cells (
    period_kind smallint NOT NULL,
    period text NOT NULL,
    municipality integer NOT NULL,
    indicator text NOT NULL,
    grouping text NOT NULL,
    key text NOT NULL,
    numerator bigint NOT NULL,
    denominator bigint NOT NULL,
    cell_key bigint NOT NULL CHECK (cell_key >= 0 AND cell_key < 4294967296),
    contributors bigint NOT NULL,
    PRIMARY KEY (period_kind, period, municipality, indicator, grouping, key)
) PARTITION BY LIST (period_kind);
CREATE TABLE cells_year PARTITION OF cells FOR VALUES IN (0);
CREATE TABLE cells_quarter PARTITION OF cells FOR VALUES IN (1);
CREATE TABLE cells_month PARTITION OF cells FOR VALUES IN (2);
CREATE TABLE cells_bs_month PARTITION OF cells FOR VALUES IN (3);
CREATE TABLE cells_fiscal_trimester PARTITION OF cells FOR VALUES IN (4);
CREATE TABLE cells_fiscal_year PARTITION OF cells FOR VALUES IN (5);

-- Sums of a province's municipality cells, maintained by that province's ingest path only
-- (no row is shared between provinces). National answers add the 7 rows at read time.
CREATE TABLE province_cells (
    province smallint NOT NULL,
    period text NOT NULL,
    indicator text NOT NULL,
    grouping text NOT NULL,
    key text NOT NULL,
    numerator bigint NOT NULL,
    denominator bigint NOT NULL,
    cell_key bigint NOT NULL,
    contributors bigint NOT NULL,
    PRIMARY KEY (province, period, indicator, grouping, key)
);

-- Highest contiguous rollup sequence committed per hub store incarnation.
CREATE TABLE hub_positions (
    province smallint NOT NULL,
    incarnation bytea NOT NULL,
    acked_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (province, incarnation)
);

-- As-of time of each province's data: the last ingest commit.
CREATE TABLE province_status (
    province smallint PRIMARY KEY,
    last_commit timestamptz NOT NULL,
    batches bigint NOT NULL DEFAULT 0,
    snapshots_applied bigint NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    role text NOT NULL CHECK (role IN ('ministry', 'province', 'public', 'admin')),
    province smallint CHECK ((role = 'province') = (province IS NOT NULL)),
    hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    who text NOT NULL,
    role text NOT NULL,
    peer text NOT NULL,
    method text NOT NULL,
    target text NOT NULL,
    status integer NOT NULL
);
CREATE INDEX audit_at ON audit (at);

-- Applies one RollupBatch of province p_province in the caller's transaction (one
-- statement, so one transaction), set-based: cell j belongs to snapshot p_cell_snap[j]
-- (1-based index into the snapshot arrays). Each (municipality, period) is replaced only
-- when the snapshot's revision is newer than its header's (the header row is locked by the
-- conditional upsert); its old cells are deleted and the new ones inserted; the province
-- aggregate moves by the summed delta of the whole batch, and rows that fall to zero are
-- deleted. Returns the number of snapshots applied.
CREATE FUNCTION fed_ingest_batch(p_province smallint, p_incarnation bytea, p_last_seq bigint,
                                 p_munis integer[], p_periods text[], p_kinds smallint[],
                                 p_revisions bigint[], p_cell_snap integer[],
                                 p_ind text[], p_grp text[], p_key text[], p_num bigint[],
                                 p_den bigint[], p_ck bigint[], p_con bigint[])
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
        WITH ap AS (
            SELECT * FROM unnest(a_i, a_m, a_per, a_kind) AS t(i, m, per, kind)
        ), old AS (
            DELETE FROM cells c USING ap
             WHERE c.period_kind = ap.kind AND c.period = ap.per AND c.municipality = ap.m
            RETURNING c.period, c.indicator, c.grouping, c.key, c.numerator, c.denominator,
                      c.cell_key, c.contributors
        ), nw AS (
            SELECT ap.per AS period, n.indicator, n.grouping, n.key, n.numerator, n.denominator,
                   n.cell_key, n.contributors
              FROM unnest(p_cell_snap, p_ind, p_grp, p_key, p_num, p_den, p_ck, p_con)
                   AS n(si, indicator, grouping, key, numerator, denominator, cell_key,
                        contributors)
              JOIN ap ON ap.i = n.si
        ), d AS (
            SELECT u.period, u.indicator, u.grouping, u.key, sum(u.numerator)::bigint AS nu,
                   sum(u.denominator)::bigint AS de, sum(u.cell_key)::bigint AS ck,
                   sum(u.contributors)::bigint AS co
              FROM (SELECT o.period, o.indicator, o.grouping, o.key, -o.numerator AS numerator,
                           -o.denominator AS denominator, -o.cell_key AS cell_key,
                           -o.contributors AS contributors
                      FROM old o
                    UNION ALL
                    SELECT * FROM nw) u
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
            RETURNING pc.period, pc.indicator, pc.grouping, pc.key, pc.numerator,
                      pc.denominator, pc.contributors
        )
        SELECT array_agg(up.period), array_agg(up.indicator), array_agg(up.grouping),
               array_agg(up.key)
          INTO z_per, z_ind, z_grp, z_key
          FROM up
         WHERE up.numerator = 0 AND up.denominator = 0 AND up.contributors = 0;

        IF z_per IS NOT NULL THEN
            DELETE FROM province_cells
             WHERE province = p_province
               AND (period, indicator, grouping, key) IN
                   (SELECT * FROM unnest(z_per, z_ind, z_grp, z_key));
        END IF;

        INSERT INTO cells (period_kind, period, municipality, indicator, grouping, key,
                           numerator, denominator, cell_key, contributors)
        SELECT ap.kind, ap.per, ap.m, n.indicator, n.grouping, n.key, n.numerator,
               n.denominator, n.cell_key, n.contributors
          FROM unnest(p_cell_snap, p_ind, p_grp, p_key, p_num, p_den, p_ck, p_con)
               AS n(si, indicator, grouping, key, numerator, denominator, cell_key,
                    contributors)
          JOIN unnest(a_i, a_m, a_per, a_kind) AS ap(i, m, per, kind) ON ap.i = n.si;
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
