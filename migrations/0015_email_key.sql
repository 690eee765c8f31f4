-- The one normalised form of an address (src/accounts/email-key.ts: NFC, then JavaScript's
-- lower-casing), computed by the application and unique. Lookups compare it instead of
-- Postgres lower(), which disagrees with JavaScript on some letters (İ).
--
-- Every address stored so far passed the registration and CLI validation, which accepts ASCII
-- only, where lower() and JavaScript agree: this backfill is exact.
ALTER TABLE accounts ADD COLUMN email_key text;
UPDATE accounts SET email_key = lower(email);
ALTER TABLE accounts ALTER COLUMN email_key SET NOT NULL;
CREATE UNIQUE INDEX accounts_email_key_key ON accounts (email_key);
DROP INDEX accounts_email_lower_key;
