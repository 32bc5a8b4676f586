package engine_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/queue"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/engine/enginetest"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/release/executor/local"
	"github.com/herald-release/herald/internal/secret"
)

// node is one Herald process's engine, built by hand so that the test can
// give it a short lease.
type node struct {
	db  *db.DB
	q   *queue.Queue
	inv *inventory.Service
	e   *engine.Engine
}

func newNode(t *testing.T, url string, ttl time.Duration) *node {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	pub := event.NewPublisher()
	n := &node{db: d, q: queue.New(d, queue.Config{}), inv: inventory.New(d, box, pub, "http://herald.test")}
	n.e, err = engine.New(engine.Options{DB: d, Queue: n.q, Inventory: n.inv, Publisher: pub, Box: box,
		Executor: local.New(), LeaseTTL: ttl, RecoverEvery: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.q.Build(); err != nil {
		t.Fatal(err)
	}
	if err := n.q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.q.Stop(context.Background(), 5*time.Second) })
	return n
}

func (n *node) lease(t *testing.T, taskID string) (owner, token string) {
	t.Helper()
	if err := n.db.QueryRow(context.Background(), `SELECT lease_node, lease_token FROM release_tasks WHERE id = $1`, taskID).
		Scan(&owner, &token); err != nil {
		t.Fatal(err)
	}
	return owner, token
}

func (n *node) wait(t *testing.T, taskID, what string, cond func(*engine.Task) bool) *engine.Task {
	t.Helper()
	end := time.Now().Add(enginetest.Deadline)
	for {
		task, err := n.e.Get(context.Background(), taskID)
		if err != nil {
			t.Fatal(err)
		}
		if cond(task) {
			return task
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not happen: %+v", what, task)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeasesOnPostgres runs two engines on one PostgreSQL database, as two
// Herald processes: the recovery of one never takes a task the other runs
// and renews, however often it runs; and a runner whose lease was taken
// stops (its script is killed, it writes nothing more) while the task goes
// on elsewhere, each event still written once.
func TestLeasesOnPostgres(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t, db.Postgres) // skips without PostgreSQL
	const ttl = 600 * time.Millisecond
	a := newNode(t, url, ttl)
	b := newNode(t, url, ttl)
	ctx := context.Background()
	actor := event.Actor{ID: "usr_test", Name: "tester"}
	gate := enginetest.NewGate(t)
	if _, err := a.inv.CreateProject(ctx, actor, inventory.ProjectInput{ID: "app", Name: "App"}); err != nil {
		t.Fatal(err)
	}
	spec := executor.Spec{Type: "local", Script: gate.Script()}
	if _, err := a.inv.CreateEnvironment(ctx, actor, "app", inventory.EnvironmentInput{Name: "prod", Executor: &spec}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.inv.AddHosts(ctx, actor, "app", "prod", []inventory.HostInput{{Name: "h1", Address: "10.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	v, err := a.inv.CreateVersion(ctx, actor, "app", inventory.VersionInput{Name: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	task, err := a.e.Create(ctx, actor, engine.CreateInput{ProjectID: "app", Environment: "prod", VersionID: v.ID})
	if err != nil {
		t.Fatal(err)
	}
	gate.WaitStarted(t, "h1")
	owner, token := a.lease(t, task.ID)
	if owner == "" || token == "" {
		t.Fatalf("running task has no lease: %q %q", owner, token)
	}

	// Five lease lengths of recovery from both processes change nothing.
	for end := time.Now().Add(5 * ttl); time.Now().Before(end); time.Sleep(ttl / 4) {
		for _, n := range []*node{a, b} {
			if err := n.e.Recover(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if o, tok := a.lease(t, task.ID); o != owner || tok != token {
		t.Fatalf("lease moved from %s/%s to %s/%s while its runner was alive", owner, token, o, tok)
	}
	if runs := gate.Runs(t); !slices.Equal(runs, []string{"h1"}) {
		t.Fatalf("runs %v: the running host was started again", runs)
	}

	// Take the lease away: the runner notices at its next heartbeat, kills
	// its script and leaves; recovery hands the task to a new runner.
	if _, err := a.db.Exec(ctx, `UPDATE release_tasks SET lease_token = 'taken', lease_until = 0 WHERE id = $1`, task.ID); err != nil {
		t.Fatal(err)
	}
	b.wait(t, task.ID, "recovery", func(*engine.Task) bool {
		if err := b.e.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		return len(gate.Runs(t)) == 2
	})
	gate.Open(t)
	done := b.wait(t, task.ID, "success", func(tk *engine.Task) bool { return !engine.Active(tk.Status) })
	if done.Status != "success" || done.Hosts[0].Status != "success" {
		t.Fatalf("task after the takeover: %+v", done)
	}
	evs, err := event.ListForObject(ctx, a.db, event.KindReleaseTask, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := enginetest.EventTypes(evs); !slices.Equal(got, []string{"release_started", "full_completed"}) {
		t.Fatalf("events %v", got)
	}
}
