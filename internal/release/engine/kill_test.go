package engine_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/engine/enginetest"
)

// herald builds ./cmd/herald into the test's folder.
func herald(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herald")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/herald-release/herald/cmd/herald").CombinedOutput()
	if err != nil {
		t.Fatalf("build herald: %v\n%s", err, out)
	}
	return bin
}

// process is a herald serve started by a test.
type process struct {
	cmd *exec.Cmd
	log *bytes.Buffer
	url string
}

func startHerald(t *testing.T, bin, dbURL, dataDir string) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &process{log: &bytes.Buffer{}, url: "http://" + addr}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(os.Environ(),
		"HERALD_DATABASE_URL="+dbURL,
		"HERALD_DATA_DIR="+dataDir,
		"HERALD_ADDR="+addr,
		"HERALD_SECRET_KEY=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"HERALD_ADMIN_TOKEN="+apptest.AdminToken,
		"HERALD_EGRESS_ALLOW=127.0.0.0/8",
		"HERALD_LOG_FORMAT=text",
		"HERALD_SHUTDOWN_GRACE=1s",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("herald output:\n%s", p.log.String())
		}
	})
	end := time.Now().Add(enginetest.Deadline)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(end) {
			t.Fatalf("herald did not become ready: %v\n%s", err, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResumeAfterKill runs the real binary, kills it with SIGKILL while a
// host's script runs, starts it again on the same database and checks that
// the task finishes, the killed host runs again and each event is written
// once. On PostgreSQL the new process waits for the dead one's lease to
// run out (engine.DefaultLeaseTTL); on SQLite it takes over at once.
func TestResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	t.Parallel()
	bin := herald(t)
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			dbURL := dbtest.URL(t, dialect)
			gate := enginetest.NewGate(t)
			p := startHerald(t, bin, dbURL, t.TempDir())
			api := &enginetest.Env{Env: &apptest.Env{URL: p.url, Token: apptest.AdminToken}}
			api.Setup(t, "prod", enginetest.Local(gate.Script()), enginetest.Hosts(2, "10.0.0.1"))
			task := api.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1", "batch_size": 1})
			gate.WaitStarted(t, "h1")

			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = p.cmd.Wait()
			killedAt := time.Now()

			p2 := startHerald(t, bin, dbURL, t.TempDir())
			api.URL = p2.url
			api.Wait(t, task.ID, "h1 run again", func(*engine.Task) bool { return count(gate.Runs(t), "h1") == 2 })
			t.Logf("%s: h1 ran again %s after the kill", dialect, time.Since(killedAt).Round(time.Millisecond))
			gate.Open(t)
			done := api.WaitStatus(t, task.ID, "success", "failed")
			if done.Status != "success" || done.Counts != (engine.Counts{Total: 2, Completed: 2}) {
				t.Fatalf("task after the kill: %+v", done)
			}
			if runs := gate.Runs(t); !slices.Equal(runs, []string{"h1", "h1", "h2"}) {
				t.Fatalf("runs %v: want h1 twice (killed, then again) and h2 once", runs)
			}

			d, err := db.Open(context.Background(), dbURL, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			evs, err := event.ListForObject(context.Background(), d, event.KindReleaseTask, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := enginetest.EventTypes(evs); !slices.Equal(got, []string{"release_started", "full_completed"}) {
				t.Fatalf("events %v: each moment exactly once", got)
			}
			for i, ev := range evs {
				if ev.Sequence != int64(i+1) {
					t.Fatalf("event %d has sequence %d", i, ev.Sequence)
				}
			}
		})
	}
}
