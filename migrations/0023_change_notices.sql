-- Every instance keeps accounts and clients it reads in memory while it listens on
-- idp_changes (src/db/change-notices.ts). Any change to such a row, by any instance, the CLI
-- or by hand, names it there, and is delivered when its transaction commits. New rows need no
-- notice: ids not found are never cached.
CREATE FUNCTION notify_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('idp_changes', TG_TABLE_NAME || ':' || OLD.id);
  RETURN NULL;
END
$$;

CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION notify_row_change();
CREATE TRIGGER clients_changed AFTER UPDATE OR DELETE ON clients
  FOR EACH ROW EXECUTE FUNCTION notify_row_change();
