-- Federal store, version 14: every change to the tokens table is announced on fed_coverage
-- with the payload 'tokens' (issue 17). Applied by `federal-api migrate` (and at start) inside
-- one transaction.
--
-- Every federal-api process keeps the tokens it found valid until the tokens table changes
-- (federal-api/ftokcache.h), so that a request need not look its token up in the store each
-- time. A statement trigger announces every INSERT, UPDATE, DELETE and TRUNCATE, whoever runs
-- it (`federal-api token create/revoke`, or a change made by hand in psql): delivered on
-- commit, the notification drops every process's kept tokens, so a revoked token is refused
-- from then on. The coverage cache (fcovcache.h), on the same channel, ignores this payload.
CREATE FUNCTION fed_tokens_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fed_coverage', 'tokens');
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION fed_tokens_notify();
