-- Federal store, version 12: a municipality's calendar change is announced on fed_coverage
-- (issue 17). Applied by `federal-api migrate` (and at start) inside one transaction.
--
-- Every federal-api process keeps the approval coverage of recent answers until a commit
-- touches one of its months (federal-api/fcovcache.h). Which months count for a municipality
-- depends on the calendar it closes months in (coverage.calendar): a change, or its first row,
-- outdates every kept coverage ('*'). A row trigger sees the row version it replaces, so two
-- hubs' reports of one municipality committing one after the other each compare with what
-- the other left (a statement comparing with its own snapshot would not), and a change made by
-- hand is announced too. pg_notify sends one notification per transaction for equal payloads.
CREATE FUNCTION fed_coverage_calendar_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR TG_OP = 'DELETE'
       OR OLD.calendar IS DISTINCT FROM NEW.calendar THEN
        PERFORM pg_notify('fed_coverage', '*');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER coverage_calendar_notify
    AFTER INSERT OR DELETE OR UPDATE OF calendar ON coverage
    FOR EACH ROW EXECUTE FUNCTION fed_coverage_calendar_notify();
