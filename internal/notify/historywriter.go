package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/herald-release/herald/internal/db"
)

// historyWriter commits the outcome of attempts in groups: the attempts
// that finish while one group is being committed go together in the next
// transaction. An outcome is a history row, the change to the delivery's
// queue row (done, or due again later), or both, committed together so that
// history and the queue never disagree. Each caller still waits for its own
// outcome to be committed, so an attempt is never reported done before it
// is safe.
type historyWriter struct {
	db  *db.DB
	log *slog.Logger

	mu      sync.Mutex
	pending []historyWrite
	busy    bool
}

// outcome is what one attempt (or one decision not to attempt yet) leaves.
type outcome struct {
	// rec is the history row; nil when nothing was attempted (a wait for a
	// rate limit or an open circuit).
	rec *attemptRecord
	// queue is the change to the delivery's queue row; nil for attempts
	// that have none (the test button).
	queue *queueChange
}

// queueChange ends a claim: the delivery is done (deleted), or due again at
// due with attempts made so far.
type queueChange struct {
	id, claim string
	done      bool
	due       time.Time
	attempts  int
}

type historyWrite struct {
	out  outcome
	id   string
	done chan error
}

func newHistoryWriter(d *db.DB, log *slog.Logger) *historyWriter {
	return &historyWriter{db: d, log: log}
}

// write commits one outcome and returns its history entry id, if it has one.
func (w *historyWriter) write(ctx context.Context, h *Hub, out outcome) (string, error) {
	hw := historyWrite{out: out, done: make(chan error, 1)}
	if out.rec != nil {
		hw.id = newEntryID()
	}
	w.mu.Lock()
	w.pending = append(w.pending, hw)
	lead := !w.busy
	w.busy = true
	w.mu.Unlock()
	if lead {
		// This caller commits groups until its own outcome is committed;
		// the others just wait for theirs. What is still pending then is
		// handed to a goroutine, so that no attempt stays the committer
		// (holding its worker) for as long as the load lasts.
		w.drain(context.WithoutCancel(ctx), h, hw.done)
	}
	return hw.id, <-hw.done
}

// drain commits groups until mine has been answered (or, with mine nil,
// until none is pending), then hands on.
func (w *historyWriter) drain(ctx context.Context, h *Hub, mine chan error) {
	for {
		w.mu.Lock()
		group := w.pending
		w.pending = nil
		if len(group) == 0 {
			w.busy = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.commit(ctx, h, group)
		if mine != nil && len(mine) > 0 {
			w.mu.Lock()
			more := len(w.pending) > 0
			if !more {
				w.busy = false
			}
			w.mu.Unlock()
			if more {
				go w.drain(ctx, h, nil)
			}
			return
		}
	}
}

// commit writes a group and answers each member. When the group fails as
// a whole, its members are written one by one, so that one outcome the
// database refuses fails alone instead of taking its neighbours along.
func (w *historyWriter) commit(ctx context.Context, h *Hub, group []historyWrite) {
	gctx, cancel := context.WithTimeout(ctx, lease/2)
	err := w.db.InTx(gctx, func(tx db.Tx) error { return h.commitGroup(gctx, tx, group) })
	cancel()
	if err == nil || len(group) == 1 {
		for _, g := range group {
			g.done <- err
		}
		return
	}
	for _, g := range group {
		one := []historyWrite{g}
		gctx, cancel := context.WithTimeout(ctx, lease/2)
		g.done <- w.db.InTx(gctx, func(tx db.Tx) error { return h.commitGroup(gctx, tx, one) })
		cancel()
	}
}

// commitGroup writes a group's history rows and queue changes with a few
// multi-row statements: on PostgreSQL every statement is a round trip, and
// one per row made the group commit the slowest step of a delivery.
func (h *Hub) commitGroup(ctx context.Context, tx db.Tx, group []historyWrite) error {
	if tx.Dialect() == db.Postgres {
		// Outcomes need not wait for the disk: should PostgreSQL itself
		// crash before flushing the last few, their deliveries are still
		// queued and are simply made again (at least once), never lost.
		// The commits that enqueue events keep the full guarantee.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
	}
	var rows []historyWrite
	var done, later []*queueChange
	for _, g := range group {
		if g.out.rec != nil {
			rows = append(rows, g)
		}
		switch c := g.out.queue; {
		case c == nil:
		case c.done:
			done = append(done, c)
		default:
			later = append(later, c)
		}
	}
	if err := inChunks(len(rows), func(from, n int) error { return h.insertAttemptRows(ctx, tx, rows[from:from+n]) }); err != nil {
		return err
	}
	// A claim that no longer holds (its lease ran out and another process
	// took the delivery) changes nothing: that process owns it now.
	if err := inChunks(len(done), func(from, n int) error {
		args := make([]any, 0, 2*n)
		for _, c := range done[from : from+n] {
			args = append(args, c.id, c.claim)
		}
		// "id IN" first, so that the primary key finds the rows: PostgreSQL
		// plans the row-value IN alone as a scan of the whole queue.
		_, err := tx.Exec(ctx, `DELETE FROM delivery_queue WHERE id IN (`+db.Every(1, 2, n)+`)
			AND (id, claim) IN (VALUES `+db.Values(1, 2, n)+`)`, args...)
		return err
	}); err != nil {
		return err
	}
	for _, c := range later {
		if _, err := tx.Exec(ctx, `UPDATE delivery_queue SET due_at = $1, attempts = $2, claim = '' WHERE id = $3 AND claim = $4`,
			c.due.UnixMilli(), c.attempts, c.id, c.claim); err != nil {
			return err
		}
	}
	return nil
}

// inChunks calls fn over n items in chunks of 64, 8 and 1: few statements,
// and only three shapes of each, so that prepared statements are reused.
func inChunks(n int, fn func(from, count int) error) error {
	from := 0
	for _, size := range []int{64, 8, 1} {
		for n-from >= size {
			if err := fn(from, size); err != nil {
				return err
			}
			from += size
		}
	}
	return nil
}
