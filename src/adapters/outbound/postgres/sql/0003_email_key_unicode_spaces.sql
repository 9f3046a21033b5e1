-- The uniqueness key of an address, exactly as the service computes it: every Unicode
-- White_Space character trimmed from both ends (Rust's `str::trim`), then lowercased (with
-- ICU's case mapping where the server has it). The first version trimmed ASCII spaces
-- only, so psql could store "bob@example.com" beside the same address followed by a
-- no-break space, which the service takes for one address; it also trimmed the letter v
-- ("\v" is not an escape in PostgreSQL strings), so "vi@x.com" and "i@x.com" clashed.
--
-- The index is dropped and built again under the new rule. When the addresses already
-- stored clash under it, the migration stops with their names and nothing of it is kept
-- (migrations run in one transaction): a person settles the clash, then starts Roster again.

DROP INDEX users_email_key;

DO $do$
DECLARE
  spaces text := ' ' || E'\t\n\r' || chr(11) || chr(12);
  lowered text := 'lower(btrim(email, %L))';
BEGIN
  -- Beyond ASCII the characters exist only in a UTF-8 database.
  IF getdatabaseencoding() = 'UTF8' THEN
    spaces := spaces || U&'\0085\00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\2028\2029\202F\205F\3000';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
    lowered := 'lower(btrim(email, %L) COLLATE "und-x-icu")';
  END IF;
  EXECUTE format(
    'CREATE OR REPLACE FUNCTION roster_email_key(email text) RETURNS text
       LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT ' || lowered || ' $f$',
    spaces);
END
$do$;

DO $do$
DECLARE
  clashes text;
  more bigint;
BEGIN
  WITH shared AS (
    SELECT string_agg(format('%s (user %s)', to_json(email), to_json(id)), ' and ' ORDER BY position, id) AS users,
           min(position) AS first
      FROM users
     GROUP BY roster_email_key(email)
    HAVING count(*) > 1
  )
  SELECT string_agg(users, '; ' ORDER BY first) FILTER (WHERE n <= 5), count(*) - 5
    INTO clashes, more
    FROM (SELECT users, first, row_number() OVER (ORDER BY first) AS n FROM shared) numbered;
  IF clashes IS NOT NULL THEN
    RAISE EXCEPTION 'stored addresses are the same address once Unicode spaces are trimmed: %',
      clashes || CASE WHEN more > 0 THEN format('; and %s more', more) ELSE '' END
      USING HINT = 'change or remove all but one of each (with psql), then start Roster again';
  END IF;
END
$do$;

CREATE UNIQUE INDEX users_email_key ON users (roster_email_key(email));
