-- Callback configurations (CONTRACT §8): global when project_id is NULL.
CREATE TABLE callback_configs (
    id         TEXT PRIMARY KEY,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    -- JSON array of subscribed event types; empty means every event.
    events     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX callback_configs_project ON callback_configs (project_id);

-- One row per channel of a configuration. The channel's config holds
-- secrets (tokens, signing keys, passwords) and is sealed.
CREATE TABLE callback_channels (
    id         TEXT PRIMARY KEY,
    config_id  TEXT NOT NULL REFERENCES callback_configs (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    config     TEXT NOT NULL,
    -- Why the channel was switched off by Herald itself (HTTP 410), if it was.
    disabled_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX callback_channels_config ON callback_channels (config_id, position);

-- Delivery history: one row per attempt (CONTRACT §8 history entry).
-- A delivery is one event to one channel; its attempts share delivery_id.
CREATE TABLE delivery_attempts (
    id              TEXT PRIMARY KEY,
    delivery_id     TEXT NOT NULL,
    config_id       TEXT NOT NULL,
    channel_id      TEXT NOT NULL,
    channel_type    TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    project_id      TEXT NOT NULL DEFAULT '',
    task_id         TEXT NOT NULL DEFAULT '',
    plan_id         TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    request         TEXT NOT NULL,
    response        TEXT NOT NULL DEFAULT '',
    status_code     INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    duration_ms     BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_config ON delivery_attempts (config_id, id);
CREATE INDEX delivery_attempts_task ON delivery_attempts (task_id, id);
CREATE INDEX delivery_attempts_plan ON delivery_attempts (plan_id, id);
CREATE INDEX delivery_attempts_project ON delivery_attempts (project_id, id);
CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id);
