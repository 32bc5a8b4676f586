package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
)

// Huge and deeply nested bodies on the routes the fuzz targets cover: over
// 1 MiB is a 413 payload_too_large; 10,000 levels of arrays or objects, as
// the whole body or as any field's value, is a 4xx, read without blowing
// the stack and in time and memory linear in the body (the benchmark below
// measures it; the test bounds the allocations, which unlike time do not
// depend on the machine's load).

const nestLevels = 10_000

func nestedArray(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func nestedObject(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }

// hostileRoute is a route with the placeholders of its fuzz target and
// bodies that put a value into every place of its body: the value replaces
// "@V@".
type hostileRoute struct {
	name, method, path string
	header             []string
	places             []string
}

type hostileEnv struct {
	e      *apptest.Env
	vars   map[string]string
	routes []hostileRoute
}

// newHostileEnv sets up one quiet Herald with what every route needs: the
// task environment, a plan waiting for its finish_planning check, and a
// callback configuration.
func newHostileEnv(t testing.TB, d db.Dialect) *hostileEnv {
	t.Helper()
	e := quietHerald(t, d)
	vars := planFuzzEnv(t, e)
	mustCall(t, e, "PUT", hookPath, map[string]any{"enable": true, "enable_callback": true,
		"hook_address": "https://hooks.example.com/herald", "hook_secret": fuzzHookSecret,
		"hook_events": []string{"finish_planning"}, "check_timeout": "1h"}, 200)
	createPlan(t, e, vars)
	waitForCheck(t, e, vars, false)
	configVars(t, mustCall(t, e, "POST", callbacksPath, baseConfig, 201), vars)

	task := []string{`@V@`, `{"project_id": "shop", "environment": "prod", "version": "v1", "hosts": @V@}`,
		`{"project_id": "shop", "environment": "prod", "version": "v1", "strategy": "canary", "canary": @V@}`,
		`{"project_id": "shop", "environment": "prod", "version": "v1", "executor": {"type": "local", "script": "true", "env": @V@}}`}
	plan := []string{`@V@`, `{"name": "p", "manager_id": "@ME@", "jobs": @V@}`,
		`{"name": "p", "manager_id": "@ME@", "jobs": [{"name": "j", "type": "text", "spec": @V@}]}`,
		`{"name": "p", "manager_id": "@ME@", "jobs": [{"name": "j", "type": "workflow", "spec": {"workflow": {"project_id": "shop", "environment": "prod", "version": "v1", "x": @V@}}}]}`,
		`{"name": "p", "manager_id": "@ME@", "jira_sprints": [@V@], "approval": {"enabled": true, "approvers": ["@APPROVER@"]}}`,
		`{"name": "p", "manager_id": "@ME@", "start_time": @V@}`}
	config := []string{`@V@`, `{"channels": @V@}`, `{"channels": [{"type": "custom", "config": @V@}]}`,
		`{"channels": [{"type": "custom", "config": {"url": "https://hooks.example.com/x", "headers": @V@}}]}`,
		`{"channels": [{"id": "@CH0@", "type": "dingtalk", "config": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=******", "at_mobiles": @V@}}]}`,
		`{"events": @V@, "channels": [{"type": "custom", "config": {"url": "https://hooks.example.com/x"}}]}`}
	callback := []string{`@V@`,
		`{"hook_event": "finish_planning", "release_plan_id": "@PLAN@", "instance_code": "@CODE@", "result": "failed", "failed_reason": @V@}`,
		`{"hook_event": @V@, "release_plan_id": "@PLAN@", "instance_code": "@CODE@", "result": "success"}`}
	return &hostileEnv{e: e, vars: vars, routes: []hostileRoute{
		{"task create", "POST", "/api/v1/release/tasks", nil, task},
		{"plan create", "POST", plansPath, nil, plan},
		{"plan update", "PUT", plansPath + "/" + vars[varPlan], nil, plan},
		{"callback configuration create", "POST", callbacksPath, nil, config},
		{"callback configuration update", "PUT", callbacksPath + "/" + vars[varConfig], nil, config},
		{"release plan callback", "POST", callbackPath, []string{"X-Herald-Token", fuzzHookSecret}, callback},
	}}
}

// body is a place with its value put in and the placeholders filled.
func (h *hostileEnv) body(place, value string) []byte {
	return fillVars([]byte(strings.Replace(place, "@V@", value, 1)), h.vars)
}

// everything is what any of the routes could have changed.
func (h *hostileEnv) everything(t testing.TB) string {
	t.Helper()
	return rowState(t, h.e, append(append(append([]string{}, taskTables...), planTables...), configTables...),
		planRows, jobRows, configRows, channelRows)
}

// deepValues are the nested values put in a place: 10,000 levels of arrays
// and of objects as a field's value (the body is one level deeper, past the
// decoder's limit), and as the whole body (at the limit for arrays, which
// are no object; past it for objects, whose unknown keys would otherwise
// be ignored). 9,990 levels of arrays, just inside the limit, reach what
// parses the field next; fields kept as sent ("x" in a workflow) are left
// out, as such a value is valid there.
func deepValues(place string) map[string]string {
	if place == "@V@" {
		return map[string]string{
			"10,000 nested arrays":  nestedArray(nestLevels),
			"10,001 nested objects": nestedObject(nestLevels + 1),
		}
	}
	v := map[string]string{
		"10,000 nested arrays":  nestedArray(nestLevels),
		"10,000 nested objects": nestedObject(nestLevels),
	}
	if !strings.Contains(place, `"x": @V@`) {
		v["9,990 nested arrays"] = nestedArray(nestLevels - 10)
	}
	return v
}

func TestHugeAndDeepBodies(t *testing.T) {
	t.Parallel()
	h := newHostileEnv(t, db.SQLite)
	before := h.everything(t)

	for _, r := range h.routes {
		for _, place := range r.places {
			for vname, v := range deepValues(place) {
				b := h.body(place, v)
				what := fmt.Sprintf("%s %s, %s in %.60s", r.method, r.name, vname, place)
				status, hdr, raw := sendRaw(t, h.e, r.method, r.path, b, r.header...)
				if !checkAnswer(t, what, b, status, hdr, raw) {
					t.Errorf("%s: accepted with %d", what, status)
				}
			}
		}

		// Over 1 MiB: a body that is fine JSON up to the limit, sent with
		// and without a Content-Length.
		huge := h.body(r.places[len(r.places)-1], `"`+strings.Repeat("x", 1<<20)+`"`)
		for _, chunked := range []bool{false, true} {
			what := fmt.Sprintf("%s %s, %d bytes (chunked %v)", r.method, r.name, len(huge), chunked)
			var body io.Reader = bytes.NewReader(huge)
			if chunked {
				body = io.MultiReader(body) // hides the length: the client sends it chunked
			}
			req, _ := http.NewRequest(r.method, h.e.URL+r.path, body)
			req.Header.Set("Authorization", "Bearer "+h.e.Token)
			for i := 0; i+1 < len(r.header); i += 2 {
				req.Header.Set(r.header[i], r.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkAnswer(t, what, huge, resp.StatusCode, resp.Header, raw)
			wantErr(t, what, resp.StatusCode, raw, http.StatusRequestEntityTooLarge, "payload_too_large")
		}
	}
	sameRowState(t, "hostile bodies", nil, before, h.everything(t))
}

// TestDeepBodiesAllocateLinearly bounds the memory a 10,000-deep body
// costs on each route: at most a few kilobytes per level, where anything
// quadratic would take gigabytes. Allocations, unlike time, do not depend
// on how loaded the machine is.
func TestDeepBodiesAllocateLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations of many requests")
	}
	// Not parallel: allocations are counted process-wide.
	h := newHostileEnv(t, db.SQLite)
	handler := h.e.App.Handler()
	var worst float64
	var worstWhat string
	for _, r := range h.routes {
		for _, place := range r.places {
			for vname, v := range deepValues(place) {
				b := h.body(place, v)
				var status int
				allocs := testing.AllocsPerRun(3, func() {
					status = serveOnce(handler, h.e.Token, r, b)
				})
				if status < 400 || status >= 500 {
					t.Errorf("%s %s with %.60s: status %d", r.method, r.name, place, status)
				}
				if perLevel := allocs / nestLevels; perLevel > 20 {
					t.Errorf("%s %s with %.60s (%d bytes): %.0f allocations, %.1f per level", r.method, r.name, place, len(b), allocs, perLevel)
				}
				if allocs > worst {
					worst, worstWhat = allocs, fmt.Sprintf("%s, %s in %.60s", r.name, vname, place)
				}
			}
		}
	}
	t.Logf("most allocations: %.0f (%.2f per level), %s", worst, worst/nestLevels, worstWhat)
}

// serveOnce runs one request through the whole handler in process.
func serveOnce(handler http.Handler, token string, r hostileRoute, body []byte) int {
	req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(r.header); i += 2 {
		req.Header.Set(r.header[i], r.header[i+1])
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec.Code
}

// BenchmarkHostileBodies measures one request with a 10,000-deep body on
// each route, and one with a body over 1 MiB.
func BenchmarkHostileBodies(b *testing.B) {
	h := newHostileEnv(b, db.SQLite)
	handler := h.e.App.Handler()
	for _, r := range h.routes {
		bodies := map[string][]byte{
			"deep-array":  h.body(r.places[1], nestedArray(nestLevels)),
			"deep-object": h.body(r.places[1], nestedObject(nestLevels)),
			"over-1MiB":   h.body(r.places[len(r.places)-1], `"`+strings.Repeat("x", 1<<20)+`"`),
		}
		for name, body := range bodies {
			b.Run(strings.ReplaceAll(r.name, " ", "-")+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if s := serveOnce(handler, h.e.Token, r, body); s < 400 || s >= 500 {
						b.Fatalf("status %d", s)
					}
				}
			})
		}
	}
}
