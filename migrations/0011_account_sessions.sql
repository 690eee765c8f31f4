-- Sessions of the first-party account pages (/account), separate from oidc-provider's
-- sessions. The cookie holds a random id; only its SHA-256 is stored.
CREATE TABLE account_sessions (
  id_hash      text PRIMARY KEY,
  account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX account_sessions_account_idx ON account_sessions (account_id);
CREATE INDEX account_sessions_expires_at_idx ON account_sessions (expires_at);
