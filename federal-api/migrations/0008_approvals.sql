-- Federal store, version 8: the monthly review (issue 14). Each hub sends the changes of state
-- of its province's municipality-months (open, closed, approved, returned, changed since
-- approval), numbered by the hub's clock, in order; they are kept here once each, and each
-- month's newest change is its state. Applied by `federal-api migrate` (and at start) inside
-- one transaction.

-- Every change received, once: (province, clock) is unique, so a change sent again after a
-- lost acknowledgement changes nothing. A hub rebuilt from nothing reads its province's
-- changes back from here (ReviewRequest).
CREATE TABLE approval_log (
    province smallint NOT NULL CHECK (province BETWEEN 1 AND 7),
    clock bigint NOT NULL CHECK (clock > 0),
    municipality integer NOT NULL,
    bs boolean NOT NULL,
    ym integer NOT NULL,
    state smallint NOT NULL CHECK (state BETWEEN 1 AND 5),
    version bigint NOT NULL,
    decision boolean NOT NULL,
    decided_by text NOT NULL,
    decided_at_ms bigint NOT NULL,
    comment text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (province, clock)
);

-- The state of each municipality-month (bs: a BS month, else Gregorian; ym: YYYYMM): the
-- newest change of the log, by clock. state: 1 open, 2 closed, 3 approved, 4 returned,
-- 5 changed since approval. decided_by, decided_at_ms and comment are the month's last
-- decision (empty, 0 and empty when none).
CREATE TABLE approvals (
    municipality integer NOT NULL,
    bs boolean NOT NULL,
    ym integer NOT NULL,
    province smallint NOT NULL CHECK (province BETWEEN 1 AND 7),
    state smallint NOT NULL CHECK (state BETWEEN 1 AND 5),
    clock bigint NOT NULL,
    version bigint NOT NULL,
    decided_by text NOT NULL,
    decided_at_ms bigint NOT NULL,
    comment text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (municipality, bs, ym)
);
CREATE INDEX approvals_province ON approvals (province, bs, ym);

-- Applies one Reviews message of province p_province (checked by the caller: every change is
-- of a municipality of that province): each change is logged unless held, and a month's row
-- takes the change only when it is newer than the one it holds. Returns the number of changes
-- that were new.
CREATE FUNCTION fed_apply_reviews(p_province smallint, p_clock bigint[], p_mun integer[],
                                  p_bs boolean[], p_ym integer[], p_state smallint[],
                                  p_version bigint[], p_decision boolean[], p_by text[],
                                  p_at bigint[], p_comment text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    fresh integer;
BEGIN
    INSERT INTO approval_log (province, clock, municipality, bs, ym, state, version, decision,
                              decided_by, decided_at_ms, comment)
    SELECT p_province, t.clock, t.m, t.bs, t.ym, t.state, t.version, t.decision, t.by, t.at,
           t.comment
      FROM unnest(p_clock, p_mun, p_bs, p_ym, p_state, p_version, p_decision, p_by, p_at,
                  p_comment)
           AS t(clock, m, bs, ym, state, version, decision, by, at, comment)
     ORDER BY t.clock
    ON CONFLICT (province, clock) DO NOTHING;
    GET DIAGNOSTICS fresh = ROW_COUNT;

    INSERT INTO approvals AS a (municipality, bs, ym, province, state, clock, version,
                                decided_by, decided_at_ms, comment, updated_at)
    SELECT DISTINCT ON (t.m, t.bs, t.ym) t.m, t.bs, t.ym, p_province, t.state, t.clock,
           t.version, t.by, t.at, t.comment, now()
      FROM unnest(p_clock, p_mun, p_bs, p_ym, p_state, p_version, p_by, p_at, p_comment)
           AS t(clock, m, bs, ym, state, version, by, at, comment)
     ORDER BY t.m, t.bs, t.ym, t.clock DESC
    ON CONFLICT (municipality, bs, ym) DO UPDATE
       SET state = excluded.state, clock = excluded.clock, version = excluded.version,
           decided_by = excluded.decided_by,
           decided_at_ms = excluded.decided_at_ms, comment = excluded.comment,
           updated_at = excluded.updated_at
     WHERE a.clock < excluded.clock;
    RETURN fresh;
END
$$;
