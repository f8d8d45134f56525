-- The retention promised when the record was made (days; the consent text names it): a later
-- change of the setting applies only to records made after it. NULL for older records, which
-- follow the setting.
ALTER TABLE handoffs ADD COLUMN retention_days BIGINT;
ALTER TABLE callbacks ADD COLUMN retention_days BIGINT;
