-- Stand-downs in the unit outbox: a job withdrawn from a unit travels as a row of its own,
-- numbered in the unit's sequence like every job. See docs/protocol.md ("job", stand-downs).
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

ALTER TABLE unit_outbox DROP CONSTRAINT unit_outbox_kind_check;
ALTER TABLE unit_outbox ADD CONSTRAINT unit_outbox_kind_check
    CHECK (kind IN ('assignment', 'mutual_aid_alert', 'stand_down'));

-- The assignment a stand_down withdraws (NULL for every other kind). Unique: a job is
-- withdrawn once, and the gateway finds by it whether a job a unit answers was withdrawn.
ALTER TABLE unit_outbox ADD COLUMN withdraws uuid;
ALTER TABLE unit_outbox ADD CONSTRAINT unit_outbox_withdraws_only_stand_down
    CHECK ((kind = 'stand_down') = (withdraws IS NOT NULL));
CREATE UNIQUE INDEX unit_outbox_withdraws ON unit_outbox (withdraws) WHERE withdraws IS NOT NULL;
