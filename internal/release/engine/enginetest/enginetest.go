// Package enginetest helps tests drive release tasks through a whole
// in-process Herald: set up an environment, create tasks, wait for states
// (by polling the API with a deadline, never by sleeping a guessed time),
// gate scripts on files, and restart Herald on the same database.
package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app"
	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/engine"
)

// Deadline bounds every wait: generous, because a loaded CI machine with
// the race detector is slow, and a wait that passes returns at once.
const Deadline = 90 * time.Second

// Env is a running test Herald.
type Env struct {
	*apptest.Env
	stop func()
}

// New starts Herald on a fresh database of dialect.
func New(t testing.TB, dialect db.Dialect) *Env {
	t.Helper()
	return &Env{Env: apptest.New(t, dialect)}
}

// Start starts Herald on the database at url (from dbtest.URL) with data
// folder dir, so that a test can stop it and start another on the same
// database. Stop it with Stop; it is stopped at the end of the test too.
func Start(t testing.TB, url, dir string) *Env {
	t.Helper()
	cfg, err := config.Load("test", []string{
		"--database-url", url,
		"--data-dir", dir,
		"--secret-key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"--admin-token", apptest.AdminToken,
		"--admin-password", "test-password",
		"--egress-allow", "127.0.0.0/8,::1/128",
		"--retry-schedule", "10ms,20ms,40ms",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		t.Fatalf("open test Herald: %v", err)
	}
	if err := a.StartWork(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	cfg.PublicURL = srv.URL
	stopped := false
	e := &Env{Env: &apptest.Env{App: a, Server: srv, URL: srv.URL, Token: apptest.AdminToken}}
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		// A short grace: running scripts are killed and their hosts left
		// running, as when Herald is stopped in the middle of a task.
		_ = a.StopWork(200 * time.Millisecond)
		a.Close()
	}
	t.Cleanup(e.stop)
	return e
}

// Stop stops a Herald made by Start.
func (e *Env) Stop() { e.stop() }

// Host is a host to add.
type Host struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Hosts makes n hosts h1…hn on address.
func Hosts(n int, address string) []Host {
	out := make([]Host, n)
	for i := range out {
		out[i] = Host{Name: fmt.Sprintf("h%d", i+1), Address: address}
	}
	return out
}

// Setup creates project "app" (named "App"), its environment env with the
// executor and hosts, and versions v1 and v2; it returns the versions' ids.
func (e *Env) Setup(t testing.TB, env string, executor map[string]any, hosts []Host) (v1, v2 string) {
	t.Helper()
	if status, _ := e.Do(t, "GET", "/api/v1/release/projects/app", nil); status == 404 {
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": "app", "name": "App", "description": "the app"}, 201, nil)
	}
	e.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": env, "executor": executor}, 201, nil)
	e.JSON(t, "POST", "/api/v1/release/projects/app/environments/"+env+"/hosts", map[string]any{"hosts": hosts}, 201, nil)
	return e.Version(t, "v1"), e.Version(t, "v2")
}

// Version returns the id of version name of project app, creating it.
func (e *Env) Version(t testing.TB, name string) string {
	t.Helper()
	var v struct{ ID string }
	status, raw := e.Do(t, "GET", "/api/v1/release/projects/app/versions?limit=500", nil)
	if status == 200 {
		var list struct{ Items []struct{ ID, Name string } }
		_ = json.Unmarshal(raw, &list)
		for _, it := range list.Items {
			if it.Name == name {
				return it.ID
			}
		}
	}
	e.JSON(t, "POST", "/api/v1/release/projects/app/versions",
		map[string]any{"name": name, "description": "release " + name, "artifact": "app-" + name + ".tar.gz"}, 201, &v)
	return v.ID
}

// Create posts a task and expects 201.
func (e *Env) Create(t testing.TB, body map[string]any) *engine.Task {
	t.Helper()
	var task engine.Task
	e.JSON(t, "POST", "/api/v1/release/tasks", body, 201, &task)
	return &task
}

// Task reads a task.
func (e *Env) Task(t testing.TB, id string) *engine.Task {
	t.Helper()
	var task engine.Task
	e.JSON(t, "GET", "/api/v1/release/tasks/"+id, nil, 200, &task)
	return &task
}

// Wait polls a task until cond holds, failing the test at the deadline.
func (e *Env) Wait(t testing.TB, id, what string, cond func(*engine.Task) bool) *engine.Task {
	t.Helper()
	end := time.Now().Add(Deadline)
	for {
		task := e.Task(t, id)
		if cond(task) {
			return task
		}
		if time.Now().After(end) {
			b, _ := json.MarshalIndent(task, "", "  ")
			t.Fatalf("task %s: %s did not happen within %s; task now:\n%s", id, what, Deadline, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitStatus waits for one of statuses.
func (e *Env) WaitStatus(t testing.TB, id string, statuses ...string) *engine.Task {
	t.Helper()
	return e.Wait(t, id, "status "+strings.Join(statuses, "|"), func(task *engine.Task) bool {
		return slices.Contains(statuses, task.Status)
	})
}

// Events are a task's events in sequence order.
func (e *Env) Events(t testing.TB, id string) []*event.Envelope {
	t.Helper()
	evs, err := event.ListForObject(context.Background(), e.App.DB, event.KindReleaseTask, id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// EventTypes lists event types in order.
func EventTypes(evs []*event.Envelope) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventType
	}
	return out
}

// Gate is a folder through which tests and scripts meet: a gated script
// leaves "started-<host>" and waits for "go" or "go-<host>".
type Gate struct{ Dir string }

// NewGate makes a gate in a fresh folder; it opens when the test ends so
// that no script outlives it.
func NewGate(t testing.TB) *Gate {
	t.Helper()
	g := &Gate{Dir: t.TempDir()}
	t.Cleanup(func() { g.Open(t) })
	return g
}

// Script is a shell snippet that records the start, appends the host to
// "runs" and blocks until the gate opens for the host.
func (g *Gate) Script() string {
	return fmt.Sprintf(`d=%q; echo "$HERALD_HOST" >> "$d/runs"; touch "$d/started-$HERALD_HOST"
while [ ! -f "$d/go" ] && [ ! -f "$d/go-$HERALD_HOST" ]; do sleep 0.02; done
echo "deployed $HERALD_VERSION to $HERALD_HOST"`, g.Dir)
}

// Open lets every waiting and future script through.
func (g *Gate) Open(t testing.TB) { g.touch(t, "go") }

// OpenHost lets one host's script through.
func (g *Gate) OpenHost(t testing.TB, host string) { g.touch(t, "go-"+host) }

func (g *Gate) touch(t testing.TB, name string) {
	if err := os.WriteFile(filepath.Join(g.Dir, name), nil, 0o644); err != nil {
		t.Errorf("open gate: %v", err)
	}
}

// WaitStarted waits until the host's script has started.
func (g *Gate) WaitStarted(t testing.TB, host string) {
	t.Helper()
	WaitFile(t, filepath.Join(g.Dir, "started-"+host))
}

// Runs lists the hosts whose script started, in order, once per run.
func (g *Gate) Runs(t testing.TB) []string {
	b, err := os.ReadFile(filepath.Join(g.Dir, "runs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// WaitFile waits for a file to exist.
func WaitFile(t testing.TB, path string) {
	t.Helper()
	end := time.Now().Add(Deadline)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not appear within %s", path, Deadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Local is a local executor running script.
func Local(script string) map[string]any {
	return map[string]any{"type": "local", "script": script}
}
