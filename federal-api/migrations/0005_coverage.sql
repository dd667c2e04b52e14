-- Federal store, version 5 (protocol version 2): what each hub knows of its municipalities'
-- delivery, so that the nation sees records a municipality could not deliver. Applied by
-- `federal-api migrate` (and at start) inside one transaction.

-- One row per municipality, replaced by each Coverage message of its province's hub (sent
-- after the hub's Hello and whenever it changes): the live records the hub holds, the
-- records refused or dropped as too large and not since replaced (dead letters), the
-- hub's last batch from it, and the calendar it closes months in (0 unknown, 1 BS, 2 AD).
CREATE TABLE coverage (
    municipality integer PRIMARY KEY,
    province smallint NOT NULL CHECK (province BETWEEN 1 AND 7),
    records bigint NOT NULL CHECK (records >= 0),
    dead_letters bigint NOT NULL CHECK (dead_letters >= 0),
    last_sync_ms bigint NOT NULL CHECK (last_sync_ms >= 0),
    calendar smallint NOT NULL CHECK (calendar BETWEEN 0 AND 2),
    updated_at timestamptz NOT NULL
);
CREATE INDEX coverage_province ON coverage (province);
