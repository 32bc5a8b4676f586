package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
)

// The task state machine. Every function here runs inside the caller's
// transaction with the task row locked, changes the state, and publishes
// the moment that change is; the caller commits both or neither.

// saveTask writes a task's mutable columns. active_env follows the status,
// so finishing a task frees its environment in the same write.
func (e *Engine) saveTask(ctx context.Context, tx db.Tx, t *taskRow) error {
	t.UpdatedAt = e.stamp()
	var active any
	if Active(t.Status) {
		active = t.activeKey()
	}
	_, err := tx.Exec(ctx, `UPDATE release_tasks SET status = $2, phase = $3, active_env = $4, run = $5,
		pause_seq = $6, promote_at = $7, cancel_requested = $8, error = $9, rollback_task_id = $10,
		actor_id = $11, actor_name = $12, lease_node = $13, lease_token = $14, lease_until = $15,
		updated_at = $16, started_at = $17, finished_at = $18
		WHERE id = $1`,
		t.ID, t.Status, t.Phase, active, t.Run, t.PauseSeq, t.PromoteAt, t.CancelRequested, t.Error, t.RollbackTaskID,
		t.ActorID, t.ActorName, t.LeaseNode, t.LeaseToken, t.LeaseUntil, t.UpdatedAt, t.StartedAt, t.FinishedAt)
	if errors.Is(err, db.ErrUnique) {
		return apperr.Conflict("environment %s already has an active task: wait for it to finish or cancel it", t.activeKey())
	}
	return err
}

func clearLease(t *taskRow) { t.LeaseNode, t.LeaseToken, t.LeaseUntil = "", "", 0 }

// enqueueRun queues a runner for t and reserves the task for it: any
// runner may claim a reservation, and recovery leaves it alone until it
// expires. The caller saves t.
func (e *Engine) enqueueRun(ctx context.Context, tx db.Tx, t *taskRow) error {
	t.LeaseNode, t.LeaseToken = "", ""
	t.LeaseUntil = nowMS(e.now().Add(pickupTTL))
	_, err := e.q.InsertTx(ctx, tx, RunArgs{TaskID: t.ID}, &river.InsertOpts{Queue: QueueName})
	return err
}

// nextBatch is the first batch with work left, nil when all are done.
func nextBatch(bs []*batchRow) *batchRow {
	for _, b := range bs {
		if b.Status == HostPending || b.Status == HostRunning {
			return b
		}
	}
	return nil
}

// start moves a task pending → running and publishes its start:
// canary_started when it begins with the canary, release_started for
// rolling and blue-green. A canary task retried after its canary passed
// starts in the rollout and announces nothing: neither moment is true.
func (e *Engine) start(ctx context.Context, tx db.Tx, t *taskRow, first *batchRow) error {
	now := e.stamp()
	t.Status, t.StartedAt, t.FinishedAt = StatusRunning, &now, nil
	t.Phase = first.Phase
	if err := e.saveTask(ctx, tx, t); err != nil {
		return err
	}
	switch {
	case t.Phase == PhaseCanary:
		return e.publish(ctx, tx, t, event.CanaryStarted)
	case t.Strategy != StrategyCanary:
		return e.publish(ctx, tx, t, event.ReleaseStarted)
	}
	return nil
}

// pause stops a task to wait for promotion, scheduling the automatic one
// when asked. The auto-promotion carries the pause number, so a late job
// never promotes a later pause.
func (e *Engine) pause(ctx context.Context, tx db.Tx, t *taskRow) error {
	t.Status = StatusPaused
	t.PauseSeq++
	t.PromoteAt = nil
	clearLease(t)
	if d := t.Options.AutoPromoteAfter.D(); d > 0 {
		at := e.stamp().Add(d)
		t.PromoteAt = &at
		if _, err := e.q.InsertTx(ctx, tx, PromoteArgs{TaskID: t.ID, PauseSeq: t.PauseSeq},
			&river.InsertOpts{Queue: ControlQueueName, ScheduledAt: at}); err != nil {
			return err
		}
	}
	return e.saveTask(ctx, tx, t)
}

// promote moves a paused task on: a canary to its rollout, a blue-green
// task to its switch, whose batch receives the hosts that deployed.
func (e *Engine) promote(ctx context.Context, tx db.Tx, t *taskRow, actor event.Actor) error {
	bs, err := loadBatches(ctx, tx, t.ID)
	if err != nil {
		return err
	}
	next := nextBatch(bs)
	if next != nil && next.Phase == PhaseSwitch {
		if _, err := tx.Exec(ctx, `UPDATE release_task_hosts SET batch = $2, phase = $3, status = $4,
			started_at = NULL, finished_at = NULL, exit_code = NULL, error = ''
			WHERE task_id = $1 AND status = $5`, t.ID, next.Number, PhaseSwitch, HostPending, HostSuccess); err != nil {
			return err
		}
	}
	t.Status = StatusRunning
	if next != nil {
		t.Phase = next.Phase
	}
	t.PromoteAt = nil
	t.ActorID, t.ActorName = actor.ID, actor.Name
	if err := e.enqueueRun(ctx, tx, t); err != nil {
		return err
	}
	return e.saveTask(ctx, tx, t)
}

// finishBatches closes the batches of a task that stops: the one running
// gets status, the ones not started are skipped, and so are the hosts that
// never ran.
func (e *Engine) finishBatches(ctx context.Context, tx db.Tx, t *taskRow, status string) error {
	now := e.stamp()
	if _, err := tx.Exec(ctx, `UPDATE release_task_hosts SET status = $2 WHERE task_id = $1 AND status = $3`,
		t.ID, HostSkipped, HostPending); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE release_task_batches SET status = $2, finished_at = $3 WHERE task_id = $1 AND status = $4`,
		t.ID, status, now, HostRunning); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE release_task_batches SET status = $2 WHERE task_id = $1 AND status = $3`,
		t.ID, HostSkipped, HostPending)
	return err
}

// succeed moves a task running → success and publishes full_completed. A
// blue-green task records its group as live in the same transaction.
func (e *Engine) succeed(ctx context.Context, tx db.Tx, t *taskRow) error {
	if t.Strategy == StrategyBlueGreen && t.TargetGroup != "" {
		if err := e.inv.SetLiveGroup(ctx, tx, t.ProjectID, t.Environment, t.TargetGroup); err != nil {
			return err
		}
	}
	now := e.stamp()
	t.Status, t.FinishedAt, t.Phase, t.PromoteAt = StatusSuccess, &now, "", nil
	clearLease(t)
	if err := e.saveTask(ctx, tx, t); err != nil {
		return err
	}
	return e.publish(ctx, tx, t, event.FullCompleted)
}

// cancel moves a task to cancelled and publishes release_cancelled.
func (e *Engine) cancel(ctx context.Context, tx db.Tx, t *taskRow) error {
	if err := e.finishBatches(ctx, tx, t, StatusCancelled); err != nil {
		return err
	}
	now := e.stamp()
	t.Status, t.FinishedAt, t.PromoteAt = StatusCancelled, &now, nil
	clearLease(t)
	if err := e.saveTask(ctx, tx, t); err != nil {
		return err
	}
	return e.publish(ctx, tx, t, event.ReleaseCancelled)
}

// fail moves a task to failed, publishes release_failed and, with
// auto_rollback, starts the rollback. It reports whether it queued a job.
func (e *Engine) fail(ctx context.Context, tx db.Tx, t *taskRow, reason string) (queued bool, err error) {
	if err := e.finishBatches(ctx, tx, t, StatusFailed); err != nil {
		return false, err
	}
	now := e.stamp()
	t.Status, t.FinishedAt, t.PromoteAt, t.Error = StatusFailed, &now, nil, reason
	clearLease(t)
	if err := e.saveTask(ctx, tx, t); err != nil {
		return false, err
	}
	if err := e.publish(ctx, tx, t, event.ReleaseFailed); err != nil {
		return false, err
	}
	if !t.Options.AutoRollback || t.Type != TypeDeploy {
		return false, nil
	}
	return e.rollback(ctx, tx, t)
}

// rollback starts the automatic rollback of a failed deploy: a new task of
// type rollback (strategy rolling, the failed task's batch settings and
// executor) over the hosts the failed task ran on, successfully or not (a
// host that failed its deploy may be half updated), back to the latest
// version that succeeded in the environment before. It is a task of its own
// so that it has its own hosts, logs, events and retry, and takes over the
// environment in the same transaction that freed it. The failed task
// publishes rollback_started.
func (e *Engine) rollback(ctx context.Context, tx db.Tx, t *taskRow) (bool, error) {
	hosts, err := loadHosts(ctx, tx, t.ID, 0)
	if err != nil {
		return false, err
	}
	var touched []*hostRow
	for _, h := range hosts {
		if h.Status == HostSuccess || h.Status == HostFailed {
			touched = append(touched, h)
		}
	}
	note := func(why string) (bool, error) {
		t.Error += "; auto_rollback: " + why
		return false, e.saveTask(ctx, tx, t)
	}
	if len(touched) == 0 {
		return note("no host ran the release, nothing to roll back")
	}
	target, err := previousVersion(ctx, tx, t.ProjectID, t.Environment, t.VersionID)
	if err != nil {
		return false, err
	}
	if target == "" {
		return note("no earlier version succeeded in this environment, nothing to roll back to")
	}
	rb := &taskRow{
		ID: id.New("tsk"), ProjectID: t.ProjectID, Environment: t.Environment,
		Type: TypeRollback, Strategy: StrategyRolling, Status: StatusPending,
		Options: TaskOptions{BatchSize: t.Options.BatchSize, BatchPercent: t.Options.BatchPercent,
			MaxParallel: t.Options.MaxParallel, MaxFailures: t.Options.MaxFailures},
		Executor: t.Executor, Run: 1, RollbackOf: t.ID,
		CreatedByID: t.CreatedByID, CreatedByName: t.CreatedByName, ActorID: t.ActorID, ActorName: t.ActorName,
	}
	if err := tx.QueryRow(ctx, `SELECT id, name, description, artifact FROM versions WHERE id = $1`, target).
		Scan(&rb.VersionID, &rb.VersionName, &rb.VersionDescription, &rb.Artifact); err != nil {
		return false, fmt.Errorf("version %s to roll back to: %w", target, err)
	}
	rb.CreatedAt = e.stamp()
	rb.UpdatedAt = rb.CreatedAt
	names := make([]string, len(touched))
	for i, h := range touched {
		names[i] = h.Name
	}
	plan := MakePlan(PlanInput{Strategy: StrategyRolling, Hosts: names, BatchSize: rb.Options.BatchSize, BatchPercent: rb.Options.BatchPercent})
	if err := e.enqueueRun(ctx, tx, rb); err != nil {
		return false, err
	}
	if err := insertTask(ctx, tx, rb); err != nil {
		if errors.Is(err, db.ErrUnique) {
			return note("another task took the environment")
		}
		return false, err
	}
	byName := make(map[string]*hostRow, len(touched))
	for _, h := range touched {
		byName[h.Name] = h
	}
	if err := insertPlan(ctx, tx, rb.ID, plan, func(name string) *hostRow {
		h := byName[name]
		return &hostRow{Address: h.Address, Group: h.Group}
	}); err != nil {
		return false, err
	}
	t.RollbackTaskID = rb.ID
	if err := e.saveTask(ctx, tx, t); err != nil {
		return false, err
	}
	return true, e.publish(ctx, tx, t, event.RollbackStarted)
}

// insertPlan writes a task's batches and hosts; base gives each host's
// address and group.
func insertPlan(ctx context.Context, tx db.Tx, taskID string, plan []PlannedBatch, base func(name string) *hostRow) error {
	pos := 0
	for _, b := range plan {
		if _, err := tx.Exec(ctx, `INSERT INTO release_task_batches (task_id, number, phase, status) VALUES ($1, $2, $3, $4)`,
			taskID, b.Number, b.Phase, HostPending); err != nil {
			return err
		}
		for _, name := range b.Hosts {
			pos++
			h := base(name)
			h.Name, h.Position, h.PlanBatch, h.Batch, h.Phase, h.Status = name, pos, b.Number, b.Number, b.Phase, HostPending
			h.Canary = b.Phase == PhaseCanary
			if err := insertHost(ctx, tx, taskID, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// failureReason explains a failed task from its failed hosts.
func failureReason(canary bool, failed []string, total, maxFailures int) string {
	list := strings.Join(truncateList(failed, 5), ", ")
	if canary {
		return "the canary failed on " + list + ": fix the release and retry"
	}
	return fmt.Sprintf("%d hosts failed (%s), more than max_failures %d", total, list, maxFailures)
}

// failedHostNames lists the failed hosts of a task in plan order.
func failedHostNames(ctx context.Context, q db.Querier, taskID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT name FROM release_task_hosts WHERE task_id = $1 AND status = $2 ORDER BY batch, position`,
		taskID, HostFailed)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
