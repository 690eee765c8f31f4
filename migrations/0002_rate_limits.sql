-- Counters of rate-limiter-flexible (RateLimiterPostgres), shared by every instance.
-- expire is epoch milliseconds, as the library writes it.
CREATE TABLE rate_limits (
  key    varchar(255) PRIMARY KEY,
  points integer NOT NULL DEFAULT 0,
  expire bigint
);
CREATE INDEX rate_limits_expire_idx ON rate_limits (expire);
