-- Federal store, version 2: published national directives and their delivery to hubs.
-- Applied by `federal-api migrate` (and at start) inside one transaction.

-- One row per published directive: the exact serialized Directive that was signed (body)
-- and its Ed25519 signature, so that every hub receives the same bytes. A serial is taken
-- as max + 1 by the INSERT that stores it (POST /v1/directives retries when another
-- publication took it first), so serials are gap-free and commit in order: a reader that
-- sees serial n sees every serial below it.
CREATE TABLE directives (
    serial bigint PRIMARY KEY CHECK (serial > 0),
    key_id text NOT NULL,
    body bytea NOT NULL,
    signature bytea NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by text NOT NULL
);

-- Highest directive serial each hub store has acknowledged (DirectiveAck). Keyed by the
-- hub's store incarnation as well, so that a hub rebuilt from nothing receives every
-- directive again.
CREATE TABLE directive_delivery (
    province smallint NOT NULL CHECK (province BETWEEN 1 AND 7),
    incarnation bytea NOT NULL,
    acked_serial bigint NOT NULL,
    acked_at timestamptz NOT NULL,
    PRIMARY KEY (province, incarnation)
);
