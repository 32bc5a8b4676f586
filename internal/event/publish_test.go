package event_test

import (
	"context"
	"errors"
	"testing"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
)

func TestPublishSequencesDedupesAndRollsBackWithTheChange(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		p := event.NewPublisher()
		var seen []string
		p.Subscribe(func(ctx context.Context, tx db.Tx, ev *event.Envelope) error {
			seen = append(seen, ev.EventType)
			return nil
		})
		publish := func(typ, dedupe string) event.Published {
			t.Helper()
			var out event.Published
			err := d.InTx(ctx, func(tx db.Tx) error {
				var err error
				out, err = p.Publish(ctx, tx, &event.Envelope{EventType: typ, Project: &event.ProjectRef{ID: "app"}},
					event.Options{ObjectID: "tsk_1", TaskID: "tsk_1", DedupeKey: dedupe})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		a := publish(event.ReleaseStarted, "tsk_1:started")
		b := publish(event.FullCompleted, "tsk_1:full")
		dup := publish(event.FullCompleted, "tsk_1:full")
		if a.Envelope.Sequence != 1 || b.Envelope.Sequence != 2 {
			t.Fatalf("sequences %d, %d; want 1, 2", a.Envelope.Sequence, b.Envelope.Sequence)
		}
		if !dup.Duplicate {
			t.Fatal("a second publish with the same dedupe key was not a duplicate")
		}
		if a.Envelope.ObjectKind != event.KindReleaseTask || a.Envelope.Action != event.ReleaseStarted || a.Envelope.ID == "" {
			t.Fatalf("envelope not filled in: %+v", a.Envelope)
		}
		if len(seen) != 2 {
			t.Fatalf("subscriber saw %v, want two events", seen)
		}

		// An event whose change rolls back leaves no trace and no sequence gap.
		boom := errors.New("boom")
		err := d.InTx(ctx, func(tx db.Tx) error {
			if _, err := p.Publish(ctx, tx, &event.Envelope{EventType: event.ReleaseFailed}, event.Options{ObjectID: "tsk_1"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		c := publish(event.ReleaseCancelled, "")
		if c.Envelope.Sequence != 3 {
			t.Fatalf("sequence after rollback = %d, want 3", c.Envelope.Sequence)
		}
		evs, err := event.ListForObject(ctx, d, event.KindReleaseTask, "tsk_1")
		if err != nil || len(evs) != 3 {
			t.Fatalf("stored events %d, %v; want 3", len(evs), err)
		}
		got, err := event.Get(ctx, d, b.Envelope.ID)
		if err != nil || got.EventType != event.FullCompleted || got.Sequence != 2 {
			t.Fatalf("Get = %+v, %v", got, err)
		}

		_, err = p.Publish(ctx, nil, &event.Envelope{EventType: "no_such_event"}, event.Options{ObjectID: "x"})
		if err == nil {
			t.Fatal("an unknown event type was published")
		}
	})
}
