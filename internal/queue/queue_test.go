package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/queue"
)

type pingArgs struct{ N int }

func (pingArgs) Kind() string { return "test_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	got chan int
}

func (w *pingWorker) Work(ctx context.Context, job *river.Job[pingArgs]) error {
	w.got <- job.Args.N
	return nil
}

func TestJobsEnqueuedInATransactionRunOnlyWhenItCommits(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		w := &pingWorker{got: make(chan int, 4)}
		q := queue.New(d, queue.Config{})
		river.AddWorker(q.Workers(), w)
		if err := q.Build(); err != nil {
			t.Fatal(err)
		}
		err := q.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(context.Background(), 5*time.Second) })

		boom := errors.New("boom")
		err = d.InTx(ctx, func(tx db.Tx) error {
			if _, err := q.InsertTx(ctx, tx, pingArgs{N: 1}, nil); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		err = d.InTx(ctx, func(tx db.Tx) error {
			_, err := q.InsertTx(ctx, tx, pingArgs{N: 2}, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-w.got:
			if n != 2 {
				t.Fatalf("worked job %d; the rolled-back job 1 must never run", n)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the committed job did not run within 10s")
		}
	})
}
