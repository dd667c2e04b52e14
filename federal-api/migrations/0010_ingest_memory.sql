-- Federal store, version 10: memory for the ingest's sorts and hashes (issue 17). Applied by
-- `federal-api migrate` (and at start) inside one transaction.
--
-- A merged job of up to 2,000 snapshots is some 30,000-60,000 cells. With PostgreSQL's default
-- work_mem of 4 MB, the two hash aggregates of fed_ingest_batch (a snapshot's cells into its
-- row of arrays; the batch's deltas by province key) spilled to temporary files in batches of
-- 5: auto_explain during bench/national.py showed "Batches: 5 ... Disk Usage: 3408kB" on a job
-- of 805 snapshots, about a fifth of its 545 ms. The function now runs with 64 MB, set on the
-- function itself so that it holds for every caller and no other statement of the session.
-- Each sort or hash of a call may take that much; a call runs at a time per pooled connection
-- (4 by default), and a job of 2,000 snapshots needs about a third of it.
ALTER FUNCTION fed_ingest_batch(smallint, bytea, bigint, integer[], text[], smallint[], bigint[],
                                integer[], text[], text[], text[], bigint[], bigint[], bigint[],
                                bigint[], bigint[], bigint[], bigint[])
    SET work_mem = '64MB';
