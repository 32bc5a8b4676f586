package identity

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// PruneSessionsArgs is the periodic job that deletes expired sessions.
type PruneSessionsArgs struct{}

// Kind names the job for River.
func (PruneSessionsArgs) Kind() string { return "identity.prune_sessions" }

// PruneSessionsWorker works PruneSessionsArgs.
type PruneSessionsWorker struct {
	river.WorkerDefaults[PruneSessionsArgs]
	Store *Store
}

// Work deletes expired sessions.
func (w *PruneSessionsWorker) Work(ctx context.Context, _ *river.Job[PruneSessionsArgs]) error {
	_, err := w.Store.PruneSessions(ctx)
	return err
}

// PruneSessionsJob runs the pruning hourly (and once at start).
func PruneSessionsJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return PruneSessionsArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
