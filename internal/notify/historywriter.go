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
		// This caller commits groups until none is waiting; the others
		// just wait for theirs.
		w.drain(context.WithoutCancel(ctx), h)
	}
	return hw.id, <-hw.done
}

func (w *historyWriter) drain(ctx context.Context, h *Hub) {
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
		err := w.db.InTx(ctx, func(tx db.Tx) error {
			for _, g := range group {
				if g.out.rec != nil {
					if err := h.insertAttemptRow(ctx, tx, g.id, *g.out.rec); err != nil {
						return err
					}
				}
				if c := g.out.queue; c != nil {
					if err := applyQueueChange(ctx, tx, c); err != nil {
						return err
					}
				}
			}
			return nil
		})
		for _, g := range group {
			g.done <- err
		}
	}
}

// applyQueueChange ends a claim. A claim that no longer holds (its lease
// ran out and another process took the delivery) changes nothing: that
// process now owns the delivery's fate.
func applyQueueChange(ctx context.Context, tx db.Tx, c *queueChange) error {
	if c.done {
		_, err := tx.Exec(ctx, `DELETE FROM delivery_queue WHERE id = $1 AND claim = $2`, c.id, c.claim)
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE delivery_queue SET due_at = $1, attempts = $2, claim = '' WHERE id = $3 AND claim = $4`,
		c.due.UnixMilli(), c.attempts, c.id, c.claim)
	return err
}
