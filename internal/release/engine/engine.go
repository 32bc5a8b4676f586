// Package engine runs release tasks (CONTRACT §5): it plans batches, runs
// the release script on each host through an executor, and moves the task
// through its statuses, publishing each moment of CONTRACT §6 in the
// transaction that makes it happen.
//
// The database is the only truth. A task is advanced by a River job (the
// runner) that holds a lease on the task row while it works and renews it
// by heartbeat; every write of a runner checks its lease, so a runner that
// lost its lease can change nothing. A periodic recovery job re-queues
// tasks whose lease ran out (their process died), and the next runner
// runs again the hosts that were running then.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/queue"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/secret"
)

// QueueName is the River queue of the engine's jobs, apart from the
// notification queue so that a burst of deliveries never delays a release.
const QueueName = "release"

// MaxAutoPromote bounds auto_promote_after.
const MaxAutoPromote = 7 * 24 * time.Hour

// Defaults of Options.
const (
	DefaultLeaseTTL     = 15 * time.Second
	DefaultRecoverEvery = 5 * time.Second
	DefaultWorkers      = 200
	// pickupTTL is how long a queued run job has to claim its task before
	// recovery queues another; River picks jobs up in well under a second.
	pickupTTL = time.Minute
)

// Options configure an Engine.
type Options struct {
	DB        *db.DB
	Queue     *queue.Queue
	Inventory *inventory.Service
	Publisher *event.Publisher
	Box       *secret.Box
	// Executor runs scripts; executor.ByType with local and ssh in Herald.
	Executor executor.Executor
	// PublicURL gives HERALD_PUBLIC_URL for links in events. A func because
	// tests learn their server's URL after the engine is built.
	PublicURL func() string
	Log       *slog.Logger
	// LeaseTTL is how long a runner's lease lasts without a heartbeat:
	// how long a task of a dead process waits before another takes it over.
	// Heartbeats come every LeaseTTL/3.
	LeaseTTL time.Duration
	// RecoverEvery is the period of the recovery job.
	RecoverEvery time.Duration
	// Workers is how many tasks this process runs at once.
	Workers int
}

// Engine runs release tasks.
type Engine struct {
	db    *db.DB
	q     *queue.Queue
	inv   *inventory.Service
	pub   *event.Publisher
	box   *secret.Box
	exec  executor.Executor
	url   func() string
	log   *slog.Logger
	now   func() time.Time
	ttl   time.Duration
	every time.Duration

	// node names this process in leases.
	node string
	// exclusive: the database is SQLite, which one process owns, so a lease
	// held by another node is a dead process's and can be taken at once.
	exclusive bool

	mu      sync.Mutex
	running map[string]*runner // tasks this process runs now
}

// New builds the engine and registers its queue, workers, periodic
// recovery and delete check. Call it before the queue is built.
func New(o Options) (*Engine, error) {
	if o.DB == nil || o.Queue == nil || o.Inventory == nil || o.Publisher == nil || o.Box == nil || o.Executor == nil {
		return nil, errors.New("engine: DB, Queue, Inventory, Publisher, Box and Executor are required")
	}
	if o.PublicURL == nil {
		o.PublicURL = func() string { return "" }
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	e := &Engine{
		db: o.DB, q: o.Queue, inv: o.Inventory, pub: o.Publisher, box: o.Box, exec: o.Executor,
		url: o.PublicURL, log: o.Log, now: time.Now,
		ttl:       cmpOr(o.LeaseTTL, DefaultLeaseTTL),
		every:     cmpOr(o.RecoverEvery, DefaultRecoverEvery),
		node:      id.New("node"),
		exclusive: o.DB.Dialect() == db.SQLite,
		running:   map[string]*runner{},
	}
	workers := o.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	o.Queue.AddQueue(QueueName, workers)
	o.Queue.AddQueue(ControlQueueName, 5)
	river.AddWorker(o.Queue.Workers(), &runWorker{e: e})
	river.AddWorker(o.Queue.Workers(), &promoteWorker{e: e})
	river.AddWorker(o.Queue.Workers(), &recoverWorker{e: e})
	river.AddWorker(o.Queue.Workers(), &kickWorker{})
	o.Queue.AddPeriodic(river.NewPeriodicJob(river.PeriodicInterval(e.every),
		func() (river.JobArgs, *river.InsertOpts) {
			return RecoverArgs{}, &river.InsertOpts{Queue: ControlQueueName}
		},
		&river.PeriodicJobOpts{RunOnStart: true}))
	o.Inventory.OnDelete(e.refuseDeleteWhileActive)
	return e, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (e *Engine) stamp() time.Time { return e.now().UTC().Truncate(time.Microsecond) }

// refuseDeleteWhileActive is the inventory DeleteCheck: a project or
// environment with an active task cannot go. On PostgreSQL the
// environment rows are locked first, so that a task created concurrently
// either commits before (and is seen here) or fails on its foreign key.
func (e *Engine) refuseDeleteWhileActive(ctx context.Context, tx db.Tx, projectID, environment string) error {
	if tx.Dialect() == db.Postgres {
		rows, err := tx.Query(ctx, `SELECT name FROM environments WHERE project_id = $1 AND ($2 = '' OR name = $2) FOR UPDATE`, projectID, environment)
		if err != nil {
			return err
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	var taskID, env string
	err := tx.QueryRow(ctx, `SELECT id, environment FROM release_tasks
		WHERE project_id = $1 AND ($2 = '' OR environment = $2) AND active_env IS NOT NULL ORDER BY id LIMIT 1`,
		projectID, environment).Scan(&taskID, &env)
	if errors.Is(err, db.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return apperr.Conflict("task %s is still active in %s/%s: cancel it or let it finish first", taskID, projectID, env)
}

// forUpdate locks selected rows on PostgreSQL; SQLite's write transactions
// are already exclusive (_txlock=immediate).
func forUpdate(tx db.Tx) string {
	if tx.Dialect() == db.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// kick makes River on SQLite fetch the engine's queue now. Jobs inserted
// in a transaction wake no producer without LISTEN/NOTIFY, so a new run
// job would wait for the next poll (half a second); a job inserted outside
// a transaction does wake it, and the fetch takes the run job along.
func (e *Engine) kick(ctx context.Context) {
	if e.db.Dialect() != db.SQLite {
		return
	}
	if _, err := e.q.Insert(ctx, KickArgs{}, &river.InsertOpts{Queue: QueueName}); err != nil {
		e.log.Warn("release: waking the queue failed; the job runs at the next poll", "error", err)
	}
}

// errf wraps an internal error with the task it concerns.
func errf(taskID, format string, args ...any) error {
	return fmt.Errorf("task %s: "+format, append([]any{taskID}, args...)...)
}
