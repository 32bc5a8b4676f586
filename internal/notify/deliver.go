package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

// imTimeout bounds an IM or email attempt; custom channels set their own.
const imTimeout = 10 * time.Second

type target struct {
	configEnabled bool
	projectID     string
	channel       Channel
	// sender is built once per cached read: parsing a config on every
	// attempt was a tenth of the delivery path's CPU.
	sender    channel.Sender
	senderErr error
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
	var c Config
	var sealed, tmpl, chTmpl string
	err := h.db.QueryRow(ctx, `SELECT c.enabled, COALESCE(c.project_id, ''), c.lang, c.template,
			ch.id, ch.type, ch.enabled, ch.config, ch.template, ch.disabled_reason
		FROM callback_channels ch JOIN callback_configs c ON c.id = ch.config_id WHERE ch.id = $1`, channelID).
		Scan(&t.configEnabled, &t.projectID, &c.Lang, &tmpl, &t.channel.ID, &t.channel.Type, &t.channel.Enabled, &sealed,
			&chTmpl, &t.channel.DisabledReason)
	if errors.Is(err, db.ErrNoRows) {
		return nil, errNoChannel
	}
	if err != nil {
		return nil, err
	}
	if t.channel.Config, err = h.box.Open(sealed); err != nil {
		return nil, err
	}
	if c.Template, err = parseTemplate(tmpl); err != nil {
		return nil, fmt.Errorf("callback configuration of channel %s: template is corrupt: %w", channelID, err)
	}
	if t.channel.Template, err = parseTemplate(chTmpl); err != nil {
		return nil, fmt.Errorf("callback channel %s template is corrupt: %w", channelID, err)
	}
	if kind, ok := kinds[t.channel.Type]; !ok {
		t.senderErr = fmt.Errorf("this Herald does not know the channel type %q", t.channel.Type)
	} else if cfg, err := c.sendConfig(&t.channel); err != nil {
		t.senderErr = err
	} else {
		t.sender, t.senderErr = kind.New(cfg, h.deps)
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

// attempt makes one attempt of dl and commits its outcome: history and
// the delivery's next due time, or its end. An error means Herald itself
// failed (the database); the claim then runs out and the delivery is tried
// again.
func (h *Hub) attempt(ctx context.Context, dl delivery) error {
	t, err := h.loadTarget(ctx, dl.ChannelID)
	if errors.Is(err, errNoChannel) {
		// The configuration or channel was deleted after the event: there
		// is nowhere to deliver to, and nothing to retry.
		h.log.Info("delivery dropped: its channel was deleted", "delivery_id", dl.DeliveryID, "channel_id", dl.ChannelID)
		return h.finish(ctx, outcome{queue: dl.done()})
	}
	if err != nil {
		return err
	}
	ev, err := h.loadEvent(ctx, dl.EventID)
	if err != nil {
		return err
	}
	rec := attemptRecord{args: dl, ev: ev, channelType: t.channel.Type, attempt: dl.attempts + 1}

	if !t.configEnabled || !t.channel.Enabled {
		rec.status, rec.err = statusFailed, "the channel or its configuration was disabled before this delivery was sent"
		return h.finish(ctx, outcome{rec: &rec, queue: dl.done()})
	}
	sender := t.sender
	if t.senderErr != nil {
		rec.status, rec.err = statusFailed, "the channel's configuration cannot be used: "+t.senderErr.Error()
		return h.finish(ctx, outcome{rec: &rec, queue: dl.done()})
	}
	if wait := h.breaker.acquire(t.channel.ID); wait > 0 {
		h.metrics.attempts.WithLabelValues(t.channel.Type, "circuit_open").Inc()
		return h.finish(ctx, outcome{queue: h.later(dl, wait, dl.attempts)})
	}
	key, limits := sender.RateLimits()
	if wait := h.limiter.reserve(key, limits); wait > 0 {
		h.breaker.abandon(t.channel.ID)
		h.metrics.attempts.WithLabelValues(t.channel.Type, "rate_limited").Inc()
		return h.finish(ctx, outcome{queue: h.later(dl, wait, dl.attempts)})
	}

	timeout := imTimeout
	if t.channel.Type == "custom" {
		timeout = 70 * time.Second // the channel applies its own configured timeout inside
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	res, sendErr := sender.Send(actx, ev)
	cancel()
	if ctx.Err() != nil && sendErr != nil && res.StatusCode == 0 {
		// Herald is stopping and the grace ran out before an answer: this
		// was not a real attempt. Hand the delivery back, due at once for
		// the next start.
		h.breaker.abandon(t.channel.ID)
		return h.finish(ctx, outcome{queue: h.later(dl, 0, dl.attempts)})
	}
	// No status code means the endpoint never answered: a network error
	// or a timeout, what the breaker counts.
	if until := h.breaker.release(t.channel.ID, sendErr != nil && res.StatusCode == 0); !until.IsZero() {
		h.deferChannel(ctx, t.channel.ID, until)
	}
	rec.duration = time.Since(start)
	rec.result = res
	h.metrics.duration.WithLabelValues(t.channel.Type).Observe(rec.duration.Seconds())

	if sendErr == nil {
		rec.status = statusSuccess
		h.metrics.attempts.WithLabelValues(t.channel.Type, "success").Inc()
		return h.finish(ctx, outcome{rec: &rec, queue: dl.done()})
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
		return h.finish(ctx, outcome{rec: &rec, queue: dl.done()})
	}
	retries, delay := h.retryPlan(sender, rec.attempt)
	if !ce.Retry || rec.attempt > retries {
		rec.status = statusFailed
		if ce.Retry {
			rec.err += fmt.Sprintf(" (gave up after %d attempts)", rec.attempt)
		}
		h.metrics.attempts.WithLabelValues(t.channel.Type, "failed").Inc()
		return h.finish(ctx, outcome{rec: &rec, queue: dl.done()})
	}
	delay = max(delay, ce.RetryAfter)
	next := time.Now().Add(delay)
	rec.status, rec.nextAttemptAt = statusPending, &next
	h.metrics.attempts.WithLabelValues(t.channel.Type, "retry").Inc()
	return h.finish(ctx, outcome{rec: &rec, queue: h.later(dl, delay, rec.attempt)})
}

// deferChannel moves every waiting delivery of a channel whose circuit has
// just opened to when it half-opens, spread over a fifth of the cooldown:
// one statement, instead of each of them being claimed and put back while
// the circuit is open. Best effort: a delivery it misses is put back when
// claimed, as before.
func (h *Hub) deferChannel(ctx context.Context, channelID string, until time.Time) {
	spread := "abs(random()) % $3"
	if h.db.Dialect() == db.Postgres {
		spread = "floor(random() * $3)::bigint"
	}
	from := h.now().Add(time.Until(until))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := h.db.Exec(ctx, `UPDATE delivery_queue SET due_at = $1 + `+spread+`
		WHERE channel_id = $2 AND claim = '' AND due_at < $1`,
		from.UnixMilli(), channelID, max(1, time.Until(until).Milliseconds()/5)); err != nil {
		h.log.Warn("defer the deliveries of an unreachable channel", "channel_id", channelID, "error", err)
	}
}

// finish commits an outcome, even when ctx has been cancelled meanwhile:
// what was sent must be recorded. A failed commit (the database restarting)
// is tried again for a while, so that the delivery is not sent twice when
// its lease runs out.
func (h *Hub) finish(ctx context.Context, out outcome) error {
	ctx = context.WithoutCancel(ctx)
	var err error
	for wait := 100 * time.Millisecond; ; wait *= 2 {
		if _, err = h.history.write(ctx, h, out); err == nil || wait > lease/4 {
			return err
		}
		h.log.Warn("record a delivery attempt; trying again", "error", err, "in", wait.String())
		time.Sleep(wait) // backing off from a database that just failed
	}
}

// done ends dl's claim for good.
func (dl delivery) done() *queueChange {
	return &queueChange{id: dl.DeliveryID, claim: dl.claim, done: true}
}

// later hands dl back, due after wait by the database's clock, with
// attempts made so far.
func (h *Hub) later(dl delivery, wait time.Duration, attempts int) *queueChange {
	return &queueChange{id: dl.DeliveryID, claim: dl.claim, due: h.now().Add(wait), attempts: attempts}
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

// requestJSON is the stored form of the masked request.
func requestJSON(r channel.Request) string {
	b, _ := json.Marshal(r)
	return string(b)
}
