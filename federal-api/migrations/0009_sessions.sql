-- Federal store, version 9: the national dashboard's sessions and the open-data page's counts
-- (issue 16). Applied by `federal-api migrate` (and at start) inside one transaction.

-- A signed-in session of the dashboard (fsession.h). Kept here rather than in one process's
-- memory so that every federal-api instance on this database serves every session. id is the
-- SHA-256 of the cookie's value (the value itself is never stored); the session stands for its
-- token, and ends with it (each check joins tokens, so a revoked token's sessions stop at
-- once). Times are milliseconds since 1970 of the server's (test-shiftable) clock.
CREATE TABLE web_sessions (
    id bytea PRIMARY KEY CHECK (length(id) = 32),
    token_name text NOT NULL REFERENCES tokens(name) ON DELETE CASCADE,
    csrf text NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    seen_ms bigint NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_ms);

-- Anonymous reads of the open-data routes, counted per route and day (UTC) rather than written
-- to the audit one by one: reads is the number answered, limited those refused 429 because
-- their address read too much. Each instance adds its counts every few seconds.
CREATE TABLE open_reads (
    day date NOT NULL,
    route text NOT NULL,
    reads bigint NOT NULL DEFAULT 0,
    limited bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, route)
);
