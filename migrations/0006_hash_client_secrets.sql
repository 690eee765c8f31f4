-- Client secrets are kept as SHA-256 digests ('sha256:' + base64url), never as issued
-- (src/security/client-secrets.ts). Converts secrets stored in clear by earlier versions.
UPDATE clients
SET metadata = jsonb_set(
  metadata,
  '{client_secret}',
  to_jsonb('sha256:' || translate(rtrim(encode(sha256(convert_to(metadata->>'client_secret', 'UTF8')), 'base64'), '='), '+/', '-_'))
)
WHERE metadata ? 'client_secret' AND left(metadata->>'client_secret', 7) <> 'sha256:';
