-- Timestamps every client can read: years 1 to 9999, in UTC. psql accepts 'infinity',
-- '-infinity' and years up to 294276, which the driver cannot decode (a full read fails
-- and no replica can start) or the API cannot write as RFC 3339.
--
-- The check is added NOT VALID, so adding it cannot fail; the rows that break it become
-- NULL (the API's "unknown"), and only then is it validated. The table stays locked from
-- the ALTER to the commit, so no row can slip in between.

-- Not STRICT, so PostgreSQL inlines it (NULL still gives NULL, which a check accepts): a
-- function call per row made a million-row COPY twice as slow.
CREATE FUNCTION roster_readable_at(at timestamptz) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $f$ SELECT at >= '0001-01-01 00:00:00+00' AND at < '10000-01-01 00:00:00+00' $f$;

ALTER TABLE users ADD CONSTRAINT users_timestamps_readable
  CHECK (roster_readable_at(created_at) AND roster_readable_at(updated_at)) NOT VALID;

UPDATE users
   SET created_at = CASE WHEN roster_readable_at(created_at) THEN created_at END,
       updated_at = CASE WHEN roster_readable_at(updated_at) THEN updated_at END
 WHERE NOT roster_readable_at(created_at) OR NOT roster_readable_at(updated_at);

ALTER TABLE users VALIDATE CONSTRAINT users_timestamps_readable;

-- A row that got past the check anyway (the check dropped, or disabled by a restore) still
-- reaches the replicas: its notification carries such a timestamp as null.
CREATE OR REPLACE FUNCTION roster_users_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  payload text;
BEGIN
  IF current_setting('roster.quiet', true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    payload := json_build_object('op', 'D', 'tx', pg_current_xact_id()::text,
      'id', OLD.id, 'rev', OLD.revision)::text;
  ELSE
    payload := json_build_object('op', left(TG_OP, 1), 'tx', pg_current_xact_id()::text,
      'id', NEW.id, 'rev', NEW.revision, 'row', json_build_object(
        'name', NEW.name,
        'email', NEW.email,
        'created_at', CASE WHEN roster_readable_at(NEW.created_at) THEN
          to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
        'updated_at', CASE WHEN roster_readable_at(NEW.updated_at) THEN
          to_char(NEW.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
        'position', NEW.position))::text;
    IF octet_length(payload) > 7900 THEN
      payload := json_build_object('op', left(TG_OP, 1), 'tx', pg_current_xact_id()::text,
        'id', NEW.id, 'rev', NEW.revision)::text;
    END IF;
  END IF;
  PERFORM pg_notify('roster_users', payload);
  RETURN NULL;
END
$$;
