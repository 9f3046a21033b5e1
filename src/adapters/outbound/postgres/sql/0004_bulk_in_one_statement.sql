-- A bulk email update is now worked out by the service from one locked read and written
-- with one statement per transaction: the function that updated the row again for every
-- item (each update walking the row's growing chain of versions, so time grew with the
-- square of the items) goes.
DROP FUNCTION roster_bulk_update_emails(text[], text[], timestamptz);
