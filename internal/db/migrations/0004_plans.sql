-- Release plans (CONTRACT §7): the plan, its jobs, approvals, the
-- operation record, the external system's hook and callbacks.

-- A plan's number in creation order: the "index" of the seed's hook body.
CREATE TABLE release_plan_counters (
    name TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE release_plans (
    id                    TEXT PRIMARY KEY,
    number                BIGINT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    manager_id            TEXT NOT NULL,
    -- The release window and the scheduled execution; NULL when not set.
    start_time            TIMESTAMPTZ,
    end_time              TIMESTAMPTZ,
    schedule_execute_time TIMESTAMPTZ,
    description           TEXT NOT NULL DEFAULT '',
    -- JSON array of {"id","name","link"}.
    jira_sprints          TEXT NOT NULL DEFAULT '[]',
    approval_enabled      BOOLEAN NOT NULL DEFAULT FALSE,
    -- JSON array of user ids.
    approvers             TEXT NOT NULL DEFAULT '[]',
    approval_mode         TEXT NOT NULL DEFAULT 'any',
    status                TEXT NOT NULL,
    -- Changes with every edit and every replan: hooks carry it, callbacks
    -- must quote it, and the scheduled jobs of one round carry it too, so
    -- nothing of an older round can act on the plan.
    instance_code         TEXT NOT NULL,
    -- Why the last external check failed.
    check_failed_reason   TEXT NOT NULL DEFAULT '',
    -- When the external check being waited for counts as failed.
    check_deadline        TIMESTAMPTZ,
    planning_time         TIMESTAMPTZ,
    approval_time         TIMESTAMPTZ,
    executing_time        TIMESTAMPTZ,
    success_time          TIMESTAMPTZ,
    created_by_id         TEXT NOT NULL DEFAULT '',
    created_by_name       TEXT NOT NULL DEFAULT '',
    updated_by_id         TEXT NOT NULL DEFAULT '',
    updated_by_name       TEXT NOT NULL DEFAULT '',
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX release_plans_status ON release_plans (status, id);

CREATE TABLE release_plan_jobs (
    id               TEXT PRIMARY KEY,
    plan_id          TEXT NOT NULL REFERENCES release_plans (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    type             TEXT NOT NULL CHECK (type IN ('text', 'workflow')),
    manager_id       TEXT NOT NULL DEFAULT '',
    -- text: {"content","remark"}; workflow: {"workflow": <task body>}.
    spec             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('todo', 'running', 'done', 'failed', 'skipped')),
    -- The release task of a workflow job and its status as last seen.
    task_id          TEXT NOT NULL DEFAULT '',
    task_status      TEXT NOT NULL DEFAULT '',
    -- Set while a task is being created for the job: a launch whose token
    -- no longer matches (the job was reset meanwhile) records nothing.
    launch_token     TEXT NOT NULL DEFAULT '',
    launched_at      TIMESTAMPTZ,
    error            TEXT NOT NULL DEFAULT '',
    executed_by_id   TEXT NOT NULL DEFAULT '',
    executed_by_name TEXT NOT NULL DEFAULT '',
    executed_at      TIMESTAMPTZ
);
CREATE INDEX release_plan_jobs_plan ON release_plan_jobs (plan_id, position);
CREATE INDEX release_plan_jobs_task ON release_plan_jobs (task_id);
CREATE INDEX release_plan_jobs_status ON release_plan_jobs (status);

-- Approvers' answers, one per approver and round.
CREATE TABLE release_plan_approvals (
    plan_id       TEXT NOT NULL REFERENCES release_plans (id) ON DELETE CASCADE,
    instance_code TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    approve       BOOLEAN NOT NULL,
    comment       TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (plan_id, instance_code, user_id)
);

-- The operation record: every change, written in the change's transaction.
CREATE TABLE release_plan_logs (
    id          TEXT PRIMARY KEY,
    plan_id     TEXT NOT NULL REFERENCES release_plans (id) ON DELETE CASCADE,
    actor_id    TEXT NOT NULL DEFAULT '',
    actor_name  TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    -- JSON of what changed, before and after; '' when there is nothing.
    before_json TEXT NOT NULL DEFAULT '',
    after_json  TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX release_plan_logs_plan ON release_plan_logs (plan_id, id);

-- The external system's hook (GET/PUT /api/v1/release/settings/plan-hook);
-- one row, id 'default'. hook_secret is sealed.
CREATE TABLE release_plan_hook_settings (
    id               TEXT PRIMARY KEY,
    enable           BOOLEAN NOT NULL,
    enable_callback  BOOLEAN NOT NULL,
    hook_address     TEXT NOT NULL,
    hook_secret      TEXT NOT NULL,
    hook_events      TEXT NOT NULL,
    check_timeout_ms BIGINT NOT NULL,
    updated_by_id    TEXT NOT NULL DEFAULT '',
    updated_at       TIMESTAMPTZ NOT NULL
);

-- One hook request per plan moment; its body is built when the moment
-- happens and sent unchanged on every attempt.
CREATE TABLE release_plan_hooks (
    id            TEXT PRIMARY KEY,
    plan_id       TEXT NOT NULL REFERENCES release_plans (id) ON DELETE CASCADE,
    instance_code TEXT NOT NULL,
    hook_event    TEXT NOT NULL,
    body          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (plan_id, instance_code, hook_event)
);

-- Every attempt of a hook request, secrets masked.
CREATE TABLE release_plan_hook_attempts (
    id          TEXT PRIMARY KEY,
    hook_id     TEXT NOT NULL REFERENCES release_plan_hooks (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    request     TEXT NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    response    TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX release_plan_hook_attempts_hook ON release_plan_hook_attempts (hook_id, attempt);

-- Callbacks applied, one per plan round and hook event: a repeated
-- callback finds its row and changes nothing.
CREATE TABLE release_plan_callbacks (
    plan_id       TEXT NOT NULL REFERENCES release_plans (id) ON DELETE CASCADE,
    instance_code TEXT NOT NULL,
    hook_event    TEXT NOT NULL,
    result        TEXT NOT NULL,
    failed_reason TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (plan_id, instance_code, hook_event)
);
