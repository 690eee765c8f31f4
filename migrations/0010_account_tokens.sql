-- One-time links sent by mail: email verification, email change, password reset. Only the
-- SHA-256 of each token is stored, so reading this table yields no usable link. A link is
-- spent by setting used_at in the same statement that checks it (single use under races).
CREATE TABLE account_tokens (
  token_hash text PRIMARY KEY,
  purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'change_email', 'reset_password')),
  account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  -- The address the link was sent to: the current one to verify, or the new one to change to.
  email      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX account_tokens_account_idx ON account_tokens (account_id, purpose);
CREATE INDEX account_tokens_expires_at_idx ON account_tokens (expires_at);
