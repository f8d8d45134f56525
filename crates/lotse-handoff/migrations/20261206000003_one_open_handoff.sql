-- A conversation has at most one open handoff, also with several server nodes on one
-- PostgreSQL (two nodes asking at once could otherwise queue it twice).
CREATE UNIQUE INDEX handoffs_one_open ON handoffs (conversation_id) WHERE state IN ('waiting', 'claimed', 'active');
