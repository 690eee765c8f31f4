-- Back-channel logout deliveries: queued when a session ends (or a grant is revoked, or an
-- account deleted) and sent by a worker with timeouts and bounded retries, so a slow or
-- dead service never delays the user's logout page.
CREATE TABLE logout_deliveries (
  id              bigserial PRIMARY KEY,
  client_id       text NOT NULL,
  -- Needed to mint the logout token (the service's sub); cleared once the delivery ends.
  account_id      text,
  sid             text,
  reason          text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE INDEX logout_deliveries_due_idx ON logout_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX logout_deliveries_created_idx ON logout_deliveries (created_at);
