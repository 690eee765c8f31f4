-- Every serving instance keeps the tokens, codes and grants it issued or read in memory while
-- it listens on idp_changes (src/oidc/adapter.ts). Any change to such a live row (consumed,
-- revoked, a grant narrowed or withdrawn), by any instance, the CLI or by hand, names it there
-- when its transaction commits. Rows past their expiry need no notice: the caches check
-- expiry themselves, and the sweeper deletes such rows by the thousand. Nor does a use
-- (consumed_at): the UPDATE that marks a code or refresh token used decides in Postgres which
-- use wins, so an instance holding the row as unused only learns there that it lost; and a
-- notifying commit takes a database-wide lock, which at every code exchange and refresh
-- rotation measured slower.
CREATE FUNCTION notify_payload_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('idp_changes', 'artefacts:' || OLD.model || ':' || OLD.id);
  RETURN NULL;
END
$$;

CREATE TRIGGER oidc_payloads_changed AFTER UPDATE OF payload, grant_id, account_id, client_id, expires_at OR DELETE ON oidc_payloads
  FOR EACH ROW
  WHEN (OLD.model IN ('AccessToken', 'ClientCredentials', 'AuthorizationCode', 'RefreshToken', 'Grant')
        AND (OLD.expires_at IS NULL OR OLD.expires_at > now()))
  EXECUTE FUNCTION notify_payload_change();
