package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/identity"
)

// fakePlans answers the release-plan routes of CONTRACT §7 as the
// contract shapes them, recording what the console sends. It stands in
// for the plan API until Herald has one, and shows that the pages depend
// on the contract only.
type fakePlans struct {
	mu    sync.Mutex
	calls []string
	plan  map[string]any
}

func (f *fakePlans) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+string(body))
	if _, err := r.Cookie(api.SessionCookie); err != nil {
		http.Error(w, `{"error":{"code":"unauthorized","message":"no session"}}`, http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodPost && r.Header.Get(api.CSRFHeader) == "" {
		http.Error(w, `{"error":{"code":"forbidden","message":"no csrf"}}`, http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	write := func(status int, v any) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/users":
		write(200, map[string]any{"items": []map[string]any{{"id": "usr_1", "name": "admin", "role": "admin"}, {"id": "usr_2", "name": "bob", "role": "member"}}})
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/release/plans":
		write(200, map[string]any{"items": []any{f.plan}, "next_cursor": ""})
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/release/plans":
		var in map[string]any
		_ = json.Unmarshal(body, &in)
		if in["name"] == "" {
			write(422, map[string]any{"error": map[string]any{"code": "validation_failed", "message": "name: is required",
				"details": []map[string]any{{"field": "name", "message": "is required"}, {"field": "jobs[1].spec.workflow.environment", "message": "is required"}}}})
			return
		}
		write(201, map[string]any{"id": "pln_2", "name": in["name"]})
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/release/plans/pln_1":
		write(200, f.plan)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/release/plans/pln_1/logs":
		write(200, map[string]any{"items": []map[string]any{{"created_at": "2026-01-06T20:00:00Z", "actor": map[string]any{"name": "admin"}, "action": "finish_planning"}}})
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/release/plans/pln_1/execute":
		write(409, map[string]any{"error": map[string]any{"code": "invalid_state", "message": "outside the release window"}})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/release/plans/pln_1/"):
		write(200, f.plan)
	default:
		write(404, map[string]any{"error": map[string]any{"code": "not_found", "message": "no route " + r.Method + " " + r.URL.Path}})
	}
}

func TestPlanPages(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, db.SQLite)
	ids := identity.New(d)
	ctx := context.Background()
	u, err := ids.CreateUser(ctx, d, identity.NewUser{Name: "admin", Role: identity.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	sid, sess, err := ids.CreateSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakePlans{plan: map[string]any{
		"id": "pln_1", "name": "Sprint 42", "status": "wait_for_approval", "manager_id": "usr_1",
		"start_time": "2026-01-06T20:00:00Z", "end_time": "2026-01-06T22:00:00Z", "instance_code": "ic_1",
		"jira_sprints": []string{"S42"}, "approval": map[string]any{"enabled": true, "approvers": []string{"usr_2"}, "mode": "any"},
		"jobs": []map[string]any{
			{"id": "job_1", "name": "Announce", "type": "text", "status": "todo", "spec": map[string]any{"content": "Tell support"}},
			{"id": "job_2", "name": "Deploy", "type": "workflow", "status": "failed", "spec": map[string]any{"task_id": "tsk_9"}},
		},
	}}
	c := New(Deps{API: fake, Identity: ids, EventTypes: []string{"plan_approved"}})
	mux := http.NewServeMux()
	c.Routes(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: sid})
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	contains := func(body string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("page lacks %q", w)
			}
		}
	}

	resp, body := do("GET", "/plans", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/plans: %d %s", resp.StatusCode, body)
	}
	contains(body, "Sprint 42", "waiting for approval", "2026-01-06 20:00:00", `action="/plans/new"`)

	resp, body = do("GET", "/plans/pln_1", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/plans/pln_1: %d %s", resp.StatusCode, body)
	}
	contains(body, "Announce", "Tell support", "tsk_9", "bob", `action="/plans/pln_1/approve"`, `formaction="/plans/pln_1/deny"`, "finish_planning", "S42")
	if strings.Contains(body, "<no value>") {
		t.Error("plan page shows <no value>")
	}

	tok := url.Values{"csrf": {sess.CSRFToken}}
	resp, _ = do("POST", "/plans/pln_1/deny", url.Values{"csrf": {sess.CSRFToken}, "comment": {"not now"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	resp, _ = do("POST", "/plans/pln_1/execute", tok)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Set-Cookie"), "outside") {
		t.Fatalf("execute refused: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	do("POST", "/plans/pln_1/jobs/job_1/execute", url.Values{"csrf": {sess.CSRFToken}, "remark": {"done by phone"}})
	do("POST", "/plans/pln_1/jobs/job_2/retry", tok)

	form := url.Values{"csrf": {sess.CSRFToken}, "name": {""}, "manager_id": {"usr_1"}, "start_time": {"2026-01-06T20:00"},
		"end_time": {"2026-01-06T22:00"}, "jobs": {`[{"name":"a","type":"text","spec":{"content":"x"}},{"name":"b","type":"workflow","spec":{"workflow":{}}}]`},
		"approval.enabled": {"true"}, "approval.approvers": {"usr_2"}, "approval.mode": {"all"}}
	resp, body = do("POST", "/plans/new", form)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad plan: %d", resp.StatusCode)
	}
	contains(body, `id="f-name-err"`, `id="f-jobs-err"`, "spec.workflow.environment")
	form.Set("name", "Sprint 43")
	resp, _ = do("POST", "/plans/new", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/plans/pln_2" {
		t.Fatalf("create plan: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	fake.mu.Lock()
	calls := strings.Join(fake.calls, "\n")
	fake.mu.Unlock()
	for _, want := range []string{
		`POST /api/v1/release/plans/pln_1/approve {"approve":false,"comment":"not now"}`,
		`POST /api/v1/release/plans/pln_1/jobs/job_1/execute {"remark":"done by phone"}`,
		`POST /api/v1/release/plans/pln_1/jobs/job_2/retry {}`,
		`"start_time":"2026-01-06T20:00:00Z"`,
		`"approval":{"approvers":["usr_2"],"enabled":true,"mode":"all"}`,
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("the API did not get %s; calls:\n%s", want, calls)
		}
	}
}
