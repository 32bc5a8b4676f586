-- Release tasks (CONTRACT §5): the engine's durable state. Everything a
-- runner knows is here, so that any process can take a task over after the
-- one running it died.

CREATE TABLE release_tasks (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    environment         TEXT NOT NULL,
    type                TEXT NOT NULL CHECK (type IN ('deploy', 'rollback', 'stop')),
    strategy            TEXT NOT NULL CHECK (strategy IN ('canary', 'rolling', 'blue_green')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'running', 'paused', 'success', 'failed', 'cancelled')),
    phase               TEXT NOT NULL DEFAULT '',
    -- "<project>/<environment>" while the task is pending, running or paused,
    -- NULL once it has finished. The unique index below is what makes "one
    -- active task per environment" hold across processes and races.
    active_env          TEXT,
    -- The version as it was when the task was created; '' for a stop task
    -- of an environment that never had a successful release.
    version_id          TEXT NOT NULL DEFAULT '',
    version_name        TEXT NOT NULL DEFAULT '',
    version_description TEXT NOT NULL DEFAULT '',
    artifact            TEXT NOT NULL DEFAULT '',
    -- JSON: canary, auto_promote_after, batch_size, batch_percent,
    -- max_parallel, max_failures, auto_rollback as requested.
    options             TEXT NOT NULL,
    -- The task's executor override, sealed (it may hold a private key);
    -- '' means the environment's executor.
    executor            TEXT NOT NULL DEFAULT '',
    -- blue_green: the idle group this task deploys to and switches live.
    target_group        TEXT NOT NULL DEFAULT '',
    -- 1, then +1 per retry; part of every event's dedupe key.
    run                 INTEGER NOT NULL DEFAULT 1,
    -- +1 per pause; a scheduled auto-promotion only acts on its own pause.
    pause_seq           INTEGER NOT NULL DEFAULT 0,
    promote_at          TIMESTAMPTZ,
    cancel_requested    BOOLEAN NOT NULL DEFAULT FALSE,
    error               TEXT NOT NULL DEFAULT '',
    rollback_of         TEXT NOT NULL DEFAULT '',
    rollback_task_id    TEXT NOT NULL DEFAULT '',
    created_by_id       TEXT NOT NULL DEFAULT '',
    created_by_name     TEXT NOT NULL DEFAULT '',
    -- Who moved the task last (create, promote, cancel, retry): the actor of
    -- the events that follow.
    actor_id            TEXT NOT NULL DEFAULT '',
    actor_name          TEXT NOT NULL DEFAULT '',
    -- The lease of the process running the task. lease_token '' with a
    -- future lease_until is a reservation: a run job is queued and any
    -- runner may claim it. lease_until is Unix milliseconds, compared the
    -- same way on both engines.
    lease_node          TEXT NOT NULL DEFAULT '',
    lease_token         TEXT NOT NULL DEFAULT '',
    lease_until         BIGINT NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    started_at          TIMESTAMPTZ,
    finished_at         TIMESTAMPTZ,
    FOREIGN KEY (project_id, environment) REFERENCES environments (project_id, name) ON DELETE CASCADE
);
CREATE UNIQUE INDEX release_tasks_active_env ON release_tasks (active_env);
CREATE INDEX release_tasks_env ON release_tasks (project_id, environment, status, finished_at);
CREATE INDEX release_tasks_status ON release_tasks (status, id);

-- A task's batches in order: for canary, batch 1 is the canary; for
-- blue_green, the last batch is the switch.
CREATE TABLE release_task_batches (
    task_id     TEXT NOT NULL REFERENCES release_tasks (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (task_id, number)
);

-- One row per host of a task. A blue-green host moves to the switch batch
-- (phase switch) when the task is promoted.
CREATE TABLE release_task_hosts (
    task_id     TEXT NOT NULL REFERENCES release_tasks (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    address     TEXT NOT NULL,
    host_group  TEXT NOT NULL DEFAULT '',
    canary      BOOLEAN NOT NULL DEFAULT FALSE,
    -- The batch the plan gave the host; batch is where it is now (a retry
    -- after a rollback puts blue-green hosts back from the switch batch).
    plan_batch  INTEGER NOT NULL,
    batch       INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    exit_code   INTEGER,
    error       TEXT NOT NULL DEFAULT '',
    -- The last 64 KiB of the script's output (CONTRACT §4).
    output      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, name)
);
CREATE INDEX release_task_hosts_batch ON release_task_hosts (task_id, batch, position);
-- The runner asks "how many failed?" and "is anything left?" at every batch.
CREATE INDEX release_task_hosts_status ON release_task_hosts (task_id, status);
