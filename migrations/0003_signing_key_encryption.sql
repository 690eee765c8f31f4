-- Signing keys encrypted at rest, and rotated without breaking tokens services hold.
--
-- private_jwk_envelope: the private JWK encrypted with AES-256-GCM (src/oidc/key-encryption.ts):
--   {"enc":"A256GCM","kek":"<first 8 hex chars of SHA-256 of the key-encryption key>",
--    "iv":"<12 random bytes>","tag":"<16 bytes>","ciphertext":"..."}  (binary fields base64url)
-- with the row's kid as additional authenticated data, so an envelope copied onto another row
-- does not decrypt. The key-encryption key is KEY_ENCRYPTION_KEY, or, when that is unset, one
-- generated once into server_secrets ('key_encryption_key'). Encryption needs that key, so it
-- happens in the application, not here: private_jwk (plaintext) remains only on rows written
-- before this migration, until the server's next start or `idp keys rotate` re-encrypts them.
-- Exactly one of the two columns is set.
--
-- A key's life: published in the JWKS from created_at; signs from activates_at; stops signing
-- at retires_at (verification only); leaves the JWKS at retired_at, after which the row may be
-- deleted. Before this migration retired_at meant "no longer signs"; no command ever set it,
-- and a row someone retired by hand now also stops being published.
ALTER TABLE signing_keys
  ALTER COLUMN private_jwk DROP NOT NULL,
  ADD COLUMN private_jwk_envelope jsonb,
  ADD COLUMN activates_at timestamptz,
  ADD COLUMN retires_at timestamptz;

UPDATE signing_keys SET activates_at = created_at, retires_at = retired_at;

ALTER TABLE signing_keys
  ALTER COLUMN activates_at SET NOT NULL,
  ALTER COLUMN activates_at SET DEFAULT now(),
  ADD CONSTRAINT signing_keys_private_jwk_one_form CHECK ((private_jwk IS NULL) <> (private_jwk_envelope IS NULL));
