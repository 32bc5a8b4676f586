package notify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/id"
)

// delivery is one event to one channel, as claimed from delivery_queue.
// Every attempt carries the same event, and so the same webhook-id.
type delivery struct {
	DeliveryID string
	EventID    string
	ConfigID   string
	ChannelID  string
	// attempts made before this one.
	attempts int
	// claim is the token of the claim that handed this delivery out; the
	// result is written only while the claim still holds.
	claim string
}

const (
	// claimBatch is the most deliveries one claim takes.
	claimBatch = 256
	// lease is how long a claimed delivery stays with its process before
	// another may take it. A live process renews the leases of its running
	// attempts every renewEvery, so an attempt may take longer (custom
	// channels wait up to 60s); a dead one's deliveries are due again
	// within lease.
	lease      = 20 * time.Second
	renewEvery = 5 * time.Second
	// minWait is the shortest sleep between two claims that found
	// nothing more to take.
	minWait = 20 * time.Millisecond
)

// dispatcher hands due deliveries to a fixed number of concurrent
// attempts. It claims them in batches (one statement for up to claimBatch
// rows), and is woken by the commits that enqueue deliveries, so an event
// reaches its channels within milliseconds without busy polling.
//
// Several processes sharing PostgreSQL each run one; claims skip rows
// another process holds (FOR UPDATE SKIP LOCKED), and a claim is a lease:
// the deliveries of a process that died are due again when it ends.
type dispatcher struct {
	h     *Hub
	slots int
	// poll bounds how long the dispatcher sleeps without a wake-up: other
	// processes sharing PostgreSQL enqueue without waking this one.
	poll time.Duration

	wake     chan struct{}
	freed    chan struct{}
	inFlight atomic.Int64

	heldMu sync.Mutex
	held   map[string]string // delivery id → claim token, of the attempts running

	mu      sync.Mutex
	stop    context.CancelFunc // ends the claim loop
	abort   context.CancelFunc // cancels attempts still running after the grace
	loop    chan struct{}      // closed when the claim loop has returned
	running sync.WaitGroup     // attempts in flight
}

func newDispatcher(h *Hub, slots int, poll time.Duration) *dispatcher {
	return &dispatcher{h: h, slots: slots, poll: poll, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1),
		held: map[string]string{}}
}

// poke tells the dispatcher that deliveries may be due now.
func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start begins claiming deliveries; it returns at once.
func (d *dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.loop != nil {
		return errors.New("notify: the dispatcher is already started")
	}
	if d.h.db.Dialect() == db.SQLite {
		// A SQLite database has one Herald process: claims left by an
		// earlier process are from one that stopped or died, due again now.
		if _, err := d.h.db.Exec(ctx, `UPDATE delivery_queue SET due_at = $1, claim = '' WHERE claim <> ''`,
			time.Now().UnixMilli()); err != nil {
			return err
		}
	}
	d.h.syncClock(ctx)
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	d.stop, d.abort, d.loop = stop, abort, make(chan struct{})
	go func() {
		defer close(d.loop)
		go d.renewLoop(workCtx)
		d.claimLoop(loopCtx, workCtx)
	}()
	return nil
}

// renewLoop keeps the leases of running attempts until Stop is done, and
// keeps this process's view of the database's clock.
func (d *dispatcher) renewLoop(ctx context.Context) {
	t := time.NewTicker(renewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.h.syncClock(ctx)
		d.heldMu.Lock()
		pairs := make([]any, 0, 2*len(d.held))
		for id, claim := range d.held {
			pairs = append(pairs, id, claim)
		}
		d.heldMu.Unlock()
		due := d.h.now().Add(lease).UnixMilli()
		// By primary key, and SKIP LOCKED: a row locked now is being
		// completed and needs no renewal; waiting for it could deadlock
		// with that commit.
		lock := d.skipLocked()
		err := inChunks(len(pairs)/2, func(from, n int) error {
			rctx, cancel := context.WithTimeout(ctx, renewEvery)
			defer cancel()
			args := append([]any{due}, pairs[2*from:2*(from+n)]...)
			_, err := d.h.db.Exec(rctx, `UPDATE delivery_queue SET due_at = $1 WHERE id IN
				(SELECT id FROM delivery_queue WHERE id IN (`+db.Every(2, 2, n)+`)
					AND (id, claim) IN (VALUES `+db.Values(2, 2, n)+`)`+lock+`)`, args...)
			return err
		})
		if err != nil && ctx.Err() == nil {
			d.h.log.Error("renew the leases of running deliveries", "error", err)
		}
	}
}

func (d *dispatcher) hold(dl delivery) {
	d.heldMu.Lock()
	d.held[dl.DeliveryID] = dl.claim
	d.heldMu.Unlock()
}

func (d *dispatcher) drop(dl delivery) {
	d.heldMu.Lock()
	delete(d.held, dl.DeliveryID)
	d.heldMu.Unlock()
}

// Stop stops claiming, lets running attempts finish for up to grace, then
// cancels them; a cancelled attempt records nothing and its delivery is
// handed back, due at once for the next start.
func (d *dispatcher) Stop(grace time.Duration) {
	d.mu.Lock()
	stop, abort, loop := d.stop, d.abort, d.loop
	d.mu.Unlock()
	if loop == nil {
		return
	}
	stop()
	<-loop
	finished := make(chan struct{})
	go func() {
		d.running.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(grace):
		abort()
		<-finished
	}
	abort()
}

func (d *dispatcher) claimLoop(ctx, workCtx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	// backlog: the last claim took all it asked for, so more are due. Then
	// slots are refilled in batches (a quarter of them at least), not one
	// claim per finished attempt.
	backlog := false
	refill := max(1, d.slots/4)
	for {
		wait := d.poll
		if free := d.slots - int(d.inFlight.Load()); free > 0 && (!backlog || free >= refill) {
			want := min(free, claimBatch)
			batch, err := d.claim(ctx, want)
			switch {
			case ctx.Err() != nil:
				if err == nil && len(batch) > 0 {
					d.handBack(batch)
				}
				return
			case err != nil:
				d.h.log.Error("claim deliveries; trying again in a second", "error", err)
				wait = time.Second
			default:
				for _, dl := range batch {
					d.hold(dl)
					d.inFlight.Add(1)
					d.running.Add(1)
					go d.run(workCtx, dl)
				}
				backlog = len(batch) == want
				if backlog {
					continue // there may be more due already
				}
				if next, ok, err := d.nextDue(ctx); err == nil && ok {
					// At least minWait: a due row that the claim skipped
					// (locked by another process) must not make this a
					// busy loop.
					wait = min(wait, max(d.h.until(next), minWait))
				}
			}
		} else {
			wait = time.Hour // until enough slots free
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-d.freed:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// handBack returns deliveries claimed but not attempted, due at once.
func (d *dispatcher) handBack(batch []delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.h.db.Exec(ctx, `UPDATE delivery_queue SET due_at = $1, claim = '' WHERE claim = $2`,
		d.h.now().UnixMilli(), batch[0].claim); err != nil {
		d.h.log.Warn("hand back deliveries claimed while stopping; they are due when their lease ends", "error", err)
	}
}

func (d *dispatcher) run(ctx context.Context, dl delivery) {
	defer func() {
		d.drop(dl)
		d.inFlight.Add(-1)
		d.running.Done()
		select {
		case d.freed <- struct{}{}:
		default:
		}
	}()
	if err := d.h.attempt(ctx, dl); err != nil && ctx.Err() == nil {
		// Herald itself failed (the database): the claim runs out and
		// the delivery is tried again then.
		d.h.log.Error("delivery attempt could not be completed; it will be tried again when its lease ends",
			"delivery_id", dl.DeliveryID, "error", err)
	}
}

// claim takes up to n due deliveries for this process.
func (d *dispatcher) claim(ctx context.Context, n int) ([]delivery, error) {
	now := d.h.now()
	token := id.New("clm")
	lock := d.skipLocked()
	rows, err := d.h.db.Query(ctx, `UPDATE delivery_queue SET due_at = $1, claim = $2
		WHERE id IN (SELECT id FROM delivery_queue WHERE due_at <= $3 ORDER BY due_at LIMIT $4`+lock+`)
		RETURNING id, event_id, config_id, channel_id, attempts`,
		now.Add(lease).UnixMilli(), token, now.UnixMilli(), n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []delivery
	for rows.Next() {
		dl := delivery{claim: token}
		if err := rows.Scan(&dl.DeliveryID, &dl.EventID, &dl.ConfigID, &dl.ChannelID, &dl.attempts); err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, rows.Err()
}

// skipLocked makes a subquery pass over rows another transaction holds:
// PostgreSQL's; SQLite has one writer and nothing to skip.
func (d *dispatcher) skipLocked() string {
	if d.h.db.Dialect() == db.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// nextDue is when the earliest delivery not yet due will be.
func (d *dispatcher) nextDue(ctx context.Context) (time.Time, bool, error) {
	var ms *int64
	if err := d.h.db.QueryRow(ctx, `SELECT MIN(due_at) FROM delivery_queue WHERE due_at > $1`,
		d.h.now().UnixMilli()).Scan(&ms); err != nil || ms == nil {
		return time.Time{}, false, err
	}
	return time.UnixMilli(*ms), true, nil
}

// enqueue adds deliveries in tx; they are due at once and the dispatcher
// is woken when tx commits.
func (h *Hub) enqueue(ctx context.Context, tx db.Tx, ds []delivery) error {
	if len(ds) == 0 {
		return nil
	}
	now := h.now()
	args := make([]any, 0, len(ds)*6)
	for _, dl := range ds {
		args = append(args, dl.DeliveryID, dl.EventID, dl.ConfigID, dl.ChannelID, now.UnixMilli(), time.Now().UTC())
	}
	if _, err := tx.Exec(ctx, `INSERT INTO delivery_queue (id, event_id, config_id, channel_id, due_at, created_at) VALUES `+
		db.Values(1, 6, len(ds)), args...); err != nil {
		return err
	}
	tx.AfterCommit(h.dispatch.poke)
	return nil
}

// now is the time by the database's clock, as far as this process knows
// it: due times and leases are compared across processes, so they are all
// reckoned on the one clock they share. SQLite has one process: its own.
func (h *Hub) now() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }

// until is how long until t by the database's clock.
func (h *Hub) until(t time.Time) time.Duration { return t.Sub(h.now()) }

// syncClock measures how far the database's clock is from this process's.
func (h *Hub) syncClock(ctx context.Context) {
	if h.db.Dialect() != db.Postgres {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	before := time.Now()
	var ms int64
	if err := h.db.QueryRow(ctx, `SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint`).Scan(&ms); err != nil {
		return // keep the last measure
	}
	mid := before.Add(time.Since(before) / 2)
	skew := time.UnixMilli(ms).Sub(mid)
	if old := time.Duration(h.skew.Swap(int64(skew))); (skew - old).Abs() > 5*time.Second {
		h.log.Warn("this process's clock and the database's differ; Herald reckons deliveries on the database's",
			"difference", skew.Round(time.Millisecond).String())
	}
}
