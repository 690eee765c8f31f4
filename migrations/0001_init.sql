-- Accounts hold only login credentials and basic profile claims; nothing else personal.
CREATE TABLE accounts (
  id             text PRIMARY KEY,
  email          text NOT NULL,
  email_verified boolean NOT NULL DEFAULT false,
  password_hash  text NOT NULL,
  name           text,
  given_name     text,
  family_name    text,
  locale         text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique regardless of case; lookups use lower(email) and hit this index.
CREATE UNIQUE INDEX accounts_email_lower_key ON accounts (lower(email));

-- Every oidc-provider model (sessions, interactions, codes, tokens, grants, ...).
-- The columns beside the payload are copies of payload fields that are looked up.
CREATE TABLE oidc_payloads (
  model       text NOT NULL,
  id          text NOT NULL,
  payload     jsonb NOT NULL,
  grant_id    text,
  user_code   text,
  uid         text,
  account_id  text,
  client_id   text,
  expires_at  timestamptz,
  consumed_at timestamptz,
  PRIMARY KEY (model, id)
);
CREATE INDEX oidc_payloads_grant_id_idx ON oidc_payloads (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oidc_payloads_uid_idx ON oidc_payloads (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX oidc_payloads_user_code_idx ON oidc_payloads (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX oidc_payloads_account_id_idx ON oidc_payloads (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX oidc_payloads_client_id_idx ON oidc_payloads (client_id) WHERE client_id IS NOT NULL;
CREATE INDEX oidc_payloads_expires_at_idx ON oidc_payloads (expires_at) WHERE expires_at IS NOT NULL;

-- Relying services. metadata is the OIDC client metadata oidc-provider validates.
CREATE TABLE clients (
  id         text PRIMARY KEY,
  metadata   jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Signing keys, shared by every instance so they all publish the same JWKS.
CREATE TABLE signing_keys (
  kid         text PRIMARY KEY,
  alg         text NOT NULL,
  private_jwk jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz
);

-- Generated secrets (cookie keys, pairwise salt) used when the environment sets none,
-- so that every instance on this database agrees on them.
CREATE TABLE server_secrets (
  name       text PRIMARY KEY,
  value      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
