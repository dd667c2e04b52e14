-- Federal store, version 11: a snapshot's arrays are compressed with LZ4 instead of
-- PostgreSQL's own pglz (issue 17). Applied by `federal-api migrate` (and at start) inside one
-- transaction.
--
-- A snapshot row longer than its partition's toast_tuple_target (8,160 bytes: a municipality's
-- month with a few hundred cells) is compressed in the row. pglz is slow both ways: storing
-- the 9,036 month snapshots of the federal bench (298 cells each) took 2.8 s with pglz and
-- 0.9 s with LZ4, and a breakdown by municipality decompresses every array it takes a cell
-- from (about 10 per snapshot read). PostgreSQL 15 as Debian builds it has LZ4. Rows already
-- stored keep pglz until they are next replaced; both read the same.
-- The setting is per table: PostgreSQL 15 does not carry it from the partitioned table to the
-- partitions that exist, so each is set (a partition made later copies the parent's).
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT 'snapshot_cells'::regclass
             UNION ALL SELECT inhrelid::regclass FROM pg_inherits
                        WHERE inhparent = 'snapshot_cells'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s'
                       ' ALTER COLUMN indicator SET COMPRESSION lz4,'
                       ' ALTER COLUMN grouping SET COMPRESSION lz4,'
                       ' ALTER COLUMN key SET COMPRESSION lz4,'
                       ' ALTER COLUMN numerator SET COMPRESSION lz4,'
                       ' ALTER COLUMN denominator SET COMPRESSION lz4,'
                       ' ALTER COLUMN cell_key SET COMPRESSION lz4,'
                       ' ALTER COLUMN contributors SET COMPRESSION lz4,'
                       ' ALTER COLUMN numerator_key SET COMPRESSION lz4', t);
    END LOOP;
END
$$;
