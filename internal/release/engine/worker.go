package engine

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
)

// River jobs of the engine. Runners live on QueueName, one worker each for
// as long as their task runs; the short control jobs (auto-promotion,
// recovery) have their own queue so that busy runners never hold them up.

// ControlQueueName is the queue of the engine's short jobs.
const ControlQueueName = "release_control"

// RunArgs runs a task until it pauses or finishes.
type RunArgs struct {
	TaskID string `json:"task_id"`
}

// Kind names the job for River.
func (RunArgs) Kind() string { return "release.run" }

type runWorker struct {
	river.WorkerDefaults[RunArgs]
	e *Engine
}

// Timeout: none. A runner lasts as long as its batches; its lease, not
// River's timeout, bounds a dead runner.
func (*runWorker) Timeout(*river.Job[RunArgs]) time.Duration { return -1 }

func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	return w.e.runTask(ctx, job.Args.TaskID)
}

// PromoteArgs promotes a task automatically (auto_promote_after), if it is
// still in the pause the job was scheduled for.
type PromoteArgs struct {
	TaskID   string `json:"task_id"`
	PauseSeq int    `json:"pause_seq"`
}

// Kind names the job for River.
func (PromoteArgs) Kind() string { return "release.promote" }

type promoteWorker struct {
	river.WorkerDefaults[PromoteArgs]
	e *Engine
}

func (w *promoteWorker) Work(ctx context.Context, job *river.Job[PromoteArgs]) error {
	e := w.e
	promoted := false
	err := e.db.InTx(ctx, func(tx db.Tx) error {
		t, err := lockTask(ctx, tx, job.Args.TaskID)
		if err != nil {
			return err
		}
		if t.Status != StatusPaused || t.PauseSeq != job.Args.PauseSeq {
			return nil
		}
		promoted = true
		return e.promote(ctx, tx, t, t.actor())
	})
	if ae := apperr.From(err); ae != nil && ae.Status == 404 {
		return nil // deleted with its environment
	}
	if promoted {
		e.kick(ctx)
	}
	return err
}

// RecoverArgs is the periodic recovery.
type RecoverArgs struct{}

// Kind names the job for River.
func (RecoverArgs) Kind() string { return "release.recover" }

type recoverWorker struct {
	river.WorkerDefaults[RecoverArgs]
	e *Engine
}

func (w *recoverWorker) Work(ctx context.Context, _ *river.Job[RecoverArgs]) error {
	return w.e.Recover(ctx)
}

// KickArgs does nothing; inserting it wakes the queue (see Engine.kick).
type KickArgs struct{}

// Kind names the job for River.
func (KickArgs) Kind() string { return "release.kick" }

type kickWorker struct {
	river.WorkerDefaults[KickArgs]
}

func (*kickWorker) Work(context.Context, *river.Job[KickArgs]) error { return nil }

// latePromotion is how long after its time an auto-promotion may lag
// before recovery queues it again (its job died with its process).
const latePromotion = 30 * time.Second

// Recover queues a runner for every pending or running task that no live
// runner holds, and re-queues auto-promotions that are long overdue. It
// runs periodically, and once when Herald starts so that a restarted
// Herald goes on at once.
func (e *Engine) Recover(ctx context.Context) error {
	now := e.now()
	cond := `lease_until < $1`
	args := []any{nowMS(now)}
	if e.exclusive {
		cond = `(lease_until < $1 OR (lease_node <> '' AND lease_node <> $2))`
		args = append(args, e.node)
	}
	ids, err := e.taskIDs(ctx, `SELECT id FROM release_tasks WHERE status IN ('pending', 'running') AND `+cond+` ORDER BY id`, args...)
	if err != nil {
		return err
	}
	queued := false
	for _, taskID := range ids {
		err := e.db.InTx(ctx, func(tx db.Tx) error {
			t, err := lockTask(ctx, tx, taskID)
			if err != nil {
				return err
			}
			orphan := t.LeaseUntil < nowMS(now) || (e.exclusive && t.LeaseNode != "" && t.LeaseNode != e.node)
			if (t.Status != StatusPending && t.Status != StatusRunning) || !orphan {
				return nil
			}
			if t.LeaseNode != "" {
				e.log.Info("release: taking over a task whose runner stopped", "task", t.ID, "node", t.LeaseNode)
			}
			if err := e.enqueueRun(ctx, tx, t); err != nil {
				return err
			}
			queued = true
			return e.saveTask(ctx, tx, t)
		})
		if err != nil && apperr.From(err) == nil {
			return err
		}
	}

	late, err := e.taskIDs(ctx, `SELECT id FROM release_tasks WHERE status = 'paused' AND promote_at IS NOT NULL ORDER BY id`)
	if err != nil {
		return err
	}
	for _, taskID := range late {
		err := e.db.InTx(ctx, func(tx db.Tx) error {
			t, err := lockTask(ctx, tx, taskID)
			if err != nil {
				return err
			}
			if t.Status != StatusPaused || t.PromoteAt == nil || now.Sub(*t.PromoteAt) < latePromotion {
				return nil
			}
			_, err = e.q.InsertTx(ctx, tx, PromoteArgs{TaskID: t.ID, PauseSeq: t.PauseSeq}, &river.InsertOpts{Queue: ControlQueueName})
			return err
		})
		if err != nil && apperr.From(err) == nil {
			return err
		}
	}
	if queued {
		e.kick(ctx)
	}
	return nil
}

func (e *Engine) taskIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := e.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
