-- The person's time zone (the OIDC zoneinfo claim, an IANA name such as Asia/Tokyo): dates
-- on the pages are shown in it. Null: the default of their language.
ALTER TABLE accounts ADD COLUMN zoneinfo text;
