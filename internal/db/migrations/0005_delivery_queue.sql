-- The deliveries still to make: one row per event and channel until it
-- succeeds or fails for good, then it is deleted (history keeps the
-- attempts). Herald's own queue rather than River's, because it is the
-- hottest path: a claim takes a batch in one statement, and an attempt's
-- result and its history row commit together.
--
-- due_at (Unix milliseconds: one comparable number in both engines) is
-- when the delivery may next be tried. A claim moves it past the attempt's
-- lease and stamps claim; if the process dies, the row is simply due again
-- when the lease ends.
CREATE TABLE delivery_queue (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL,
    config_id   TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    -- attempts made so far (history rows of this delivery)
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      BIGINT NOT NULL,
    claim       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX delivery_queue_due ON delivery_queue (due_at);

-- Most deliveries are of no task and no plan: index only those that are,
-- two b-tree writes fewer per attempt. Queries by task or plan say
-- "<> ''" so that both engines may use these partial indexes.
DROP INDEX delivery_attempts_task;
DROP INDEX delivery_attempts_plan;
CREATE INDEX delivery_attempts_task ON delivery_attempts (task_id, id) WHERE task_id <> '';
CREATE INDEX delivery_attempts_plan ON delivery_attempts (plan_id, id) WHERE plan_id <> '';
