package notify

import (
	"context"
	"log/slog"
	"sync"

	"github.com/herald-release/herald/internal/db"
)

// historyWriter writes attempt rows in groups: the attempts that finish
// while one group is being committed go together in the next transaction.
// Each caller still waits for its own row to be committed, so an attempt
// is never reported done before its history is safe.
type historyWriter struct {
	db  *db.DB
	log *slog.Logger

	mu      sync.Mutex
	pending []historyWrite
	busy    bool
}

type historyWrite struct {
	rec  attemptRecord
	id   string
	done chan error
}

func newHistoryWriter(d *db.DB, log *slog.Logger) *historyWriter {
	return &historyWriter{db: d, log: log}
}

// write stores one attempt and returns its entry id once committed.
func (w *historyWriter) write(ctx context.Context, h *Hub, rec attemptRecord) (string, error) {
	hw := historyWrite{rec: rec, id: newEntryID(), done: make(chan error, 1)}
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
				if err := h.insertAttemptRow(ctx, tx, g.id, g.rec); err != nil {
					return err
				}
			}
			return nil
		})
		for _, g := range group {
			g.done <- err
		}
	}
}
