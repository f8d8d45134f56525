-- The conversation event log that plug-ins read: append-only, ordered by seq (one more than
-- the highest, assigned in the insert; a concurrent insert of the same seq fails on the key
-- and is retried, so seq follows commit order on PostgreSQL too). Bodies are JSON.
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    conversation_id TEXT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id);
CREATE INDEX events_at ON events (at_ms);

-- How far each plug-in has read the log.
CREATE TABLE plugin_positions (
    plugin TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

-- The plug-ins' own schema changes, applied once each.
CREATE TABLE plugin_migrations (
    plugin TEXT NOT NULL,
    version BIGINT NOT NULL,
    applied_ms BIGINT NOT NULL,
    PRIMARY KEY (plugin, version)
);
