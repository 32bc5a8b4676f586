// Package queue wires River to whichever database Herald runs on. River is
// generic over the driver's transaction type; Herald's code is not, so this
// package keeps the two River clients (SQLite, PostgreSQL) behind one
// non-generic Queue whose InsertTx takes Herald's own db.Tx.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-release/herald/internal/db"
)

// Config is what Herald tunes of River.
type Config struct {
	Queues map[string]river.QueueConfig
	Logger *slog.Logger
	// RetryPolicy decides when failed jobs run again; nil is River's default.
	RetryPolicy river.ClientRetryPolicy
	// ErrorHandler sees job errors and panics.
	ErrorHandler river.ErrorHandler
	// FetchCooldown is the shortest time between two fetches of a queue:
	// the floor of job latency. Zero means 20ms.
	FetchCooldown time.Duration
	// ID names this process among several sharing PostgreSQL.
	ID string
}

// Queue is a River client. It is made in two steps, because the domains
// that register workers also need the queue to enqueue jobs: New returns a
// queue to register workers and periodic jobs on, Build makes the client.
type Queue struct {
	db       *db.DB
	cfg      Config
	workers  *river.Workers
	periodic []*river.PeriodicJob
	built    bool

	insertTx   func(ctx context.Context, tx db.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	insert     func(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	start      func(ctx context.Context) error
	stop       func(ctx context.Context) error
	stopCancel func(ctx context.Context) error
}

// New returns a queue for d with no workers yet.
func New(d *db.DB, cfg Config) *Queue {
	return &Queue{db: d, cfg: cfg, workers: river.NewWorkers()}
}

// Workers is where domains register their workers (river.AddWorker),
// before Build.
func (q *Queue) Workers() *river.Workers { return q.workers }

// AddPeriodic schedules a periodic job, before Build.
func (q *Queue) AddPeriodic(j *river.PeriodicJob) { q.periodic = append(q.periodic, j) }

// AddQueue adds a named queue with its own worker count, before Build.
func (q *Queue) AddQueue(name string, maxWorkers int) {
	if q.cfg.Queues == nil {
		q.cfg.Queues = map[string]river.QueueConfig{}
	}
	q.cfg.Queues[name] = river.QueueConfig{MaxWorkers: maxWorkers}
}

// Build makes the River client for the database's engine; after it the
// queue can insert jobs and be started.
func (q *Queue) Build() error {
	if q.built {
		return errors.New("queue: Build called twice")
	}
	cfg := q.cfg
	rc := &river.Config{
		Workers:       q.workers,
		Queues:        cfg.Queues,
		PeriodicJobs:  q.periodic,
		Logger:        cfg.Logger,
		RetryPolicy:   cfg.RetryPolicy,
		ErrorHandler:  cfg.ErrorHandler,
		FetchCooldown: cfg.FetchCooldown,
		ID:            cfg.ID,
		// A job is only "stuck" (and rescued to run again) after an hour:
		// Herald's jobs bound their own run time well below that.
		RescueStuckJobsAfter: time.Hour,
		// Herald keeps its own history; River's finished rows are only
		// needed long enough to dedupe unique jobs.
		CompletedJobRetentionPeriod: 24 * time.Hour,
	}
	if rc.FetchCooldown == 0 {
		rc.FetchCooldown = 20 * time.Millisecond
	}
	rc.FetchPollInterval = max(rc.FetchCooldown, 500*time.Millisecond)
	if rc.Queues == nil {
		rc.Queues = map[string]river.QueueConfig{}
	}
	if _, ok := rc.Queues[river.QueueDefault]; !ok {
		rc.Queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: 10}
	}
	var err error
	switch q.db.Dialect() {
	case db.SQLite:
		err = wrap(q, riversqlite.New(q.db.SQL()), rc)
	case db.Postgres:
		rc.Schema = q.db.Schema()
		err = wrap(q, riverpgxv5.New(q.db.Pool()), rc)
	default:
		err = fmt.Errorf("queue: unknown database dialect %q", q.db.Dialect())
	}
	q.built = err == nil
	return err
}

// wrap closes over the typed client so that callers never see TTx.
func wrap[TTx any](q *Queue, driver riverdriver.Driver[TTx], rc *river.Config) error {
	c, err := river.NewClient(driver, rc)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	raw := func(tx db.Tx) (TTx, error) {
		t, ok := tx.Raw().(TTx)
		if !ok {
			var zero TTx
			return zero, fmt.Errorf("queue: transaction %T is not the driver's %T", tx.Raw(), zero)
		}
		return t, nil
	}
	q.insertTx = func(ctx context.Context, tx db.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
		t, err := raw(tx)
		if err != nil {
			return nil, err
		}
		return c.InsertTx(ctx, t, args, opts)
	}
	q.insert = c.Insert
	q.start = c.Start
	q.stop = c.Stop
	q.stopCancel = c.StopAndCancel
	return nil
}

// Check that the two transaction types are what db.Tx.Raw returns.
var (
	_ riverdriver.Driver[*sql.Tx] = (*riversqlite.Driver)(nil)
	_ riverdriver.Driver[pgx.Tx]  = (*riverpgxv5.Driver)(nil)
)

// InsertTx enqueues a job in tx: it runs only if tx commits.
func (q *Queue) InsertTx(ctx context.Context, tx db.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return q.insertTx(ctx, tx, args, opts)
}

// Insert enqueues a job outside any transaction.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return q.insert(ctx, args, opts)
}

// Start begins working jobs; it returns at once.
func (q *Queue) Start(ctx context.Context) error { return q.start(ctx) }

// Stop lets running jobs finish for up to grace, then cancels them; a
// cancelled job is retried by the next process to start.
func (q *Queue) Stop(ctx context.Context, grace time.Duration) error {
	soft, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := q.stop(soft)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		hard, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return q.stopCancel(hard)
	}
	return err
}
