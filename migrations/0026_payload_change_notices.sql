-- Every serving instance keeps the tokens, codes and grants it issued or read in memory while
-- it listens on idp_changes (src/oidc/adapter.ts). Any change to such a live row (consumed,
-- revoked, a grant narrowed or withdrawn), by any instance, the CLI or by hand, names it there
-- when its transaction commits. Rows past their expiry need no notice: the caches check
-- expiry themselves, and the sweeper deletes such rows by the thousand.
CREATE FUNCTION notify_payload_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('idp_changes', 'artefacts:' || OLD.model || ':' || OLD.id);
  RETURN NULL;
END
$$;

CREATE TRIGGER oidc_payloads_changed AFTER UPDATE OR DELETE ON oidc_payloads
  FOR EACH ROW
  WHEN (OLD.model IN ('AccessToken', 'ClientCredentials', 'AuthorizationCode', 'RefreshToken', 'Grant')
        AND (OLD.expires_at IS NULL OR OLD.expires_at > now()))
  EXECUTE FUNCTION notify_payload_change();
