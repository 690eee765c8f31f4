-- Rows keyed by a credential (authorization codes, access and refresh tokens, session and
-- interaction cookies, initial and registration access tokens) are stored under the SHA-256
-- of the value, base64url, and without the value in their payload (src/oidc/adapter.ts): a
-- database dump yields nothing a browser or a service could present. Grants and clients keep
-- their ids, which are references, not credentials. This converts rows written before.
--
-- Interactions in progress are dropped rather than converted (their resume URL holds the
-- interaction id): a sign-in that was half-way through starts again at the service.
DELETE FROM oidc_payloads WHERE model = 'Interaction';

UPDATE oidc_payloads
SET id = translate(rtrim(encode(sha256(convert_to(id, 'UTF8')), 'base64'), '='), '+/', '-_'),
    payload = payload - 'jti' - 'userCode',
    user_code = CASE
      WHEN user_code IS NULL THEN NULL
      ELSE translate(rtrim(encode(sha256(convert_to(user_code, 'UTF8')), 'base64'), '='), '+/', '-_')
    END
WHERE model NOT IN ('Grant', 'Client');

-- Initial access tokens are spent by the 'registration-rules' registration policy; tokens issued
-- before it allowed any number of registrations and are now single-use.
UPDATE oidc_payloads
SET payload = jsonb_set(payload, '{policies}', '["registration-rules"]'::jsonb)
WHERE model = 'InitialAccessToken';
