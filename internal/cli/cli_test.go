package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/cli"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// CLI tests run `herald task|plan …` in-process (cli.Run, what the binary
// runs) against a whole Herald on a real database: SQLite, and PostgreSQL
// when HERALD_TEST_DATABASE_URL is set. Tasks run real scripts with the
// local executor: `true` succeeds, `false` fails.

// herald is a running Herald with the project "app": its environments ok
// (script true), bad (script false), canary, and flip (fails for v2 only),
// each with hosts h1 and h2, and versions v1 and v2.
type herald struct {
	*apptest.Env
	meID string
}

func newHerald(t *testing.T, d db.Dialect) *herald {
	t.Helper()
	e := apptest.New(t, d)
	e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": "app", "name": "App"}, 201, nil)
	for env, script := range map[string]string{"ok": "true", "bad": "false", "canary": "true", "flip": `test "$HERALD_VERSION" != v2`, "plan": "true"} {
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": env,
			"executor": map[string]any{"type": "local", "script": script}}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments/"+env+"/hosts", map[string]any{"hosts": []map[string]string{
			{"name": "h1", "address": "127.0.0.1"}, {"name": "h2", "address": "127.0.0.1"}}}, 201, nil)
	}
	for _, v := range []string{"v1", "v2"} {
		e.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": v}, 201, nil)
	}
	var me struct{ ID string }
	e.JSON(t, "GET", "/api/v1/me", nil, 200, &me)
	return &herald{Env: e, meID: me.ID}
}

func each(t *testing.T, fn func(t *testing.T, h *herald)) {
	t.Helper()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, newHerald(t, d))
		})
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs a command line with HERALD_URL and HERALD_TOKEN of h (nil: none).
func run(t *testing.T, h *herald, stdin string, args ...string) result {
	t.Helper()
	env := map[string]string{}
	if h != nil {
		env["HERALD_URL"], env["HERALD_TOKEN"] = h.URL, h.Token
	}
	return runEnv(t, env, stdin, args...)
}

func runEnv(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Env{
		Getenv: func(k string) string { return env[k] },
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
	})
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("herald %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// want checks the exit status and that stderr holds each of subs.
func (r result) want(t *testing.T, code int, subs ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	for _, s := range subs {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	return r
}

// obj decodes stdout as one JSON object.
func (r result) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
	}
	return m
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

const fast = "--interval=20ms"

func TestTaskWaitSuccessAndFailure(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, h *herald) {
		// Success: create with flags and follow it; exit 0, the final task
		// on stdout, its progress on stderr.
		r := run(t, h, "", "task", "create", "--project", "app", "--env", "ok", "--version", "v1", "--batch-size", "1", "--wait", fast).
			want(t, 0, "created task", "success", "host h1: success", "host h2: success")
		task := r.obj(t)
		if str(task, "status") != "success" || str(task, "version") != "v1" || task["batch_size"] != float64(1) {
			t.Fatalf("final task: %v", task)
		}

		// Failure: create, then wait separately; exit 1, the failed hosts
		// named with the way to their output.
		created := run(t, h, "", "task", "create", "--project", "app", "--env", "bad", "--version", "v1").want(t, 0).obj(t)
		id := str(created, "id")
		if id == "" || str(created, "status") != "pending" {
			t.Fatalf("created: %v", created)
		}
		r = run(t, h, "", "task", "wait", id, fast).want(t, 1, "task "+id+" failed", "herald task logs "+id+" --host h")
		if str(r.obj(t), "status") != "failed" {
			t.Fatalf("wait's final task: %s", r.stdout)
		}
		// The text form: one line.
		line := run(t, h, "", "task", "get", id, "-o", "text").want(t, 0).stdout
		if strings.Count(line, "\n") != 1 || !strings.Contains(line, "task "+id+" app/bad deploy v1 rolling: failed") {
			t.Fatalf("text: %q", line)
		}
		logs := run(t, h, "", "task", "logs", id).want(t, 0).stdout
		if !strings.Contains(logs, "==> h1 (failed, exit 1) <==") {
			t.Fatalf("logs: %q", logs)
		}
		run(t, h, "", "task", "logs", id, "--host", "h1").want(t, 0)

		// Retry runs the failed hosts again: failed again.
		if st := str(run(t, h, "", "task", "retry", id).want(t, 0).obj(t), "status"); st == "failed" {
			t.Fatalf("retried task still failed at once")
		}
		run(t, h, "", "task", "wait", id, fast, "--quiet").want(t, 1, "failed")

		// A failed deploy rolled back by itself: exit 1, the rollback
		// followed to its end.
		run(t, h, "", "task", "create", "--project", "app", "--env", "flip", "--version", "v1", "--wait", fast).want(t, 0)
		r = run(t, h, "", "task", "create", "--project", "app", "--env", "flip", "--version", "v2", "--auto-rollback", "--wait", "--follow-rollback", fast).
			want(t, 1, "it is rolled back by task", "which ended success")
		if rb := str(r.obj(t), "rollback_task_id"); rb == "" {
			t.Fatalf("no rollback task: %s", r.stdout)
		}

		// list, with filters.
		list := run(t, h, "", "task", "list", "--env", "bad", "-o", "text").want(t, 0).stdout
		if !strings.Contains(list, id) || strings.Contains(list, "app/ok") {
			t.Fatalf("list: %s", list)
		}
	})
}

func TestTaskCanaryPromoteTimeoutCancel(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, h *herald) {
		// A full body from stdin; --promote promotes the paused canary.
		body := `{"project_id": "app", "environment": "canary", "version": "v1", "strategy": "canary", "canary": {"count": 1}}`
		r := run(t, h, body, "task", "create", "-f", "-", "--wait", "--promote", fast, "-o", "text").
			want(t, 0, "(phase canary)", "promoting task")
		if !strings.Contains(r.stdout, "canary: success") {
			t.Fatalf("text: %s", r.stdout)
		}

		// Without --promote the canary waits: --timeout gives up with 3,
		// the task goes on.
		id := str(run(t, h, "", "task", "create", "--project", "app", "--env", "canary", "--version", "v2", "--canary", "50%").want(t, 0).obj(t), "id")
		r = run(t, h, "", "task", "wait", id, "--timeout", "1500ms", fast).want(t, 3, "paused for promotion", "timed out after 1.5s", "the task goes on")
		if str(r.obj(t), "status") != "paused" {
			t.Fatalf("state at the timeout: %s", r.stdout)
		}

		// One active task per environment: the server's 409 is printed.
		run(t, h, "", "task", "create", "--project", "app", "--env", "canary", "--version", "v1").
			want(t, 1, "conflict:", "(HTTP 409")

		// Promote, then wait: success.
		run(t, h, "", "task", "promote", id).want(t, 0)
		run(t, h, "", "task", "wait", id, fast).want(t, 0)
		run(t, h, "", "task", "promote", id).want(t, 1, "invalid_state")

		// --promote-after lets the canary bake first.
		run(t, h, "", "task", "create", "--project", "app", "--env", "canary", "--version", "v1", "--canary", "1",
			"--wait", "--promote-after", "300ms", fast).want(t, 0, "promoting task")

		// Cancelled: exit 1.
		id = str(run(t, h, "", "task", "create", "--project", "app", "--env", "canary", "--version", "v2", "--canary", "1").want(t, 0).obj(t), "id")
		run(t, h, "", "task", "cancel", id).want(t, 0)
		run(t, h, "", "task", "wait", id, fast).want(t, 1, "task "+id+" was cancelled")
	})
}

func TestPlanCommands(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, h *herald) {
		// Flags and a body from stdin together; the manager defaults to
		// the caller; jobs are named by name.
		body := `{"description": "from stdin", "jobs": [{"name": "deploy", "type": "workflow",
			"spec": {"workflow": {"project_id": "app", "environment": "plan", "version": "v1"}}}]}`
		p := run(t, h, body, "plan", "create", "-f", "-", "--name", "Release 1", "--start", "-1h", "--end", "+1h",
			"--text-job", "announce=tell support").want(t, 0).obj(t)
		id := str(p, "id")
		if str(p, "manager_id") != h.meID || str(p, "description") != "from stdin" || len(p["jobs"].([]any)) != 2 || str(p, "status") != "planning" {
			t.Fatalf("created plan: %v", p)
		}
		run(t, h, "", "plan", "finish-planning", id).want(t, 0)
		if st := str(run(t, h, "", "plan", "execute", id).want(t, 0).obj(t), "status"); st != "executing" {
			t.Fatalf("executed: %s", st)
		}
		run(t, h, "", "plan", "execute", id, "announce", "--remark", "support told").want(t, 0)
		run(t, h, "", "plan", "execute", id, "deploy").want(t, 0)
		run(t, h, "", "plan", "execute", id, "nosuchjob").want(t, 1, `no job with the id or name "nosuchjob"`)
		r := run(t, h, "", "plan", "wait", id, fast).want(t, 0, `job "deploy": done`, "success")
		if str(r.obj(t), "status") != "success" {
			t.Fatalf("final plan: %s", r.stdout)
		}
		if logs := run(t, h, "", "plan", "logs", id, "-o", "text").want(t, 0).stdout; !strings.Contains(logs, "finish_planning") {
			t.Fatalf("logs: %s", logs)
		}
		if list := run(t, h, "", "plan", "list", "--status", "success", "-o", "text").want(t, 0).stdout; !strings.Contains(list, `"Release 1": success`) {
			t.Fatalf("list: %s", list)
		}

		// Approval denied: wait --until stops at the approval, then wait
		// ends 1.
		dir := t.TempDir()
		file := filepath.Join(dir, "plan.json")
		if err := os.WriteFile(file, []byte(`{"name": "Release 2", "jobs": [{"name": "note", "type": "text"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		id2 := str(run(t, h, "", "plan", "create", "-f", file, "--approver", h.meID).want(t, 0).obj(t), "id")
		run(t, h, "", "plan", "finish-planning", id2).want(t, 0)
		run(t, h, "", "plan", "submit-approval", id2).want(t, 0)
		run(t, h, "", "plan", "wait", id2, "--until", "wait_for_approval", fast).want(t, 0, "waiting for approval")
		run(t, h, "", "plan", "deny", id2, "--comment", "not today").want(t, 0)
		run(t, h, "", "plan", "wait", id2, fast).want(t, 1, "ended denied")

		// Approved, a job skipped: success.
		id3 := str(run(t, h, "", "plan", "create", "--name", "Release 3", "--text-job", "note", "--approver", h.meID).want(t, 0).obj(t), "id")
		run(t, h, "", "plan", "finish-planning", id3).want(t, 0)
		run(t, h, "", "plan", "submit-approval", id3).want(t, 0)
		run(t, h, "", "plan", "approve", id3, "--comment", "go").want(t, 0)
		run(t, h, "", "plan", "skip", id3, "note").want(t, 0)
		run(t, h, "", "plan", "wait", id3, fast, "-o", "text").want(t, 0)

		// Cancelled: wait ends 1; the refusal of a second cancel is printed.
		id4 := str(run(t, h, "", "plan", "create", "--name", "Release 4", "--text-job", "note").want(t, 0).obj(t), "id")
		run(t, h, "", "plan", "cancel", id4).want(t, 0)
		run(t, h, "", "plan", "wait", id4, fast).want(t, 1, "ended cancel")
		run(t, h, "", "plan", "cancel", id4).want(t, 1, "invalid_state")
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HERALD_URL": "http://127.0.0.1:1", "HERALD_TOKEN": "x"}
	for _, c := range []struct {
		args  []string
		env   map[string]string
		stdin string
		want  string
	}{
		{args: []string{"task"}, want: "Usage: herald task"},
		{args: []string{"task", "deploy"}, want: `unknown command "deploy"`},
		{args: []string{"plan", "frobnicate"}, want: `unknown command "frobnicate"`},
		{args: []string{"task", "get"}, want: "wants 1 argument(s) (TASK_ID), got 0"},
		{args: []string{"task", "get", "a", "b"}, want: "wants 1 argument(s)"},
		{args: []string{"task", "create", "--nope"}, want: "flag provided but not defined: -nope"},
		{args: []string{"task", "create", "extra"}, want: "takes no arguments"},
		{args: []string{"task", "wait", "t1", "--timeout", "banana"}, want: `invalid value "banana" for flag -timeout: must be a duration`},
		{args: []string{"task", "wait", "t1", "--interval", "0s"}, env: env, want: "--interval must be more than 0"},
		{args: []string{"task", "create", "--canary", "lots"}, env: env, want: "--canary must be a host count"},
		{args: []string{"task", "create", "--batch-size", "150%"}, env: env, want: "--batch-size must be"},
		{args: []string{"task", "create", "--promote"}, env: env, want: "--promote is a flag of --wait"},
		{args: []string{"task", "create", "-f", "/nonexistent/task.json"}, env: env, want: "-f: cannot read /nonexistent/task.json"},
		{args: []string{"task", "create", "-f", "-"}, stdin: "{not json", env: env, want: "-f: stdin is not a JSON object"},
		{args: []string{"task", "create", "-f", "-"}, stdin: "[1]", env: env, want: "-f: stdin is not a JSON object"},
		{args: []string{"task", "get", "t1", "-o", "yaml"}, env: env, want: "--output must be json or text"},
		{args: []string{"plan", "wait", "p1", "--until", "done"}, env: env, want: `--until: "done" is not a plan status`},
		{args: []string{"plan", "execute", "p1", "--remark", "x"}, env: env, want: "--remark completes a text job"},
		{args: []string{"plan", "create", "--start", "tomorrow"}, env: env, want: "--start must be an RFC 3339 time"},
		{args: []string{"plan", "create", "--approval-mode", "most"}, env: env, want: "--approval-mode must be any or all"},
		{args: []string{"task", "get", "t1"}, env: map[string]string{"HERALD_TOKEN": "x"}, want: "no server: set HERALD_URL (or --url)"},
		{args: []string{"task", "get", "t1"}, env: map[string]string{"HERALD_URL": "http://127.0.0.1:1"}, want: "no token: set HERALD_TOKEN (or --token)"},
		{args: []string{"task", "get", "t1", "--url", "herald.example.com"}, env: env, want: "is not an http:// or https:// URL"},
	} {
		r := runEnv(t, c.env, c.stdin, c.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("herald %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
		if r.stdout != "" {
			t.Errorf("herald %s: stdout %q on a usage error", strings.Join(c.args, " "), r.stdout)
		}
	}

	// Help is no error.
	if r := runEnv(t, nil, "", "task", "help"); r.code != 0 || !strings.Contains(r.stdout, "wait") {
		t.Errorf("task help: %d %q", r.code, r.stdout)
	}
	if r := runEnv(t, nil, "", "plan", "wait", "-h"); r.code != 0 || !strings.Contains(r.stderr, "-until") {
		t.Errorf("plan wait -h: %d %q", r.code, r.stderr)
	}
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	h := newHerald(t, db.SQLite)

	// A wrong token: the server's message, never the token.
	const secret = "hrd_wrong_token_must_not_leak_42"
	r := runEnv(t, map[string]string{"HERALD_URL": h.URL, "HERALD_TOKEN": secret}, "", "task", "get", "t1").want(t, 1, "unauthorized:", "(HTTP 401")
	r2 := runEnv(t, map[string]string{"HERALD_URL": h.URL}, "", "task", "list", "--token", secret).want(t, 1, "unauthorized")
	for _, out := range []string{r.stdout, r.stderr, r2.stdout, r2.stderr} {
		if strings.Contains(out, secret) {
			t.Fatalf("the token was printed: %s", out)
		}
	}

	// Not found, and a validation error with its fields.
	run(t, h, "", "task", "get", "tsk_nope").want(t, 1, "not_found:", "(HTTP 404")
	run(t, h, "", "plan", "get", "pln_nope").want(t, 1, "not_found:")
	run(t, h, "", "task", "create", "--env", "ok", "--strategy", "sideways").
		want(t, 1, "validation_failed:", "project_id: is required", "strategy: must be canary, rolling or blue_green")
	run(t, h, "", "task", "get", "t1", "--url", h.URL+"/api/v1/").want(t, 1, "not_found") // a base URL with /api/v1 works too

	// Not Herald at all, and nothing listening: exit 4.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	runEnv(t, map[string]string{"HERALD_URL": "http://" + addr, "HERALD_TOKEN": "x"}, "", "task", "get", "t1").
		want(t, cli.ExitUnreachable, "GET http://"+addr+"/api/v1/release/tasks/t1")
}

// TestWaitRidesOutAnOutage: a wait goes on through a Herald that answers
// 503 for a while (a restart behind a proxy), and retries the promote.
func TestWaitRidesOutAnOutage(t *testing.T) {
	t.Parallel()
	h := newHerald(t, db.SQLite)
	target, err := url.Parse(h.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var n, failFrom, failTo atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := n.Add(1); i >= failFrom.Load() && i <= failTo.Load() {
			http.Error(w, "upstream restarting", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"HERALD_URL": srv.URL, "HERALD_TOKEN": h.Token}

	// Outside a wait, a 5xx is exit 4 with the proxy's words.
	failFrom.Store(1)
	failTo.Store(1)
	runEnv(t, env, "", "task", "get", "t1").want(t, cli.ExitUnreachable, "503 Service Unavailable: upstream restarting")

	// In a wait: the first poll sees the paused canary, the promote and
	// the next two polls get 503; the wait goes on and succeeds.
	id := str(run(t, h, "", "task", "create", "--project", "app", "--env", "canary", "--version", "v1", "--canary", "1").want(t, 0).obj(t), "id")
	run(t, h, "", "task", "wait", id, "--timeout", "1s", fast).want(t, 3, "paused for promotion")
	n.Store(0)
	failFrom.Store(2)
	failTo.Store(4)
	runEnv(t, env, "", "task", "wait", id, "--promote", fast).
		want(t, 0, "promote failed", "Herald is unavailable", "reached Herald again", "success")
}
