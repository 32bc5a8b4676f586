package notify

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/secret"
)

// Options configure the hub.
type Options struct {
	// RetrySchedule is HERALD_RETRY_SCHEDULE, the delays between attempts
	// of IM and email channels; its length is their retry count.
	RetrySchedule []time.Duration
	// Workers is how many deliveries run at once in this process.
	Workers int
	Log     *slog.Logger
	// Registry receives the delivery metrics; nil skips them.
	Registry prometheus.Registerer
}

// Hub routes events to channels and delivers them.
type Hub struct {
	db       *db.DB
	box      *secret.Box
	pub      *event.Publisher
	deps     channel.Deps
	opts     Options
	limiter  *limiter
	breaker  *breaker
	cache    *cache
	history  *historyWriter
	dispatch *dispatcher
	// skew is the database's clock minus this process's, in nanoseconds.
	skew    atomic.Int64
	metrics *metrics
	log     *slog.Logger
}

// New builds the hub and subscribes it to pub; Start begins delivering.
func New(d *db.DB, box *secret.Box, pub *event.Publisher, deps channel.Deps, opts Options) *Hub {
	if opts.Workers == 0 {
		opts.Workers = 100
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.People == nil {
		deps.People = people{d}
	}
	h := &Hub{db: d, box: box, pub: pub, deps: deps, opts: opts,
		limiter: newLimiter(deps.Now), breaker: newBreaker(opts.Workers, deps.Now), cache: newCache(), metrics: newMetrics(opts.Registry), log: opts.Log}
	h.history = newHistoryWriter(d, h.log)
	poll := time.Second
	if d.Dialect() == db.Postgres {
		// Other processes sharing the database enqueue without waking
		// this one; a short poll lets it help with their deliveries.
		poll = 200 * time.Millisecond
	}
	h.dispatch = newDispatcher(h, opts.Workers, poll)
	pub.Subscribe(h.route)
	return h
}

// Start begins delivering; it returns at once.
func (h *Hub) Start(ctx context.Context) error { return h.dispatch.Start(ctx) }

// Stop stops taking deliveries and lets running attempts finish for up to
// grace; the rest are handed back for the next start.
func (h *Hub) Stop(grace time.Duration) { h.dispatch.Stop(grace) }
