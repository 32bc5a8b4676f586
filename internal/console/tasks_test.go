package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The release pages without a browser: start a canary by the form, see
// its page while it waits, promote and roll back by the buttons' forms.
func TestTaskPages(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if status, body := env.Do(t, http.MethodGet, "/api/v1/release/tasks", nil); status == http.StatusNotFound && strings.Contains(string(body), "no route") {
		t.Skip("the release engine is not in this build")
	}
	b := loggedIn(t, env, "admin", adminPassword)
	token := b.csrf()

	env.JSON(t, http.MethodPost, "/api/v1/release/projects", map[string]any{"id": "api", "name": "API"}, http.StatusCreated, nil)
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/api/environments", map[string]any{
		"name": "stage", "executor": map[string]any{"type": "local", "script": "echo \"$HERALD_HOST $HERALD_PHASE\""},
	}, http.StatusCreated, nil)
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/api/environments/stage/hosts", map[string]any{
		"hosts": []map[string]any{{"name": "a1", "address": "127.0.0.1"}, {"name": "a2", "address": "127.0.0.1"}, {"name": "a3", "address": "127.0.0.1"}},
	}, http.StatusCreated, nil)
	var v1, v2 struct {
		ID string `json:"id"`
	}
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/api/versions", map[string]any{"name": "v1"}, http.StatusCreated, &v1)
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/api/versions", map[string]any{"name": "v2"}, http.StatusCreated, &v2)

	start := func(version string, extra ...string) page {
		v := url.Values{"csrf": {token}, "project_id": {"api"}, "environment": {"stage"}, "type": {"deploy"},
			"strategy": {"canary"}, "version_id": {version}, "canary_value": {"1"}, "canary_unit": {"count"},
			"all_hosts": {"true"}, "max_failures": {"0"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return b.post("/tasks/new", v)
	}
	wait := func(id, status string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var tk struct {
				Status string `json:"status"`
			}
			env.JSON(t, http.MethodGet, "/api/v1/release/tasks/"+id, nil, http.StatusOK, &tk)
			if tk.Status == status {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s is %s, want %s", id, tk.Status, status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	taskOf := func(p page) string {
		t.Helper()
		loc := p.Header.Get("Location")
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/tasks/tsk_") {
			t.Fatalf("start: %d %q %s", p.Status, loc, p.Body)
		}
		return strings.TrimPrefix(loc, "/tasks/")
	}

	// The API's errors land on the form's inputs.
	p := start("", "canary_value", "x")
	if p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad start: %d", p.Status)
	}
	mustContain(t, p, `id="f-canary_value-err"`)
	p = start("")
	mustContain(t, p, `id="f-version_id-err"`)

	id := taskOf(start(v1.ID))
	wait(id, "paused")
	for _, lang := range []string{"en", "zh"} {
		b.header.Set("Accept-Language", lang)
		pg := b.get("/tasks/" + id)
		checkPage(t, lang+" /tasks/"+id, pg, http.StatusOK)
		mustContain(t, pg, `data-live="true"`, `id="promote"`, "a1", "a2", "a3")
	}
	b.header.Del("Accept-Language")
	checkPage(t, "/tasks", b.get("/tasks?project_id=api&status=paused"), http.StatusOK)
	mustContain(t, b.get("/tasks?project_id=api&status=paused"), id)
	checkPage(t, "/projects/api", b.get("/projects/api"), http.StatusOK)
	checkPage(t, "/projects/api/environments/stage", b.get("/projects/api/environments/stage"), http.StatusOK)

	// A second task on the environment is refused, and says why.
	p = start(v2.ID)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "errsum") {
		t.Fatalf("second active task: %d", p.Status)
	}

	if p := b.post("/tasks/"+id+"/promote", url.Values{"csrf": {token}}); p.Status != http.StatusSeeOther {
		t.Fatalf("promote: %d %s", p.Status, p.Body)
	}
	wait(id, "success")
	pg := b.get("/tasks/" + id)
	mustContain(t, pg, `data-live=""`, `id="rollback"`)
	// Promote again: the API refuses, and the page says so.
	p = b.post("/tasks/"+id+"/promote", url.Values{"csrf": {token}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("promote a finished task: %d", p.Status)
	}
	mustContain(t, b.get(p.Header.Get("Location")), "flash-error")

	id2 := taskOf(start(v2.ID))
	wait(id2, "paused")
	if p := b.post("/tasks/"+id2+"/cancel", url.Values{"csrf": {token}}); p.Status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", p.Status)
	}
	wait(id2, "cancelled")
	p = b.post("/tasks/"+id2+"/rollback", url.Values{"csrf": {token}})
	rb := taskOf(p)
	if rb == id2 {
		t.Fatal("rollback did not make a new task")
	}
	wait(rb, "success")
	mustContain(t, b.get("/tasks/"+rb), "Rollback")
	if p := b.post("/tasks/"+id+"/explode", url.Values{"csrf": {token}}); p.Status != http.StatusNotFound {
		t.Fatalf("unknown action: %d", p.Status)
	}
}
