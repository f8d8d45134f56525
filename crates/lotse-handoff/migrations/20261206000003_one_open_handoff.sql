-- A conversation has at most one open handoff, also with several server nodes on one
-- PostgreSQL (two nodes asking at once could otherwise queue it twice).
-- A database that already has two (the race this closes) keeps the oldest open.
UPDATE handoffs SET state = 'closed', outcome = 'abandoned', closed_ms = created_ms
WHERE state IN ('waiting', 'claimed', 'active') AND EXISTS (
    SELECT 1 FROM handoffs older
    WHERE older.conversation_id = handoffs.conversation_id
      AND older.state IN ('waiting', 'claimed', 'active')
      AND (older.created_ms < handoffs.created_ms OR (older.created_ms = handoffs.created_ms AND older.id < handoffs.id))
);
CREATE UNIQUE INDEX handoffs_one_open ON handoffs (conversation_id) WHERE state IN ('waiting', 'claimed', 'active');
