-- The change history: one row per change to one user, written by the trigger that already
-- announces the change, in the same transaction, so a change made with psql is recorded
-- too. The service's own writes name their source (request id, credential) with
-- set_config('roster.source', ..., true); anything else is recorded as source SQL.

CREATE SEQUENCE roster_change_seq;

CREATE TABLE user_changes (
  revision bigint PRIMARY KEY DEFAULT nextval('roster_change_seq'),
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  kind text NOT NULL CHECK (kind IN ('created', 'updated', 'deleted', 'purged')),
  user_id text NOT NULL,
  before jsonb,
  after jsonb,
  source jsonb NOT NULL
);
COMMENT ON TABLE user_changes IS 'Every change to a user, oldest first: what it was before and after, and who made it.';
CREATE INDEX user_changes_by_user ON user_changes (user_id, revision);

CREATE FUNCTION roster_user_json(u users) RETURNS jsonb LANGUAGE sql STABLE AS $f$
  SELECT jsonb_build_object(
    'id', u.id, 'name', u.name, 'email', u.email,
    'createdAt', CASE WHEN roster_readable_at(u.created_at) THEN
      to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
    'updatedAt', CASE WHEN roster_readable_at(u.updated_at) THEN
      to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END)
$f$;

-- As before, and first the change is recorded; the payload carries its revision.
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
