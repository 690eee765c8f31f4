-- Accounts brought from a service's own user store (idp accounts import).

-- An imported account may have no password of ours yet: its hash from the service waits in
-- imported_passwords until the first sign-in, or it had none worth keeping (reset flow).
ALTER TABLE accounts ALTER COLUMN password_hash DROP NOT NULL;

-- Password hashes in the notation the service wrote them (bcrypt, argon2, scrypt, PBKDF2),
-- verified once at the first sign-in and then replaced by our argon2id hash; every row of
-- the account goes then, and when the password is changed or reset.
CREATE TABLE imported_passwords (
  account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  hash        text NOT NULL,
  source      text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, hash)
);

-- Which account each imported row became: a service's legacy id (source = its client id,
-- '' when the file named none). Makes a re-run a no-op, and is kept (without the account)
-- after a deletion so that an old file cannot bring a deleted account back.
CREATE TABLE account_imports (
  source      text NOT NULL,
  legacy_id   text NOT NULL,
  account_id  text REFERENCES accounts (id) ON DELETE SET NULL,
  outcome     text NOT NULL CHECK (outcome IN ('created', 'merged')),
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, legacy_id)
);
CREATE INDEX account_imports_account_idx ON account_imports (account_id) WHERE account_id IS NOT NULL;
