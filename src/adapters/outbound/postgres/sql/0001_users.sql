-- Roster's users, in a form a person can query with psql.
--
-- The API's five fields are plain columns; everything else has a default, so a row
-- inserted by hand needs only id, name and email.

CREATE SEQUENCE roster_position_seq;
CREATE SEQUENCE roster_revision_seq;

-- The uniqueness key of an address: trimmed and lowercased, with ICU's Unicode case
-- mapping where the server has it (the libc "C" locale lowercases ASCII only), to match
-- the service's own rule for every script.
DO $do$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
    CREATE FUNCTION roster_email_key(email text) RETURNS text
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $f$ SELECT lower(btrim(email, E' \t\n\r\f\v') COLLATE "und-x-icu") $f$;
  ELSE
    CREATE FUNCTION roster_email_key(email text) RETURNS text
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $f$ SELECT lower(btrim(email, E' \t\n\r\f\v')) $f$;
  END IF;
END
$do$;

CREATE TABLE users (
  id text PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  position bigint NOT NULL DEFAULT nextval('roster_position_seq'),
  extra jsonb NOT NULL DEFAULT '{}',
  revision bigint NOT NULL DEFAULT nextval('roster_revision_seq')
);
COMMENT ON TABLE users IS 'Roster''s users; allUsers lists them by position.';
COMMENT ON COLUMN users.position IS 'Creation (or imported file) order: allUsers lists users by it.';
COMMENT ON COLUMN users.extra IS 'Keys of an imported record that Roster does not model, written back by export.';
COMMENT ON COLUMN users.revision IS 'Set on every insert and update, so replicas apply changes in order.';

CREATE UNIQUE INDEX users_email_key ON users (roster_email_key(email));
CREATE UNIQUE INDEX users_position ON users (position);

-- Records of an imported file that are not users, kept at their place for export.
CREATE TABLE hidden_records (
  position bigint PRIMARY KEY DEFAULT nextval('roster_position_seq'),
  record jsonb NOT NULL
);
COMMENT ON TABLE hidden_records IS 'Imported records that are not users: hidden from the API, written back by export.';

CREATE FUNCTION roster_users_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.revision := nextval('roster_revision_seq');
  RETURN NEW;
END
$$;
CREATE TRIGGER users_stamp BEFORE INSERT OR UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION roster_users_stamp();

-- Every change, whoever makes it, reaches every replica. The payload carries the row when
-- it fits in a notification, otherwise only its id (the replica then reads the row).
CREATE FUNCTION roster_users_notify() RETURNS trigger LANGUAGE plpgsql AS $$
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
        'created_at', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(NEW.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
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
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION roster_users_notify();

-- A TRUNCATE changes every row at once: replicas read the table again.
CREATE FUNCTION roster_users_resync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('roster_users', json_build_object('op', 'R', 'tx', pg_current_xact_id()::text)::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER users_truncated AFTER TRUNCATE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION roster_users_resync();

-- A bulk email update in one round trip: each item in order, against the state the
-- earlier items left, one outcome per item ('updated', 'unchanged' for an address the user
-- already has, exactly as given, 'not_found', 'email_in_use', 'invalid_email'). A NULL email
-- marks an item whose address failed validation.
CREATE FUNCTION roster_bulk_update_emails(ids text[], emails text[], at timestamptz)
RETURNS TABLE (item integer, outcome text) LANGUAGE plpgsql AS $$
DECLARE
  i integer;
BEGIN
  FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
    item := i;
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = ids[i]) THEN
      outcome := 'not_found';
    ELSIF emails[i] IS NULL THEN
      outcome := 'invalid_email';
    ELSIF EXISTS (SELECT 1 FROM users u WHERE u.id = ids[i] AND u.email = emails[i]) THEN
      outcome := 'unchanged';
    ELSIF EXISTS (SELECT 1 FROM users u
                  WHERE roster_email_key(u.email) = roster_email_key(emails[i]) AND u.id <> ids[i]) THEN
      outcome := 'email_in_use';
    ELSE
      UPDATE users u SET email = emails[i], updated_at = at WHERE u.id = ids[i];
      outcome := 'updated';
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;
