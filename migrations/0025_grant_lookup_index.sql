-- The newest live grant of an account to a service (latestGrantId in src/oidc/artefacts.ts),
-- read at every sign-in to every service. With only single-column indexes, a statement
-- prepared while the table was small keeps the plan made then: a walk of the client_id
-- index, that is every grant and token of the service, until an ANALYZE. By both columns
-- the lookup is a few rows at any table size, whatever the statistics say.
CREATE INDEX oidc_payloads_grant_account_client_idx ON oidc_payloads (account_id, client_id) WHERE model = 'Grant';
