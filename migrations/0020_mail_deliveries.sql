-- Mail that is not lost: with SMTP_URL set, every message is queued here in the transaction
-- (or request) that causes it and sent by a worker with retries and backoff while the mail
-- server is down or answers a temporary error. The body holds live links, so it is stored
-- encrypted under the key-encryption key, and it and the recipient are cleared once the
-- message is sent or given up; what remains is the outcome, for `idp mail deliveries`.
CREATE TABLE mail_deliveries (
  id              bigserial PRIMARY KEY,
  account_id      text REFERENCES accounts (id) ON DELETE CASCADE,
  purpose         text NOT NULL,
  language        text NOT NULL,
  recipient       text,
  subject         text NOT NULL,
  sealed_body     jsonb,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE INDEX mail_deliveries_due_idx ON mail_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_deliveries_created_idx ON mail_deliveries (created_at);
