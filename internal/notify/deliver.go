package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

// DeliverArgs is one delivery: one event to one channel. Retries and
// rate-limit waits snooze the same job, so every attempt carries the same
// event (and so the same webhook-id).
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
	ConfigID   string `json:"config_id"`
	ChannelID  string `json:"channel_id"`
}

// Kind names the job for River.
func (DeliverArgs) Kind() string { return "notify.deliver" }

// InsertOpts puts deliveries on their own queue. MaxAttempts bounds only
// Herald's own failures (a database error); platform retries are counted
// in history, not by River.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: 10}
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	hub *Hub
}

func registerWorker(q interface{ Workers() *river.Workers }, h *Hub) {
	river.AddWorker(q.Workers(), &deliverWorker{hub: h})
}

// Timeout bounds one job run: the slowest channel (custom, up to 60s)
// plus the bookkeeping.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return 90 * time.Second }

// Work makes one attempt, records it, and snoozes the job when the
// platform asks to be tried again later.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	// On a job's first run no attempt can have been recorded yet, and
	// history need not be counted. River lists a job's runs in AttemptedBy
	// (a snooze does not raise Attempt, but it does add a run).
	first := job.Attempt <= 1 && len(job.AttemptedBy) <= 1
	return w.hub.attempt(ctx, job.Args, !first)
}

// imTimeout bounds an IM or email attempt; custom channels set their own.
const imTimeout = 10 * time.Second

type target struct {
	configEnabled bool
	projectID     string
	channel       Channel
}

// loadTarget reads a channel with its configuration, through the cache.
func (h *Hub) loadTarget(ctx context.Context, channelID string) (*target, error) {
	now := time.Now()
	t, gen, ok := h.cache.getTarget(channelID, now)
	if ok {
		if t == nil {
			return nil, errNoChannel
		}
		return t, nil
	}
	t, err := h.readTarget(ctx, channelID)
	if err == nil || errors.Is(err, errNoChannel) {
		h.cache.putTarget(channelID, gen, t, now)
	}
	return t, err
}

func (h *Hub) readTarget(ctx context.Context, channelID string) (*target, error) {
	var t target
	var sealed string
	err := h.db.QueryRow(ctx, `SELECT c.enabled, COALESCE(c.project_id, ''), ch.id, ch.type, ch.enabled, ch.config, ch.disabled_reason
		FROM callback_channels ch JOIN callback_configs c ON c.id = ch.config_id WHERE ch.id = $1`, channelID).
		Scan(&t.configEnabled, &t.projectID, &t.channel.ID, &t.channel.Type, &t.channel.Enabled, &sealed, &t.channel.DisabledReason)
	if errors.Is(err, db.ErrNoRows) {
		return nil, errNoChannel
	}
	if err != nil {
		return nil, err
	}
	if t.channel.Config, err = h.box.Open(sealed); err != nil {
		return nil, err
	}
	return &t, nil
}

// loadEvent reads an event, through the cache.
func (h *Hub) loadEvent(ctx context.Context, eventID string) (*event.Envelope, error) {
	if ev := h.cache.getEvent(eventID); ev != nil {
		return ev, nil
	}
	ev, err := event.Get(ctx, h.db, eventID)
	if err != nil {
		return nil, fmt.Errorf("load event %s: %w", eventID, err)
	}
	h.cache.putEvent(ev)
	return ev, nil
}

func (h *Hub) attempt(ctx context.Context, a DeliverArgs, mayHaveHistory bool) error {
	t, err := h.loadTarget(ctx, a.ChannelID)
	if errors.Is(err, errNoChannel) {
		// The configuration or channel was deleted after the event: there
		// is nowhere to deliver to, and nothing to retry.
		h.log.Info("delivery dropped: its channel was deleted", "delivery_id", a.DeliveryID, "channel_id", a.ChannelID)
		return nil
	}
	if err != nil {
		return err
	}
	ev, err := h.loadEvent(ctx, a.EventID)
	if err != nil {
		return err
	}
	n := 0
	if mayHaveHistory {
		if n, err = h.attemptCount(ctx, a.DeliveryID); err != nil {
			return err
		}
	}
	rec := attemptRecord{args: a, ev: ev, channelType: t.channel.Type, attempt: n + 1}

	if !t.configEnabled || !t.channel.Enabled {
		rec.status, rec.err = statusFailed, "the channel or its configuration was disabled before this delivery was sent"
		return h.record(ctx, rec)
	}
	kind := kinds[t.channel.Type]
	sender, err := kind.New(t.channel.Config, h.deps)
	if err != nil {
		rec.status, rec.err = statusFailed, "the channel's configuration cannot be used: "+err.Error()
		return h.record(ctx, rec)
	}
	if wait := h.breaker.acquire(t.channel.ID); wait > 0 {
		h.metrics.attempts.WithLabelValues(t.channel.Type, "circuit_open").Inc()
		return river.JobSnooze(wait)
	}
	key, limits := sender.RateLimits()
	if wait := h.limiter.reserve(key, limits); wait > 0 {
		h.breaker.release(t.channel.ID, false)
		h.metrics.attempts.WithLabelValues(t.channel.Type, "rate_limited").Inc()
		return river.JobSnooze(wait)
	}

	timeout := imTimeout
	if t.channel.Type == "custom" {
		timeout = 70 * time.Second // the channel applies its own configured timeout inside
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	res, sendErr := sender.Send(actx, ev)
	cancel()
	// No status code means the endpoint never answered: a network error
	// or a timeout, what the breaker counts.
	h.breaker.release(t.channel.ID, sendErr != nil && res.StatusCode == 0)
	rec.duration = time.Since(start)
	rec.result = res
	h.metrics.duration.WithLabelValues(t.channel.Type).Observe(rec.duration.Seconds())

	if sendErr == nil {
		rec.status = statusSuccess
		h.metrics.attempts.WithLabelValues(t.channel.Type, "success").Inc()
		return h.record(ctx, rec)
	}
	ce := channel.Classify(sendErr)
	rec.err = ce.Error()
	if ce.Disable {
		rec.status = statusFailed
		rec.err += " — the channel has been disabled; fix the endpoint and enable it again"
		h.metrics.attempts.WithLabelValues(t.channel.Type, "failed").Inc()
		if err := h.disableChannel(ctx, t.channel.ID, "the endpoint answered 410 Gone"); err != nil {
			return err
		}
		return h.record(ctx, rec)
	}
	retries, delay := h.retryPlan(sender, rec.attempt)
	if !ce.Retry || rec.attempt > retries {
		rec.status = statusFailed
		if ce.Retry {
			rec.err += fmt.Sprintf(" (gave up after %d attempts)", rec.attempt)
		}
		h.metrics.attempts.WithLabelValues(t.channel.Type, "failed").Inc()
		return h.record(ctx, rec)
	}
	delay = max(delay, ce.RetryAfter)
	next := time.Now().Add(delay)
	rec.status, rec.nextAttemptAt = statusPending, &next
	h.metrics.attempts.WithLabelValues(t.channel.Type, "retry").Inc()
	if err := h.record(ctx, rec); err != nil {
		return err
	}
	return river.JobSnooze(delay)
}

// retryPlan returns how many retries the channel gets after its first
// attempt, and the delay before the retry that follows attempt n (1-based):
// custom channels use their retry_count and retry_interval, doubled each
// time; the others HERALD_RETRY_SCHEDULE. A ±20% jitter keeps a burst of
// failures from retrying in lockstep.
func (h *Hub) retryPlan(s channel.Sender, n int) (int, time.Duration) {
	var retries int
	var d time.Duration
	if rp, ok := s.(channel.RetryPolicy); ok {
		count, interval := rp.Retries()
		retries = count
		shift := min(n-1, 10)
		d = min(interval*time.Duration(1<<shift), time.Hour)
	} else {
		sched := h.opts.RetrySchedule
		retries = len(sched)
		if len(sched) > 0 {
			d = sched[min(n-1, len(sched)-1)]
		}
	}
	if d > 0 {
		d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	}
	return retries, d
}

func (h *Hub) attemptCount(ctx context.Context, deliveryID string) (int, error) {
	var n int
	err := h.db.QueryRow(ctx, `SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id = $1`, deliveryID).Scan(&n)
	return n, err
}

// requestJSON is the stored form of the masked request.
func requestJSON(r channel.Request) string {
	b, _ := json.Marshal(r)
	return string(b)
}
