-- The conversation event log that plug-ins read: append-only, ordered by seq. A seq is taken
-- from the counter row in the transaction that inserts the event: it never goes back (not
-- after a deletion or a purge), and the row's lock orders concurrent writers, so seq follows
-- commit order on PostgreSQL too. Bodies are JSON.
CREATE TABLE event_seq (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO event_seq (id, seq) VALUES (1, 0);

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
