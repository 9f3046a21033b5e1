-- Changes are numbered in commit order: the trigger takes a transaction-scoped advisory
-- lock before it takes the next revision, so a transaction that took a revision commits
-- before any other takes a higher one. Whoever has seen revision N committed has seen
-- every change below it (the live feed and `changes(after:)` rely on it). The lock is held
-- from a transaction's first recorded change to its end: a psql session that changes rows
-- and then waits holds up every other writer meanwhile.

CREATE OR REPLACE FUNCTION roster_users_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  payload text;
  change bigint;
  source jsonb;
BEGIN
  IF current_setting('roster.quiet', true) = 'on' THEN
    RETURN NULL;
  END IF;
  source := coalesce(nullif(current_setting('roster.source', true), '')::jsonb, '{"kind":"sql"}'::jsonb);
  -- "RosterCh" in ASCII: the change-numbering lock (migrations take "Roster").
  PERFORM pg_advisory_xact_lock(5940093377280361320);
  IF TG_OP = 'DELETE' THEN
    INSERT INTO user_changes (kind, user_id, before, after, source)
      VALUES ('deleted', OLD.id, roster_user_json(OLD), NULL, source) RETURNING revision INTO change;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO user_changes (kind, user_id, before, after, source)
      VALUES ('created', NEW.id, NULL, roster_user_json(NEW), source) RETURNING revision INTO change;
  ELSE
    INSERT INTO user_changes (kind, user_id, before, after, source)
      VALUES ('updated', NEW.id, roster_user_json(OLD), roster_user_json(NEW), source) RETURNING revision INTO change;
  END IF;
  IF TG_OP = 'DELETE' THEN
    payload := json_build_object('op', 'D', 'tx', pg_current_xact_id()::text,
      'id', OLD.id, 'rev', OLD.revision, 'change', change)::text;
  ELSE
    payload := json_build_object('op', left(TG_OP, 1), 'tx', pg_current_xact_id()::text,
      'id', NEW.id, 'rev', NEW.revision, 'change', change, 'row', json_build_object(
        'name', NEW.name,
        'email', NEW.email,
        'created_at', CASE WHEN roster_readable_at(NEW.created_at) THEN
          to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
        'updated_at', CASE WHEN roster_readable_at(NEW.updated_at) THEN
          to_char(NEW.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
        'position', NEW.position))::text;
    IF octet_length(payload) > 7900 THEN
      payload := json_build_object('op', left(TG_OP, 1), 'tx', pg_current_xact_id()::text,
        'id', NEW.id, 'rev', NEW.revision, 'change', change)::text;
    END IF;
  END IF;
  PERFORM pg_notify('roster_users', payload);
  RETURN NULL;
END
$$;
