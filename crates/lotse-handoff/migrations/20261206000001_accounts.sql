-- Accounts can be disabled (their sessions end; the row stays, for the audit trail's names).
ALTER TABLE staff ADD COLUMN disabled_ms BIGINT;

-- Who changed what, when: claims, replies, closes, callbacks, settings, accounts, logins.
-- Never message text or a citizen's contact data: the target is a handoff's or callback's
-- id or an account's name (empty where the action says it all: admin.schedule, login).
CREATE TABLE audit (
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);
