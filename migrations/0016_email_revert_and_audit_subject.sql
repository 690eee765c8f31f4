-- A link mailed to the previous address when an email change is asked for: it cancels the
-- change, or after it completed restores the old address and ends every session.
ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_purpose_check;
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_purpose_check
  CHECK (purpose IN ('verify_email', 'change_email', 'reset_password', 'revert_email_change'));

-- The account an event concerns (also when it was not the actor: a failed sign-in against
-- it, an administrator's change), so that deleting the account deletes every event about it.
ALTER TABLE audit_events ADD COLUMN account_id text;
UPDATE audit_events SET account_id = CASE
  WHEN actor IS NOT NULL AND actor <> 'admin' THEN actor
  ELSE details->>'accountId'
END;
CREATE INDEX audit_events_account_idx ON audit_events (account_id) WHERE account_id IS NOT NULL;
