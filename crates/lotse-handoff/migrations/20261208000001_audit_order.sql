-- The audit trail's order within one millisecond: lines written in the same millisecond
-- (an administrator's change and the login right after it) came back in any order.
ALTER TABLE audit ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX audit_seq ON audit (seq);
