-- A logout token is signed by the process that sends it, as its issuer: a queued delivery
-- names the issuer that queued it and is sent only by a process of that issuer (one database
-- shared under two issuers, as in a rename or a test run, would otherwise send tokens whose
-- iss the service rejects). Rows queued before this have none and any process sends them.
ALTER TABLE logout_deliveries ADD COLUMN issuer text;
