-- When a person first and last used each service (a sign-in or a token issued to it), for
-- the "connected services" list. Grants alone cannot tell: their tokens are swept.
CREATE TABLE service_usage (
  account_id    text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  client_id     text NOT NULL,
  first_used_at timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, client_id)
);
