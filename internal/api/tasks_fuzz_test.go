package api_test

import (
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
)

// taskFuzzEnv is a quiet Herald with project shop: environment prod (three
// hosts in the blue and green groups, a local executor), environment empty
// (no hosts), and versions v1 and v2.
func taskFuzzEnv(t testing.TB, e *apptest.Env) {
	t.Helper()
	const pp = "/api/v1/release/projects/shop"
	mustCall(t, e, "POST", "/api/v1/release/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	for _, env := range []string{"prod", "empty"} {
		mustCall(t, e, "POST", pp+"/environments", map[string]any{"name": env,
			"executor": map[string]any{"type": "local", "script": "true", "timeout": "1m"}}, 201)
	}
	mustCall(t, e, "POST", pp+"/environments/prod/hosts", map[string]any{"hosts": []map[string]any{
		{"name": "h1", "address": "10.0.0.1", "labels": map[string]string{"group": "blue"}},
		{"name": "h2", "address": "10.0.0.2", "labels": map[string]string{"group": "green"}},
		{"name": "h3", "address": "10.0.0.3", "labels": map[string]string{"group": "blue"}},
	}}, 201)
	for _, v := range []string{"v1", "v2"} {
		mustCall(t, e, "POST", pp+"/versions", map[string]any{"name": v, "artifact": "shop-" + v + ".tgz"}, 201)
	}
}

var taskTables = []string{"release_tasks", "release_task_batches", "release_task_hosts", "events", "river_job"}

// FuzzTaskCreate posts bodies to POST /api/v1/release/tasks (CONTRACT §5).
// A task that is created is cancelled at once (it is still pending: the
// queue does not run), so the environment is free for the next input.
func FuzzTaskCreate(f *testing.F) {
	envs := fuzzHeralds(f)
	for _, e := range envs {
		taskFuzzEnv(f, e)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, e := range envs {
			before := rowState(t, e, taskTables)
			status, h, raw := sendRaw(t, e, "POST", "/api/v1/release/tasks", body)
			if checkAnswer(t, "POST /api/v1/release/tasks", body, status, h, raw) {
				sameRowState(t, "POST /api/v1/release/tasks", body, before, rowState(t, e, taskTables))
				continue
			}
			if status != 201 {
				t.Fatalf("task create answered %d: %s", status, raw)
			}
			mustCall(t, e, "POST", "/api/v1/release/tasks/"+answerID(t, raw)+"/cancel", nil, 200)
		}
	})
}
