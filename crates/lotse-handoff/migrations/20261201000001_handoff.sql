-- The staff handoff: one schema for SQLite and PostgreSQL (plain types only; times are
-- milliseconds since the Unix epoch, lists are JSON text).

CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    team TEXT NOT NULL,
    -- waiting | claimed | active | closed | abandoned
    state TEXT NOT NULL,
    -- asked | repeated_failure
    reason TEXT NOT NULL,
    lang TEXT NOT NULL,
    channel TEXT NOT NULL,
    service TEXT,
    sources TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    claimed_ms BIGINT,
    claimed_by TEXT,
    staff_seen_ms BIGINT,
    closed_ms BIGINT,
    -- resolved | referred | no_answer | handed_back | abandoned | deleted
    outcome TEXT,
    note TEXT,
    citizen_seen_ms BIGINT NOT NULL
);
CREATE INDEX handoffs_state ON handoffs (state, created_ms);
CREATE INDEX handoffs_conversation ON handoffs (conversation_id);

CREATE TABLE messages (
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- citizen | bot | staff | system
    author TEXT NOT NULL,
    staff TEXT,
    text TEXT NOT NULL,
    sources TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    team TEXT NOT NULL,
    -- open | scheduled | done
    state TEXT NOT NULL,
    -- phone | email
    contact_kind TEXT NOT NULL,
    contact TEXT NOT NULL,
    name TEXT,
    topic TEXT NOT NULL,
    lang TEXT NOT NULL,
    consent TEXT NOT NULL,
    consent_ms BIGINT NOT NULL,
    slot_start_ms BIGINT NOT NULL,
    slot_end_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    assigned_to TEXT,
    scheduled_ms BIGINT,
    done_ms BIGINT,
    note TEXT
);
CREATE INDEX callbacks_state ON callbacks (state, slot_start_ms);

CREATE TABLE staff (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- staff | admin
    role TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    staff TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
