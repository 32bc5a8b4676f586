package engine_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/engine/enginetest"
)

// TestResumeAfterRestart stops Herald while a host runs and starts another
// Herald on the same database: the task goes on, the interrupted host runs
// again, the finished one does not, and every event exists once. A paused
// canary's scheduled auto-promotion survives a restart too.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			url := dbtest.URL(t, dialect)
			gate := enginetest.NewGate(t)
			first := enginetest.Start(t, url, t.TempDir())
			first.Setup(t, "prod", enginetest.Local(gate.Script()), enginetest.Hosts(3, "10.0.0.1"))
			task := first.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1", "batch_size": 2})
			gate.WaitStarted(t, "h1")
			gate.WaitStarted(t, "h2")
			gate.OpenHost(t, "h1")
			first.Wait(t, task.ID, "h1 done", func(tk *engine.Task) bool { return tk.Hosts[0].Status == "success" })
			first.Stop()

			second := enginetest.Start(t, url, t.TempDir())
			second.Wait(t, task.ID, "h2 run again", func(*engine.Task) bool { return count(gate.Runs(t), "h2") == 2 })
			gate.Open(t)
			done := second.WaitStatus(t, task.ID, "success", "failed")
			if done.Status != "success" || done.Counts != (engine.Counts{Total: 3, Completed: 3}) {
				t.Fatalf("resumed task: %+v", done)
			}
			if runs := gate.Runs(t); count(runs, "h1") != 1 || count(runs, "h2") != 2 || count(runs, "h3") != 1 {
				t.Fatalf("runs %v: want h1 once, h2 twice, h3 once", runs)
			}
			status, raw := second.Do(t, "GET", "/api/v1/release/tasks/"+task.ID+"/logs?host=h2", nil)
			if status != 200 || !strings.HasPrefix(string(raw), "[herald] Herald stopped while this host was running") {
				t.Fatalf("h2 logs: %d %q", status, raw)
			}
			if got := enginetest.EventTypes(second.Events(t, task.ID)); !slices.Equal(got, []string{"release_started", "full_completed"}) {
				t.Fatalf("events %v: each moment once", got)
			}

			// A canary paused with an auto-promotion due after a restart.
			canary := second.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v2",
				"strategy": "canary", "auto_promote_after": "2s"})
			second.WaitStatus(t, canary.ID, "paused")
			second.Stop()
			third := enginetest.Start(t, url, t.TempDir())
			done = third.WaitStatus(t, canary.ID, "success", "failed")
			if done.Status != "success" {
				t.Fatalf("auto-promoted after restart: %+v", done)
			}
			if got := enginetest.EventTypes(third.Events(t, canary.ID)); !slices.Equal(got, []string{"canary_started", "canary_completed", "full_completed"}) {
				t.Fatalf("canary events %v", got)
			}
		})
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
