-- Passkeys, authenticator apps, recovery codes, the second sign-in step, and the devices
-- behind each session.

-- The WebAuthn user handle: random per account (base64url of 32 bytes), never the email or a
-- `sub`, made when the person first opens the Security page.
ALTER TABLE accounts ADD COLUMN webauthn_user_id text UNIQUE;

CREATE TABLE passkeys (
  credential_id text PRIMARY KEY,
  account_id    text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  public_key    bytea NOT NULL,
  counter       bigint NOT NULL DEFAULT 0,
  transports    text[] NOT NULL DEFAULT '{}',
  device_type   text NOT NULL CHECK (device_type IN ('singleDevice', 'multiDevice')),
  backed_up     boolean NOT NULL,
  aaguid        text NOT NULL,
  name          text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz
);
CREATE INDEX passkeys_account_idx ON passkeys (account_id);

-- One authenticator app per account. The secret is an AES-256-GCM envelope under the
-- key-encryption key; last_used_step is the RFC 6238 time step of the last code accepted,
-- so a code is accepted once.
CREATE TABLE totp_factors (
  account_id      text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  secret_envelope jsonb NOT NULL,
  last_used_step  bigint,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_used_at    timestamptz
);

-- An authenticator app being set up: its secret until the person confirms a code.
CREATE TABLE totp_enrolments (
  account_id      text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  secret_envelope jsonb NOT NULL,
  expires_at      timestamptz NOT NULL
);

-- Single-use recovery codes, each as SHA-256 over a random salt and the code.
CREATE TABLE recovery_codes (
  account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  salt       bytea NOT NULL,
  code_hash  bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz,
  PRIMARY KEY (account_id, code_hash)
);

-- A sign-in whose first step (password) succeeded and whose second step is awaited. The
-- browser holds a random id; only its SHA-256 is stored. `door` is where it may finish.
CREATE TABLE pending_sign_ins (
  id_hash    text PRIMARY KEY,
  account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  door       text NOT NULL,
  amr        text[] NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX pending_sign_ins_expires_at_idx ON pending_sign_ins (expires_at);

-- WebAuthn challenges already answered (they are signed, not stored, when issued).
CREATE TABLE spent_challenges (
  digest     text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

-- What a person sees about each sign-in session on the Security page: browser and system
-- (not versions), the network prefix (not the address), first and last seen.
CREATE TABLE session_devices (
  session_uid   text PRIMARY KEY,
  account_id    text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  browser       text NOT NULL,
  os            text NOT NULL,
  ip_prefix     text,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_devices_account_idx ON session_devices (account_id);

ALTER TABLE account_sessions
  ADD COLUMN browser text NOT NULL DEFAULT 'unknown',
  ADD COLUMN os text NOT NULL DEFAULT 'unknown',
  ADD COLUMN ip_prefix text;
