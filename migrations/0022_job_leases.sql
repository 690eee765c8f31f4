-- Jobs that should run once per database rather than once per process (the expired-row
-- sweeper): whoever holds the lease runs them, and takes it over once it has lapsed.
CREATE TABLE job_leases (
  name       text PRIMARY KEY,
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
);
