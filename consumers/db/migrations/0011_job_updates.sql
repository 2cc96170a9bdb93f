-- Updates in the unit outbox: what a later alarm changed about a unit's incident travels as a
-- row of its own, numbered in the unit's sequence like every job. See docs/protocol.md.
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

ALTER TABLE unit_outbox DROP CONSTRAINT unit_outbox_kind_check;
ALTER TABLE unit_outbox ADD CONSTRAINT unit_outbox_kind_check
    CHECK (kind IN ('assignment', 'mutual_aid_alert', 'stand_down', 'update'));
