-- Federal store, version 6: failed token attempts reach the audit in batches (issue 18).
-- Applied by `federal-api migrate` (and at start) inside one transaction.

-- A request without a valid token used to cost one audit row, written on the pool that hub
-- ingest shares, before it was answered. Such attempts are now counted in memory per
-- (client address, token prefix) and written every few seconds as one row per pair and
-- status: attempts says how many requests the row stands for (1 for every other row),
-- first_at when the first of them came (at is the last), token_prefix the first characters
-- of the token presented ("none" when there was none; NULL on rows of authenticated
-- requests, whose token is named by who).
ALTER TABLE audit
    ADD COLUMN attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    ADD COLUMN first_at timestamptz,
    ADD COLUMN token_prefix text;
