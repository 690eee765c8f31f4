-- Mail written here instead of being sent when no SMTP server is configured (development,
-- tests). Rows go with their account; the sweeper deletes them after a week.
CREATE TABLE outbox (
  id         bigserial PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  account_id text REFERENCES accounts (id) ON DELETE CASCADE,
  purpose    text NOT NULL,
  language   text NOT NULL,
  recipient  text NOT NULL,
  subject    text NOT NULL,
  body       text NOT NULL
);
CREATE INDEX outbox_recipient_idx ON outbox (lower(recipient), id);
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
