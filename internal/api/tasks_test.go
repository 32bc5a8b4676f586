package api_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/engine/enginetest"
	"github.com/herald-release/herald/internal/testsupport"
)

// Release task tests: every strategy end to end through the API, on SQLite
// and (with HERALD_TEST_DATABASE_URL) PostgreSQL, with the real local and
// ssh executors. Waits poll the API with a deadline; scripts that must
// hold still block on a gate file.

const tasksPath = "/api/v1/release/tasks"

func taskEach(t *testing.T, fn func(t *testing.T, e *enginetest.Env)) {
	t.Helper()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, enginetest.New(t, d))
		})
	}
}

// taskErr checks an error response: status, code and the fields named.
func taskErr(t testing.TB, what string, status int, raw []byte, wantStatus int, wantCode string, wantFields ...string) {
	t.Helper()
	var body struct {
		Error struct {
			Code    string
			Message string
			Details []struct{ Field, Message string }
		}
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s: body is not the error shape: %s", what, raw)
	}
	if status != wantStatus || body.Error.Code != wantCode {
		t.Fatalf("%s: got %d %s, want %d %s; body %s", what, status, body.Error.Code, wantStatus, wantCode, raw)
	}
	var fields []string
	for _, d := range body.Error.Details {
		fields = append(fields, d.Field)
	}
	for _, f := range wantFields {
		if !slices.Contains(fields, f) {
			t.Fatalf("%s: fields %v lack %q; body %s", what, fields, f, raw)
		}
	}
}

// evWant is an expected event: its type, the task status it carries and
// the deployment counts and hosts at that moment.
type evWant struct {
	typ, status                      string
	total, canary, completed, failed int
	hosts                            []string
}

// taskEvents checks a task's events, in order and complete, and returns them.
func taskEvents(t testing.TB, e *enginetest.Env, taskID string, want ...evWant) []*event.Envelope {
	t.Helper()
	evs := e.Events(t, taskID)
	if len(evs) != len(want) {
		t.Fatalf("task %s events %v, want %d", taskID, enginetest.EventTypes(evs), len(want))
	}
	for i, ev := range evs {
		w := want[i]
		d := ev.Deployment
		switch {
		case ev.EventType != w.typ, ev.Sequence != int64(i+1), ev.ObjectKind != event.KindReleaseTask,
			ev.Task == nil || ev.Task.ID != taskID || ev.Task.Status != w.status:
			t.Fatalf("event %d: %s seq %d kind %s task %+v; want %s with status %s", i, ev.EventType, ev.Sequence, ev.ObjectKind, ev.Task, w.typ, w.status)
		case d == nil || d.TotalCount != w.total || d.CanaryCount != w.canary || d.CompletedCount != w.completed || d.FailedCount != w.failed:
			t.Fatalf("event %d %s: deployment %+v, want total %d canary %d completed %d failed %d", i, ev.EventType, d, w.total, w.canary, w.completed, w.failed)
		case w.hosts != nil && !slices.Equal(d.Hosts, w.hosts):
			t.Fatalf("event %d %s: hosts %v, want %v", i, ev.EventType, d.Hosts, w.hosts)
		}
	}
	return evs
}

func hostsOf(task *engine.Task) map[string]engine.Host {
	m := map[string]engine.Host{}
	for _, h := range task.Hosts {
		m[h.Name] = h
	}
	return m
}

func hostStatuses(task *engine.Task) string {
	var parts []string
	for _, h := range task.Hosts {
		parts = append(parts, h.Name+"="+h.Status)
	}
	return strings.Join(parts, " ")
}

func batchStatuses(task *engine.Task) string {
	var parts []string
	for _, b := range task.Batches {
		parts = append(parts, fmt.Sprintf("%d:%s:%s%v", b.Number, b.Phase, b.Status, b.Hosts))
	}
	return strings.Join(parts, " ")
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestTaskRolling(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		dir := t.TempDir()
		script := `echo "$HERALD_PROJECT $HERALD_ENVIRONMENT $HERALD_HOST $HERALD_HOST_ADDRESS $HERALD_VERSION $HERALD_VERSION_ID $HERALD_ARTIFACT $HERALD_TASK_ID $HERALD_TASK_TYPE $HERALD_STRATEGY $HERALD_PHASE $HERALD_BATCH"
echo "$HERALD_HOST" >> ` + dir + `/order`
		v1, _ := e.Setup(t, "prod", enginetest.Local(script), enginetest.Hosts(5, "10.0.0.7"))
		created := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1",
			"strategy": "rolling", "batch_size": 2, "max_parallel": 1})
		if created.VersionID != v1 || created.Type != "deploy" || created.Counts.Total != 5 || len(created.Batches) != 3 ||
			!slices.Equal(created.Batches[0].Hosts, []string{"h1", "h2"}) || !slices.Equal(created.Batches[2].Hosts, []string{"h5"}) {
			t.Fatalf("created task: %+v", created)
		}

		task := e.WaitStatus(t, created.ID, "success", "failed")
		if task.Status != "success" || task.Phase != "" || task.StartedAt == nil || task.FinishedAt == nil || task.Duration == "" ||
			task.Counts != (engine.Counts{Total: 5, Completed: 5}) {
			t.Fatalf("finished task: %+v", task)
		}
		for i, h := range task.Hosts {
			if h.Status != "success" || h.Batch != i/2+1 || h.Phase != "rollout" || h.ExitCode == nil || *h.ExitCode != 0 ||
				h.StartedAt == nil || h.FinishedAt == nil || h.Error != "" {
				t.Fatalf("host %+v", h)
			}
		}
		if got := batchStatuses(task); got != "1:rollout:success[h1 h2] 2:rollout:success[h3 h4] 3:rollout:success[h5]" {
			t.Fatalf("batches %s", got)
		}
		// max_parallel 1: one host after the other, in plan order.
		if got := readLines(t, filepath.Join(dir, "order")); !slices.Equal(got, []string{"h1", "h2", "h3", "h4", "h5"}) {
			t.Fatalf("run order %v", got)
		}

		status, raw := e.Do(t, "GET", tasksPath+"/"+task.ID+"/logs?host=h3", nil)
		want := fmt.Sprintf("app prod h3 10.0.0.7 v1 %s app-v1.tar.gz %s deploy rolling rollout 2\n", v1, task.ID)
		if status != 200 || string(raw) != want {
			t.Fatalf("logs: %d %q, want %q", status, raw, want)
		}

		all := []string{"h1", "h2", "h3", "h4", "h5"}
		evs := taskEvents(t, e, task.ID,
			evWant{"release_started", "running", 5, 0, 0, 0, all},
			evWant{"full_completed", "success", 5, 0, 5, 0, all})
		ev := evs[1]
		if ev.Project == nil || *ev.Project != (event.ProjectRef{ID: "app", Name: "App", Description: "the app"}) ||
			ev.Version == nil || *ev.Version != (event.VersionRef{ID: v1, Name: "v1", Description: "release v1"}) ||
			ev.Task.Type != "deploy" || ev.Task.Strategy != "rolling" || ev.Environment != "prod" ||
			ev.Actor == nil || ev.Actor.Name != "admin" || ev.URL != e.URL+"/tasks/"+task.ID || ev.Duration == "" || ev.ID == "" {
			t.Fatalf("full_completed envelope: %+v", ev)
		}

		var list struct {
			Items      []engine.Task
			NextCursor string `json:"next_cursor"`
		}
		e.JSON(t, "GET", tasksPath+"?project_id=app&environment=prod&status=success", nil, 200, &list)
		if len(list.Items) != 1 || list.Items[0].ID != task.ID || list.Items[0].Counts.Completed != 5 || list.Items[0].Hosts != nil {
			t.Fatalf("list: %+v", list)
		}
		e.JSON(t, "GET", tasksPath+"?status=failed", nil, 200, &list)
		if len(list.Items) != 0 {
			t.Fatalf("status filter: %+v", list)
		}
	})
}

func TestTaskListPaging(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		e.Setup(t, "prod", enginetest.Local("true"), enginetest.Hosts(1, "10.0.0.1"))
		var ids []string
		for range 3 {
			task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1"})
			e.WaitStatus(t, task.ID, "success")
			ids = append(ids, task.ID)
		}
		var p1, p2 struct {
			Items      []engine.Task
			NextCursor string `json:"next_cursor"`
		}
		e.JSON(t, "GET", tasksPath+"?limit=2", nil, 200, &p1)
		e.JSON(t, "GET", tasksPath+"?limit=2&cursor="+p1.NextCursor, nil, 200, &p2)
		if len(p1.Items) != 2 || p1.Items[0].ID != ids[2] || p1.Items[1].ID != ids[1] || p1.NextCursor == "" ||
			len(p2.Items) != 1 || p2.Items[0].ID != ids[0] || p2.NextCursor != "" {
			t.Fatalf("pages %+v / %+v (ids %v)", p1, p2, ids)
		}
	})
}

func TestTaskCanary(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		dir := t.TempDir()
		e.Setup(t, "prod", enginetest.Local(`echo "$HERALD_HOST $HERALD_PHASE $HERALD_BATCH" >> `+dir+`/runs`), enginetest.Hosts(4, "10.0.0.1"))
		all := []string{"h1", "h2", "h3", "h4"}

		// Promoted by hand.
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1",
			"strategy": "canary", "canary": map[string]any{"count": 1}, "batch_size": 2})
		task = e.WaitStatus(t, task.ID, "paused", "failed")
		if task.Status != "paused" || task.Phase != "canary" || task.AutoPromoteAt != nil ||
			task.Counts != (engine.Counts{Total: 4, Canary: 1, Completed: 1}) ||
			hostStatuses(task) != "h1=success h2=pending h3=pending h4=pending" || !task.Hosts[0].Canary {
			t.Fatalf("paused canary: %+v", task)
		}
		if got := readLines(t, filepath.Join(dir, "runs")); !slices.Equal(got, []string{"h1 canary 1"}) {
			t.Fatalf("canary runs %v", got)
		}
		taskEvents(t, e, task.ID,
			evWant{"canary_started", "running", 4, 1, 0, 0, []string{"h1"}},
			evWant{"canary_completed", "paused", 4, 1, 1, 0, []string{"h1"}})

		var promoted engine.Task
		e.JSON(t, "POST", tasksPath+"/"+task.ID+"/promote", nil, 200, &promoted)
		if promoted.Status != "running" && promoted.Status != "success" {
			t.Fatalf("promote answered %s", promoted.Status)
		}
		task = e.WaitStatus(t, task.ID, "success", "failed")
		if task.Status != "success" || task.Counts != (engine.Counts{Total: 4, Canary: 1, Completed: 4}) ||
			batchStatuses(task) != "1:canary:success[h1] 2:rollout:success[h2 h3] 3:rollout:success[h4]" {
			t.Fatalf("promoted canary: %+v", task)
		}
		runs := readLines(t, filepath.Join(dir, "runs"))
		sort.Strings(runs[1:3])
		if !slices.Equal(runs, []string{"h1 canary 1", "h2 rollout 2", "h3 rollout 2", "h4 rollout 3"}) {
			t.Fatalf("runs %v", runs)
		}
		taskEvents(t, e, task.ID,
			evWant{"canary_started", "running", 4, 1, 0, 0, []string{"h1"}},
			evWant{"canary_completed", "paused", 4, 1, 1, 0, []string{"h1"}},
			evWant{"full_completed", "success", 4, 1, 4, 0, all})

		status, raw := e.Do(t, "POST", tasksPath+"/"+task.ID+"/promote", nil)
		taskErr(t, "promote a finished task", status, raw, 409, "invalid_state")

		// Promoted automatically; the canary is half the hosts.
		auto := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v2",
			"strategy": "canary", "canary": map[string]any{"percent": 50}, "auto_promote_after": "1s"})
		paused := e.WaitStatus(t, auto.ID, "paused", "success", "failed")
		if paused.Status == "paused" && paused.AutoPromoteAt == nil {
			t.Fatalf("no auto_promote_at: %+v", paused)
		}
		auto = e.WaitStatus(t, auto.ID, "success", "failed")
		if auto.Status != "success" || auto.Counts != (engine.Counts{Total: 4, Canary: 2, Completed: 4}) {
			t.Fatalf("auto-promoted canary: %+v", auto)
		}
		taskEvents(t, e, auto.ID,
			evWant{"canary_started", "running", 4, 2, 0, 0, []string{"h1", "h2"}},
			evWant{"canary_completed", "paused", 4, 2, 2, 0, []string{"h1", "h2"}},
			evWant{"full_completed", "success", 4, 2, 4, 0, all})
	})
}

func TestTaskBlueGreen(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		dir := t.TempDir()
		runs := filepath.Join(dir, "runs")
		hosts := []enginetest.Host{
			{Name: "b1", Address: "10.0.1.1", Labels: map[string]string{"group": "blue"}},
			{Name: "b2", Address: "10.0.1.2", Labels: map[string]string{"group": "blue"}},
			{Name: "g1", Address: "10.0.2.1", Labels: map[string]string{"group": "green"}},
			{Name: "g2", Address: "10.0.2.2", Labels: map[string]string{"group": "green"}},
		}
		e.Setup(t, "prod", enginetest.Local(`line="$HERALD_VERSION $HERALD_HOST $HERALD_PHASE $HERALD_BATCH"; echo "$line"; echo "$line" >> `+runs), hosts)
		liveGroup := func() string {
			var env struct {
				LiveGroup string `json:"live_group"`
			}
			e.JSON(t, "GET", "/api/v1/release/projects/app/environments/prod", nil, 200, &env)
			return env.LiveGroup
		}

		// Nothing is live yet: the release goes to blue.
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1", "strategy": "blue_green"})
		if task.TargetGroup != "blue" || task.Counts.Total != 2 {
			t.Fatalf("created: %+v", task)
		}
		task = e.WaitStatus(t, task.ID, "paused", "failed")
		if task.Phase != "rollout" || hostStatuses(task) != "b1=success b2=success" || liveGroup() != "" {
			t.Fatalf("paused blue-green: %+v (live %q)", task, liveGroup())
		}
		e.JSON(t, "POST", tasksPath+"/"+task.ID+"/promote", nil, 200, nil)
		task = e.WaitStatus(t, task.ID, "success", "failed")
		if task.Status != "success" || liveGroup() != "blue" ||
			batchStatuses(task) != "1:rollout:success[] 2:switch:success[b1 b2]" {
			t.Fatalf("switched: %+v (live %q)", task, liveGroup())
		}
		got := readLines(t, runs)
		sort.Strings(got)
		if !slices.Equal(got, []string{"v1 b1 rollout 1", "v1 b1 switch 2", "v1 b2 rollout 1", "v1 b2 switch 2"}) {
			t.Fatalf("runs %v", got)
		}
		status, raw := e.Do(t, "GET", tasksPath+"/"+task.ID+"/logs?host=b1", nil)
		if status != 200 || string(raw) != "v1 b1 rollout 1\n[herald] switch\nv1 b1 switch 2\n" {
			t.Fatalf("logs keep both phases: %d %q", status, raw)
		}
		taskEvents(t, e, task.ID,
			evWant{"release_started", "running", 2, 0, 0, 0, []string{"b1", "b2"}},
			evWant{"full_completed", "success", 2, 0, 2, 0, []string{"b1", "b2"}})

		// Blue is live: a host of blue cannot be the target.
		status, raw = e.Do(t, "POST", tasksPath, map[string]any{"project_id": "app", "environment": "prod", "version": "v2",
			"strategy": "blue_green", "hosts": []string{"b1"}})
		taskErr(t, "live host", status, raw, 422, "validation_failed", "hosts[0]")

		// The next release goes to green, promoted automatically.
		next := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v2",
			"strategy": "blue_green", "auto_promote_after": "1s"})
		next = e.WaitStatus(t, next.ID, "success", "failed")
		if next.TargetGroup != "green" || next.Status != "success" || liveGroup() != "green" || hostStatuses(next) != "g1=success g2=success" {
			t.Fatalf("second release: %+v (live %q)", next, liveGroup())
		}
	})
}

func TestTaskFailureThresholds(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		fail := func(hosts string) map[string]any {
			return enginetest.Local(`case "$HERALD_HOST" in ` + hosts + `) echo "boom on $HERALD_HOST"; exit 3;; esac; echo ok`)
		}
		all6 := []string{"h1", "h2", "h3", "h4", "h5", "h6"}

		// Two failures with max_failures 1: the task fails, the rest is skipped.
		e.Setup(t, "two", fail("h2|h4"), enginetest.Hosts(6, "10.0.0.1"))
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "two", "version": "v1",
			"batch_size": 2, "max_parallel": 1, "max_failures": 1})
		task = e.WaitStatus(t, task.ID, "failed", "success")
		if task.Status != "failed" || hostStatuses(task) != "h1=success h2=failed h3=success h4=failed h5=skipped h6=skipped" ||
			batchStatuses(task) != "1:rollout:success[h1 h2] 2:rollout:failed[h3 h4] 3:rollout:skipped[h5 h6]" ||
			!strings.Contains(task.Error, "2 hosts failed") || task.FinishedAt == nil {
			t.Fatalf("failed task: %s / %s / %+v", hostStatuses(task), batchStatuses(task), task)
		}
		h2 := hostsOf(task)["h2"]
		if h2.ExitCode == nil || *h2.ExitCode != 3 || h2.Error != "the script exited with status 3" {
			t.Fatalf("h2: %+v", h2)
		}
		status, raw := e.Do(t, "GET", tasksPath+"/"+task.ID+"/logs?host=h2", nil)
		if status != 200 || string(raw) != "boom on h2\n" {
			t.Fatalf("logs h2: %d %q", status, raw)
		}
		taskEvents(t, e, task.ID,
			evWant{"release_started", "running", 6, 0, 0, 0, all6},
			evWant{"release_failed", "failed", 6, 0, 2, 2, all6})

		// One failure within max_failures: success, with the failure shown.
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": "one", "executor": fail("h2")}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments/one/hosts", map[string]any{"hosts": enginetest.Hosts(6, "10.0.0.1")}, 201, nil)
		task = e.Create(t, map[string]any{"project_id": "app", "environment": "one", "version": "v1", "batch_size": 2, "max_failures": 1})
		task = e.WaitStatus(t, task.ID, "failed", "success")
		if task.Status != "success" || task.Counts != (engine.Counts{Total: 6, Completed: 5, Failed: 1}) {
			t.Fatalf("tolerated failure: %+v", task)
		}
		taskEvents(t, e, task.ID,
			evWant{"release_started", "running", 6, 0, 0, 0, all6},
			evWant{"full_completed", "success", 6, 0, 5, 1, all6})

		// The canary tolerates nothing, whatever max_failures says.
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": "canary", "executor": fail("h1")}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments/canary/hosts", map[string]any{"hosts": enginetest.Hosts(3, "10.0.0.1")}, 201, nil)
		task = e.Create(t, map[string]any{"project_id": "app", "environment": "canary", "version": "v1",
			"strategy": "canary", "max_failures": 5})
		task = e.WaitStatus(t, task.ID, "failed", "paused", "success")
		if task.Status != "failed" || hostStatuses(task) != "h1=failed h2=skipped h3=skipped" || !strings.Contains(task.Error, "canary failed on h1") {
			t.Fatalf("failed canary: %+v", task)
		}
		taskEvents(t, e, task.ID,
			evWant{"canary_started", "running", 3, 1, 0, 0, []string{"h1"}},
			evWant{"release_failed", "failed", 3, 1, 0, 1, []string{"h1", "h2", "h3"}})
	})
}

func TestTaskCancel(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		gate := enginetest.NewGate(t)
		e.Setup(t, "prod", enginetest.Local(gate.Script()), enginetest.Hosts(4, "10.0.0.1"))
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1",
			"batch_size": 3, "max_parallel": 1})
		gate.WaitStarted(t, "h1")

		// In the middle of batch 1: h1 runs, h2 and h3 wait their turn.
		var c engine.Task
		e.JSON(t, "POST", tasksPath+"/"+task.ID+"/cancel", nil, 200, &c)
		if c.Status != "running" || !c.CancelRequested {
			t.Fatalf("cancel answered %+v", c)
		}
		e.JSON(t, "POST", tasksPath+"/"+task.ID+"/cancel", nil, 200, &c) // asking twice is fine
		gate.OpenHost(t, "h1")
		task = e.WaitStatus(t, task.ID, "cancelled", "success", "failed")
		if task.Status != "cancelled" || hostStatuses(task) != "h1=success h2=skipped h3=skipped h4=skipped" ||
			batchStatuses(task) != "1:rollout:cancelled[h1 h2 h3] 2:rollout:skipped[h4]" {
			t.Fatalf("cancelled task: %s / %s / %+v", hostStatuses(task), batchStatuses(task), task)
		}
		if runs := gate.Runs(t); !slices.Equal(runs, []string{"h1"}) {
			t.Fatalf("runs %v: only h1 may have run", runs)
		}
		all := []string{"h1", "h2", "h3", "h4"}
		evs := taskEvents(t, e, task.ID,
			evWant{"release_started", "running", 4, 0, 0, 0, all},
			evWant{"release_cancelled", "cancelled", 4, 0, 1, 0, all})
		if evs[1].Actor == nil || evs[1].Actor.Name != "admin" {
			t.Fatalf("cancel actor %+v", evs[1].Actor)
		}

		for _, action := range []string{"cancel", "promote", "retry"} {
			status, raw := e.Do(t, "POST", tasksPath+"/"+task.ID+"/"+action, nil)
			taskErr(t, action+" a cancelled task", status, raw, 409, "invalid_state")
		}

		// A paused task is cancelled at once.
		gate.Open(t)
		paused := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1",
			"strategy": "canary", "canary": map[string]any{"count": 1}})
		e.WaitStatus(t, paused.ID, "paused")
		status, raw := e.Do(t, "POST", tasksPath+"/"+paused.ID+"/retry", nil)
		taskErr(t, "retry a paused task", status, raw, 409, "invalid_state")
		e.JSON(t, "POST", tasksPath+"/"+paused.ID+"/cancel", nil, 200, &c)
		if c.Status != "cancelled" || hostStatuses(&c) != "h1=success h2=skipped h3=skipped h4=skipped" {
			t.Fatalf("cancelled paused task: %+v", c)
		}
		taskEvents(t, e, paused.ID,
			evWant{"canary_started", "running", 4, 1, 0, 0, []string{"h1"}},
			evWant{"canary_completed", "paused", 4, 1, 1, 0, []string{"h1"}},
			evWant{"release_cancelled", "cancelled", 4, 1, 1, 0, all})
	})
}

func TestTaskAutoRollback(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		runs := filepath.Join(t.TempDir(), "runs")
		script := `echo "$HERALD_TASK_TYPE $HERALD_VERSION $HERALD_HOST" >> ` + runs + `
if [ "$HERALD_VERSION" = v2 ] && [ "$HERALD_HOST" = h3 ]; then echo "health check failed"; exit 4; fi`
		v1, _ := e.Setup(t, "prod", enginetest.Local(script), enginetest.Hosts(4, "10.0.0.1"))
		all := []string{"h1", "h2", "h3", "h4"}

		// The first release has nothing to go back to.
		first := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v2", "auto_rollback": true, "batch_size": 4})
		first = e.WaitStatus(t, first.ID, "failed", "success")
		if first.RollbackTaskID != "" || !strings.Contains(first.Error, "auto_rollback: no earlier version") {
			t.Fatalf("rollback without history: %+v", first)
		}
		taskEvents(t, e, first.ID,
			evWant{"release_started", "running", 4, 0, 0, 0, all},
			evWant{"release_failed", "failed", 4, 0, 3, 1, all})

		good := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version_id": v1, "batch_size": 4})
		e.WaitStatus(t, good.ID, "success")
		os.Remove(runs)

		bad := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v2",
			"batch_size": 1, "auto_rollback": true})
		bad = e.WaitStatus(t, bad.ID, "failed", "success")
		if bad.RollbackTaskID == "" || hostStatuses(bad) != "h1=success h2=success h3=failed h4=skipped" {
			t.Fatalf("failed release: %+v", bad)
		}
		taskEvents(t, e, bad.ID,
			evWant{"release_started", "running", 4, 0, 0, 0, all},
			evWant{"release_failed", "failed", 4, 0, 2, 1, all},
			evWant{"rollback_started", "failed", 4, 0, 2, 1, all})

		rb := e.WaitStatus(t, bad.RollbackTaskID, "success", "failed")
		if rb.Status != "success" || rb.Type != "rollback" || rb.Strategy != "rolling" || rb.VersionID != v1 || rb.RollbackOf != bad.ID ||
			hostStatuses(rb) != "h1=success h2=success h3=success" {
			t.Fatalf("rollback task: %+v", rb)
		}
		taskEvents(t, e, rb.ID,
			evWant{"release_started", "running", 3, 0, 0, 0, []string{"h1", "h2", "h3"}},
			evWant{"full_completed", "success", 3, 0, 3, 0, []string{"h1", "h2", "h3"}})
		if got := readLines(t, runs); !slices.Equal(got, []string{"deploy v2 h1", "deploy v2 h2", "deploy v2 h3",
			"rollback v1 h1", "rollback v1 h2", "rollback v1 h3"}) {
			t.Fatalf("runs %v", got)
		}
	})
}

func TestTaskRetry(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		dir := t.TempDir()
		fixed := filepath.Join(dir, "fixed")
		script := `echo "$HERALD_HOST" >> ` + dir + `/runs; if [ "$HERALD_HOST" = h2 ] && [ ! -f ` + fixed + ` ]; then exit 1; fi`
		e.Setup(t, "prod", enginetest.Local(script), enginetest.Hosts(3, "10.0.0.1"))
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1", "batch_size": 1})
		task = e.WaitStatus(t, task.ID, "failed", "success")
		if hostStatuses(task) != "h1=success h2=failed h3=skipped" || task.Run != 1 {
			t.Fatalf("failed: %+v", task)
		}
		if err := os.WriteFile(fixed, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var retried engine.Task
		e.JSON(t, "POST", tasksPath+"/"+task.ID+"/retry", nil, 200, &retried)
		if retried.Status == "failed" || retried.Run != 2 || retried.Error != "" || retried.FinishedAt != nil {
			t.Fatalf("retry answered %+v", retried)
		}
		task = e.WaitStatus(t, task.ID, "success", "failed")
		if task.Status != "success" || hostStatuses(task) != "h1=success h2=success h3=success" {
			t.Fatalf("retried: %+v", task)
		}
		if got := readLines(t, filepath.Join(dir, "runs")); !slices.Equal(got, []string{"h1", "h2", "h2", "h3"}) {
			t.Fatalf("runs %v: h1 must not run again", got)
		}
		all := []string{"h1", "h2", "h3"}
		taskEvents(t, e, task.ID,
			evWant{"release_started", "running", 3, 0, 0, 0, all},
			evWant{"release_failed", "failed", 3, 0, 1, 1, all},
			evWant{"release_started", "running", 3, 0, 1, 0, all},
			evWant{"full_completed", "success", 3, 0, 3, 0, all})
		status, raw := e.Do(t, "POST", tasksPath+"/"+task.ID+"/retry", nil)
		taskErr(t, "retry a successful task", status, raw, 409, "invalid_state")
	})
}

func TestTaskOneActivePerEnvironment(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		gate := enginetest.NewGate(t)
		e.Setup(t, "prod", enginetest.Local(gate.Script()), enginetest.Hosts(1, "10.0.0.1"))
		first := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1"})
		status, raw := e.Do(t, "POST", tasksPath, map[string]any{"project_id": "app", "environment": "prod", "version": "v2"})
		taskErr(t, "second task", status, raw, 409, "conflict")
		if !strings.Contains(string(raw), first.ID) {
			t.Fatalf("the conflict should name the active task: %s", raw)
		}
		status, raw = e.Do(t, "DELETE", "/api/v1/release/projects/app/environments/prod", nil)
		taskErr(t, "delete the environment", status, raw, 409, "conflict")
		status, raw = e.Do(t, "DELETE", "/api/v1/release/projects/app", nil)
		taskErr(t, "delete the project", status, raw, 409, "conflict")

		// Concurrent creates on another environment: exactly one wins.
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": "stage", "executor": enginetest.Local(gate.Script())}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments/stage/hosts", map[string]any{"hosts": enginetest.Hosts(1, "10.0.0.2")}, 201, nil)
		const n = 6
		var wg sync.WaitGroup
		statuses := make([]int, n)
		bodies := make([][]byte, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				statuses[i], bodies[i] = e.Do(t, "POST", tasksPath, map[string]any{"project_id": "app", "environment": "stage", "version": "v1"})
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range n {
			switch statuses[i] {
			case 201:
				created++
			case 409:
				taskErr(t, "concurrent create", statuses[i], bodies[i], 409, "conflict")
			default:
				t.Fatalf("concurrent create: %d %s", statuses[i], bodies[i])
			}
		}
		if created != 1 {
			t.Fatalf("%d concurrent creates succeeded, want exactly 1", created)
		}

		gate.Open(t)
		e.WaitStatus(t, first.ID, "success")
		var list struct{ Items []engine.Task }
		e.JSON(t, "GET", tasksPath+"?environment=stage", nil, 200, &list)
		if len(list.Items) != 1 {
			t.Fatalf("stage tasks: %d", len(list.Items))
		}
		e.WaitStatus(t, list.Items[0].ID, "success")
		// Finished tasks hold nothing back.
		e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v2"})
		status, _ = e.Do(t, "DELETE", "/api/v1/release/projects/app/environments/stage", nil)
		if status != 204 {
			t.Fatalf("delete a free environment: %d", status)
		}
	})
}

func TestTaskValidation(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		e.Setup(t, "prod", enginetest.Local("true"), enginetest.Hosts(2, "10.0.0.1"))
		base := func(kv ...any) map[string]any {
			m := map[string]any{"project_id": "app", "environment": "prod", "version": "v1"}
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(m, kv[i].(string))
				} else {
					m[kv[i].(string)] = kv[i+1]
				}
			}
			return m
		}
		tests := []struct {
			name   string
			body   any
			status int
			code   string
			fields []string
		}{
			{"empty body", map[string]any{}, 422, "validation_failed", []string{"project_id", "environment", "version_id"}},
			{"unknown type", base("type", "nuke"), 422, "validation_failed", []string{"type"}},
			{"unknown strategy", base("strategy", "yolo"), 422, "validation_failed", []string{"strategy"}},
			{"canary options on rolling", base("strategy", "rolling", "canary", map[string]any{"count": 1}), 422, "validation_failed", []string{"canary"}},
			{"canary count above the hosts", base("strategy", "canary", "canary", map[string]any{"count": 3}), 422, "validation_failed", []string{"canary.count"}},
			{"batch_size and batch_percent", base("batch_size", 1, "batch_percent", 50), 422, "validation_failed", []string{"batch_size"}},
			{"host not in the environment", base("hosts", []string{"h1", "nope"}), 422, "validation_failed", []string{"hosts[1]"}},
			{"blue_green without group labels", base("strategy", "blue_green"), 422, "validation_failed", []string{"strategy"}},
			{"stop as blue_green", base("type", "stop", "strategy", "blue_green"), 422, "validation_failed", []string{"strategy"}},
			{"unknown version name", base("version", "v9"), 422, "validation_failed", []string{"version"}},
			{"unknown version id", base("version", nil, "version_id", "ver_nope"), 422, "validation_failed", []string{"version_id"}},
			{"rollback without history", base("type", "rollback", "version", nil), 422, "validation_failed", []string{"version_id"}},
			{"auto_promote_after on rolling", base("auto_promote_after", "5m"), 422, "validation_failed", []string{"auto_promote_after"}},
			{"auto_promote_after not a duration", base("strategy", "canary", "auto_promote_after", "soon"), 422, "validation_failed", []string{"auto_promote_after"}},
			{"batch_size not a number", base("batch_size", "two"), 422, "validation_failed", []string{"batch_size"}},
			{"negative max_failures", base("max_failures", -1), 422, "validation_failed", []string{"max_failures"}},
			{"auto_rollback of a rollback", base("type", "rollback", "auto_rollback", true), 422, "validation_failed", []string{"auto_rollback"}},
			{"bad executor override", base("executor", map[string]any{"type": "docker"}), 422, "validation_failed", []string{"executor.type", "executor.script"}},
			{"unknown project", base("project_id", "ghost"), 404, "not_found", nil},
			{"unknown environment", base("environment", "ghost"), 404, "not_found", nil},
			{"malformed JSON", `{"project_id": `, 400, "invalid_json", nil},
		}
		for _, tt := range tests {
			status, raw := e.Do(t, "POST", tasksPath, tt.body)
			taskErr(t, tt.name, status, raw, tt.status, tt.code, tt.fields...)
		}

		status, raw := e.Do(t, "GET", tasksPath+"/tsk_nope", nil)
		taskErr(t, "unknown task", status, raw, 404, "not_found")
		for _, action := range []string{"promote", "cancel", "retry"} {
			status, raw := e.Do(t, "POST", tasksPath+"/tsk_nope/"+action, nil)
			taskErr(t, action+" an unknown task", status, raw, 404, "not_found")
		}
		status, raw = e.Do(t, "GET", tasksPath+"?status=done", nil)
		taskErr(t, "unknown status filter", status, raw, 422, "validation_failed", "status")
		status, raw = e.Do(t, "GET", tasksPath+"/tsk_nope/logs?host=h1", nil)
		taskErr(t, "logs of an unknown task", status, raw, 404, "not_found")

		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1", "hosts": []string{"h2"}})
		if task.Counts.Total != 1 || task.Hosts[0].Name != "h2" {
			t.Fatalf("hosts subset: %+v", task)
		}
		e.WaitStatus(t, task.ID, "success")
		status, raw = e.Do(t, "GET", tasksPath+"/"+task.ID+"/logs", nil)
		taskErr(t, "logs without host", status, raw, 422, "validation_failed", "host")
		status, raw = e.Do(t, "GET", tasksPath+"/"+task.ID+"/logs?host=h1", nil)
		taskErr(t, "logs of a host not in the task", status, raw, 404, "not_found")
	})
}

func TestTaskExecutorOverrideAndDefaults(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		runs := filepath.Join(t.TempDir(), "runs")
		record := `echo "$HERALD_TASK_TYPE ${HERALD_VERSION:-none} $HERALD_HOST" >> ` + runs
		e.Setup(t, "prod", enginetest.Local(record), enginetest.Hosts(1, "10.0.0.1"))

		// A stop before anything was released has no version.
		stop := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "type": "stop"})
		e.WaitStatus(t, stop.ID, "success")
		for _, v := range []string{"v1", "v2"} {
			task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": v})
			e.WaitStatus(t, task.ID, "success")
		}
		// A rollback without a version goes back to the one before.
		rb := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "type": "rollback"})
		if rb.Version != "v1" {
			t.Fatalf("rollback default version %q, want v1", rb.Version)
		}
		e.WaitStatus(t, rb.ID, "success")
		// A stop runs with the version now live; the override replaces
		// the environment's script and is shown without secrets.
		override := map[string]any{"type": "local", "script": record + `; echo "override $HERALD_TASK_TYPE"`, "env": map[string]string{"K": "V"}}
		stop = e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "type": "stop", "executor": override})
		if stop.Executor == nil || stop.Executor.Env["K"] != "V" || stop.Version != "v1" {
			t.Fatalf("stop task: %+v", stop)
		}
		e.WaitStatus(t, stop.ID, "success")
		status, raw := e.Do(t, "GET", tasksPath+"/"+stop.ID+"/logs?host=h1", nil)
		if status != 200 || string(raw) != "override stop\n" {
			t.Fatalf("override logs: %d %q", status, raw)
		}
		if got := readLines(t, runs); !slices.Equal(got, []string{"stop none h1", "deploy v1 h1", "deploy v2 h1", "rollback v1 h1", "stop v1 h1"}) {
			t.Fatalf("runs %v", got)
		}
	})
}

func TestTaskSSH(t *testing.T) {
	t.Parallel()
	taskEach(t, func(t *testing.T, e *enginetest.Env) {
		srv := testsupport.NewSSHServer(t)
		executor := map[string]any{"type": "ssh", "user": "deploy", "private_key": srv.PrivateKeyPEM(), "known_hosts": srv.KnownHosts(),
			"script": `echo "on $HERALD_HOST phase $HERALD_PHASE version $HERALD_VERSION"`}
		hosts := []enginetest.Host{{Name: "h1", Address: srv.Addr()}, {Name: "h2", Address: srv.Addr()}, {Name: "down", Address: "127.0.0.1:1"}}
		e.Setup(t, "prod", executor, hosts)
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1",
			"hosts": []string{"h1", "h2", "down"}, "max_failures": 1, "batch_size": 3})
		task = e.WaitStatus(t, task.ID, "success", "failed")
		if task.Status != "success" || hostStatuses(task) != "h1=success h2=success down=failed" {
			t.Fatalf("ssh task: %+v", task)
		}
		down := hostsOf(task)["down"]
		if down.ExitCode == nil || *down.ExitCode != -1 || !strings.Contains(down.Error, "127.0.0.1:1") {
			t.Fatalf("unreachable host: %+v", down)
		}
		status, raw := e.Do(t, "GET", tasksPath+"/"+task.ID+"/logs?host=h2", nil)
		if status != 200 || string(raw) != "on h2 phase rollout version v1\n" {
			t.Fatalf("ssh logs: %d %q", status, raw)
		}
		cmds := srv.Commands()
		if len(cmds) != 2 || !strings.Contains(cmds[0], "export HERALD_TASK_ID='"+task.ID+"'") {
			t.Fatalf("commands on the server: %q", cmds)
		}
		// The private key never comes back.
		status, raw = e.Do(t, "GET", tasksPath+"/"+task.ID, nil)
		if status != 200 || strings.Contains(string(raw), "PRIVATE KEY") {
			t.Fatalf("task shows secrets: %s", raw)
		}
	})
}
