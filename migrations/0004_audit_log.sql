-- Security events. Never holds passwords, tokens, emails or names: the actor is an account
-- id, 'admin' for the CLI, or NULL when nobody was identified (a failed sign-in).
CREATE TABLE audit_events (
  id          bigserial PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  event       text NOT NULL,
  outcome     text NOT NULL,
  actor       text,
  client_id   text,
  ip          text,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_event_idx ON audit_events (event, occurred_at);
