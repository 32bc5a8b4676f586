package notify

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/queue"
	"github.com/herald-release/herald/internal/secret"
)

// QueueName is the River queue deliveries run on: separate from the release
// engine's, so a burst of notifications never delays a release step.
const QueueName = "notify"

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
	db      *db.DB
	box     *secret.Box
	queue   *queue.Queue
	pub     *event.Publisher
	deps    channel.Deps
	opts    Options
	limiter *limiter
	breaker *breaker
	cache   *cache
	history *historyWriter
	metrics *metrics
	log     *slog.Logger
}

// New builds the hub, subscribes it to pub and registers its worker on q.
func New(d *db.DB, box *secret.Box, q *queue.Queue, pub *event.Publisher, deps channel.Deps, opts Options) *Hub {
	if opts.Workers == 0 {
		opts.Workers = 100
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	h := &Hub{db: d, box: box, queue: q, pub: pub, deps: deps, opts: opts,
		limiter: newLimiter(deps.Now), breaker: newBreaker(opts.Workers, deps.Now), cache: newCache(), metrics: newMetrics(opts.Registry), log: opts.Log}
	h.history = newHistoryWriter(d, h.log)
	pub.Subscribe(h.route)
	q.AddQueue(QueueName, opts.Workers)
	registerWorker(q, h)
	return h
}
