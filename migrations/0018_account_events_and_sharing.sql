-- Account events to services (OpenID Shared Signals Framework), disabled accounts, and the
-- record of which claims each service received.

-- Set by an administrator (idp accounts disable); a disabled account cannot sign in.
ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;

-- One event stream per service (SSF 1.0, push delivery per RFC 8935).
CREATE TABLE event_streams (
  client_id        text PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
  stream_id        text NOT NULL UNIQUE,
  endpoint_url     text NOT NULL,
  events_requested text[] NOT NULL,
  status           text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'paused', 'disabled')),
  status_reason    text,
  description      text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Security Event Tokens to push: written in the transaction of the change they announce,
-- signed and sent by a worker with retries. `subject` is the service's own view of the person
-- (iss_sub with its sub), computed when queued: an account-purged event outlives the account.
-- `account_id` lets the person's export list what was sent; cleared when the account goes.
CREATE TABLE event_deliveries (
  id              bigserial PRIMARY KEY,
  client_id       text NOT NULL,
  -- The issuer of the process that queued it (every instance and the CLI share ISSUER).
  issuer          text NOT NULL,
  account_id      text,
  event_type      text NOT NULL,
  subject         jsonb NOT NULL,
  payload         jsonb NOT NULL,
  jti             text NOT NULL UNIQUE,
  txn             text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE INDEX event_deliveries_due_idx ON event_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX event_deliveries_created_idx ON event_deliveries (created_at);
CREATE INDEX event_deliveries_account_idx ON event_deliveries (account_id) WHERE account_id IS NOT NULL;

-- Which claims (names, never values) each service received about a person, by which route.
CREATE TABLE claim_releases (
  account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  client_id  text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  claim      text NOT NULL,
  route      text NOT NULL CHECK (route IN ('id_token', 'userinfo', 'introspection')),
  first_at   timestamptz NOT NULL DEFAULT now(),
  last_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, client_id, claim, route)
);
