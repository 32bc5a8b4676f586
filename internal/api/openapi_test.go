package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/plan"
)

// OpenAPI tests: the description served at GET /api/openapi.json is
// OpenAPI 3.1, describes exactly the API routes the server registers (the
// list comes from the server itself, api.Server.Routes, which is what
// Handle registered on the mux), its references resolve, its enums are the
// domain's, and real answers of a running Herald fit its schemas, with
// every field they carry described.

func openAPIDoc(t testing.TB) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return doc
}

func openAPIMap(t testing.TB, v any, where string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not an object: %v", where, v)
	}
	return m
}

// openAPIIsAPIRoute tells the routes the description covers from the web
// console's pages, which share the mux.
func openAPIIsAPIRoute(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
}

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := openAPIDoc(t)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	info := openAPIMap(t, doc["info"], "info")
	if info["title"] == "" || info["version"] == "" {
		t.Fatalf("info lacks title or version: %v", info)
	}
	comps := openAPIMap(t, doc["components"], "components")
	bearer := openAPIMap(t, openAPIMap(t, comps["securitySchemes"], "securitySchemes")["bearer"], "securitySchemes.bearer")
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
		t.Fatalf("bearer security scheme: %v", bearer)
	}
	if sec, _ := doc["security"].([]any); len(sec) != 1 || openAPIMap(t, sec[0], "security[0]")["bearer"] == nil {
		t.Fatalf("the default security is not the bearer token: %v", doc["security"])
	}
	schemas := openAPIMap(t, comps["schemas"], "schemas")
	for _, name := range []string{"Error", "FieldError", "User", "Token", "TokenCreated", "Project", "Environment", "Executor", "Host",
		"Version", "TaskInput", "Task", "TaskHost", "TaskBatch", "Plan", "PlanInput", "PlanJob", "PlanHookSettings",
		"ReleasePlanCallback", "ReleasePlanHook", "CallbackConfig", "Channel", "HistoryEntry", "EventMessage", "TaskList", "PlanList"} {
		if _, ok := schemas[name]; !ok {
			t.Errorf("components.schemas lacks %s", name)
		}
	}

	// Every reference resolves.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				if _, err := openAPIPointer(doc, r); err != nil {
					t.Errorf("%s: $ref %s: %v", at, r, err)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s[%d]", at, i))
			}
		}
	}
	walk(doc, "#")

	// Operations: unique ids, responses, path parameters as the template
	// names them, and a security decision for the routes without a token.
	ids := map[string]string{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range openAPIMap(t, doc["paths"], "paths") {
		ops := openAPIMap(t, item, path)
		var want []string
		for _, m := range param.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		sort.Strings(want)
		for method, o := range ops {
			where := strings.ToUpper(method) + " " + path
			op := openAPIMap(t, o, where)
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %s is also %s", where, id, other)
			}
			ids[id] = where
			if rs, _ := op["responses"].(map[string]any); len(rs) == 0 {
				t.Errorf("%s: no responses", where)
			}
			var got []string
			ps, _ := op["parameters"].([]any)
			for _, p := range ps {
				pm := openAPIMap(t, p, where+" parameter")
				if r, ok := pm["$ref"].(string); ok {
					v, err := openAPIPointer(doc, r)
					if err != nil {
						continue // reported by the walk
					}
					pm = openAPIMap(t, v, r)
				}
				if pm["in"] == "path" {
					got = append(got, pm["name"].(string))
					if pm["required"] != true {
						t.Errorf("%s: path parameter %s is not required", where, pm["name"])
					}
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: path parameters %v, want %v", where, got, want)
			}
			public := path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/api/openapi.json"
			sec, hasSec := op["security"].([]any)
			switch {
			case public && (!hasSec || len(sec) != 0):
				t.Errorf("%s: needs no credentials, so its security must be []", where)
			case path == "/api/callback/release_plan" && (len(sec) != 1 || openAPIMap(t, sec[0], where)["heraldToken"] == nil):
				t.Errorf("%s: authenticates with X-Herald-Token (heraldToken)", where)
			case !public && path != "/api/callback/release_plan" && hasSec:
				t.Errorf("%s: must use the default bearer security", where)
			}
		}
	}

	// Enums are the domain's own lists.
	enum := func(schema, prop string) []string {
		s := openAPIMap(t, schemas[schema], schema)
		p := openAPIMap(t, openAPIMap(t, s["properties"], schema+".properties")[prop], schema+"."+prop)
		if items, ok := p["items"].(map[string]any); ok {
			p = items
		}
		var out []string
		for _, v := range p["enum"].([]any) {
			out = append(out, v.(string))
		}
		sort.Strings(out)
		return out
	}
	sorted := func(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }
	if got, want := enum("HistoryEntry", "event_type"), sorted(event.Types()); !slices.Equal(got, want) {
		t.Errorf("event types %v, want %v", got, want)
	}
	if got, want := enum("CallbackConfig", "events"), sorted(event.Types()); !slices.Equal(got, want) {
		t.Errorf("callback events %v, want %v", got, want)
	}
	if got, want := enum("Channel", "type"), sorted(notify.KindTypes()); !slices.Equal(got, want) {
		t.Errorf("channel types %v, want %v", got, want)
	}
	if got, want := enum("Plan", "status"), sorted(plan.Statuses()); !slices.Equal(got, want) {
		t.Errorf("plan statuses %v, want %v", got, want)
	}
}

// openAPIPointer resolves a local JSON pointer such as
// #/components/schemas/Task.
func openAPIPointer(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	var cur any = doc
	for _, part := range strings.Split(rest, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %s", part)
		}
	}
	return cur, nil
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, db.SQLite)
	doc := openAPIDoc(t)

	served := map[string]bool{}
	for _, pattern := range e.App.API.Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		if !openAPIIsAPIRoute(path) {
			continue // a console page
		}
		if method == "" {
			t.Errorf("route %q has no method: register API routes as \"METHOD /path\"", pattern)
			continue
		}
		served[strings.ToLower(method)+" "+path] = true
	}
	if len(served) < 60 {
		t.Fatalf("only %d API routes registered: is the server fully wired? %v", len(served), served)
	}
	described := map[string]bool{}
	for path, item := range openAPIMap(t, doc["paths"], "paths") {
		for method := range openAPIMap(t, item, path) {
			if !slices.Contains(openAPIMethods, method) {
				t.Errorf("%s: %q is not an HTTP method", path, method)
			}
			described[method+" "+path] = true
		}
	}
	for r := range served {
		if !described[r] {
			t.Errorf("the server serves %s, which openapi.json does not describe", strings.ToUpper(r))
		}
	}
	for r := range described {
		if !served[r] {
			t.Errorf("openapi.json describes %s, which the server does not serve", strings.ToUpper(r))
		}
	}

	// Served as is, without credentials.
	resp, err := http.Get(e.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || string(body) != string(api.OpenAPI()) {
		t.Fatalf("GET /api/openapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// openAPIChecker calls a running Herald and checks each answer against the
// description's schema for that route and status.
type openAPIChecker struct {
	t   *testing.T
	e   *apptest.Env
	doc map[string]any
}

// call sends the request for the route pattern ("POST /api/v1/…/{id}")
// at the concrete path, wants status, checks the answer and decodes it.
func (c *openAPIChecker) call(pattern, path string, body any, status int) map[string]any {
	c.t.Helper()
	method, route, _ := strings.Cut(pattern, " ")
	got, raw := c.e.Do(c.t, method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, raw)
	}
	item, ok := openAPIMap(c.t, c.doc["paths"], "paths")[route].(map[string]any)
	if !ok {
		c.t.Fatalf("openapi.json has no path %s", route)
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		c.t.Fatalf("openapi.json has no %s", pattern)
	}
	resps := openAPIMap(c.t, op["responses"], pattern+" responses")
	resp, ok := resps[fmt.Sprint(status)]
	if !ok {
		c.t.Fatalf("%s: openapi.json does not describe status %d", pattern, status)
	}
	r := openAPIMap(c.t, c.deref(resp), pattern+" response")
	content, _ := r["content"].(map[string]any)
	if len(raw) == 0 || status == http.StatusNoContent {
		if len(content) > 0 {
			c.t.Fatalf("%s %d: no body, but openapi.json describes one", pattern, status)
		}
		return nil
	}
	media, ok := content["application/json"].(map[string]any)
	if !ok {
		c.t.Fatalf("%s %d: answered JSON, openapi.json describes %v", pattern, status, content)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		c.t.Fatalf("%s: %v", pattern, err)
	}
	if problems := c.validate(media["schema"], v, "$"); len(problems) > 0 {
		c.t.Errorf("%s %d: the answer does not fit openapi.json:\n  %s\nanswer: %s", pattern, status, strings.Join(problems, "\n  "), raw)
	}
	m, _ := v.(map[string]any)
	return m
}

func (c *openAPIChecker) deref(v any) any {
	for {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		r, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		var err error
		if v, err = openAPIPointer(c.doc, r); err != nil {
			c.t.Fatalf("$ref %s: %v", r, err)
		}
	}
}

// validate checks v against a schema: types, required and described
// properties (stricter than JSON Schema: a field the schema does not list
// is a problem unless additionalProperties allows it), enums, const,
// date-times, and oneOf/anyOf as "one of them fits".
func (c *openAPIChecker) validate(schema, v any, at string) []string {
	s, ok := c.deref(schema).(map[string]any)
	if !ok {
		return nil
	}
	for _, key := range []string{"oneOf", "anyOf"} {
		alts, ok := s[key].([]any)
		if !ok {
			continue
		}
		var all []string
		for i, alt := range alts {
			p := c.validate(alt, v, at)
			if len(p) == 0 {
				return nil
			}
			all = append(all, fmt.Sprintf("%s alternative %d: %s", key, i, strings.Join(p, "; ")))
		}
		return all
	}
	var problems []string
	if want, ok := s["const"]; ok && fmt.Sprint(want) != fmt.Sprint(v) {
		problems = append(problems, fmt.Sprintf("%s: %v, want %v", at, v, want))
	}
	if types := openAPITypes(s["type"]); len(types) > 0 && !slices.Contains(types, openAPITypeOf(v)) &&
		!(openAPITypeOf(v) == "integer" && slices.Contains(types, "number")) {
		return append(problems, fmt.Sprintf("%s: a %s, want %v", at, openAPITypeOf(v), types))
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		problems = append(problems, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	if str, ok := v.(string); ok && s["format"] == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q is not a date-time", at, str))
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range openAPIStrings(s["required"]) {
			if _, ok := v[r]; !ok {
				problems = append(problems, fmt.Sprintf("%s: lacks the required %s", at, r))
			}
		}
		extra := s["additionalProperties"]
		for k, x := range v {
			if ps, ok := props[k]; ok {
				problems = append(problems, c.validate(ps, x, at+"."+k)...)
				continue
			}
			switch extra := extra.(type) {
			case map[string]any:
				problems = append(problems, c.validate(extra, x, at+"."+k)...)
			case bool:
				if !extra {
					problems = append(problems, fmt.Sprintf("%s: %s is not allowed", at, k))
				}
			default:
				if props != nil {
					problems = append(problems, fmt.Sprintf("%s: the answer has %s, which openapi.json does not describe", at, k))
				}
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, x := range v {
				problems = append(problems, c.validate(items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return problems
}

func openAPITypes(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	return openAPIStrings(v)
}

func openAPIStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func openAPITypeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func TestOpenAPISchemasFitAnswers(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, db.SQLite)
	c := &openAPIChecker{t: t, e: e, doc: openAPIDoc(t)}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }

	c.call("GET /healthz", "/healthz", nil, 200)
	c.call("GET /readyz", "/readyz", nil, 200)

	// §3
	me := c.call("GET /api/v1/me", "/api/v1/me", nil, 200)
	u := c.call("POST /api/v1/users", "/api/v1/users", map[string]any{"name": "oa", "email": "oa@example.com", "role": "member"}, 201)
	c.call("GET /api/v1/users", "/api/v1/users", nil, 200)
	c.call("GET /api/v1/users/{id}", "/api/v1/users/"+str(u, "id"), nil, 200)
	tok := c.call("POST /api/v1/users/{id}/tokens", "/api/v1/users/"+str(u, "id")+"/tokens", map[string]any{"name": "ci"}, 201)
	c.call("GET /api/v1/users/{id}/tokens", "/api/v1/users/"+str(u, "id")+"/tokens", nil, 200)
	c.call("DELETE /api/v1/tokens/{id}", "/api/v1/tokens/"+str(tok, "id"), nil, 204)

	// §4
	const p = "/api/v1/release/projects"
	c.call("POST "+p, p, map[string]any{"id": "oa", "name": "OpenAPI", "description": "d"}, 201)
	c.call("GET "+p, p, nil, 200)
	c.call("PUT "+p+"/{id}", p+"/oa", map[string]any{"name": "OpenAPI", "description": "d2"}, 200)
	c.call("GET "+p+"/{id}", p+"/oa", nil, 200)
	c.call("POST "+p+"/{id}/environments", p+"/oa/environments", map[string]any{"name": "prod", "production": true,
		"executor": map[string]any{"type": "local", "script": "true", "timeout": "1m", "env": map[string]string{"K": "V"}}}, 201)
	c.call("GET "+p+"/{id}/environments", p+"/oa/environments", nil, 200)
	c.call("PUT "+p+"/{id}/environments/{env}", p+"/oa/environments/prod", map[string]any{"description": "live",
		"executor": map[string]any{"type": "local", "script": "true"}}, 200)
	c.call("GET "+p+"/{id}/environments/{env}", p+"/oa/environments/prod", nil, 200)
	c.call("POST "+p+"/{id}/environments/{env}/hosts", p+"/oa/environments/prod/hosts", map[string]any{"name": "h1", "address": "127.0.0.1"}, 201)
	c.call("POST "+p+"/{id}/environments/{env}/hosts", p+"/oa/environments/prod/hosts",
		map[string]any{"hosts": []map[string]any{{"name": "h2", "address": "127.0.0.1", "labels": map[string]string{"rack": "a"}}, {"name": "h3", "address": "127.0.0.1"}}}, 201)
	c.call("GET "+p+"/{id}/environments/{env}/hosts", p+"/oa/environments/prod/hosts", nil, 200)
	c.call("DELETE "+p+"/{id}/environments/{env}/hosts/{name}", p+"/oa/environments/prod/hosts/h3", nil, 204)
	v := c.call("POST "+p+"/{id}/versions", p+"/oa/versions", map[string]any{"name": "v1", "artifact": "a.tgz", "metadata": map[string]any{"sha": "abc", "n": 1}}, 201)
	c.call("GET "+p+"/{id}/versions", p+"/oa/versions", nil, 200)
	c.call("GET "+p+"/{id}/versions/{version_id}", p+"/oa/versions/"+str(v, "id"), nil, 200)

	// §5: a task to its end.
	const tp = "/api/v1/release/tasks"
	task := c.call("POST "+tp, tp, map[string]any{"project_id": "oa", "environment": "prod", "version": "v1", "strategy": "canary",
		"canary": map[string]any{"count": 1}, "batch_size": 1}, 201)
	id := str(task, "id")
	deadline := time.Now().Add(90 * time.Second)
	for {
		task = c.call("GET "+tp+"/{id}", tp+"/"+id, nil, 200)
		if str(task, "status") == "paused" {
			c.call("POST "+tp+"/{id}/promote", tp+"/"+id+"/promote", nil, 200)
		}
		if str(task, "status") == "success" || str(task, "status") == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not end: %v", id, task)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.call("GET "+tp, tp+"?project_id=oa", nil, 200)
	c.call("GET "+tp+"/{id}/callbacks", tp+"/"+id+"/callbacks", nil, 200)
	c.call("POST "+tp+"/{id}/cancel", tp+"/"+id+"/cancel", nil, 409)
	c.call("GET "+tp+"/{id}", tp+"/nope", nil, 404)
	c.call("POST "+tp, tp, map[string]any{"project_id": "oa"}, 422)

	// §7
	const pl = "/api/v1/release/plans"
	now := time.Now().UTC()
	pln := c.call("POST "+pl, pl, map[string]any{"name": "R1", "manager_id": str(me, "id"),
		"start_time": now.Add(-time.Hour).Format(time.RFC3339), "end_time": now.Add(time.Hour).Format(time.RFC3339),
		"jira_sprints": []any{"S-1", map[string]any{"id": "S-2", "name": "Two", "link": "https://jira.example.com/2"}},
		"jobs": []any{
			map[string]any{"name": "note", "type": "text", "spec": map[string]any{"content": "tell support"}},
			map[string]any{"name": "deploy", "type": "workflow", "spec": map[string]any{"workflow": map[string]any{"project_id": "oa", "environment": "prod", "version": "v1"}}},
		},
		"approval": map[string]any{"enabled": true, "approvers": []string{str(me, "id")}, "mode": "any"}}, 201)
	pid := str(pln, "id")
	c.call("GET "+pl, pl, nil, 200)
	c.call("PUT "+pl+"/{id}", pl+"/"+pid, map[string]any{"description": "edited"}, 200)
	c.call("POST "+pl+"/{id}/finish-planning", pl+"/"+pid+"/finish-planning", nil, 200)
	c.call("POST "+pl+"/{id}/submit-approval", pl+"/"+pid+"/submit-approval", map[string]any{}, 200)
	pln = c.call("POST "+pl+"/{id}/approve", pl+"/"+pid+"/approve", map[string]any{"approve": true, "comment": "ok"}, 200)
	jobs, _ := pln["jobs"].([]any)
	var textJob, flowJob string
	for _, j := range jobs {
		jm, _ := j.(map[string]any)
		if str(jm, "type") == "text" {
			textJob = str(jm, "id")
		} else {
			flowJob = str(jm, "id")
		}
	}
	c.call("POST "+pl+"/{id}/jobs/{job_id}/execute", pl+"/"+pid+"/jobs/"+textJob+"/execute", map[string]any{"remark": "done"}, 200)
	c.call("POST "+pl+"/{id}/jobs/{job_id}/skip", pl+"/"+pid+"/jobs/"+flowJob+"/skip", nil, 200)
	c.call("POST "+pl+"/{id}/jobs/{job_id}/retry", pl+"/"+pid+"/jobs/"+flowJob+"/retry", nil, 409)
	c.call("GET "+pl+"/{id}", pl+"/"+pid, nil, 200)
	c.call("GET "+pl+"/{id}/logs", pl+"/"+pid+"/logs", nil, 200)
	c.call("GET "+pl+"/{id}/hooks", pl+"/"+pid+"/hooks", nil, 200)
	other := str(c.call("POST "+pl, pl, map[string]any{"name": "R2", "manager_id": str(me, "id"),
		"jobs": []any{map[string]any{"name": "note", "type": "text"}}}, 201), "id")
	c.call("POST "+pl+"/{id}/execute", pl+"/"+other+"/execute", nil, 409)
	c.call("POST "+pl+"/{id}/finish-planning", pl+"/"+other+"/finish-planning", nil, 200)
	c.call("POST "+pl+"/{id}/replan", pl+"/"+other+"/replan", nil, 200)
	c.call("POST "+pl+"/{id}/cancel", pl+"/"+other+"/cancel", nil, 200)
	third := str(c.call("POST "+pl, pl, map[string]any{"name": "R3", "manager_id": str(me, "id")}, 201), "id")
	c.call("DELETE "+pl+"/{id}", pl+"/"+third, nil, 204)
	c.call("PUT /api/v1/release/settings/plan-hook", "/api/v1/release/settings/plan-hook", map[string]any{"enable": false, "enable_callback": false,
		"hook_address": "https://hooks.example.com/herald", "hook_secret": "s3cret-s3cret", "hook_events": []string{"finish_planning"}, "check_timeout": "1h"}, 200)
	c.call("GET /api/v1/release/settings/plan-hook", "/api/v1/release/settings/plan-hook", nil, 200)

	// §8: a custom channel to a closed port: the test send fails, and
	// leaves history.
	const cb = "/api/v1/release/callbacks"
	cfg := c.call("POST "+cb, cb, map[string]any{"name": "all", "channels": []any{map[string]any{"type": "custom",
		"config": map[string]any{"url": "http://127.0.0.1:1/hook", "secret": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "retry_count": 0}}}}, 201)
	cid := str(cfg, "id")
	c.call("POST "+p+"/{id}/callbacks", p+"/oa/callbacks", map[string]any{"name": "oa", "events": []string{"full_completed"},
		"channels": []any{map[string]any{"type": "feishu", "config": map[string]any{"webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"}}}}, 201)
	c.call("GET "+p+"/{id}/callbacks", p+"/oa/callbacks", nil, 200)
	c.call("GET "+cb, cb, nil, 200)
	c.call("GET "+cb+"/{id}", cb+"/"+cid, nil, 200)
	c.call("PUT "+cb+"/{id}", cb+"/"+cid, map[string]any{"name": "all", "enabled": true, "channels": []any{map[string]any{"type": "custom",
		"config": map[string]any{"url": "http://127.0.0.1:1/hook", "secret": "******", "retry_count": 0}}}}, 200)
	c.call("POST "+cb+"/{id}/test", cb+"/"+cid+"/test", nil, 200)
	chID := ""
	if chs, _ := cfg["channels"].([]any); len(chs) > 0 {
		chID = str(chs[0].(map[string]any), "id")
	}
	c.call("POST "+cb+"/preview", cb+"/preview", map[string]any{"event_type": "release_failed", "lang": "en", "config_id": cid, "project_id": "oa",
		"template": map[string]any{"title": "{{.Project.Name}}: {{.Outcome}}"},
		"channel": map[string]any{"id": chID, "type": "custom", "config": map[string]any{"url": "http://127.0.0.1:1/hook", "secret": "******"},
			"template": map[string]any{"body": "{{range .Fields}}{{.Label}}={{.Value}}\n{{end}}"}}}, 200)
	c.call("POST "+cb+"/preview", cb+"/preview", map[string]any{"event_type": "plan_approved",
		"channel": map[string]any{"type": "email", "config": map[string]any{"smtp_host": "smtp.example.com", "from": "h@example.com", "recipients": []string{"plan_manager"}}}}, 200)
	c.call("POST "+cb+"/preview", cb+"/preview", map[string]any{"channel": map[string]any{"type": "feishu",
		"config": map[string]any{"webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"}, "template": map[string]any{"body": "{{.Nope}}"}}}, 422)
	hist := c.call("GET "+cb+"/history", cb+"/history", nil, 200)
	c.call("GET "+cb+"/{id}/history", cb+"/"+cid+"/history", nil, 200)
	if items, _ := hist["items"].([]any); len(items) > 0 {
		hid := str(items[0].(map[string]any), "id")
		status, raw := e.Do(t, "POST", cb+"/history/"+hid+"/redeliver", nil)
		if status == 202 {
			c.call("POST "+cb+"/history/{id}/redeliver", cb+"/history/"+hid+"/redeliver", nil, 202)
		} else if status != 409 {
			t.Errorf("redeliver: %d %s", status, raw)
		}
	} else {
		t.Errorf("no history after a test send")
	}
	c.call("DELETE "+cb+"/{id}", cb+"/"+cid, nil, 204)

	// The callback of §7 authenticates with X-Herald-Token, not a bearer.
	status, raw := e.DoAs(t, "", "POST", "/api/callback/release_plan", map[string]any{"hook_event": "finish_planning"})
	if status < 400 || status >= 500 || !json.Valid(raw) {
		t.Errorf("callback without token: %d %s", status, raw)
	}
}
